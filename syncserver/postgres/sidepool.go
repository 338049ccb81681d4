package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// SidePool is a small pool of connections of a path's own, opened on first
// use with a main pool's settings. The main pool is shared with River and
// every job worker (four connections on two cores by default), and a job
// that holds its connection while it waits for a store's write lock can take
// them all: a path that must not queue behind that — a webhook inbox that
// acknowledges only what it stored, carrier-call slots held across calls —
// takes its connections from a side pool.
type SidePool struct {
	parent *pgxpool.Pool
	max    int32
	once   sync.Once
	pool   *pgxpool.Pool
	err    error
}

// NewSidePool returns a side pool of at most max connections made like
// parent's; it connects nothing until Get.
func NewSidePool(parent *pgxpool.Pool, max int32) *SidePool {
	return &SidePool{parent: parent, max: max}
}

// Get returns the pool, opening it the first time.
func (p *SidePool) Get(ctx context.Context) (*pgxpool.Pool, error) {
	p.once.Do(func() {
		cfg := p.parent.Config().Copy()
		cfg.MaxConns, cfg.MinConns = p.max, 0
		cfg.MaxConnIdleTime = time.Minute
		p.pool, p.err = pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg)
	})
	return p.pool, p.err
}
