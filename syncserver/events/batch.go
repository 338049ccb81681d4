package events

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/postgres"
)

// maxSweep bounds the events a batch job takes beyond the ones it names,
// and sweepWindow the time after them it looks in.
const (
	maxSweep    = 2000
	sweepWindow = 10 * time.Second
)

type batchKey struct {
	store    uuid.UUID
	consumer string
}

// pacer keeps a batch consumer's jobs of one store, in this instance, one
// at a time and, when the consumer asks for it, at least its interval apart.
type pacer struct {
	mu    sync.Mutex
	busy  map[batchKey]bool
	last  map[batchKey]time.Time // when the last batch of a paced key began
	swept time.Time              // when last was last rid of keys idle a minute
}

// pacerKeep is how many paced keys the pacer keeps before it sweeps out
// those idle for a minute, at most once a minute: a sweep walks them all,
// under the lock every job of every store takes.
const pacerKeep = 4096

// busyWait is how long a job whose key is busy waits before trying again:
// by then the running batch has usually taken its events.
const busyWait = 200 * time.Millisecond

// start claims k for a batch beginning now, or says how long to wait. done
// says whether the batch found events: one that found none does not count
// against the pace.
func (p *pacer) start(k batchKey, every time.Duration, now time.Time) (done func(found bool), wait time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[k] {
		return nil, max(busyWait, every-now.Sub(p.last[k]))
	}
	if last, ok := p.last[k]; ok && now.Sub(last) < every {
		return nil, every - now.Sub(last)
	}
	p.busy[k] = true
	prev, hadPrev := p.last[k]
	if every > 0 {
		if len(p.last) >= pacerKeep && now.Sub(p.swept) >= time.Minute {
			p.swept = now
			for key, at := range p.last {
				if now.Sub(at) >= time.Minute {
					delete(p.last, key)
				}
			}
		}
		p.last[k] = now
	}
	return func(found bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.busy, k)
		if every > 0 && !found && p.last[k] == now {
			if hadPrev {
				p.last[k] = prev
			} else {
				delete(p.last, k)
			}
		}
	}, 0
}

// claimSQL records the consumption of events of store $1 by consumer $3 and
// returns the events it recorded (those not consumed before), in the order
// they occurred. The events are the job's own ($2) and, when $5 > 0, up to
// $5 more of the consumer's kinds ($4) that occurred within $6 after the
// earliest of its own still waiting and are waiting too (the window bounds
// what a late job reads): when a consumer's jobs queue up, the first
// takes what has accumulated and the others find their events done, so the
// batch grows with the load. Those events' own jobs still run, and find
// them consumed — without sweeping: a job none of whose events is waiting
// reads nothing more (the sweep of every such job, 10 s of the store's
// events each, was Postgres's largest cost at a thousand carrier reports a
// second). The job's events, and the claimed ones read back, are found by
// id, one primary-key probe each, in subqueries no plan can turn into a
// walk of the store's events, and whether an event was consumed is one
// probe of event_consumptions' key per event (a correlated subquery, not
// an anti-join a plan could turn into a hash of the consumer's every
// consumption): with statistics taken before a store's events piled up, a
// generic plan read all of them for every claim. The
// insert goes in event id order, so two jobs claiming overlapping sets
// wait for each other instead of deadlocking.
const claimSQL = `WITH waiting AS (
  SELECT e.id, e.occurred_at FROM unnest($2::uuid[]) AS n(id)
  CROSS JOIN LATERAL (SELECT id, store_id, occurred_at FROM domain_events WHERE id = n.id OFFSET 0) e
  WHERE e.store_id = $1
    AND (SELECT true FROM event_consumptions c WHERE c.store_id = $1 AND c.event_id = e.id AND c.consumer = $3) IS NULL
), swept AS (
  SELECT e.id FROM domain_events e
  WHERE $5::int > 0 AND e.store_id = $1 AND e.kind = ANY($4::text[])
    AND e.occurred_at >= (SELECT min(occurred_at) FROM waiting)
    AND e.occurred_at < (SELECT min(occurred_at) FROM waiting) + $6::interval
    AND (SELECT true FROM event_consumptions c WHERE c.store_id = $1 AND c.event_id = e.id AND c.consumer = $3) IS NULL
  ORDER BY e.occurred_at, e.id
  LIMIT $5
), claimed AS (
  INSERT INTO event_consumptions (store_id, event_id, consumer)
  SELECT $1, id, $3 FROM (SELECT id FROM waiting UNION SELECT id FROM swept) c ORDER BY id
  ON CONFLICT DO NOTHING
  RETURNING event_id
)
SELECT e.id, e.store_id, e.kind, e.aggregate_type, e.aggregate_id, e.actor_user_id, e.payload, e.occurred_at
FROM claimed c
CROSS JOIN LATERAL (SELECT * FROM domain_events WHERE id = c.event_id OFFSET 0) e
WHERE e.store_id = $1
ORDER BY e.occurred_at, e.id`

