package localstore

import (
	"database/sql"
	"fmt"
	"testing"
)

// Pragma reads a PRAGMA's current value on a connection of db.
func Pragma(t testing.TB, db *DB, name string) string {
	t.Helper()
	var v string
	if err := db.sql.QueryRow(fmt.Sprintf("PRAGMA %s", name)).Scan(&v); err != nil {
		t.Fatalf("pragma %s: %v", name, err)
	}
	return v
}

// SQL is db's connection pool, for baselines that bypass the package.
func SQL(db *DB) *sql.DB { return db.sql }
