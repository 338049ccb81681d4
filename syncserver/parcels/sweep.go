package parcels

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/postgres"
)

// SweepLimit bounds the creations one sweep enqueues.
const SweepLimit = 2000

// SweepArgs is the periodic job enqueueing parcel creation for confirmed
// leads without a parcel in stores that create parcels automatically.
type SweepArgs struct {
	Window time.Duration `json:"window"`
}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "parcel_sweep" }

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	s *Service
}

func (w *sweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	_, err := w.s.Sweep(ctx, job.Args.Window)
	return err
}

// Sweep enqueues the creation of a parcel for every lead confirmed in the
// last window, in a store with automatic parcel creation, that has no
// parcel yet (a failed or held one counts as a parcel: those wait for a
// person). It backs the lead.confirmed consumer, which only sees confirmations
// that publish the event; the creation jobs are unique per lead, so a lead
// both paths find is created once. It returns how many it enqueued.
func (s *Service) Sweep(ctx context.Context, window time.Duration) (int, error) {
	n := 0
	err := postgres.InTx(ctx, s.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT l.store_id, l.id FROM leads l JOIN stores s ON s.id = l.store_id AND s.auto_create_parcels
WHERE l.status = 'confirmed' AND l.deleted_at IS NULL AND l.updated_at > $1
  AND NOT EXISTS (SELECT 1 FROM parcels p WHERE p.store_id = l.store_id AND p.lead_id = l.id AND p.deleted_at IS NULL)
ORDER BY l.updated_at LIMIT $2`, s.now().Add(-window), SweepLimit)
		if err != nil {
			return err
		}
		params, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (river.InsertManyParams, error) {
			var a CreateArgs
			err := r.Scan(&a.Store, &a.Lead)
			return river.InsertManyParams{Args: a}, err
		})
		if err != nil || len(params) == 0 {
			return err
		}
		res, err := s.River().InsertManyTx(ctx, tx.Tx, params)
		for _, r := range res {
			if !r.UniqueSkippedAsDuplicate {
				n++
			}
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep confirmed leads: %w", err)
	}
	return n, nil
}

// PeriodicSweep returns the sweep job, run every interval over leads
// confirmed within window.
func PeriodicSweep(interval, window time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
		return SweepArgs{Window: window}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: interval}}
	}, nil)
}
