package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/desktop/app"
	"github.com/leadify/leadify/desktop/internal/fakeserver"
	"github.com/leadify/leadify/desktop/serverclient"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
)

const (
	email    = "sara@example.ma"
	password = "s3cret-pass"
)

// events records what the app emits; it is the tests' Runtime.
type events struct {
	mu   sync.Mutex
	seen []event
}

type event struct {
	name string
	data any
}

func (e *events) Emit(name string, data any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, event{name, data})
}

func (e *events) Quit() {}

func (e *events) last(name string) (any, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.seen) - 1; i >= 0; i-- {
		if e.seen[i].name == name {
			return e.seen[i].data, true
		}
	}
	return nil, false
}

type fixture struct {
	srv    *fakeserver.Server
	app    *app.App
	events *events
	dbPath string
	now    time.Time
}

func setup(t *testing.T) *fixture {
	t.Helper()
	srv := fakeserver.Start(t)
	srv.AddUser(email, password, "Sara Benali")
	srv.AddStore(&leadifyv1.Store{Id: "s1", SellerId: "sel", Settings: &leadifyv1.StoreSettings{
		Name: "Atlas Shop",
		Branding: &leadifyv1.Branding{
			PrimaryColor: "#0f766e", AccentColor: "#f97316",
			Logo: []byte("\x89PNG fake"), LogoMimeType: "image/png",
		},
	}}, email)
	srv.AddStore(&leadifyv1.Store{Id: "s2", SellerId: "sel", Settings: &leadifyv1.StoreSettings{
		Name:     "Casa Deals",
		Branding: &leadifyv1.Branding{PrimaryColor: "red", Logo: []byte("<svg/>"), LogoMimeType: "image/svg+xml"},
	}}, email)
	f := &fixture{
		srv: srv, events: &events{},
		dbPath: filepath.Join(t.TempDir(), "leadify.db"),
		now:    time.Date(2026, 5, 1, 10, 42, 0, 0, time.UTC),
	}
	f.app = f.newApp(t)
	return f
}

// newApp starts an app on the fixture's database, as a restart would.
func (f *fixture) newApp(t *testing.T) *app.App {
	a := app.New(app.Options{
		DBPath: f.dbPath, Runtime: f.events, Timeout: 2 * time.Second,
		Now: func() time.Time { return f.now },
	})
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return a
}

func (f *fixture) signIn(t *testing.T) app.Account {
	t.Helper()
	acc, err := f.app.Session.SignIn(" "+f.srv.URL+"/ ", " "+email+" ", password)
	require.NoError(t, err)
	return acc
}

func TestSignInRestoresAfterRestart(t *testing.T) {
	t.Parallel()
	f := setup(t)

	cur, err := f.app.Session.Current()
	require.NoError(t, err)
	require.Nil(t, cur, "nobody signed in yet")
	def, err := f.app.Session.DefaultServerURL()
	require.NoError(t, err)
	require.Equal(t, app.FallbackServerURL, def)

	acc := f.signIn(t)
	require.Equal(t, app.Account{ServerURL: f.srv.URL, UserID: acc.UserID, Email: email, FullName: "Sara Benali"}, acc)
	require.Equal(t, []string{email}, f.srv.Logins())

	restarted := f.newApp(t)
	cur, err = restarted.Session.Current()
	require.NoError(t, err)
	require.Equal(t, &acc, cur)
	def, err = restarted.Session.DefaultServerURL()
	require.NoError(t, err)
	require.Equal(t, f.srv.URL, def, "the last server used prefills the form")

	withEnv := app.New(app.Options{DBPath: f.dbPath, ServerURL: "http://10.0.0.5:8080"})
	defer withEnv.Shutdown(context.Background())
	def, err = withEnv.Session.DefaultServerURL()
	require.NoError(t, err)
	require.Equal(t, "http://10.0.0.5:8080", def)
}

func TestSignInErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, tc := range []struct {
		url, email, password, want string
	}{
		{f.srv.URL, email, "nope", "wrong email or password"},
		{f.srv.URL, "", password, "enter your email and password"},
		{f.srv.URL, email, "", "enter your email and password"},
		{"", email, password, "enter the server address"},
		{"ftp://x", email, password, `"ftp://x" is not a valid server address`},
	} {
		_, err := f.app.Session.SignIn(tc.url, tc.email, tc.password)
		require.EqualError(t, err, tc.want)
	}
	cur, err := f.app.Session.Current()
	require.NoError(t, err)
	require.Nil(t, cur)
}

