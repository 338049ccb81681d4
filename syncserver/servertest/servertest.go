// Package servertest runs a real sync server for tests: its own migrated
// Postgres database (pgtest), the real handlers and interceptors behind a real
// HTTP server speaking HTTP/1.1 and h2c, River working jobs, and helpers to
// create platform admins, sellers, stores and members and sign them in.
package servertest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/postgres/queries"
	"github.com/leadify/leadify/syncserver/secrets"
	"github.com/leadify/leadify/syncserver/server"
	"github.com/leadify/leadify/syncserver/syncer"
)

// Password is the password of every user the helpers create.
const Password = "correct horse battery"

// Env is a running server and its database.
type Env struct {
	T      testing.TB
	DB     *pgtest.DB
	Server *server.Server
	URL    string
	// HTTP is a client that speaks HTTP/1.1 and h2c (for gRPC) to URL.
	HTTP *http.Client
	// PID is the server's process id when it runs as its own process (StartProcess).
	PID int
	// kill ends that process (Kill).
	kill func()
}

// Option adjusts the server configuration.
type Option func(*server.Config)

// WithAuthLimits sets the login throttling limits.
func WithAuthLimits(l auth.Limits) Option { return func(c *server.Config) { c.AuthLimits = l } }

// WithSheetsEndpoint points sheet syncs at a fake Sheets API.
func WithSheetsEndpoint(url string) Option { return func(c *server.Config) { c.SheetsEndpoint = url } }

// WithClock sets the server clock (lease expiry, timestamps).
func WithClock(now func() time.Time) Option { return func(c *server.Config) { c.Now = now } }

// WithBugs plants known sync bugs (simulation tests only).
func WithBugs(b syncer.Bugs) Option { return func(c *server.Config) { c.Bugs = b } }

// Start runs a server on a new database until the test ends.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	return StartOn(t, pgtest.New(t), opts...)
}

// StartOn runs another server instance on an existing test database (for
// tests of behaviour that must hold across instances).
func StartOn(t testing.TB, db *pgtest.DB, opts ...Option) *Env {
	t.Helper()
	kr, err := secrets.ParseKeyring(secrets.GenerateKey("test"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Log: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), Secrets: kr, JobWorkers: 4}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := server.New(db.App, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(s.Handler)
	hs.Config = s.HTTPServer("")
	hs.Start()
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hs.Close()
		cancel()
		_ = s.Stop(context.Background())
	})
	return &Env{T: t, DB: db, Server: s, URL: hs.URL, HTTP: h2cClient()}
}

func h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	p.SetHTTP1(true)
	return &http.Client{Transport: &http.Transport{Protocols: p}}
}

// Clients are the generated clients for one signed-in user.
type Clients struct {
	Token    string
	UserID   uuid.UUID
	Auth     leadifyv1connect.AuthServiceClient
	Accounts leadifyv1connect.AccountsServiceClient
	Sync     leadifyv1connect.SyncServiceClient
	Intake   leadifyv1connect.IntakeServiceClient
	Carriers leadifyv1connect.CarrierServiceClient
	Billing  leadifyv1connect.BillingServiceClient
	Shops    leadifyv1connect.ShopsServiceClient
}

// Bearer returns an interceptor that sends the token on unary calls and streams.
func Bearer(token string) connect.Interceptor { return bearer(token) }

type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if b != "" {
			req.Header().Set("Authorization", "Bearer "+string(b))
		}
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if b != "" {
			conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		}
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// ClientsFor returns clients that send token (empty for anonymous clients).
func (e *Env) ClientsFor(token string, opts ...connect.ClientOption) *Clients {
	opts = append(opts, connect.WithInterceptors(Bearer(token)))
	return &Clients{Token: token,
		Auth:     leadifyv1connect.NewAuthServiceClient(e.HTTP, e.URL, opts...),
		Accounts: leadifyv1connect.NewAccountsServiceClient(e.HTTP, e.URL, opts...),
		Sync:     leadifyv1connect.NewSyncServiceClient(e.HTTP, e.URL, opts...),
		Intake:   leadifyv1connect.NewIntakeServiceClient(e.HTTP, e.URL, opts...),
		Carriers: leadifyv1connect.NewCarrierServiceClient(e.HTTP, e.URL, opts...),
		Billing:  leadifyv1connect.NewBillingServiceClient(e.HTTP, e.URL, opts...),
		Shops:    leadifyv1connect.NewShopsServiceClient(e.HTTP, e.URL, opts...)}
}

