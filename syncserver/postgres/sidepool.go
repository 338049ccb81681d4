package postgres

import (
	"context"
	"errors"
	"slices"
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
// Whoever makes a side pool closes it once the work that uses it has
// stopped (a server: after its HTTP server drained and River stopped); see
// SidePools for a server's.
type SidePool struct {
	parent *pgxpool.Pool
	max    int32

	mu     sync.Mutex
	pool   *pgxpool.Pool
	err    error
	closed bool
}

// NewSidePool returns a side pool of at most max connections made like
// parent's; it connects nothing until Get. While a SidePools captures
// parent's side pools (see Capture), the new one joins it.
func NewSidePool(parent *pgxpool.Pool, max int32) *SidePool {
	p := &SidePool{parent: parent, max: max}
	capturing.mu.Lock()
	g := capturing.by[parent]
	capturing.mu.Unlock()
	if g != nil {
		g.add(p)
	}
	return p
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

// SidePools are side pools closed together: a server's, closed when it
// stops. The zero value is ready.
type SidePools struct {
	mu     sync.Mutex
	pools  []*SidePool
	closed bool
}

func (g *SidePools) add(p *SidePool) {
	g.mu.Lock()
	closed := g.closed
	if !closed {
		g.pools = append(g.pools, p)
	}
	g.mu.Unlock()
	if closed { // made after its owner stopped: never opened
		p.Close()
	}
}

// capturing holds the SidePools capturing the side pools made of a parent.
var capturing struct {
	mu sync.Mutex
	by map[*pgxpool.Pool]*SidePools
	// one captures at a time, so that a side pool has one owner
	one sync.Mutex
}

// Capture runs fn, and every side pool made of parent meanwhile (by
// NewSidePool, whoever calls it) joins g: a server captures the side pools
// its capabilities' constructors make, which it cannot otherwise see, to
// close them when it stops. Only constructors are meant to run in fn — a
// side pool another goroutine makes of parent meanwhile would join g too —
// and they should make their side pools at once, not on first use.
func (g *SidePools) Capture(parent *pgxpool.Pool, fn func()) {
	capturing.one.Lock()
	defer capturing.one.Unlock()
	capturing.mu.Lock()
	if capturing.by == nil {
		capturing.by = map[*pgxpool.Pool]*SidePools{}
	}
	capturing.by[parent] = g
	capturing.mu.Unlock()
	defer func() {
		capturing.mu.Lock()
		delete(capturing.by, parent)
		capturing.mu.Unlock()
	}()
	fn()
}

// Close closes every side pool of g, the last made first, and those made
// of it later at once. It waits for their connections to be given back:
// call it after the work that uses them has stopped.
func (g *SidePools) Close() {
	g.mu.Lock()
	pools := g.pools
	g.pools, g.closed = nil, true
	g.mu.Unlock()
	for _, p := range slices.Backward(pools) {
		p.Close()
	}
}
