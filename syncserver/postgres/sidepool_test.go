package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
)

// A closed side pool's connections are closed and Get fails from then on;
// another side pool of the same parent is not affected, one never opened
// closes too, and closing again does nothing.
func TestSidePoolClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	closed, other, unused := postgres.NewSidePool(db.App, 2), postgres.NewSidePool(db.App, 2), postgres.NewSidePool(db.App, 2)
	defer other.Close()
	open := func(p *postgres.SidePool) error {
		pool, err := p.Get(ctx)
		if err != nil {
			return err
		}
		return pool.Ping(ctx)
	}
	for _, p := range []*postgres.SidePool{closed, other} {
		if err := open(p); err != nil {
			t.Fatal(err)
		}
	}
	pool, _ := closed.Get(ctx)
	closed.Close()
	if _, err := closed.Get(ctx); !errors.Is(err, postgres.ErrSidePoolClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := pool.Ping(ctx); err == nil {
		t.Fatal("a closed side pool's connections still work")
	}
	if n := pool.Stat().TotalConns(); n != 0 {
		t.Fatalf("a closed side pool holds %d connections", n)
	}
	if err := open(other); err != nil {
		t.Fatalf("another side pool of the parent was closed: %v", err)
	}
	unused.Close()
	if _, err := unused.Get(ctx); !errors.Is(err, postgres.ErrSidePoolClosed) {
		t.Fatalf("Get after Close of a side pool never opened: %v", err)
	}
	closed.Close() // again: nothing
}