// Login signs a user in and returns their clients; it fails the test on error.
func (e *Env) Login(email string) *Clients {
	e.T.Helper()
	resp, err := e.ClientsFor("").Auth.Login(context.Background(), connect.NewRequest(&leadifyv1.LoginRequest{Email: email, Password: Password}))
	if err != nil {
		e.T.Fatalf("login %s: %v", email, err)
	}
	c := e.ClientsFor(resp.Msg.Token)
	c.UserID = uuid.MustParse(resp.Msg.User.Id)
	return c
}

// CreateUser inserts a user with Password directly (fixtures, not the API).
func (e *Env) CreateUser(email, name string, platformAdmin bool) uuid.UUID {
	e.T.Helper()
	hash, err := auth.HashPassword(Password)
	if err != nil {
		e.T.Fatal(err)
	}
	u, err := queries.New().CreateUser(context.Background(), e.DB.App, queries.CreateUserParams{ID: uuid.Must(uuid.NewV7()),
		Email: email, FullName: name, PasswordHash: hash, PlatformAdmin: platformAdmin})
	if err != nil {
		e.T.Fatalf("create user %s: %v", email, err)
	}
	return u.ID
}

// Tenant is a seller with one store, its owner and one agent, all signed in.
type Tenant struct {
	SellerID, StoreID uuid.UUID
	Seller, Agent     *Clients
	SellerEmail       string
	AgentEmail        string
}

// NewTenant creates a seller named name (through the admin's API), a store,
// and an agent invited and accepted through the API.
func (e *Env) NewTenant(admin *Clients, name string) *Tenant {
	e.T.Helper()
	ctx := context.Background()
	tn := &Tenant{SellerEmail: "owner@" + name + ".test", AgentEmail: "agent@" + name + ".test"}
	sr, err := admin.Accounts.CreateSeller(ctx, connect.NewRequest(&leadifyv1.CreateSellerRequest{Name: name,
		OwnerEmail: tn.SellerEmail, OwnerFullName: "Owner of " + name, OwnerPassword: Password}))
	if err != nil {
		e.T.Fatalf("create seller %s: %v", name, err)
	}
	tn.SellerID = uuid.MustParse(sr.Msg.Seller.Id)
	tn.Seller = e.Login(tn.SellerEmail)
	st, err := tn.Seller.Accounts.CreateStore(ctx, connect.NewRequest(&leadifyv1.CreateStoreRequest{SellerId: sr.Msg.Seller.Id,
		Settings: &leadifyv1.StoreSettings{Name: name + " store"}}))
	if err != nil {
		e.T.Fatalf("create store %s: %v", name, err)
	}
	tn.StoreID = uuid.MustParse(st.Msg.Store.Id)
	inv, err := tn.Seller.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: st.Msg.Store.Id,
		Email: tn.AgentEmail, Role: leadifyv1.Role_ROLE_AGENT}))
	if err != nil {
		e.T.Fatalf("invite agent %s: %v", name, err)
	}
	acc, err := e.ClientsFor("").Auth.AcceptInvitation(ctx, connect.NewRequest(&leadifyv1.AcceptInvitationRequest{Token: inv.Msg.Token,
		FullName: "Agent of " + name, Password: Password}))
	if err != nil {
		e.T.Fatalf("accept invitation %s: %v", name, err)
	}
	tn.Agent = e.ClientsFor(acc.Msg.Session.Token)
	tn.Agent.UserID = uuid.MustParse(acc.Msg.Session.User.Id)
	return tn
}

// Admin creates a platform admin and signs them in.
func (e *Env) Admin() *Clients {
	e.T.Helper()
	email := "admin-" + uuid.NewString()[:8] + "@leadify.test"
	e.CreateUser(email, "Platform Admin", true)
	return e.Login(email)
}

// InStore runs fn in a transaction scoped to the given stores.
func (e *Env) InStore(fn func(*postgres.Tx) error, stores ...uuid.UUID) {
	e.T.Helper()
	if err := postgres.InTx(context.Background(), e.DB.App, postgres.StoreScope(stores...), fn); err != nil {
		e.T.Fatal(err)
	}
}

// testLog sends the server's warnings and errors to the test's log.
type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
