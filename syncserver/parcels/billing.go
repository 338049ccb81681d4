package parcels

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/postgres"
)

// BillingSource is where commission runs and invoices read parcels: the
// created parcels of a store, each with its lead's agent, city and the time the
// lead was confirmed, and — once the parcel reached a final status — when it
// did. Carrier fees are zero until price lists exist.
type BillingSource struct {
	Pool *pgxpool.Pool
}

var (
	_ billing.ParcelSource  = BillingSource{}
	_ billing.ParcelChanges = BillingSource{}
)

// finalStatuses end a parcel's journey for billing.
var finalStatuses = []string{parcel.StatusDelivered.String(), parcel.StatusRefused.String(),
	parcel.StatusReturned.String(), parcel.StatusCancelled.String(), parcel.StatusLost.String()}

// Parcels implements billing.ParcelSource: parcels confirmed or finished in
// [from, to), ordered by (final time, id), streamed from one snapshot.
func (b BillingSource) Parcels(ctx context.Context, store uuid.UUID, from, to time.Time, fn func(billing.DeliveredParcel) error) error {
	return postgres.InSnapshot(ctx, b.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `WITH p AS (
  SELECT p.id, p.store_id, p.lead_id, coalesce(l.assigned_to, '00000000-0000-0000-0000-000000000000'::uuid) AS agent,
    p.carrier, l.city_id, p.tracking, p.cod, p.status,
    (SELECT min(e.created_at) FROM lead_events e
      WHERE e.store_id = p.store_id AND e.lead_id = p.lead_id AND e.to_status = 'confirmed') AS confirmed_at,
    CASE WHEN p.status = ANY($4) THEN p.updated_at END AS final_at
  FROM parcels p JOIN leads l ON l.store_id = p.store_id AND l.id = p.lead_id
  WHERE p.store_id = $1 AND p.deleted_at IS NULL AND p.creation = 'created'
    -- Only parcels touched since the period began can qualify: a parcel is
    -- created after its lead's confirmation and finishes at its last update,
    -- so older ones cost neither a row nor a lead-events probe.
    AND p.updated_at >= $2
)
SELECT id, store_id, lead_id, agent, carrier, city_id, tracking, cod, status,
  confirmed_at, final_at
FROM p
WHERE (confirmed_at >= $2 AND confirmed_at < $3) OR (final_at >= $2 AND final_at < $3)
ORDER BY final_at NULLS FIRST, id`, store, from, to, finalStatuses)
		if err != nil {
			return fmt.Errorf("read parcels to bill: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				d              billing.DeliveredParcel
				status         string
				cod            int64
				confirmed, fin *time.Time
			)
			if err := rows.Scan(&d.ID, &d.Store, &d.Lead, &d.Agent, &d.Carrier, &d.City, &d.Ref, &cod, &status,
				&confirmed, &fin); err != nil {
				return err
			}
			if d.Status, err = parcel.ParseStatus(status); err != nil {
				return fmt.Errorf("parcel %v: %w", d.ID, err)
			}
			d.COD = money.Amount(cod)
			if confirmed != nil {
				d.ConfirmedAt = *confirmed
			}
			if fin != nil {
				d.DeliveredAt = *fin
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// Changed implements billing.ParcelChanges: the store's parcels written (any
// change) at a version above since that are delivered, refused, returned or
// cancelled, in version order, through the parcels' version index.
func (BillingSource) Changed(ctx context.Context, tx pgx.Tx, store uuid.UUID, since int64, fn func(billing.ChangedParcel) error) error {
	rows, err := tx.Query(ctx, `SELECT id, status, updated_at FROM parcels
WHERE store_id = $1 AND version > $2 AND deleted_at IS NULL AND creation = 'created' AND status = ANY($3)
ORDER BY version`, store, since, []string{parcel.StatusDelivered.String(), parcel.StatusRefused.String(),
		parcel.StatusReturned.String(), parcel.StatusCancelled.String()})
	if err != nil {
		return fmt.Errorf("parcels changed since %d: %w", since, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c billing.ChangedParcel
		var status string
		if err := rows.Scan(&c.ID, &status, &c.At); err != nil {
			return err
		}
		if c.Status, err = parcel.ParseStatus(status); err != nil {
			return fmt.Errorf("parcel %v: %w", c.ID, err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return rows.Err()
}