// consumeOne delivers one event to consumer c in a transaction of its own,
// recording its consumption there; an event consumed before is left alone.
func (b *Bus) consumeOne(ctx context.Context, c consumer, store uuid.UUID, name string, id uuid.UUID) error {
	return postgres.InTx(ctx, b.pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		evs, err := claim(ctx, tx, store, name, []uuid.UUID{id}, nil, 0)
		if err != nil || len(evs) == 0 {
			return err // or already consumed: a redelivery
		}
		return c.handle(ctx, tx, evs)
	})
}

// claim runs claimSQL in tx.
func claim(ctx context.Context, tx *postgres.Tx, store uuid.UUID, consumer string, ids []uuid.UUID, kinds []string, sweep int) ([]Event, error) {
	rows, err := tx.Query(ctx, claimSQL, store, ids, consumer, kinds, sweep, sweepWindow)
	if err != nil {
		return nil, fmt.Errorf("claim %d events for %s: %w", len(ids), consumer, err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var (
			ev    Event
			kind  string
			actor *uuid.UUID
		)
		if err := r.Scan(&ev.ID, &ev.Store, &kind, &ev.AggregateType, &ev.AggregateID, &actor, &ev.RawPayload, &ev.OccurredAt); err != nil {
			return ev, err
		}
		ev.Kind = Kind(kind)
		if actor != nil {
			ev.Actor = *actor
		}
		return ev, nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim %d events for %s: %w", len(ids), consumer, err)
	}
	return evs, nil
}

type batchWorker struct {
	river.WorkerDefaults[ConsumeBatchArgs]
	bus *Bus
}

// Work delivers the job's events to its consumer, each at most once in
// effect. A batch consumer gets them (and others of the store waiting for
// it) in one transaction, snoozing the job instead while another batch of
// the store's is running or the consumer's pace says so; should that fail, each of the job's events is
// tried in a transaction of its own, so that one event the consumer cannot
// apply holds back no other, and the job is retried for those that failed.
// A per-event consumer gets each event in a transaction of its own.
func (w *batchWorker) Work(ctx context.Context, job *river.Job[ConsumeBatchArgs]) error {
	a := job.Args
	c, ok := w.bus.consumer(a.Consumer)
	if !ok {
		return river.JobCancel(fmt.Errorf("no consumer named %q", a.Consumer))
	}
	if c.batch != nil {
		// One batch of a store and consumer at a time: a job that finds
		// one running waits — out of its worker slot, holding nothing —
		// and usually finds its events taken when it comes back. A paced
		// consumer's batches begin at least its interval apart.
		done, wait := w.bus.pace.start(batchKey{store: a.StoreID, consumer: a.Consumer}, c.every, time.Now())
		if done == nil {
			return river.JobSnooze(wait)
		}
		found := false
		defer func() { done(found) }()
		err := postgres.InTx(ctx, w.bus.pool, postgres.StoreScope(a.StoreID), func(tx *postgres.Tx) error {
			sweep := maxSweep
			if job.Attempt > 1 {
				sweep = 0 // a retry is about its own events
			}
			evs, err := claim(ctx, tx, a.StoreID, a.Consumer, a.EventIDs, c.kindList(), sweep)
			if err != nil || len(evs) == 0 {
				return err
			}
			found = true
			return c.batch(ctx, tx, evs)
		})
		if err == nil || ctx.Err() != nil {
			return err
		}
		if len(a.EventIDs) == 1 {
			return err
		}
		// Fall through: one event at a time.
	}
	var (
		failed int
		first  error
	)
	for _, id := range a.EventIDs {
		if err := w.bus.consumeOne(ctx, c, a.StoreID, a.Consumer, id); err != nil {
			if ctx.Err() != nil {
				return err
			}
			if failed++; first == nil {
				first = fmt.Errorf("event %v: %w", id, err)
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%s: %d of %d events failed, the first: %w", a.Consumer, failed, len(a.EventIDs), first)
	}
	return nil
}
