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
// events' aggregate id is the parcel id.
func Subscribe(bus *events.Bus) {
	bus.Subscribe(reverseConsumer, ReverseParcel, events.ParcelRefused, events.ParcelReturned, events.ParcelCancelled)
	bus.Subscribe(earnConsumer, EarnParcel, events.ParcelDelivered)
}

// ReverseParcel appends a reversal for every entry of the event's parcel not
// yet reversed. Entries a later run writes for the parcel come with their
// reversals (the run sees the parcel's final status), so order does not
// matter. Running it twice changes nothing.
func ReverseParcel(ctx context.Context, tx *postgres.Tx, ev events.Event) error {
	// The store's scope lock first: a payout marking these entries paid holds
	// it, and the reversal must see the entries as that payout left them (a
	// reversal of a paid entry is a clawback, not a plain reversal).
	w, err := syncer.WriterIn(ctx, tx)
	if err != nil {
		return err
	}
	if err := w.Lock(ev.Store); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT rule_id FROM commission_entries
WHERE store_id = $1 AND parcel_id = $2 AND kind = 'earn'`, ev.Store, ev.AggregateID)
	if err != nil {
		return fmt.Errorf("entries of parcel %v: %w", ev.AggregateID, err)
	}
	ruleIDs, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("entries of parcel %v: %w", ev.AggregateID, err)
	}
	revs := make([]entryRow, len(ruleIDs))
	for i, id := range ruleIDs {
		revs[i] = entryRow{RuleID: id, ParcelID: ev.AggregateID, Kind: commission.KindReversal, OccurredAt: ev.OccurredAt}
	}
	_, err = writeEntries(ctx, tx.Tx, w, ev.Store, revs)
	return err
}

// EarnParcel moves the parcel's pending entries to earned.
func EarnParcel(ctx context.Context, tx *postgres.Tx, ev events.Event) error {
	w, err := syncer.WriterIn(ctx, tx)
	if err != nil {
		return err
	}
	return restatus(ctx, tx.Tx, w, ev.Store, StatusEarned, `SELECT id FROM commission_entries
WHERE store_id = $1 AND parcel_id = $2 AND kind = 'earn' AND status = 'pending'`, ev.Store, ev.AggregateID)
}
