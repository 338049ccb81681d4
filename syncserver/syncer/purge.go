package syncer

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/postgres"
)

// DefaultRetention is how long soft-deleted rows are kept, so that replicas
// that were offline meanwhile still receive the deletion.
const DefaultRetention = 30 * 24 * time.Hour

// PurgeArgs is the periodic River job that removes soft-deleted rows past
// retention.
type PurgeArgs struct{}

// Kind implements river.JobArgs.
func (PurgeArgs) Kind() string { return "sync_purge" }

// PurgeWorker purges every store scope.
type PurgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	Pool      *pgxpool.Pool
	Retention time.Duration
	Now       func() time.Time
}

// Work implements river.Worker.
func (w *PurgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	_, err := Purge(ctx, w.Pool, w.Now().Add(-w.Retention))
	return err
}

// Purge hard-deletes leads (and their events) soft-deleted before cutoff,
// one store at a time, and raises each store scope's purged_below to the
// newest version it removed: a replica whose cursor is below it may have missed
// a deletion, so its next pull says "resync required". Returns the number of
// leads removed.
func Purge(ctx context.Context, pool *pgxpool.Pool, cutoff time.Time) (int, error) {
	var stores []uuid.UUID
	err := postgres.InTx(ctx, pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT store_id FROM leads WHERE deleted_at < $1`, cutoff)
		if err != nil {
			return err
		}
		stores, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("find stores to purge: %w", err)
	}
	total := 0
	for _, store := range stores {
		err := Write(ctx, pool, postgres.StoreScope(store), func(w *Writer) error {
			if err := w.Lock(store); err != nil {
				return err
			}
			var n int
			var top *int64
			err := w.Tx.QueryRow(ctx, `WITH gone AS (
  DELETE FROM leads WHERE store_id = $1 AND deleted_at < $2 RETURNING id, version
), events AS (
  DELETE FROM lead_events e USING gone WHERE e.store_id = $1 AND e.lead_id = gone.id RETURNING e.version
)
SELECT count(*)::int, greatest((SELECT max(version) FROM gone), (SELECT max(version) FROM events)) FROM gone`, store, cutoff).Scan(&n, &top)
			if err != nil || top == nil {
				return err
			}
			total += n
			_, err = w.Tx.Exec(ctx, `UPDATE sync_scopes SET purged_below = greatest(purged_below, $2) WHERE scope_id = $1`, store, *top)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("purge store %v: %w", store, err)
		}
	}
	return total, nil
}
