// Package app holds the services the desktop binds to its UI: Session (sign in,
// sign out, restore the saved session), Stores (the user's stores, from the
// server or, offline, from the local cache) and Sync (is the server reachable,
// what is waiting to be sent). Each bound method is a thin adapter over
// localstore and serverclient returning (T, error); its error message is shown to
// the user as it is. Notifications to the UI go through the Runtime interface, so
// the services run in tests without a webview.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/serverclient"
)

// Events the app emits to the UI.
const (
	// EventSyncStatus carries a Status whenever the server is probed.
	EventSyncStatus = "sync:status"
	// EventSessionExpired (no data) says the server no longer accepts the saved
	// session; the app has forgotten it and the UI should show the sign-in form.
	EventSessionExpired = "session:expired"
)

// FallbackServerURL prefills the sign-in form when nothing better is known.
const FallbackServerURL = "http://127.0.0.1:8080"

// ErrNotSignedIn is returned by calls that need a session when there is none.
var ErrNotSignedIn = errors.New("you are not signed in")

// Runtime is what the app needs from the Wails runtime; tests supply a fake.
type Runtime interface {
	// Emit sends an event to the UI.
	Emit(name string, data any)
	// Quit closes the window and ends wails.Run.
	Quit()
}

// Options configure an App. Only DBPath is required.
type Options struct {
	// DBPath is the local SQLite file, opened on first use.
	DBPath string
	// ServerURL, when set, prefills the sign-in form ahead of the last server used.
	ServerURL string
	// DeviceName labels this device's sessions on the server; defaults to
	// "Leadify desktop (<hostname>)".
	DeviceName string
	// Timeout bounds each server call; serverclient.DefaultTimeout when zero.
	Timeout time.Duration
	// ProbeInterval is how often Startup's background loop probes the server;
	// 30 s when zero.
	ProbeInterval time.Duration
	// Runtime receives events and quit requests; when nil, Startup connects the
	// Wails runtime.
	Runtime Runtime
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// App owns the bound services and the state they share.
type App struct {
	Session *Session
	Stores  *Stores
	Sync    *Sync

	core *core
}

// New returns an App. It does not touch the disk or the network: the database is
// opened on first use, so a failure to open it reaches the UI as an error.
func New(opts Options) *App {
	if opts.DeviceName == "" {
		host, _ := os.Hostname()
		opts.DeviceName = fmt.Sprintf("Leadify desktop (%s)", cmp.Or(host, "unknown"))
	}
	if opts.ProbeInterval == 0 {
		opts.ProbeInterval = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &core{opts: opts, ctx: context.Background(), runtime: opts.Runtime}
	return &App{Session: &Session{c}, Stores: &Stores{c}, Sync: &Sync{c}, core: c}
}

// Startup is the Wails OnStartup hook: calls made on behalf of the UI run under
// ctx from now on, events go to the Wails runtime (unless Options.Runtime was
// set), the server is probed every ProbeInterval, the replica is kept in sync
// with the server in the background, and SIGTERM or an interrupt
// quits the app cleanly, until ctx ends.
func (a *App) Startup(ctx context.Context) {
	a.core.mu.Lock()
	a.core.ctx = ctx
	if a.core.runtime == nil {
		a.core.runtime = wailsRuntime{ctx}
	}
	rt := a.core.runtime
	a.core.mu.Unlock()
	go a.Sync.watch(ctx)
	go a.Sync.run(ctx)
	go quitOnSignal(ctx, rt)
}

func quitOnSignal(ctx context.Context, rt Runtime) {
	sig, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-sig.Done()
	if ctx.Err() == nil { // a signal, not the app ending
		rt.Quit()
	}
}

// Shutdown is the Wails OnShutdown hook: it closes the database.
func (a *App) Shutdown(context.Context) {
	a.core.mu.Lock()
	defer a.core.mu.Unlock()
	if a.core.db != nil {
		if err := a.core.db.Close(); err != nil {
			slog.Error("close local database", "err", err)
		}
		a.core.db = nil
	}
}

// core is the state shared by the services.
type core struct {
	opts Options

	mu        sync.Mutex
	ctx       context.Context
	runtime   Runtime
	db        *localstore.DB
	client    *serverclient.Client // for the saved session; nil until needed
	clientKey string               // the server URL and token client was made for
}

// database returns the open database, opening it on first use.
func (c *core) database() (context.Context, *localstore.DB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.db == nil {
		db, err := localstore.Open(c.ctx, c.opts.DBPath)
		if err != nil {
			return nil, nil, fmt.Errorf("open local database: %w", err)
		}
		c.db = db
	}
	return c.ctx, c.db, nil
}

// signedIn is the saved session with what it takes to use it.
type signedIn struct {
	ctx    context.Context
	db     *localstore.DB
	saved  localstore.Session
	client *serverclient.Client
}

// session returns the saved session and a client for it. Returns ErrNotSignedIn
// when there is none.
func (c *core) session() (signedIn, error) {
	ctx, db, err := c.database()
	if err != nil {
		return signedIn{}, err
	}
	saved, err := db.Session(ctx)
	if errors.Is(err, localstore.ErrNoSession) {
		return signedIn{}, ErrNotSignedIn
	}
	if err != nil {
		return signedIn{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if key := saved.ServerURL + " " + saved.Token; c.client == nil || c.clientKey != key {
		client, err := c.newClient(saved.ServerURL, saved.Token)
		if err != nil {
			return signedIn{}, err
		}
		c.client, c.clientKey = client, key
	}
	return signedIn{ctx: ctx, db: db, saved: saved, client: c.client}, nil
}

func (c *core) newClient(baseURL, token string) (*serverclient.Client, error) {
	return serverclient.New(serverclient.Config{BaseURL: baseURL, Token: token, Timeout: c.opts.Timeout})
}

// forget drops s (and the cached stores) unless another sign-in has replaced it
// meanwhile; it reports whether it did.
func (c *core) forget(s signedIn) (bool, error) {
	c.mu.Lock()
	c.client = nil
	c.mu.Unlock()
	forgot, err := s.db.ForgetSession(s.ctx, s.saved.Token)
	if err != nil {
		return false, fmt.Errorf("forget session: %w", err)
	}
	return forgot, nil
}

// serverFailed handles a failed server call made for s: a dead session is
// forgotten and the UI told, an unreachable server is reported as offline. It
// returns err.
func (c *core) serverFailed(s signedIn, err error) error {
	switch {
	case errors.Is(err, serverclient.ErrSessionExpired):
		forgot, ferr := c.forget(s)
		if ferr != nil {
			return errors.Join(err, ferr)
		}
		if forgot {
			c.emit(EventSessionExpired, nil)
		}
	case errors.Is(err, serverclient.ErrUnreachable):
		c.emit(EventSyncStatus, c.statusOf(s.ctx, s.db, s.saved, false, err.Error()))
	}
	return err
}

// reached records that the server answered s and tells the UI it is online.
func (c *core) reached(s signedIn) (Status, error) {
	s.saved.LastContact = c.opts.Now()
	if err := s.db.RecordContact(s.ctx, s.saved.LastContact); err != nil {
		return Status{}, err
	}
	st := c.statusOf(s.ctx, s.db, s.saved, true, "")
	c.emit(EventSyncStatus, st)
	return st, nil
}

func (c *core) emit(name string, data any) {
	c.mu.Lock()
	rt := c.runtime
	c.mu.Unlock()
	if rt != nil {
		rt.Emit(name, data)
	}
}
