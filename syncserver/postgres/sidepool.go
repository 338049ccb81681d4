package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrSidePoolClosed is Get's error once the side pool is closed.
var ErrSidePoolClosed = errors.New("side pool closed")

// SidePool is a small pool of connections of a path's own, opened on first
// use with a main pool's settings. The main pool is shared with River and
// every job worker (four connections on two cores by default), and a job
// that holds its connection while it waits for a store's write lock can take
// them all: a path that must not queue behind that — a webhook inbox that
// acknowledges only what it stored, carrier-call slots held across calls —
// takes its connections from a side pool.
//
// Whoever makes a side pool owns it and closes it once the work that uses
// it has stopped: a service that makes one has a Close that closes it, and
// a server closes its services after its HTTP server drained and River
// stopped.
type SidePool struct {
	parent *pgxpool.Pool
	max    int32

	mu     sync.Mutex
	pool   *pgxpool.Pool
	err    error
	closed bool
}

// NewSidePool returns a side pool of at most max connections made like
// parent's; it connects nothing until Get.
func NewSidePool(parent *pgxpool.Pool, max int32) *SidePool {
	return &SidePool{parent: parent, max: max}
}

// Get returns the pool, opening it the first time. It fails with
// ErrSidePoolClosed once the side pool is closed.
func (p *SidePool) Get(ctx context.Context) (*pgxpool.Pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrSidePoolClosed
	}
	if p.pool == nil && p.err == nil {
		cfg := p.parent.Config().Copy()
		cfg.MaxConns, cfg.MinConns = p.max, 0
		cfg.MaxConnIdleTime = time.Minute
		p.pool, p.err = pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg)
	}
	return p.pool, p.err
}

// Close closes the side pool: Get fails from now on, and the connections
// are closed once given back (Close waits for that, so close a side pool
// after the work that uses it has stopped). Closing it again does nothing.
func (p *SidePool) Close() {
	p.mu.Lock()
	pool := p.pool
	p.closed = true
	p.mu.Unlock()
	if pool != nil {
		pool.Close()
	}
}
