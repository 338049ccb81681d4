package shopsync

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
)

// Consumer names: stable, they key the events' idempotency.
const (
	reserveConsumer = "shops.reserve_stock"
	releaseConsumer = "shops.release_stock"
)

// Subscribe registers the stock consumers: a confirmed lead reserves its
// lines' stock; a lead cancelled after confirmation, or its parcel returned
// or cancelled, releases it.
func (s *Service) Subscribe() {
	if s.Events == nil {
		return
	}
	s.Events.Subscribe(reserveConsumer, ReserveStock, events.LeadConfirmed)
	s.Events.Subscribe(releaseConsumer, ReleaseStock, events.LeadCancelled, events.ParcelReturned, events.ParcelCancelled)
}

type line struct {
	SKU string `json:"sku"`
	Qty int32  `json:"qty"`
}

// ReserveStock reserves, for the confirmed lead (the event's aggregate),
// the quantity of every line whose SKU is a product of the store's shops:
// the shop order's lines when the lead came from a shop, else the lead's
// items. Running it twice changes nothing.
func ReserveStock(ctx context.Context, tx *postgres.Tx, ev events.Event) error {
	leadID := ev.AggregateID
	var raw []byte
	err := tx.QueryRow(ctx, `SELECT items FROM shop_orders WHERE store_id = $1 AND lead_id = $2 ORDER BY last_seen DESC LIMIT 1`,
		ev.Store, leadID).Scan(&raw)
	if err != nil {
		if err = tx.QueryRow(ctx, `SELECT items FROM leads WHERE store_id = $1 AND id = $2`, ev.Store, leadID).Scan(&raw); err != nil {
			return fmt.Errorf("lead %v: %w", leadID, postgres.Translate(err))
		}
	}
	var lines []line
	if err := json.Unmarshal(raw, &lines); err != nil {
		return fmt.Errorf("lines of lead %v: %w", leadID, err)
	}
	qty := map[string]int32{}
	var skus []string
	for _, l := range lines {
		if l.SKU == "" || l.Qty <= 0 {
			continue
		}
		if _, ok := qty[l.SKU]; !ok {
			skus = append(skus, l.SKU)
		}
		qty[l.SKU] += l.Qty
	}
	if len(skus) == 0 {
		return nil
	}
	qs := make([]int32, len(skus))
	for i, k := range skus {
		qs[i] = qty[k]
	}
	_, err = tx.Exec(ctx, `INSERT INTO stock_reservations (store_id, lead_id, sku, qty, state)
SELECT $1, $2, u.sku, u.qty, 'reserved' FROM unnest($3::text[], $4::int[]) AS u(sku, qty)
WHERE EXISTS (SELECT 1 FROM shop_products p WHERE p.store_id = $1 AND p.sku = u.sku)
ON CONFLICT (store_id, lead_id, sku) DO NOTHING`, ev.Store, leadID, skus, qs)
	if err != nil {
		return fmt.Errorf("reserve stock of lead %v: %w", leadID, err)
	}
	return nil
}

// ReleaseStock releases the lead's reservations: the aggregate of a
// lead.cancelled, the payload's lead_id of a parcel event.
func ReleaseStock(ctx context.Context, tx *postgres.Tx, ev events.Event) error {
	leadID := ev.AggregateID
	if ev.AggregateType == "parcel" || ev.Kind == events.ParcelReturned || ev.Kind == events.ParcelCancelled {
		var p struct {
			LeadID uuid.UUID `json:"lead_id"`
		}
		if err := json.Unmarshal(ev.RawPayload, &p); err != nil || p.LeadID == uuid.Nil {
			return fmt.Errorf("event %v names no lead: %v", ev.ID, err)
		}
		leadID = p.LeadID
	}
	_, err := tx.Exec(ctx, `UPDATE stock_reservations SET state = 'released', released_at = now(), release_reason = $3
WHERE store_id = $1 AND lead_id = $2 AND state = 'reserved'`, ev.Store, leadID, string(ev.Kind))
	if err != nil {
		return fmt.Errorf("release stock of lead %v: %w", leadID, err)
	}
	return nil
}

// StoredProduct is a product as last read from a shop, with the stock
// confirmed leads hold.
type StoredProduct struct {
	Connection uuid.UUID
	ExternalID string
	SKU        string
	Name       string
	Price      int64
	Stock      *int32
	Reserved   int32
	UpdatedAt  time.Time
}

// ListProducts lists a store's products (of one connection unless conn is
// uuid.Nil) with their reserved quantities.
func ListProducts(ctx context.Context, tx *postgres.Tx, store, conn uuid.UUID) ([]StoredProduct, error) {
	rows, err := tx.Query(ctx, `SELECT p.connection_id, p.external_id, p.sku, p.name, p.price, p.stock, coalesce(r.qty, 0), p.updated_at
FROM shop_products p
LEFT JOIN (SELECT sku, sum(qty)::int AS qty FROM stock_reservations WHERE store_id = $1 AND state = 'reserved' GROUP BY sku) r
  ON p.sku <> '' AND r.sku = p.sku
WHERE p.store_id = $1 AND ($2::uuid IS NULL OR p.connection_id = $2)
ORDER BY p.name, p.sku, p.external_id`, store, nullID(conn))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredProduct, error) {
		var p StoredProduct
		return p, r.Scan(&p.Connection, &p.ExternalID, &p.SKU, &p.Name, &p.Price, &p.Stock, &p.Reserved, &p.UpdatedAt)
	})
}

func nullID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}
