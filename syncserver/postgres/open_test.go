package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
)

// The server's connections, and its side pools', never JIT-compile; a URL
// that asks for JIT keeps it.
func TestOpenTurnsJITOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	side := postgres.NewSidePool(db.App, 1)
	defer side.Close()
	sp, err := side.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	asked, err := postgres.Open(ctx, db.AppURL+"&jit=on")
	if err != nil {
		t.Fatal(err)
	}
	defer asked.Close()
	for _, c := range []struct {
		name string
		pool *pgxpool.Pool
		want string
	}{{"app", db.App, "off"}, {"side", sp, "off"}, {"asked", asked, "on"}} {
		var got string
		if err := c.pool.QueryRow(ctx, "SHOW jit").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s pool: jit = %s, want %s", c.name, got, c.want)
		}
	}
}
