// Command leadify-server is Leadify's sync server: the Connect API the desktop
// apps sync with, the carrier and shop webhooks, and the job runner.
//
//	leadify-server serve          run the server (migrates first when LEADIFY_MIGRATE_DATABASE_URL is set)
//	leadify-server migrate        apply the schema migrations and grants
//	leadify-server seed-demo      create the demo platform admin, sellers, stores and agents
//	leadify-server rotate-secrets re-encrypt stored credentials under the active key
//	leadify-server demo-carriers  sandbox: a fake Coliix delivers the demo's confirmed leads (server at --addr)
//	leadify-server demo-shops     sandbox: a fake Shopify shop sends Caftan Chic orders that become leads (server at --addr)
//	leadify-server demo-sheets    sandbox: a fake Google Sheets API serving the sample seller sheet at --sheets-endpoint
//	leadify-server demo-invoices  last month's invoices for the demo stores (PDFs in $LEADIFY_DEMO_INVOICES_DIR, default out/invoices)
//	leadify-server gen-key ID     print a new secret key for LEADIFY_SECRET_KEYS
//
// Configuration comes from flags, each with an environment variable (the flag wins).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "time/tzdata" // store time zones validate the same on every machine

	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/demo"
	"github.com/leadify/leadify/syncserver/intake/shop/shopsync"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
	"github.com/leadify/leadify/syncserver/server"
)

type config struct {
	addr, databaseURL, migrateURL, appRole string
	secretKeys, tlsCert, tlsKey, logLevel  string
	grace                                  time.Duration
	billing                                billing.Config
	sheetsEndpoint                         string
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}

