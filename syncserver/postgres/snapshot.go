package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Snapshot is a read-only repeatable-read transaction on one connection, made
// for the hottest read path (sync pulls): it opens together with its
// row-level-security scope and a first query in a single round trip, and its
// last batch carries the COMMIT, so a whole read costs two round trips however
// many tables it reads. InSnapshot does the same work in about twice as many.
type Snapshot struct {
	conn *pgxpool.Conn
}

// ReadSnapshot opens a snapshot with scope, runs first — a parameterless
// statement sent with the simple protocol, so it must contain nothing taken
// from the caller unescaped — and calls fn with first's rows (text format).
// fn ends the transaction by sending a batch prepared with End; if it does not
// (or fails), the transaction is finished here.
func ReadSnapshot(ctx context.Context, pool *pgxpool.Pool, scope Scope, first string, fn func(s *Snapshot, first [][][]byte) error) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	sql := "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; " + scope.setSQL() + "; " + first
	results, err := conn.Conn().PgConn().Exec(ctx, sql).ReadAll()
	if err == nil && len(results) != 3 {
		err = fmt.Errorf("snapshot: %d results for 3 statements", len(results))
	}
	if err == nil {
		err = fn(&Snapshot{conn: conn}, results[2].Rows)
	}
	if conn.Conn().PgConn().TxStatus() != 'I' && !conn.Conn().PgConn().IsClosed() {
		end := "COMMIT"
		if err != nil {
			end = "ROLLBACK"
		}
		if _, endErr := conn.Exec(ctx, end); endErr != nil && err == nil {
			err = endErr
		}
	}
	return err
}

// Query runs one query inside the snapshot (an extra round trip).
func (s *Snapshot) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return s.conn.Query(ctx, sql, args...)
}

// QueryRow runs one single-row query inside the snapshot.
func (s *Snapshot) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return s.conn.QueryRow(ctx, sql, args...)
}

// End queues the transaction's end on b: the snapshot finishes in the round
// trip that sends b.
func (s *Snapshot) End(b *pgx.Batch) { b.Queue("COMMIT") }

// SendBatch sends b in one round trip. Read every result in order, then Close.
func (s *Snapshot) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return s.conn.SendBatch(ctx, b)
}

// QuoteLiteral quotes s as an SQL string literal (standard_conforming_strings on).
func QuoteLiteral(s string) string {
	if strings.ContainsRune(s, 0) {
		panic(errors.New("postgres: NUL in a literal"))
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
