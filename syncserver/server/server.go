// Package server assembles Leadify's sync server from its capabilities: the
// Connect services behind the authentication interceptor, the health
// endpoints, and the River job client with every worker. main builds a Server
// from configuration; tests build one on their own database.
package server

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/secrets"
	"github.com/leadify/leadify/syncserver/syncer"
)

// MaxRequestBytes bounds every RPC message; larger ones get ResourceExhausted.
const MaxRequestBytes = 8 << 20

// Config is what a Server needs besides its database pool.
type Config struct {
	Log         *slog.Logger
	Secrets     *secrets.Keyring
	AuthLimits  auth.Limits
	JobWorkers  int  // River workers in the default queue; 0 means 10
	DisableJobs bool // insert-only: no job is worked by this instance
	// Now is the server clock; nil means time.Now (simulations own it).
	Now func() time.Time
	// Bugs plants known sync bugs, for the simulation's own tests.
	Bugs syncer.Bugs
	// Billing is the invoices' public verification URL and SMTP relay.
	Billing billing.Config
	// SheetsEndpoint is the Google Sheets API base URL; empty means Google's (fakes in tests and the demo).
	SheetsEndpoint string
}

// Server is one sync-server instance.
type Server struct {
	Pool    *pgxpool.Pool
	Auth    *auth.Service
	Events  *events.Bus
	River   *river.Client[pgx.Tx]
	Sync    *syncer.Service
	Hub     *syncer.Hub
	Handler http.Handler
	log     *slog.Logger
	cfg     Config
	jobs    bool
	stopHub context.CancelFunc
	// closers close what the capabilities made that holds resources of its
	// own (side pools, batchers): the parcels services, the shop webhook
	// inboxes. Stop runs them, the last registered first, once the work
	// that uses them has stopped.
	closeMu sync.Mutex
	closers []func()
}

// own registers close to run when the server stops (or fails to build).
func (s *Server) own(close func()) {
	s.closeMu.Lock()
	s.closers = append(s.closers, close)
	s.closeMu.Unlock()
}

// Log is the server's logger.
func (s *Server) Log() *slog.Logger { return s.log }

// Config is the configuration the server was built with.
func (s *Server) Config() Config { return s.cfg }

// PublicProcedures may be called without a session.
var PublicProcedures = []string{
	leadifyv1connect.AuthServiceLoginProcedure,
	leadifyv1connect.AuthServiceAcceptInvitationProcedure,
	leadifyv1connect.BillingServiceVerifyInvoiceProcedure,
}

// New wires a server over pool. Event consumers are subscribed on the returned
// Server's Events before Start.
func New(pool *pgxpool.Pool, cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.AuthLimits == (auth.Limits{}) {
		cfg.AuthLimits = auth.DefaultLimits
	}
	s := &Server{Pool: pool, log: cfg.Log, jobs: !cfg.DisableJobs}
	s.Auth = auth.NewService(pool, cfg.AuthLimits)
	s.Events = events.NewBus(pool)

	s.Sync = syncer.NewService(pool, s.Events, cfg.Now, cfg.Bugs)
	s.Hub = syncer.NewHub(pool, cfg.Log)
	s.cfg = cfg

	workers := river.NewWorkers()
	s.Events.Workers(workers)
	var periodic []*river.PeriodicJob
	for _, c := range capabilities {
		if c.workers != nil {
			if err := c.workers(s, workers); err != nil {
				s.closeOwned()
				return nil, fmt.Errorf("%s workers: %w", c.name, err)
			}
		}
		if c.periodic != nil {
			periodic = append(periodic, c.periodic(s)...)
		}
	}
	rc := &river.Config{Logger: cfg.Log.With("component", "river"), Workers: workers, PeriodicJobs: periodic,
		// A job whose instance died (kill -9 between a carrier call and its
		// record, say) is retried — and reconciled — minutes later, not after
		// River's default hour. Jobs work in bounded chunks well under this.
		RescueStuckJobsAfter: 5 * time.Minute}
	if s.jobs {
		n := cfg.JobWorkers
		if n == 0 {
			n = 10
		}
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: n}}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		s.closeOwned()
		return nil, fmt.Errorf("river client: %w", err)
	}
	s.River = client
	s.Events.Attach(client)

	opts := connect.WithHandlerOptions(
		connect.WithInterceptors(auth.NewInterceptor(s.Auth, PublicProcedures...)),
		connect.WithReadMaxBytes(MaxRequestBytes),
		// Sync pages are large: gzip at its fastest level costs a fraction of
		// the default's CPU and still shrinks them several times for 3G links.
		connect.WithCompression("gzip",
			func() connect.Decompressor { return &gzip.Reader{} },
			func() connect.Compressor { w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed); return w }),
		connect.WithCompressMinBytes(1024),
	)
	mux := http.NewServeMux()
	for _, c := range capabilities {
		if c.routes != nil {
			if err := c.routes(s, mux, opts); err != nil {
				s.closeOwned()
				return nil, fmt.Errorf("%s routes: %w", c.name, err)
			}
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.ready)
	s.Handler = mux
	return s, nil
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Pool.Ping(ctx); err != nil {
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// Start begins listening for sync notifications and working jobs (unless
// jobs are disabled).
func (s *Server) Start(ctx context.Context) error {
	hubCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopHub = cancel
	go s.Hub.Run(hubCtx)
	if !s.jobs {
		return nil
	}
	for _, c := range capabilities {
		if c.start != nil {
			if err := c.start(ctx, s); err != nil {
				return fmt.Errorf("%s start: %w", c.name, err)
			}
		}
	}
	return s.River.Start(ctx)
}

// Stop finishes running jobs, giving up when ctx ends, then closes what
// the capabilities own: the parcels services (their inbox's batchers, their
// side pools) and the shop webhook inboxes (their batchers, once the
// webhooks they were handed are stored, and their side pools). Stop the
// HTTP server first: the inboxes serve requests. When ctx ends first they
// are closed once River has stopped, not under its running jobs.
func (s *Server) Stop(ctx context.Context) error {
	if s.stopHub != nil {
		s.stopHub()
	}
	if s.jobs {
		if err := s.River.Stop(ctx); err != nil {
			go func() {
				<-s.River.Stopped()
				s.closeOwned()
			}()
			return err
		}
	}
	s.closeOwned()
	return nil
}

// closeOwned runs the closers, the last registered first. Running them
// again does nothing (each closes once).
func (s *Server) closeOwned() {
	s.closeMu.Lock()
	closers := s.closers
	s.closeMu.Unlock()
	for _, c := range slices.Backward(closers) {
		c()
	}
}

// HTTPServer returns an http.Server for the handler that speaks HTTP/1.1 and
// HTTP/2 — with TLS when certificates are given, and without it (h2c) otherwise,
// so Connect, gRPC and gRPC-Web clients all work.
func (s *Server) HTTPServer(addr string) *http.Server {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Addr:              addr,
		Handler:           s.Handler,
		Protocols:         p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Serve serves on ln until ctx ends, then shuts down gracefully: no new
// connections, in-flight requests finish (up to grace), jobs stop.
func (s *Server) Serve(ctx context.Context, ln net.Listener, certFile, keyFile string, grace time.Duration) error {
	hs := s.HTTPServer(ln.Addr().String())
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- hs.ServeTLS(ln, certFile, keyFile)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if jerr := s.Stop(sctx); jerr != nil && !errors.Is(jerr, context.DeadlineExceeded) {
		err = errors.Join(err, jerr)
	}
	return err
}