func parse(args []string) (config, []string, error) {
	var c config
	fs := flag.NewFlagSet("leadify-server", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", envOr("LEADIFY_ADDR", "127.0.0.1:8080"), "listen address ($LEADIFY_ADDR)")
	fs.StringVar(&c.databaseURL, "database-url", envOr("DATABASE_URL", ""), "Postgres URL of the application role ($DATABASE_URL)")
	fs.StringVar(&c.migrateURL, "migrate-database-url", envOr("LEADIFY_MIGRATE_DATABASE_URL", ""), "Postgres URL of the role owning the tables ($LEADIFY_MIGRATE_DATABASE_URL)")
	fs.StringVar(&c.appRole, "app-role", envOr("LEADIFY_APP_ROLE", ""), "role the server runs as, granted access by migrate (default: the user of --database-url)")
	fs.StringVar(&c.secretKeys, "secret-keys", envOr("LEADIFY_SECRET_KEYS", ""), "id:base64key,… active first ($LEADIFY_SECRET_KEYS)")
	fs.StringVar(&c.tlsCert, "tls-cert", envOr("LEADIFY_TLS_CERT", ""), "TLS certificate file ($LEADIFY_TLS_CERT); plain h2c without")
	fs.StringVar(&c.tlsKey, "tls-key", envOr("LEADIFY_TLS_KEY", ""), "TLS key file ($LEADIFY_TLS_KEY)")
	fs.StringVar(&c.billing.PublicURL, "public-url", envOr("LEADIFY_PUBLIC_URL", "http://127.0.0.1:8080"), "public base URL invoice QR codes link to ($LEADIFY_PUBLIC_URL)")
	fs.StringVar(&c.billing.Mail.Addr, "smtp-addr", envOr("LEADIFY_SMTP_ADDR", ""), "SMTP relay host:port for invoice emails; none without ($LEADIFY_SMTP_ADDR)")
	fs.StringVar(&c.billing.Mail.From, "smtp-from", envOr("LEADIFY_SMTP_FROM", "Leadify <factures@leadify.ma>"), "sender of invoice emails ($LEADIFY_SMTP_FROM)")
	fs.StringVar(&c.billing.Mail.Username, "smtp-username", envOr("LEADIFY_SMTP_USERNAME", ""), "SMTP username ($LEADIFY_SMTP_USERNAME)")
	c.billing.Mail.Password = os.Getenv("LEADIFY_SMTP_PASSWORD") // environment only: flags show in ps
	fs.StringVar(&c.sheetsEndpoint, "sheets-endpoint", envOr("LEADIFY_SHEETS_ENDPOINT", ""), "Google Sheets API base URL; empty means Google's (a fake in the demo and tests) ($LEADIFY_SHEETS_ENDPOINT)")
	fs.StringVar(&c.logLevel, "log-level", envOr("LEADIFY_LOG_LEVEL", "info"), "debug, info, warn or error ($LEADIFY_LOG_LEVEL)")
	fs.DurationVar(&c.grace, "shutdown-grace", 30*time.Second, "how long in-flight work may take at shutdown")
	if err := fs.Parse(args); err != nil {
		return c, nil, err
	}
	if c.appRole == "" && c.databaseURL != "" {
		if u, err := url.Parse(c.databaseURL); err == nil && u.User != nil {
			c.appRole = u.User.Username()
		}
	}
	return c, fs.Args(), nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: leadify-server serve|migrate|seed-demo|rotate-secrets|gen-key [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		slog.Error("leadify-server failed", "command", os.Args[1], "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string) error {
	c, rest, err := parse(args)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	switch cmd {
	case "gen-key":
		id := "k1"
		if len(rest) > 0 {
			id = rest[0]
		}
		fmt.Println(secrets.GenerateKey(id))
		return nil
	case "migrate":
		return migrate(ctx, c)
	case "demo-sheets":
		return demo.RunSheets(ctx, c.sheetsEndpoint, os.Stdout)
	}
	if c.databaseURL == "" {
		return errors.New("no database: set DATABASE_URL or --database-url")
	}
	switch cmd {
	case "serve":
		return serve(ctx, c, log)
	case "seed-demo":
		return withServer(ctx, c, log, func(s *server.Server) error {
			logins, err := demo.Seed(ctx, s, demo.DefaultPassword)
			if err != nil {
				return err
			}
			demo.PrintLogins(os.Stdout, logins)
			rep, err := demo.ImportSample(ctx, s)
			if err != nil {
				return err
			}
			fmt.Println()
			demo.PrintReport(os.Stdout, rep)
			return nil
		})
	case "demo-carriers":
		return withServer(ctx, c, log, func(s *server.Server) error {
			kr, err := secrets.ParseKeyring(c.secretKeys)
			if err != nil {
				return err
			}
			step, err := time.ParseDuration(envOr("LEADIFY_DEMO_STEP", "1500ms"))
			if err != nil {
				return fmt.Errorf("LEADIFY_DEMO_STEP: %w", err)
			}
			return demo.RunCarriers(ctx, s.Pool, kr, "http://"+c.addr, 24, step, os.Stdout)
		})
	case "demo-invoices":
		return withServer(ctx, c, log, func(s *server.Server) error {
			kr, err := secrets.ParseKeyring(c.secretKeys)
			if err != nil {
				return err
			}
			return demo.RunInvoices(ctx, s.Pool, kr, demo.InvoiceOptions{PublicURL: c.billing.PublicURL,
				Dir: envOr("LEADIFY_DEMO_INVOICES_DIR", "out/invoices"), Now: time.Now()}, os.Stdout)
		})
	case "demo-shops":
		return withServer(ctx, c, log, func(s *server.Server) error {
			kr, err := secrets.ParseKeyring(c.secretKeys)
			if err != nil {
				return err
			}
			return demo.RunShops(ctx, s.Pool, kr, "http://"+c.addr, os.Stdout)
		})
	case "rotate-secrets":
		return withServer(ctx, c, log, func(s *server.Server) error {
			kr, err := secrets.ParseKeyring(c.secretKeys)
			if err != nil {
				return err
			}
			n, err := postgres.RotateSecrets(ctx, s.Pool, kr)
			if err == nil {
				var shops int
				shops, err = shopsync.RotateSecrets(ctx, s.Pool, kr)
				n += shops
			}
			log.Info("secrets rotated", "rewritten", n, "active_key", kr.ActiveKeyID())
			return err
		})
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func migrate(ctx context.Context, c config) error {
	u := c.migrateURL
	if u == "" {
		u = c.databaseURL
	}
	if u == "" {
		return errors.New("no database: set LEADIFY_MIGRATE_DATABASE_URL or --migrate-database-url")
	}
	if c.appRole == "" {
		return errors.New("--app-role is required when there is no --database-url to take it from")
	}
	return postgres.Migrate(ctx, u, c.appRole)
}

func withServer(ctx context.Context, c config, log *slog.Logger, fn func(*server.Server) error) error {
	pool, err := postgres.Open(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	var kr *secrets.Keyring
	if c.secretKeys != "" {
		if kr, err = secrets.ParseKeyring(c.secretKeys); err != nil {
			return err
		}
	}
	s, err := server.New(pool, server.Config{Log: log, Secrets: kr, DisableJobs: true, SheetsEndpoint: c.sheetsEndpoint})
	if err != nil {
		return err
	}
	return fn(s)
}

func serve(ctx context.Context, c config, log *slog.Logger) error {
	startProfiling(log)
	if c.migrateURL != "" {
		if err := migrate(ctx, c); err != nil {
			return err
		}
		log.Info("migrations applied")
	}
	kr, err := secrets.ParseKeyring(c.secretKeys)
	if err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	s, err := server.New(pool, server.Config{Log: log, Secrets: kr, Billing: c.billing, SheetsEndpoint: c.sheetsEndpoint})
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "tls", c.tlsCert != "")
	err = s.Serve(ctx, ln, c.tlsCert, c.tlsKey, c.grace)
	log.Info("stopped")
	return err
}
