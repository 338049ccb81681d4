// Package customers keeps each seller's customers' delivery history and puts
// it where agents see it: on the leads they are calling. A parcel delivered,
// refused or returned is recorded once per parcel (a repeated or redelivered
// carrier event changes nothing), the customer's counts are recomputed from
// those records, and the store's leads of that phone still being worked are
// rewritten through the sync writer, so the figures replicate with the lead.
package customers

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// Consumer is the stable name keying the events' idempotency.
const Consumer = "customers.outcomes"

// Subscribe registers the consumer: parcels delivered, refused or returned.
func Subscribe(bus *events.Bus) {
	bus.Subscribe(Consumer, RecordOutcome, events.ParcelDelivered, events.ParcelRefused, events.ParcelReturned)
}

// RecordOutcome records the event's parcel's outcome for its customer and
// rewrites the history on the customer's open leads in the store. A parcel
// refused and then returned is one failed delivery; one delivered and later
// returned counts as failed (the last word wins).
func RecordOutcome(ctx context.Context, tx *postgres.Tx, ev events.Event) error {
	outcome := "failed"
	if ev.Kind == events.ParcelDelivered {
		outcome = "delivered"
	}
	var (
		seller uuid.UUID
		phone  string
	)
	err := tx.QueryRow(ctx, `SELECT s.seller_id, l.phone_e164
FROM parcels p JOIN leads l ON l.store_id = p.store_id AND l.id = p.lead_id JOIN stores s ON s.id = p.store_id
WHERE p.store_id = $1 AND p.id = $2`, ev.Store, ev.AggregateID).Scan(&seller, &phone)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // not a parcel of this store: nothing to record
	}
	if err != nil {
		return fmt.Errorf("parcel %v's customer: %w", ev.AggregateID, err)
	}
	if phone == "" {
		return nil // no valid phone: no customer to speak of
	}
	if _, err := tx.Exec(ctx, `INSERT INTO customer_outcomes (parcel_id, store_id, seller_id, phone_e164, outcome, at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (parcel_id) DO UPDATE SET outcome = excluded.outcome, at = excluded.at
WHERE customer_outcomes.at <= excluded.at`, ev.AggregateID, ev.Store, seller, phone, outcome, ev.OccurredAt); err != nil {
		return fmt.Errorf("record outcome of parcel %v: %w", ev.AggregateID, err)
	}
	var delivered, refusals int32
	if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE outcome = 'delivered'), count(*) FILTER (WHERE outcome = 'failed')
FROM customer_outcomes WHERE seller_id = $1 AND phone_e164 = $2`, seller, phone).Scan(&delivered, &refusals); err != nil {
		return fmt.Errorf("count the customer's outcomes: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE customers SET delivered = $3, refusals = $4 WHERE seller_id = $1 AND phone_e164 = $2`,
		seller, phone, delivered, refusals); err != nil {
		return fmt.Errorf("update customer: %w", err)
	}
	w, err := syncer.WriterIn(ctx, tx)
	if err != nil {
		return err
	}
	_, err = w.SetCustomerHistory(ev.Store, phone, delivered, refusals)
	return err
}
