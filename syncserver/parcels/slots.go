package parcels

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// maxSlotConns bounds the connections holding call slots in one instance:
// one per carrier call in flight, so at least the job workers that make
// calls.
const maxSlotConns = 64

// callSlots is a counting semaphore per carrier account shared by every
// server instance on the database. Slot k of account a is the Postgres
// session advisory lock on hashtextextended('carrier-slot:a:k', 0), held on
// a connection of a small pool of its own (not the main pool, whose few
// connections must not wait on carrier calls). A lock lives as long as its
// session, so the slots of a killed instance free themselves as soon as
// Postgres sees its connections close: no lease to expire, no cleanup.
type callSlots struct {
	parent *pgxpool.Pool
	once   sync.Once
	pool   *pgxpool.Pool
	err    error
}

func newCallSlots(parent *pgxpool.Pool) *callSlots { return &callSlots{parent: parent} }

func (c *callSlots) open(ctx context.Context) (*pgxpool.Pool, error) {
	c.once.Do(func() {
		cfg := c.parent.Config().Copy()
		cfg.MaxConns, cfg.MinConns = maxSlotConns, 0
		cfg.MaxConnIdleTime = time.Minute
		c.pool, c.err = pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg)
	})
	return c.pool, c.err
}

// takeSlot tries every slot once, starting at a random one (so waiters do
// not all contend for slot 0), and locks at most one: LIMIT 1 stops the
// scan at the first lock obtained.
const takeSlot = `SELECT (g.k + $3) % $2 FROM generate_series(0, $2 - 1) AS g(k)
WHERE pg_try_advisory_lock(hashtextextended('carrier-slot:' || $1::text || ':' || ((g.k + $3) % $2)::text, 0)) LIMIT 1`

const freeSlot = `SELECT pg_advisory_unlock(hashtextextended('carrier-slot:' || $1::text || ':' || $2::text, 0))`

// acquire takes one of n slots of account, polling with jittered backoff
// while all are taken, and returns the function releasing it.
func (c *callSlots) acquire(ctx context.Context, account uuid.UUID, n int) (func(), error) {
	pool, err := c.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("call slots: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("call slots: %w", err)
	}
	wait := 5 * time.Millisecond
	for {
		var k int32
		rows, err := conn.Query(ctx, takeSlot, account, int32(n), rand.Int32N(int32(n)))
		if err == nil {
			got := false
			for rows.Next() {
				got = rows.Scan(&k) == nil
			}
			rows.Close()
			if err = rows.Err(); err == nil && got {
				return func() { c.release(conn, account, k) }, nil
			}
		}
		if err != nil {
			destroy(conn)
			return nil, fmt.Errorf("take call slot of account %v: %w", account, err)
		}
		t := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			conn.Release()
			return nil, ctx.Err()
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

func (c *callSlots) release(conn *pgxpool.Conn, account uuid.UUID, k int32) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var freed bool
	if err := conn.QueryRow(ctx, freeSlot, account, k).Scan(&freed); err != nil || !freed {
		destroy(conn) // closing the session frees whatever it still holds
		return
	}
	conn.Release()
}

// destroy closes a connection's session (freeing its advisory locks) and
// gives it back to the pool, which drops it.
func destroy(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Conn().Close(ctx)
	conn.Release()
}
