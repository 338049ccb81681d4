// Package localstore is the desktop's on-disk state: one SQLite file holding the
// signed-in session, the cached list of the user's stores and a few settings, so
// the app can start and show its last known data without reaching the server,
// and the sync replica: the rows pulled from the server, their cursors, the
// outbox of local mutations with before-images, and the conflicts list.
// The schema is created and upgraded by embedded goose migrations when the file is
// opened.
package localstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
	"github.com/pressly/goose/v3"
)

// ErrNoSession is returned by DB.Session when nobody is signed in.
var ErrNoSession = errors.New("no saved session")

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open local database. It is safe for concurrent use.
type DB struct {
	sql   *sql.DB
	stmts sync.Map // query text → *sql.Stmt prepared on sql, kept for the database's life
	// pulls is a second handle on the same file for applying pulled pages,
	// with synchronous=NORMAL: in WAL mode a commit is then not fsynced on its
	// own, yet the file stays consistent and a killed process loses nothing
	// (SQLite has handed the write to the OS). Only a power cut can roll a
	// pulled page back — page and cursor together, to be pulled again. What
	// the user did (the outbox) is committed through sql, with FULL.
	pulls      *sql.DB
	pullStmts  sync.Map
	unsentGen  atomic.Uint64 // bumped after each committed local mutation
	cleanGen   atomic.Uint64 // the generation a push last found nothing unsent at
	resultsGen atomic.Uint64 // bumped after each committed batch of push results
	appliedGen atomic.Uint64 // the results generation the last committed apply began at
	// clientID is the replica's identity once read: made once, never changed.
	clientID atomic.Pointer[uuid.UUID]
	hook     atomic.Pointer[func(point string)]
	clock    atomic.Pointer[func() time.Time]
	bugs     atomic.Pointer[Bugs]
}

// Bugs plants known bugs in the replica, for the sync simulation to prove it
// catches them. Never set outside those tests.
type Bugs struct {
	// SkipRebase applies pulled pages over the optimistic rows without undoing
	// and redoing pending mutations.
	SkipRebase bool
}

// PlantBugs switches planted bugs on (simulation tests only).
func (db *DB) PlantBugs(b Bugs) { db.bugs.Store(&b) }

func (db *DB) planted() Bugs {
	if b := db.bugs.Load(); b != nil {
		return *b
	}
	return Bugs{}
}

// User is the signed-in person as the server described them.
type User struct {
	ID            string
	Email         string
	FullName      string
	PlatformAdmin bool
}

// Session is a saved sign-in: where the server is, the bearer token it issued and
// who it belongs to. LastContact is the last time the server answered this session
// (zero if never).
type Session struct {
	ServerURL   string
	Token       string
	ExpiresAt   time.Time
	User        User
	LastContact time.Time
}

// Store is one cached store with its branding. Colours are "#rrggbb" or empty.
type Store struct {
	ID           string
	SellerID     string
	Name         string
	PrimaryColor string
	AccentColor  string
	Logo         []byte
	LogoMIMEType string
	CachedAt     time.Time
}

// DefaultPath returns where the database lives: $LEADIFY_DATA_DIR/leadify.db when
// that variable is set, otherwise Leadify/leadify.db under the user's
// configuration directory. It does not create anything.
func DefaultPath() (string, error) {
	if dir := os.Getenv("LEADIFY_DATA_DIR"); dir != "" {
		return filepath.Join(dir, "leadify.db"), nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find configuration directory: %w", err)
	}
	return filepath.Join(dir, "Leadify", "leadify.db"), nil
}

// Open opens (creating it and its directory if needed) the database at path and
// applies any pending migrations. The connection runs in WAL mode with
// synchronous=FULL, a busy timeout and foreign keys on.
func Open(ctx context.Context, path string) (*DB, error) {
	return OpenWith(ctx, path, Options{})
}

