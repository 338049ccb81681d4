// Package pgtest gives each test its own freshly migrated Postgres database on
// the project's cluster (started by `go tool task db:up`), connected as the
// unprivileged application role so that row-level security applies exactly as
// in production. Databases are cloned from a template built once per schema
// version, so a test pays for a CREATE DATABASE, not for the migrations.
//
// Configuration comes from the environment:
//
//	LEADIFY_TEST_DATABASE_URL  superuser URL (default postgres://postgres@127.0.0.1:54329/postgres)
//	LEADIFY_TEST_OWNER_ROLE    role owning the tables (default leadify_owner)
//	LEADIFY_TEST_APP_ROLE      role the server runs as (default leadify_app)
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/syncserver/postgres"
)

// DB is one test's database.
type DB struct {
	Name string
	// App is a pool connected as the application role: what the server uses.
	App *pgxpool.Pool
	// AppURL and OwnerURL are the connection strings of the two roles.
	AppURL, OwnerURL string
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// New creates a migrated database for t and drops it when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	ctx := context.Background()
	admin := env("LEADIFY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:54329/postgres?sslmode=disable")
	owner := env("LEADIFY_TEST_OWNER_ROLE", "leadify_owner")
	app := env("LEADIFY_TEST_APP_ROLE", "leadify_app")

	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(ctx, admin, owner, app) })
	if templateErr != nil {
		t.Fatalf("pgtest: %v (is the database up? run `go tool task db:up`)", templateErr)
	}

	name := "leadify_t_" + randHex(8)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s OWNER %s",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{templateName}.Sanitize(), pgx.Identifier{owner}.Sanitize())); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	db := &DB{Name: name, AppURL: withUserDB(admin, app, name), OwnerURL: withUserDB(admin, owner, name)}
	t.Cleanup(func() {
		if db.App != nil {
			db.App.Close()
		}
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	pool, err := postgres.Open(ctx, db.AppURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	db.App = pool
	return db
}

// ensureTemplate builds (once per schema version, shared by concurrent test
// binaries through an advisory lock) a migrated template database.
func ensureTemplate(ctx context.Context, admin, owner, app string) (string, error) {
	name := "leadify_tmpl_" + schemaHash()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(4242)"); err != nil {
		return "", err
	}
	defer conn.Exec(ctx, "SELECT pg_advisory_unlock(4242)") //nolint:errcheck // released with the connection anyway
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	ident := pgx.Identifier{building}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" OWNER "+pgx.Identifier{owner}.Sanitize()); err != nil {
		return "", err
	}
	migrateCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := postgres.Migrate(migrateCtx, withUserDB(admin, owner, building), app); err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", ident, pgx.Identifier{name}.Sanitize())); err != nil {
		return "", err
	}
	return name, nil
}

// schemaHash names the template after the embedded migrations, so that a
// changed migration builds a new template instead of reusing a stale one.
func schemaHash() string {
	h := sha256.New()
	err := fs.WalkDir(postgres.MigrationFiles(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(postgres.MigrationFiles(), path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	if err != nil {
		panic(err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func withUserDB(base, user, db string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(fmt.Sprintf("pgtest: bad LEADIFY_TEST_DATABASE_URL: %v", err))
	}
	u.User = url.User(user)
	u.Path = "/" + db
	return u.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
