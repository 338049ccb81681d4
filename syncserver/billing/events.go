package billing

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/commission"
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
// parcel's final status), so order does not matter. Running it twice
// changes nothing. The events are of one store.
func ReverseParcels(ctx context.Context, tx *postgres.Tx, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	store := evs[0].Store
	// The store's scope lock first: a payout marking these entries paid holds
	// it, and the reversal must see the entries as that payout left them (a
	// reversal of a paid entry is a clawback, not a plain reversal).
	w, err := syncer.WriterIn(ctx, tx)
	if err != nil {
		return err
	}
	if err := w.Lock(store); err != nil {
		return err
	}
	// Each parcel once, in the order of its first event, which dates it.
	first := make(map[uuid.UUID]events.Event, len(evs))
	var parcels []uuid.UUID
	for _, ev := range evs {
		if ev.Store != store {
			return fmt.Errorf("reverse commissions: events of stores %v and %v in one batch", store, ev.Store)
		}
		if _, ok := first[ev.AggregateID]; !ok {
			first[ev.AggregateID] = ev
			parcels = append(parcels, ev.AggregateID)
		}
	}
	rows, err := tx.Query(ctx, `SELECT e.parcel_id, e.rule_id FROM unnest($2::uuid[]) AS p(id), LATERAL (
  SELECT parcel_id, rule_id FROM commission_entries WHERE store_id = (SELECT $1::uuid) AND parcel_id = p.id AND kind = 'earn' OFFSET 0) e
ORDER BY e.rule_id`, store, parcels) // by parcel, whatever the planner believes of the store: see probeSQL
	if err != nil {
		return fmt.Errorf("entries of %d parcels: %w", len(parcels), err)
	}
	rules := make(map[uuid.UUID][]uuid.UUID, len(parcels))
	var parcel, rule uuid.UUID
	if _, err := pgx.ForEachRow(rows, []any{&parcel, &rule}, func() error {
		rules[parcel] = append(rules[parcel], rule)
		return nil
	}); err != nil {
		return fmt.Errorf("entries of %d parcels: %w", len(parcels), err)
	}
	var revs []entryRow
	for _, p := range parcels {
		for _, id := range rules[p] {
			revs = append(revs, entryRow{RuleID: id, ParcelID: p, Kind: commission.KindReversal, OccurredAt: first[p].OccurredAt})
		}
	}
	_, err = writeEntries(ctx, tx.Tx, w, store, revs)
	return err
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
	return restatus(ctx, tx.Tx, w, store, StatusEarned, `SELECT DISTINCT e.id FROM unnest($2::uuid[]) AS p(id), LATERAL (
  SELECT id FROM commission_entries WHERE store_id = (SELECT $1::uuid) AND parcel_id = p.id AND kind = 'earn' AND status = 'pending' OFFSET 0) e
ORDER BY e.id`, store, parcels) // by parcel: see probeSQL
}
