package parcels

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// PollBatch bounds how many parcels of one account a poll tracks (Ameex:
// four MassTracking calls of 25), which is the per-account rate limit.
const PollBatch = 100

// PollArgs is the periodic job tracking active parcels that have had no
// report for Stale.
type PollArgs struct {
	Stale time.Duration `json:"stale"`
}

// Kind implements river.JobArgs.
func (PollArgs) Kind() string { return "parcel_poll" }

type pollWorker struct {
	river.WorkerDefaults[PollArgs]
	s *Service
}

func (w *pollWorker) Work(ctx context.Context, job *river.Job[PollArgs]) error {
	_, err := w.s.Poll(ctx, job.Args.Stale)
	return err
}

type staleParcel struct {
	store, account uuid.UUID
	tracking       string
}

// Poll tracks, per carrier account, up to PollBatch parcels whose journey
// is not over (active, or refused and on the way back) with no report for
// stale (oldest first) in as few calls as the carrier allows,
// and applies what the carrier reports like webhooks. It returns how many
// new reports it recorded; one account failing does not stop the others.
func (s *Service) Poll(ctx context.Context, stale time.Duration) (int, error) {
	var list []staleParcel
	err := postgres.InTx(ctx, s.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT store_id, account_id, tracking FROM (
  SELECT store_id, account_id, tracking, row_number() OVER (PARTITION BY account_id ORDER BY coalesce(last_report_at, created_at)) AS rn
  FROM parcels WHERE creation = 'created' AND deleted_at IS NULL
    AND status IN ('sent', 'picked_up', 'in_transit', 'out_for_delivery', 'postponed', 'refused')
    AND coalesce(last_report_at, created_at) < $1) p WHERE rn <= $2`, s.now().Add(-stale), PollBatch)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (staleParcel, error) {
			var p staleParcel
			return p, r.Scan(&p.store, &p.account, &p.tracking)
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("list stale parcels: %w", err)
	}
	byAccount := map[uuid.UUID][]staleParcel{}
	for _, p := range list {
		byAccount[p.account] = append(byAccount[p.account], p)
	}
	total := 0
	var errs []error
	for accountID, ps := range byAccount {
		n, err := s.pollAccount(ctx, ps[0].store, accountID, ps)
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("poll account %v: %w", accountID, err))
		}
	}
	return total, errors.Join(errs...)
}

func (s *Service) pollAccount(ctx context.Context, store, accountID uuid.UUID, ps []staleParcel) (int, error) {
	var account Account
	err := postgres.InTx(ctx, s.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		var err error
		account, err = LoadAccount(ctx, tx, accountID)
		return err
	})
	if err != nil {
		return 0, err
	}
	c, err := s.Client(account)
	if err != nil {
		return 0, err
	}
	codes := make([]string, len(ps))
	for i, p := range ps {
		codes[i] = p.tracking
	}
	tracked, err := c.TrackMany(ctx, codes)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, code := range codes {
		t, ok := tracked[code]
		if !ok {
			continue
		}
		err := syncer.Write(ctx, s.Pool, postgres.StoreScope(store), func(w *syncer.Writer) error {
			n, err := s.applyReports(ctx, w, store, accountID, code, t.Events, SourcePoll)
			total += n
			return err
		})
		if err != nil && !errors.Is(err, ErrUnknownParcel) {
			return total, err
		}
	}
	return total, nil
}

// Register adds the capability's workers to w and subscribes the automatic
// creation of parcels to lead.confirmed events.
func (s *Service) Register(w *river.Workers) error {
	if err := river.AddWorkerSafely(w, &createWorker{s: s}); err != nil {
		return err
	}
	if err := river.AddWorkerSafely(w, &processWorker{s: s}); err != nil {
		return err
	}
	if err := river.AddWorkerSafely(w, &pollWorker{s: s}); err != nil {
		return err
	}
	if err := river.AddWorkerSafely(w, &sweepWorker{s: s}); err != nil {
		return err
	}
	s.Events.Subscribe("parcels.autocreate", s.onLeadConfirmed, events.LeadConfirmed)
	return nil
}

// onLeadConfirmed enqueues the parcel's creation when the store creates
// parcels automatically.
func (s *Service) onLeadConfirmed(ctx context.Context, tx *postgres.Tx, ev events.Event) error {
	var auto bool
	if err := tx.QueryRow(ctx, `SELECT auto_create_parcels FROM stores WHERE id = $1`, ev.Store).Scan(&auto); err != nil {
		return fmt.Errorf("store %v: %w", ev.Store, postgres.Translate(err))
	}
	if !auto {
		return nil
	}
	return s.EnqueueCreate(ctx, tx, CreateArgs{Store: ev.Store, Lead: ev.AggregateID})
}

// PeriodicPoll returns the polling job, run every interval for parcels
// silent for stale.
func PeriodicPoll(interval, stale time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
		return PollArgs{Stale: stale}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: interval}}
	}, nil)
}
