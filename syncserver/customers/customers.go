// Package customers keeps each seller's customers' delivery history and puts
// it where agents see it: on the leads they are calling. A parcel delivered,
// refused or returned is recorded once per parcel (a repeated or redelivered
// carrier event changes nothing), the customer's counts are recomputed from
// those records, and the store's leads of that phone still being worked are
// rewritten with versions from the sync writer, so the figures replicate
// with the lead: HistoryChunk of them in the batch's transaction, the rest
// of a customer with very many by a paced follow-up job (history.go).
package customers

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// Consumer is the stable name keying the events' idempotency.
const Consumer = "customers.outcomes"

// Pace is the least time between two batches of a store's outcomes. A
// batch rewrites the open leads of each customer it touches (up to
// HistoryChunk), whatever its number of events, under the store's write
// lock, and every rewritten lead is sent to every replica of the store: at
// a thousand carrier reports a second, back-to-back batches would hold that
// lock most of the time. The history reaches the leads this much later at
// most, plus the batch's time (and the follow-up's, for a customer with
// more open leads than a chunk).
const Pace = time.Second

// Subscribe registers the consumer: parcels delivered, refused or returned.
func Subscribe(bus *events.Bus) {
	bus.SubscribeBatch(Consumer, Pace, RecordOutcomes, events.ParcelDelivered, events.ParcelRefused, events.ParcelReturned)
}

// outcomeCounts are a customer's figures, counted over the
// customer_outcomes rows selected: delivered, and refusals (failed).
const outcomeCounts = `count(*) FILTER (WHERE outcome = 'delivered')::int AS delivered,
  count(*) FILTER (WHERE outcome = 'failed')::int AS refusals`

// customerKey names a customer: a seller's phone.
type customerKey struct {
	seller uuid.UUID
	phone  string
}

// parcelCustomersSQL reads the seller and the customer's phone of each
// parcel of $2 (each once) of store $1 whose lead has a phone: one search of
// the parcels' and the leads' primary keys per parcel.
// By key, whatever the planner believes of the store: see
// pgtest.RequireKeyed, TestParcelCustomersSearchByID.
const parcelCustomersSQL = `SELECT c.id, s.seller_id, c.phone_e164 FROM stores s,
  (SELECT DISTINCT id FROM unnest($2::uuid[]) AS u(id)) u,
  LATERAL (SELECT p.id, l.phone_e164 FROM parcels p JOIN leads l ON l.store_id = p.store_id AND l.id = p.lead_id
    WHERE p.store_id = (SELECT $1::uuid) AND p.id = u.id AND l.phone_e164 <> '' OFFSET 0) c
WHERE s.id = $1`

