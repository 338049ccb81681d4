package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// appendOnly are tables the application role may insert into and read, never
// change: the audit trail and the event log.
var appendOnly = []string{"audit_log", "domain_events"}

// Migrate brings the schema up to date, connected as the role that owns the
// tables (ownerURL), then grants appRole — the role the server runs as — what it
// needs and no more: no ownership, no DDL, no rewriting of append-only tables.
// It is safe to run concurrently from several instances (goose and River take
// advisory locks).
func Migrate(ctx context.Context, ownerURL, appRole string) error {
	pool, err := Open(ctx, ownerURL)
	if err != nil {
		return err
	}
	defer pool.Close()

	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"),
		goose.WithSessionLocker(mustLocker()))
	if err != nil {
		return fmt.Errorf("goose: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}

	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	return grant(ctx, pool, appRole)
}

func grant(ctx context.Context, pool *pgxpool.Pool, appRole string) error {
	role := pgx.Identifier{appRole}.Sanitize()
	stmts := []string{
		"GRANT USAGE ON SCHEMA public TO " + role,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + role,
		"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO " + role,
		"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO " + role,
		"REVOKE ALL ON goose_db_version FROM " + role,
	}
	for _, t := range appendOnly {
		stmts = append(stmts, fmt.Sprintf("REVOKE UPDATE, DELETE, TRUNCATE ON %s FROM %s", t, role))
	}
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s); err != nil {
			return fmt.Errorf("grant to %s: %q: %w", appRole, s, err)
		}
	}
	return nil
}

// OpenSQL opens a database/sql handle on a pool, for libraries that need one.
func OpenSQL(pool *pgxpool.Pool) *sql.DB { return stdlib.OpenDBFromPool(pool) }

// MigrationFiles is the embedded migration folder.
func MigrationFiles() fs.FS { return migrations }
