package pgtest

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/leadify/leadify/syncserver/postgres"
)

// The helpers below check that a look-up of a store's rows by an array of
// keys searches an index by key whatever the planner believes of the store:
// see RequireKeyed.

// Owner connects to the database as the role owning the tables: past
// row-level security, and allowed to ANALYZE.
func (db *DB) Owner(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.OwnerURL)
	if err != nil {
		t.Fatalf("pgtest: connect as owner: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Analyze takes the tables' statistics as they stand, as the owner, and
// keeps them: autovacuum is turned off on the tables (of this database),
// so that it does not analyse them again once the store under test is
// written.
func (db *DB) Analyze(t testing.TB, tables ...string) {
	t.Helper()
	conn := db.Owner(t)
	for _, table := range tables {
		ident := pgx.Identifier{table}.Sanitize()
		if _, err := conn.Exec(context.Background(), "ALTER TABLE "+ident+" SET (autovacuum_enabled = off)"); err != nil {
			t.Fatalf("pgtest: analyze %s: %v", table, err)
		}
		if _, err := conn.Exec(context.Background(), "ANALYZE "+ident); err != nil {
			t.Fatalf("pgtest: analyze %s: %v", table, err)
		}
	}
}

// Fill inserts, as the owner, n copies of one row of table that where
// selects, with the columns of set replaced by the SQL expressions given
// (of g, the copy's number from 1 to n): a fresh key, another store, a
// unique code. Synced tables take the rows as if from the versioned-write
// helper. It returns the number of rows inserted.
func (db *DB) Fill(t testing.TB, table, where string, n int, set map[string]string) int64 {
	t.Helper()
	var pairs []string
	for col, expr := range set {
		pairs = append(pairs, fmt.Sprintf("'%s', %s", col, expr))
	}
	ident := pgx.Identifier{table}.Sanitize()
	overrides := "'{}'::jsonb"
	if len(pairs) > 0 {
		overrides = "jsonb_build_object(" + strings.Join(pairs, ", ") + ")"
	}
	sql := fmt.Sprintf(`INSERT INTO %[1]s SELECT (jsonb_populate_record(NULL::%[1]s, to_jsonb(s) || %[2]s)).*
FROM (SELECT * FROM %[1]s WHERE %[3]s LIMIT 1) s, generate_series(1, %[4]d) g`, ident, overrides, where, n)
	ctx := context.Background()
	var tag pgconn.CommandTag
	err := pgx.BeginFunc(ctx, db.Owner(t), func(tx pgx.Tx) error {
		// Synced tables refuse rows not written through the versioned-write
		// helper; these are a fixture.
		if _, err := tx.Exec(ctx, `SELECT set_config('app.sync_writer', 'on', true)`); err != nil {
			return err
		}
		var err error
		tag, err = tx.Exec(ctx, sql)
		return err
	})
	if err != nil {
		t.Fatalf("pgtest: fill %s: %v\n%s", table, err, sql)
	}
	if tag.RowsAffected() != int64(n) {
		t.Fatalf("pgtest: fill %s: %d rows inserted, not %d (does %q select a row?)", table, tag.RowsAffected(), n, where)
	}
	return tag.RowsAffected()
}

// Explain returns the plan of sql with args, planned as the application
// role in a transaction scoped to store, as the server's statement is.
func (db *DB) Explain(t testing.TB, store uuid.UUID, sql string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	var plan []string
	err := postgres.InTx(ctx, db.App, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, "EXPLAIN "+sql, args...)
		if err != nil {
			return err
		}
		plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		t.Fatalf("pgtest: explain: %v\n%s", err, sql)
	}
	return plan
}

// scopeCond is a search by the store (or, for a client's rows, the client)
// alone: by a parameter, a sub-select's value ($0 up to PostgreSQL 16,
// (InitPlan 1).col1 from 17), or the id as a constant in a custom plan.
var scopeCond = regexp.MustCompile(`\b(store_id|client_id) = ('[0-9a-f-]{36}'::uuid|\$\d+|\(InitPlan \d+\)\.col\d+)`)

// scanOn names the table a plan node scans.
var scanOn = regexp.MustCompile(`Scan(?: using \S+)? on (\S+)`)

// RequireKeyed fails t unless plan reads table only by searching its
// indexes with one of the key columns: no sequential scan of the table, at
// least one index condition or recheck on it naming a key, and none that
// searches by the store (or client) alone. Conditions of other tables'
// nodes are not table's.
//
// Why the server's batch look-ups are written as they are (the comments
// above them point here): with statistics taken before a store's rows were
// written (a new store, a new month, every test database), the planner
// believes the store has a few hundred rows at most and, for
// "key = ANY($2)" with a large array, reads all of them — through the
// (store_id, version) index, or through the right index searched by store
// alone — and filters them: for every batch, so that the work grows with
// the store (a billing re-run of 100,000 parcels took 4–7 s instead of 1).
// Even one look-up per key ("unnest($2) ... LATERAL (... WHERE store_id =
// $1 AND id = u.id OFFSET 0)", the OFFSET 0 keeping it from being
// flattened into a join the planner could turn into a hash of the store's
// rows) is not enough: believing the store has one row, the planner finds
// any index leading with store_id as good as the key and may search it by
// store alone. Searched with the store hidden from it ("store_id = (SELECT
// $1::uuid)"), it costs a search by store as one of an average store, and
// the key's index wins. An update or delete joined to the keys could still
// be planned as a hash of the store's rows: each row is found and locked by
// key that way (FOR UPDATE), then changed by its ctid, stable
// once locked. The test of such a query fills another store (Fill),
// analyses the table (Analyze), writes the store under test, and checks the
// plan (RequireKeyed); servertest.StaleLeads and servertest.StaleStore make
// such a store.
func RequireKeyed(t testing.TB, plan []string, table string, keys ...string) {
	t.Helper()
	text := strings.Join(plan, "\n")
	var keyed []*regexp.Regexp
	for _, k := range keys {
		keyed = append(keyed, regexp.MustCompile(`\b`+regexp.QuoteMeta(k)+`\b`))
	}
	namesKey := func(line string) bool {
		for _, k := range keyed {
			if k.MatchString(scopeCond.ReplaceAllString(line, "")) {
				return true
			}
		}
		return false
	}
	read, searched := false, false
	node := ""
	for _, line := range plan {
		if strings.Contains(line, "Bitmap Index Scan on ") {
			continue // its conditions are its heap scan's table's
		}
		if m := scanOn.FindStringSubmatch(line); m != nil {
			node = m[1]
			if node == table {
				read = true
				if strings.Contains(line, "Seq Scan on ") {
					t.Fatalf("%s is read whole, not searched by key:\n%s", table, text)
				}
			}
			continue
		}
		if node != table || (!strings.Contains(line, "Index Cond:") && !strings.Contains(line, "Recheck Cond:")) {
			continue
		}
		if namesKey(line) {
			searched = true
		} else if scopeCond.MatchString(line) {
			t.Fatalf("an index of %s is searched by store alone, not by %s:\n%s", table, strings.Join(keys, " or "), text)
		}
	}
	if !read {
		t.Fatalf("the plan does not read %s:\n%s", table, text)
	}
	if !searched {
		t.Fatalf("no index of %s is searched by %s:\n%s", table, strings.Join(keys, " or "), text)
	}
}

// Rows returns the rows sql reads with args, each printed, as the
// application role in a transaction scoped to store: in the order read
// unless sorted.
func (db *DB) Rows(t testing.TB, store uuid.UUID, sorted bool, sql string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	var got []string
	err := postgres.InTx(ctx, db.App, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			v, err := r.Values()
			return fmt.Sprint(v), err
		})
		return err
	})
	if err != nil {
		t.Fatalf("pgtest: rows: %v\n%s", err, sql)
	}
	if sorted {
		slices.Sort(got)
	}
	return got
}
