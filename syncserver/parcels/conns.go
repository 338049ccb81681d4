package parcels

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ownConns is a small pool of connections of the webhook path's own, opened
// on first use with the main pool's settings. The main pool is shared with
// River and every job worker (four connections on two cores by default), and
// a domain-event consumer holds its connection while it waits for a store's
// write lock: at 1,000 webhooks/s the consumers of the parcels' events
// queued up on it and took every connection, so the inbox could not store —
// nor acknowledge — webhooks for seconds (122 acknowledged/s in one run).
// With connections of its own the webhook path waits only for its own work.
type ownConns struct {
	parent *pgxpool.Pool
	max    int32
	once   sync.Once
	pool   *pgxpool.Pool
	err    error
}

func newOwnConns(parent *pgxpool.Pool, max int32) *ownConns {
	return &ownConns{parent: parent, max: max}
}

// get returns the pool, opening it the first time.
func (o *ownConns) get(ctx context.Context) (*pgxpool.Pool, error) {
	o.once.Do(func() {
		cfg := o.parent.Config().Copy()
		cfg.MaxConns, cfg.MinConns = o.max, 0
		cfg.MaxConnIdleTime = time.Minute
		o.pool, o.err = pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg)
	})
	return o.pool, o.err
}
