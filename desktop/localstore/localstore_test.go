package localstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/desktop/localstore"
)

func open(t *testing.T) (*localstore.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nested", "leadify.db")
	db, err := localstore.Open(t.Context(), path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db, path
}

func session(userID string) localstore.Session {
	return localstore.Session{
		ServerURL: "http://127.0.0.1:8080",
		Token:     "tok-" + userID,
		ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		User:      localstore.User{ID: userID, Email: userID + "@example.ma", FullName: "Sara " + userID},
	}
}

func TestOpenSetsPragmas(t *testing.T) {
	t.Parallel()
	_, path := open(t)

	// A second handle on the same file sees the migrated schema and the pragmas.
	db, err := localstore.Open(t.Context(), path)
	require.NoError(t, err)
	defer db.Close()
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL
		"foreign_keys": "1",
		"busy_timeout": "5000",
	} {
		require.Equal(t, want, localstore.Pragma(t, db, pragma), pragma)
	}
}

// Only the simulation relaxes synchronous, and only to a value SQLite knows.
func TestOpenWithSynchronous(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "relaxed.db")
	db, err := localstore.OpenWith(t.Context(), path, localstore.Options{Synchronous: "OFF"})
	require.NoError(t, err)
	defer db.Close()
	require.Equal(t, "0", localstore.Pragma(t, db, "synchronous"))
	_, err = localstore.OpenWith(t.Context(), path, localstore.Options{Synchronous: "0; DROP TABLE outbox"})
	require.ErrorContains(t, err, "want NORMAL or OFF")
}

func TestSessionRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, _ := open(t)

	_, err := db.Session(ctx)
	require.ErrorIs(t, err, localstore.ErrNoSession)
	require.ErrorIs(t, db.RecordContact(ctx, time.Now()), localstore.ErrNoSession)

	want := session("u1")
	want.User.PlatformAdmin = true
	require.NoError(t, db.SaveSession(ctx, want))
	got, err := db.Session(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got)

	contact := time.Date(2026, 5, 1, 10, 42, 0, 0, time.UTC)
	require.NoError(t, db.RecordContact(ctx, contact))
	require.NoError(t, db.UpdateUser(ctx, localstore.User{ID: "u1", Email: "new@example.ma", FullName: "Sara B"}))
	got, err = db.Session(ctx)
	require.NoError(t, err)
	require.Equal(t, contact, got.LastContact)
	require.Equal(t, localstore.User{ID: "u1", Email: "new@example.ma", FullName: "Sara B"}, got.User)

	last, err := db.LastServerURL(ctx)
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:8080", last)

	forgot, err := db.ForgetSession(ctx, "tok-other")
	require.NoError(t, err)
	require.False(t, forgot, "a token that is not the saved one forgets nothing")
	_, err = db.Session(ctx)
	require.NoError(t, err)

	forgot, err = db.ForgetSession(ctx, want.Token)
	require.NoError(t, err)
	require.True(t, forgot)
	_, err = db.Session(ctx)
	require.ErrorIs(t, err, localstore.ErrNoSession)
	last, err = db.LastServerURL(ctx)
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:8080", last, "sign-out keeps the last server URL")
}

func TestStoresKeepOrderAndSurviveReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, path := open(t)
	require.NoError(t, db.SaveSession(ctx, session("u1")))

	cached := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	stores := []localstore.Store{
		{ID: "s2", SellerID: "sel", Name: "Zeta", PrimaryColor: "#112233", AccentColor: "#445566",
			Logo: []byte{0x89, 'P', 'N', 'G'}, LogoMIMEType: "image/png", CachedAt: cached},
		{ID: "s1", SellerID: "sel", Name: "Alpha", CachedAt: cached},
	}
	require.NoError(t, db.ReplaceStores(ctx, stores))

	// Reopening the file (a restart) gives back the same list, in order.
	require.NoError(t, db.Close())
	db, err := localstore.Open(ctx, path)
	require.NoError(t, err)
	got, err := db.Stores(ctx)
	require.NoError(t, err)
	require.Equal(t, stores, got)

	require.NoError(t, db.ReplaceStores(ctx, stores[1:]))
	got, err = db.Stores(ctx)
	require.NoError(t, err)
	require.Equal(t, stores[1:], got)
}

func TestSavingAnotherUserDropsTheCache(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, _ := open(t)
	require.NoError(t, db.SaveSession(ctx, session("u1")))
	require.NoError(t, db.ReplaceStores(ctx, []localstore.Store{{ID: "s1", Name: "A"}}))

	// Same user signing in again keeps the cache...
	require.NoError(t, db.SaveSession(ctx, session("u1")))
	got, err := db.Stores(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1)

	// ...another user does not inherit it.
	require.NoError(t, db.SaveSession(ctx, session("u2")))
	got, err = db.Stores(ctx)
	require.NoError(t, err)
	require.Empty(t, got)

	// Forgetting a session drops its cache.
	require.NoError(t, db.ReplaceStores(ctx, []localstore.Store{{ID: "s9", Name: "B"}}))
	forgot, err := db.ForgetSession(ctx, "tok-u2")
	require.NoError(t, err)
	require.True(t, forgot)
	got, err = db.Stores(ctx)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestDefaultPath(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LEADIFY_DATA_DIR", dir)
	path, err := localstore.DefaultPath()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "leadify.db"), path)

	t.Setenv("LEADIFY_DATA_DIR", "")
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("HOME", dir)
	path, err = localstore.DefaultPath()
	require.NoError(t, err)
	require.Equal(t, "leadify.db", filepath.Base(path))
	require.Equal(t, "Leadify", filepath.Base(filepath.Dir(path)))
}

func TestOpenContextCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := localstore.Open(ctx, filepath.Join(t.TempDir(), "leadify.db"))
	require.Error(t, err)
}
