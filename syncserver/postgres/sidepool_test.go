package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
)

// The side pools made of a parent while a SidePools captures them are
// closed with it (and one made for it after it closed is closed at once);
// others, made outside the capture or of another parent, are not.
func TestSidePoolsCloseCaptured(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, other := pgtest.New(t), pgtest.New(t)
	var g postgres.SidePools
	var captured, otherParent *postgres.SidePool
	g.Capture(db.App, func() {
		captured = postgres.NewSidePool(db.App, 2)
		otherParent = postgres.NewSidePool(other.App, 2)
	})
	outside := postgres.NewSidePool(db.App, 2)
	defer outside.Close()
	defer otherParent.Close()
	open := func(p *postgres.SidePool) error {
		pool, err := p.Get(ctx)
		if err != nil {
			return err
		}
		return pool.Ping(ctx)
	}
	for _, p := range []*postgres.SidePool{captured, otherParent, outside} {
		if err := open(p); err != nil {
			t.Fatal(err)
		}
	}
	pool, _ := captured.Get(ctx)
	g.Close()
	if _, err := captured.Get(ctx); !errors.Is(err, postgres.ErrSidePoolClosed) {
		t.Fatalf("a captured side pool is not closed: %v", err)
	}
	if err := pool.Ping(ctx); err == nil {
		t.Fatal("a closed side pool's connections still work")
	}
	if n := pool.Stat().TotalConns(); n != 0 {
		t.Fatalf("a closed side pool holds %d connections", n)
	}
	for _, p := range []*postgres.SidePool{otherParent, outside} {
		if err := open(p); err != nil {
			t.Fatalf("a side pool not captured was closed: %v", err)
		}
	}
	var late *postgres.SidePool
	g.Capture(db.App, func() { late = postgres.NewSidePool(db.App, 2) })
	if _, err := late.Get(ctx); !errors.Is(err, postgres.ErrSidePoolClosed) {
		t.Fatalf("a side pool made for closed side pools is open: %v", err)
	}
	captured.Close() // again: nothing
}