// RecordOutcomes records the outcome of each event's parcel for its
// customer and rewrites the history on each such customer's open leads in
// the store. A parcel refused and then returned is one failed delivery; one
// delivered and later returned counts as failed (the last word wins: the
// parcel's latest event, by occurrence then id, whatever order they come
// in). The events must be of one store (a consumer batch); the whole batch
// costs a few set-based statements, a customer's history is rewritten once
// however many of its parcels the batch names, and the store's write lock
// is taken once, for at most HistoryChunk leads: customers with leads left
// over are marked due for the follow-up job, enqueued in this transaction
// (ctx must be a River job's, as the consumer's is).
func RecordOutcomes(ctx context.Context, tx *postgres.Tx, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	store := evs[0].Store
	// Each parcel's last word in the batch.
	last := make(map[uuid.UUID]events.Event, len(evs))
	for _, ev := range evs {
		if ev.Store != store {
			return fmt.Errorf("record outcomes: events of stores %v and %v in one batch", store, ev.Store)
		}
		prev, ok := last[ev.AggregateID]
		if !ok || ev.OccurredAt.After(prev.OccurredAt) || (ev.OccurredAt.Equal(prev.OccurredAt) && bytes.Compare(ev.ID[:], prev.ID[:]) > 0) {
			last[ev.AggregateID] = ev
		}
	}
	parcelIDs := make([]uuid.UUID, 0, len(last))
	for id := range last {
		parcelIDs = append(parcelIDs, id)
	}
	// The parcels' customers; a parcel of another store, or whose lead has
	// no valid phone, has nothing to record.
	rows, err := tx.Query(ctx, parcelCustomersSQL, store, parcelIDs)
	if err != nil {
		return fmt.Errorf("parcels' customers: %w", err)
	}
	var (
		ids, sellers   []uuid.UUID
		phones, outs   []string
		ats            []time.Time
		customers      []customerKey
		seen           = map[customerKey]bool{}
		parcel, seller uuid.UUID
		phone          string
	)
	_, err = pgx.ForEachRow(rows, []any{&parcel, &seller, &phone}, func() error {
		ev := last[parcel]
		outcome := "failed"
		if ev.Kind == events.ParcelDelivered {
			outcome = "delivered"
		}
		ids, sellers, phones, outs, ats = append(ids, parcel), append(sellers, seller), append(phones, phone), append(outs, outcome), append(ats, ev.OccurredAt)
		if k := (customerKey{seller, phone}); !seen[k] {
			seen[k] = true
			customers = append(customers, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("parcels' customers: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	// Customers in a fixed order, so that concurrent batches of one seller's
	// stores update them alike (and by phone, the order the history is
	// rewritten in).
	slices.SortFunc(customers, func(a, b customerKey) int {
		if c := bytes.Compare(a.seller[:], b.seller[:]); c != 0 {
			return c
		}
		return strings.Compare(a.phone, b.phone)
	})
	cSellers := make([]uuid.UUID, len(customers))
	cPhones := make([]string, len(customers))
	for i, k := range customers {
		cSellers[i], cPhones[i] = k.seller, k.phone
	}
	// Outcomes, then each customer's counts recomputed from them, written to
	// customers and read back, in one round trip.
	pipe := &pgx.Batch{}
	pipe.Queue(`INSERT INTO customer_outcomes (parcel_id, store_id, seller_id, phone_e164, outcome, at)
SELECT parcel_id, $1, seller_id, phone, outcome, at
FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[]) AS u(parcel_id, seller_id, phone, outcome, at)
ORDER BY parcel_id
ON CONFLICT (parcel_id) DO UPDATE SET outcome = excluded.outcome, at = excluded.at
WHERE customer_outcomes.at <= excluded.at`, store, ids, sellers, phones, outs, ats)
	type counts struct{ delivered, refusals int32 }
	got := make(map[customerKey]counts, len(customers))
	pipe.Queue(`WITH n AS (
  SELECT k.seller_id, k.phone, c.delivered, c.refusals
  FROM unnest($1::uuid[], $2::text[]) AS k(seller_id, phone)
  CROSS JOIN LATERAL (SELECT `+outcomeCounts+`
    FROM customer_outcomes WHERE seller_id = k.seller_id AND phone_e164 = k.phone) c
), up AS (
  UPDATE customers c SET delivered = n.delivered, refusals = n.refusals
  FROM n WHERE c.seller_id = n.seller_id AND c.phone_e164 = n.phone
)
SELECT seller_id, phone, delivered, refusals FROM n`, cSellers, cPhones).Query(func(rows pgx.Rows) error {
		var (
			k customerKey
			c counts
		)
		_, err := pgx.ForEachRow(rows, []any{&k.seller, &k.phone, &c.delivered, &c.refusals}, func() error {
			got[k] = c
			return nil
		})
		return err
	})
	if err := tx.SendBatch(ctx, pipe).Close(); err != nil {
		return fmt.Errorf("record %d outcomes: %w", len(ids), err)
	}
	// The history on the customers' open leads, at most HistoryChunk of
	// them here: the store's write lock is held until this transaction
	// commits. The customers left with leads to rewrite are marked due and
	// a follow-up job rewrites the rest in transactions of their own; the
	// customers already due are left to it.
	w, err := syncer.WriterIn(ctx, tx)
	if err != nil {
		return err
	}
	if err := w.Lock(store); err != nil {
		return err
	}
	hs := make([]history, len(customers))
	for i, k := range customers {
		c := got[k]
		hs[i] = history{phone: k.phone, delivered: c.delivered, refusals: c.refusals}
	}
	if hs, err = withoutDue(ctx, tx, store, hs); err != nil {
		return err
	}
	left, _, err := rewriteHistory(ctx, w, store, hs, HistoryChunk)
	if err != nil || len(left) == 0 {
		return err
	}
	return markDue(ctx, tx, store, left)
}
