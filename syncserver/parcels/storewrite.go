package parcels

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// storeWrites is a group commit for small versioned writes to one store.
// Every syncer write locks the store's version counter until it commits, so
// the writes of one store are serial: one commit (one fsync) each would
// bound parcel creation — two writes per parcel — by the disk, not by the
// carriers. Writes that arrive while the store's previous batch commits
// wait and then share one transaction, each in a savepoint of its own, so
// that one failing does not undo the others.
type storeWrites struct {
	mu     sync.Mutex
	queues map[uuid.UUID]*storeQueue
}

type storeQueue struct {
	ops     []*storeOp
	running bool
}

type storeOp struct {
	fn   func(*syncer.Writer) error
	done chan error
}

// storeWrite runs fn in a versioned write of store, batched with other
// writes of the store, and returns once the write has committed (or
// failed). fn may run more than once, as with syncer.Write.
func (s *Service) storeWrite(ctx context.Context, store uuid.UUID, fn func(*syncer.Writer) error) error {
	op := &storeOp{fn: fn, done: make(chan error, 1)}
	sw := &s.writes
	sw.mu.Lock()
	if sw.queues == nil {
		sw.queues = map[uuid.UUID]*storeQueue{}
	}
	q := sw.queues[store]
	if q == nil {
		q = &storeQueue{}
		sw.queues[store] = q
	}
	q.ops = append(q.ops, op)
	if !q.running {
		q.running = true
		go s.drainStore(context.WithoutCancel(ctx), store, q)
	}
	sw.mu.Unlock()
	return <-op.done
}

// drainStore commits the store's queued writes, batch after batch, until
// none is left.
func (s *Service) drainStore(ctx context.Context, store uuid.UUID, q *storeQueue) {
	sw := &s.writes
	for {
		sw.mu.Lock()
		batch := q.ops
		q.ops = nil
		if len(batch) == 0 {
			q.running = false
			delete(sw.queues, store)
			sw.mu.Unlock()
			return
		}
		sw.mu.Unlock()
		errs := make([]error, len(batch))
		err := syncer.Write(ctx, s.Pool, postgres.StoreScope(store), func(w *syncer.Writer) error {
			// Lock before any savepoint: a lock taken inside one that is
			// rolled back would be released.
			if err := w.Lock(store); err != nil {
				return err
			}
			for i, op := range batch {
				errs[i] = nil
				if len(batch) == 1 {
					errs[i] = op.fn(w)
					return errs[i]
				}
				if _, err := w.Tx.Exec(ctx, "SAVEPOINT store_write"); err != nil {
					return err
				}
				if errs[i] = op.fn(w); errs[i] != nil {
					if _, err := w.Tx.Exec(ctx, "ROLLBACK TO SAVEPOINT store_write"); err != nil {
						return fmt.Errorf("roll back a failed write: %w", err)
					}
				}
				if _, err := w.Tx.Exec(ctx, "RELEASE SAVEPOINT store_write"); err != nil {
					return err
				}
			}
			return nil
		})
		for i, op := range batch {
			if err != nil {
				op.done <- err
			} else {
				op.done <- errs[i]
			}
		}
	}
}
