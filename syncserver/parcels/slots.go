package parcels

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/syncserver/postgres"
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
//
// A released slot lingers for slotLinger before it is unlocked, and a call
// of the same account in this instance takes it over without a round trip:
// back-to-back calls (a bulk creation) cost no locking at all.
type callSlots struct {
	conns *postgres.SidePool

	mu   sync.Mutex
	idle map[uuid.UUID][]*heldSlot
}

// slotLinger is how long a released slot stays locked for the next call.
const slotLinger = 50 * time.Millisecond

// heldSlot is a slot locked on conn.
type heldSlot struct {
	conn  *pgxpool.Conn
	k     int32
	idle  bool // lingering, guarded by callSlots.mu
	timer *time.Timer
}

func newCallSlots(parent *pgxpool.Pool) *callSlots {
	return &callSlots{conns: postgres.NewSidePool(parent, maxSlotConns), idle: map[uuid.UUID][]*heldSlot{}}
}

// reuse takes over a lingering slot of account below n, if there is one.
func (c *callSlots) reuse(account uuid.UUID, n int) *heldSlot {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.idle[account]
	for len(list) > 0 {
		h := list[len(list)-1]
		list = list[:len(list)-1]
		h.idle = false
		h.timer.Stop()
		if int(h.k) < n {
			c.idle[account] = list
			return h
		}
		go c.free(h, account) // the account's concurrency was lowered
	}
	delete(c.idle, account)
	return nil
}

// linger keeps h locked for slotLinger, then frees it unless reused.
func (c *callSlots) linger(h *heldSlot, account uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h.idle = true
	c.idle[account] = append(c.idle[account], h)
	h.timer = time.AfterFunc(slotLinger, func() {
		c.mu.Lock()
		if !h.idle {
			c.mu.Unlock()
			return
		}
		h.idle = false
		list := c.idle[account]
		for i, x := range list {
			if x == h {
				c.idle[account] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(c.idle[account]) == 0 {
			delete(c.idle, account)
		}
		c.mu.Unlock()
		c.free(h, account)
	})
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
	if h := c.reuse(account, n); h != nil {
		return func() { c.linger(h, account) }, nil
	}
	pool, err := c.conns.Get(ctx)
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
				h := &heldSlot{conn: conn, k: k}
				return func() { c.linger(h, account) }, nil
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

// close frees the lingering slots and closes the slots' connections (it
// waits for slots held by calls to be released).
func (c *callSlots) close() {
	c.mu.Lock()
	var idle []*heldSlot
	var accounts []uuid.UUID
	for account, list := range c.idle {
		for _, h := range list {
			h.idle = false
			h.timer.Stop()
			idle, accounts = append(idle, h), append(accounts, account)
		}
	}
	clear(c.idle)
	c.mu.Unlock()
	for i, h := range idle {
		c.free(h, accounts[i])
	}
	c.conns.Close()
}

// free unlocks a slot and gives its connection back.
func (c *callSlots) free(h *heldSlot, account uuid.UUID) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var freed bool
	if err := h.conn.QueryRow(ctx, freeSlot, account, h.k).Scan(&freed); err != nil || !freed {
		destroy(h.conn) // closing the session frees whatever it still holds
		return
	}
	h.conn.Release()
}

// destroy closes a connection's session (freeing its advisory locks) and
// gives it back to the pool, which drops it.
func destroy(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Conn().Close(ctx)
	conn.Release()
}