// Options adjust how OpenWith opens a database.
type Options struct {
	// Synchronous replaces synchronous=FULL ("NORMAL" or "OFF"). Only the
	// sync simulation sets it: its clients are killed inside the process, where
	// what SQLite handed the OS survives anyway; durability against a real
	// kill -9 is tested elsewhere, with FULL.
	Synchronous string
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, o Options) (*DB, error) {
	sync := "FULL"
	switch o.Synchronous {
	case "":
	case "NORMAL", "OFF":
		sync = o.Synchronous
	default:
		return nil, fmt.Errorf("open %s: synchronous=%q: want NORMAL or OFF", path, o.Synchronous)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	params := url.Values{
		"_journal_mode": {"WAL"},
		"_synchronous":  {sync},
		"_busy_timeout": {"5000"},
		"_foreign_keys": {"on"},
		"_txlock":       {"immediate"},
	}
	// A plain path (not a file: URI): the driver strips its own parameters from it.
	sqlDB, err := sql.Open("sqlite3", path+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := migrate(ctx, sqlDB); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if sync == "FULL" {
		params.Set("_synchronous", "NORMAL")
	}
	pulls, err := sql.Open("sqlite3", path+"?"+params.Encode())
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := &DB{sql: sqlDB, pulls: pulls}
	db.unsentGen.Store(1)  // unknown until a push looks
	db.resultsGen.Store(1) // unknown until a first apply
	return db, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, dir)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// Close closes the database.
func (db *DB) Close() error {
	for _, m := range []*sync.Map{&db.stmts, &db.pullStmts} {
		m.Range(func(_, s any) bool {
			_ = s.(*sql.Stmt).Close()
			return true
		})
	}
	return errors.Join(db.pulls.Close(), db.sql.Close())
}

// stmt returns query prepared on the database, preparing it the first time.
// database/sql prepares it again on each connection that runs it, once.
func (db *DB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	return prepared(ctx, db.sql, &db.stmts, query)
}

func prepared(ctx context.Context, h *sql.DB, cache *sync.Map, query string) (*sql.Stmt, error) {
	if s, ok := cache.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := h.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := cache.LoadOrStore(query, s); loaded {
		_ = s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// MaybeUnsent reports whether the outbox may hold mutations not yet sent, and
// the generation to hand MarkSent once a push finds none: a poke-driven sync
// with nothing queued then skips reading the outbox.
func (db *DB) MaybeUnsent() (uint64, bool) {
	gen := db.unsentGen.Load()
	return gen, db.cleanGen.Load() != gen
}

// MarkSent records that a push, begun at generation gen, found nothing unsent.
// A mutation committed since has moved the generation on, so it is not lost.
func (db *DB) MarkSent(gen uint64) { raise(&db.cleanGen, gen) }

// raise sets g to v unless it already holds as much: generations only grow.
func raise(g *atomic.Uint64, v uint64) {
	for {
		cur := g.Load()
		if cur >= v || g.CompareAndSwap(cur, v) {
			return
		}
	}
}

// SaveSession replaces the saved session and remembers its server URL as the last
// one used. The cached stores are dropped when the user changes, so one person
// never sees another's cache.
func (db *DB) SaveSession(ctx context.Context, s Session) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var prev string
		err := tx.QueryRowContext(ctx, `SELECT user_id FROM session WHERE id = 1`).Scan(&prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read previous session: %w", err)
		}
		if prev != s.User.ID {
			if _, err := tx.ExecContext(ctx, `DELETE FROM stores`); err != nil {
				return fmt.Errorf("clear stores: %w", err)
			}
		}
		_, err = tx.ExecContext(ctx, `
			INSERT OR REPLACE INTO session
				(id, server_url, token, expires_at, user_id, email, full_name, platform_admin, last_contact)
			VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.ServerURL, s.Token, millis(s.ExpiresAt), s.User.ID, s.User.Email, s.User.FullName,
			s.User.PlatformAdmin, millis(s.LastContact))
		if err != nil {
			return fmt.Errorf("save session: %w", err)
		}
		return setSetting(ctx, tx, settingLastServerURL, s.ServerURL)
	})
}

// Session returns the saved session. Returns ErrNoSession if nobody is signed in.
func (db *DB) Session(ctx context.Context) (Session, error) {
	var s Session
	var expires, contact int64
	err := db.sql.QueryRowContext(ctx, `
		SELECT server_url, token, expires_at, user_id, email, full_name, platform_admin, last_contact
		FROM session WHERE id = 1`).
		Scan(&s.ServerURL, &s.Token, &expires, &s.User.ID, &s.User.Email, &s.User.FullName,
			&s.User.PlatformAdmin, &contact)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	s.ExpiresAt, s.LastContact = fromMillis(expires), fromMillis(contact)
	return s, nil
}

// UpdateUser replaces the signed-in user's details (as refreshed from the server).
// Returns ErrNoSession if nobody is signed in.
func (db *DB) UpdateUser(ctx context.Context, u User) error {
	res, err := db.sql.ExecContext(ctx, `
		UPDATE session SET email = ?, full_name = ?, platform_admin = ?
		WHERE id = 1 AND user_id = ?`, u.Email, u.FullName, u.PlatformAdmin, u.ID)
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	return requireRow(res)
}

// RecordContact notes that the server answered the saved session at t.
// Returns ErrNoSession if nobody is signed in.
func (db *DB) RecordContact(ctx context.Context, t time.Time) error {
	res, err := db.sql.ExecContext(ctx, `UPDATE session SET last_contact = ? WHERE id = 1`, millis(t))
	if err != nil {
		return fmt.Errorf("record contact: %w", err)
	}
	return requireRow(res)
}

// ForgetSession forgets the saved session whose token is token, with the cached
// stores, and reports whether there was such a session: a session saved since
// (another sign-in) is left alone. The last server URL is kept, to prefill the
// next sign-in.
func (db *DB) ForgetSession(ctx context.Context, token string) (bool, error) {
	var forgot bool
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM session WHERE token = ?`, token)
		if err != nil {
			return fmt.Errorf("forget session: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		forgot = true
		if _, err := tx.ExecContext(ctx, `DELETE FROM stores`); err != nil {
			return fmt.Errorf("clear stores: %w", err)
		}
		return nil
	})
	return forgot, err
}

// ReplaceStores makes stores, in this order, the cached store list.
func (db *DB) ReplaceStores(ctx context.Context, stores []Store) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM stores`); err != nil {
			return fmt.Errorf("clear stores: %w", err)
		}
		for i, s := range stores {
			_, err := tx.ExecContext(ctx, `
				INSERT INTO stores
					(id, position, seller_id, name, primary_color, accent_color, logo, logo_mime_type, cached_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				s.ID, i, s.SellerID, s.Name, s.PrimaryColor, s.AccentColor, s.Logo, s.LogoMIMEType,
				millis(s.CachedAt))
			if err != nil {
				return fmt.Errorf("cache store %s: %w", s.ID, err)
			}
		}
		return nil
	})
}

