package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// Consumer names: stable, they key the events' idempotency.
const (
	reverseConsumer = "billing.reverse_commissions"
	earnConsumer    = "billing.earn_commissions"
)

// Subscribe registers billing's domain-event consumers on the bus: a parcel
// refused, returned or cancelled reverses its commission entries; a parcel
// delivered turns its pending (confirmation) entries into earned ones. The
// events' aggregate id is the parcel id. Both consume a store's events in
// batches, a transaction each: at a thousand carrier reports a second, a
// transaction (and a commit) per event was more than the consumers could
// keep up with.
func Subscribe(bus *events.Bus) {
	bus.SubscribeBatch(reverseConsumer, 0, ReverseParcels, events.ParcelRefused, events.ParcelReturned, events.ParcelCancelled)
	bus.SubscribeBatch(earnConsumer, 0, EarnParcels, events.ParcelDelivered)
}

// ReverseParcels appends a reversal for every entry of the events' parcels
// not yet reversed, dated by the first event of each parcel. Entries a later
// run writes for a parcel come with their reversals (the run sees the
// parcel's final status), and a run that was writing while this ran catches
// up when it ends (Runner.Run), so order does not matter. Running it twice
// changes nothing. The events are of one store.
func ReverseParcels(ctx context.Context, tx *postgres.Tx, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	store := evs[0].Store
	w, err := syncer.WriterIn(ctx, tx)
	if err != nil {
		return err
	}
	// Each parcel once, in the order of its first event, which dates it.
	first := make(map[uuid.UUID]time.Time, len(evs))
	var parcels []uuid.UUID
	for _, ev := range evs {
		if ev.Store != store {
			return fmt.Errorf("reverse commissions: events of stores %v and %v in one batch", store, ev.Store)
		}
		if _, ok := first[ev.AggregateID]; !ok {
			first[ev.AggregateID] = ev.OccurredAt
			parcels = append(parcels, ev.AggregateID)
		}
	}
	_, err = reverseParcels(ctx, tx.Tx, w, store, parcels, first)
	return err
}

// reverseParcels appends a reversal, dated at[parcel], for every earn entry
// of the parcels not yet reversed, and returns how many it wrote.
func reverseParcels(ctx context.Context, tx pgx.Tx, w *syncer.Writer, store uuid.UUID, parcels []uuid.UUID, at map[uuid.UUID]time.Time) (int, error) {
	// The store's scope lock first: a payout marking these entries paid holds
	// it, and the reversal must see the entries as that payout left them (a
	// reversal of a paid entry is a clawback, not a plain reversal).
	if err := w.Lock(store); err != nil {
		return 0, err
	}
	rows, err := tx.Query(ctx, `SELECT e.parcel_id, e.rule_id FROM unnest($2::uuid[]) AS p(id), LATERAL (
  SELECT parcel_id, rule_id FROM commission_entries WHERE store_id = (SELECT $1::uuid) AND parcel_id = p.id AND kind = 'earn' OFFSET 0) e
ORDER BY e.rule_id`, store, parcels) // by parcel, whatever the planner believes of the store: see probeSQL
	if err != nil {
		return 0, fmt.Errorf("entries of %d parcels: %w", len(parcels), err)
	}
	rules := make(map[uuid.UUID][]uuid.UUID, len(parcels))
	var parcel, rule uuid.UUID
	if _, err := pgx.ForEachRow(rows, []any{&parcel, &rule}, func() error {
		rules[parcel] = append(rules[parcel], rule)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("entries of %d parcels: %w", len(parcels), err)
	}
	var revs []entryRow
	for _, p := range parcels {
		for _, id := range rules[p] {
			revs = append(revs, entryRow{RuleID: id, ParcelID: p, Kind: commission.KindReversal, OccurredAt: at[p]})
		}
	}
	return writeEntries(ctx, tx, w, store, revs)
}

// EarnParcels moves the pending entries of the events' parcels to earned.
// The events are of one store.
func EarnParcels(ctx context.Context, tx *postgres.Tx, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	store := evs[0].Store
	parcels := make([]uuid.UUID, len(evs))
	for i, ev := range evs {
		if ev.Store != store {
			return fmt.Errorf("earn commissions: events of stores %v and %v in one batch", store, ev.Store)
		}
		parcels[i] = ev.AggregateID
	}
	w, err := syncer.WriterIn(ctx, tx)
	if err != nil {
		return err
	}
	return earnParcels(ctx, tx.Tx, w, store, parcels)
}

// earnParcels moves the pending entries of the parcels to earned. It reads
// them under the store's lock: read before it, an entry a reversal marked
// reversed meanwhile (the reversal consumer, a run's catch-up) would be set
// back to earned.
func earnParcels(ctx context.Context, tx pgx.Tx, w *syncer.Writer, store uuid.UUID, parcels []uuid.UUID) error {
	if err := w.Lock(store); err != nil {
		return err
	}
	return restatus(ctx, tx, w, store, StatusEarned, `SELECT DISTINCT e.id FROM unnest($2::uuid[]) AS p(id), LATERAL (
  SELECT id FROM commission_entries WHERE store_id = (SELECT $1::uuid) AND parcel_id = p.id AND kind = 'earn' AND status = 'pending' OFFSET 0) e
ORDER BY e.id`, store, parcels) // by parcel: see probeSQL
}

// catchUp does, for the store's parcels that reached a final status at a
// version above since, what the consumers above do on their events: a
// consumer that ran while a run was writing its chunks found none of the
// run's entries (the run read the parcel before its new status), and the
// run's entries would stay earned, or pending, until the month's next run,
// which may never come. It holds the store's lock, which both consumers also
// take, from before it reads the parcels: a consumer that ran before saw the
// status this reads, one that runs after sees every entry.
// Returns the number of reversals written.
func catchUp(ctx context.Context, pool *pgxpool.Pool, src ParcelChanges, store uuid.UUID, since int64) (int, error) {
	var n int
	err := syncer.Write(ctx, pool, postgres.StoreScope(store), func(w *syncer.Writer) error {
		if err := w.Lock(store); err != nil {
			return err
		}
		var failedParcels, delivered []uuid.UUID
		at := map[uuid.UUID]time.Time{}
		if err := src.Changed(ctx, w.Tx, store, since, func(c ChangedParcel) error {
			switch {
			case failed(c.Status):
				failedParcels = append(failedParcels, c.ID)
				at[c.ID] = c.At
			case c.Status == parcel.StatusDelivered:
				delivered = append(delivered, c.ID)
			}
			return nil
		}); err != nil {
			return err
		}
		if len(delivered) > 0 {
			if err := earnParcels(ctx, w.Tx, w, store, delivered); err != nil {
				return err
			}
		}
		if len(failedParcels) == 0 {
			return nil
		}
		var err error
		n, err = reverseParcels(ctx, w.Tx, w, store, failedParcels, at)
		return err
	})
	return n, err
}
