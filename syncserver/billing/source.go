// Package billing is the money side of the sync server: commission runs that
// evaluate the shared commission rules over delivered parcels and write the
// append-only ledger, reversals when a parcel is refused, returned or
// cancelled, invoices per store and period with continuous numbering per
// seller, their PDF with a signed verification QR code, batch generation at
// period end and delivery by email.
package billing

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
)

// DeliveredParcel is what billing needs to know about one parcel: who sold,
// confirmed and carried it, where, for how much, what the carrier charged,
// and when it was confirmed and delivered (or returned).
type DeliveredParcel struct {
	ID       uuid.UUID
	Store    uuid.UUID
	Lead     uuid.UUID
	Agent    uuid.UUID // the agent who confirmed the lead; uuid.Nil if none
	Carrier  string
	City     string // canonical city id
	Category string // product category of the order
	Ref      string // the carrier's tracking number, for invoice lines
	COD      money.Amount
	// Fees charged by the carrier: delivery, cash-on-delivery handling, and
	// the return fee of a refused or returned parcel.
	DeliveryFee, CODFee, ReturnFee money.Amount
	ConfirmedAt                    time.Time
	// DeliveredAt is when the parcel reached its final status (delivered,
	// refused, returned or cancelled).
	DeliveredAt time.Time
	Status      parcel.Status
}

// ParcelSource streams a store's parcels whose confirmation or final status
// falls in [from, to), ordered by (DeliveredAt, ID) — the order that makes
// monthly volumes deterministic. fn's error stops the stream and is returned.
// Postgres implements it over the parcels table; tests use [SliceSource].
type ParcelSource interface {
	Parcels(ctx context.Context, store uuid.UUID, from, to time.Time, fn func(DeliveredParcel) error) error
}

// ParcelChanges is what a ParcelSource over the database offers besides: the
// store's parcels in a final status that were written (their status or
// anything else) at a version of the store's sync scope above since, each
// once, read in tx. A run reads the scope's visible version before the
// source's snapshot and, once its entries are committed, does for the
// parcels that changed since what the billing consumers do on their events
// (Runner.Run): a consumer that ran while the run was writing found none of
// the run's entries to reverse or earn.
type ParcelChanges interface {
	Changed(ctx context.Context, tx pgx.Tx, store uuid.UUID, since int64, fn func(ChangedParcel) error) error
}

// ChangedParcel is a parcel's status and when it was set.
type ChangedParcel struct {
	ID     uuid.UUID
	Status parcel.Status
	At     time.Time
}

// SliceSource is an in-memory ParcelSource.
type SliceSource []DeliveredParcel

// Parcels implements ParcelSource. The slice must be sorted by (DeliveredAt, ID).
func (s SliceSource) Parcels(ctx context.Context, store uuid.UUID, from, to time.Time, fn func(DeliveredParcel) error) error {
	for _, p := range s {
		if p.Store != store || !(inPeriod(p.ConfirmedAt, from, to) || inPeriod(p.DeliveredAt, from, to)) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

func inPeriod(t, from, to time.Time) bool {
	return !t.IsZero() && !t.Before(from) && t.Before(to)
}