func TestStoresOnlineThenOffline(t *testing.T) {
	t.Parallel()
	f := setup(t)

	_, err := f.app.Stores.List()
	require.ErrorIs(t, err, app.ErrNotSignedIn)

	f.signIn(t)
	list, err := f.app.Stores.List()
	require.NoError(t, err)
	want := []app.Store{
		{ID: "s1", SellerID: "sel", Name: "Atlas Shop", PrimaryColor: "#0f766e", AccentColor: "#f97316",
			LogoURL: "data:image/png;base64,iVBORyBmYWtl"},
		// Invalid colours fall back to the defaults; an SVG logo is not passed on.
		{ID: "s2", SellerID: "sel", Name: "Casa Deals", PrimaryColor: app.DefaultPrimaryColor, AccentColor: app.DefaultAccentColor},
	}
	require.Equal(t, app.StoreList{Stores: want, UpdatedAt: "2026-05-01T10:42:00Z"}, list)

	f.now = f.now.Add(time.Hour)
	f.srv.SetUnavailable(true)
	list, err = f.app.Stores.List()
	require.NoError(t, err)
	require.Equal(t, app.StoreList{Stores: want, Offline: true, UpdatedAt: "2026-05-01T10:42:00Z"}, list)
	st, ok := f.events.last(app.EventSyncStatus)
	require.True(t, ok)
	require.Equal(t, app.Status{LastContactAt: "2026-05-01T10:42:00Z", Detail: "server unreachable — working offline"}, st)

	// Offline across a restart too: the cache is on disk.
	list, err = f.newApp(t).Stores.List()
	require.NoError(t, err)
	require.True(t, list.Offline)
	require.Len(t, list.Stores, 2)
}

func TestSyncStatus(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := f.app.Sync.Status()
	require.ErrorIs(t, err, app.ErrNotSignedIn)

	f.signIn(t)
	f.now = f.now.Add(time.Minute)
	st, err := f.app.Sync.Status()
	require.NoError(t, err)
	require.Equal(t, app.Status{Online: true, LastContactAt: "2026-05-01T10:43:00Z"}, st)
	ev, _ := f.events.last(app.EventSyncStatus)
	require.Equal(t, st, ev)

	f.now = f.now.Add(time.Minute)
	f.srv.Close()
	st, err = f.app.Sync.Status()
	require.NoError(t, err, "offline is a status, not an error")
	require.Equal(t, app.Status{LastContactAt: "2026-05-01T10:43:00Z", Detail: "server unreachable — working offline"}, st)
}

func TestRevokedSessionSignsOut(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.signIn(t)
	_, err := f.app.Stores.List()
	require.NoError(t, err)

	f.srv.RevokeSessions()
	_, err = f.app.Sync.Status()
	require.ErrorIs(t, err, serverclient.ErrSessionExpired)
	_, ok := f.events.last(app.EventSessionExpired)
	require.True(t, ok)
	cur, err := f.app.Session.Current()
	require.NoError(t, err)
	require.Nil(t, cur)

	// Signing in again works and fetches afresh.
	f.signIn(t)
	list, err := f.app.Stores.List()
	require.NoError(t, err)
	require.Len(t, list.Stores, 2)
}

func TestExpiredSessionIsForgotten(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.signIn(t)
	f.now = time.Now().Add(31 * 24 * time.Hour) // the fake issues 30-day tokens by the real clock
	cur, err := f.app.Session.Current()
	require.NoError(t, err)
	require.Nil(t, cur)
}

func TestSignOut(t *testing.T) {
	t.Parallel()

	t.Run("online", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		require.NoError(t, f.app.Session.SignOut(), "signing out when signed out is fine")
		f.signIn(t)
		_, err := f.app.Stores.List()
		require.NoError(t, err)
		require.NoError(t, f.app.Session.SignOut())
		require.Equal(t, 1, f.srv.Calls(leadifyv1connect.AuthServiceLogoutProcedure))
		cur, err := f.app.Session.Current()
		require.NoError(t, err)
		require.Nil(t, cur)
	})

	t.Run("offline", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.signIn(t)
		_, err := f.app.Stores.List()
		require.NoError(t, err)
		f.srv.Close()
		require.NoError(t, f.app.Session.SignOut())
		cur, err := f.app.Session.Current()
		require.NoError(t, err)
		require.Nil(t, cur)
		_, err = f.app.Stores.List()
		require.ErrorIs(t, err, app.ErrNotSignedIn, "the cache went with the session")
	})
}

func TestStartupProbesInTheBackground(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.signIn(t)
	a := app.New(app.Options{DBPath: f.dbPath, Runtime: f.events, ProbeInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	a.Startup(ctx)
	defer a.Shutdown(context.Background())
	defer cancel()
	require.Eventually(t, func() bool {
		return f.srv.Calls(leadifyv1connect.AuthServiceMeProcedure) >= 2
	}, 5*time.Second, 10*time.Millisecond)
}

func TestDatabaseErrorReachesTheUI(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	a := app.New(app.Options{DBPath: filepath.Join(file, "leadify.db")})
	_, err := a.Session.Current()
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "open local database: "), err.Error())
}