// Stores returns the cached store list in the order it was saved.
func (db *DB) Stores(ctx context.Context) ([]Store, error) {
	rows, err := db.sql.QueryContext(ctx, `
		SELECT id, seller_id, name, primary_color, accent_color, logo, logo_mime_type, cached_at
		FROM stores ORDER BY position`)
	if err != nil {
		return nil, fmt.Errorf("read stores: %w", err)
	}
	defer rows.Close()
	var stores []Store
	for rows.Next() {
		var s Store
		var cached int64
		if err := rows.Scan(&s.ID, &s.SellerID, &s.Name, &s.PrimaryColor, &s.AccentColor, &s.Logo,
			&s.LogoMIMEType, &cached); err != nil {
			return nil, fmt.Errorf("read stores: %w", err)
		}
		s.CachedAt = fromMillis(cached)
		stores = append(stores, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read stores: %w", err)
	}
	return stores, nil
}

const settingLastServerURL = "last_server_url"

// LastServerURL returns the server URL of the most recent sign-in, or "" if there
// has been none.
func (db *DB) LastServerURL(ctx context.Context) (string, error) {
	var v string
	err := db.sql.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, settingLastServerURL).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read last server url: %w", err)
	}
	return v, nil
}

func setSetting(ctx context.Context, tx *sql.Tx, key, value string) error {
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)`, key, value)
	if err != nil {
		return fmt.Errorf("save setting %s: %w", key, err)
	}
	return nil
}

func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return inTxOn(ctx, db.sql, fn)
}

func inTxOn(ctx context.Context, h *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := h.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	// Rolled back on every way out but a commit — a panic included, so a
	// crashed call never leaves SQLite's write lock held.
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func requireRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNoSession
	}
	return nil
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
