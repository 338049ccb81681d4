package remit

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/postgres"
)

// FeeSource gives billing's parcels their carrier fees: what the carrier
// charged, from the first statement line that settled the parcel (when its
// outcome agrees with the parcel's status), else what the account's price
// list says for the parcel's city on the day it reached its status. Parcels
// no list covers keep zero fees, and so do parcels whose source already
// carries fees. It reads the period's parcels from Inner, then looks their
// fees up in two queries.
type FeeSource struct {
	Inner billing.ParcelSource
	Pool  *pgxpool.Pool
}

var _ billing.ParcelSource = FeeSource{}

// Parcels implements billing.ParcelSource.
func (s FeeSource) Parcels(ctx context.Context, store uuid.UUID, from, to time.Time, fn func(billing.DeliveredParcel) error) error {
	var buf []billing.DeliveredParcel
	if err := s.Inner.Parcels(ctx, store, from, to, func(p billing.DeliveredParcel) error {
		buf = append(buf, p)
		return nil
	}); err != nil {
		return err
	}
	fees, err := s.fees(ctx, store, buf)
	if err != nil {
		return err
	}
	for _, p := range buf {
		if f, ok := fees[p.ID]; ok && p.DeliveryFee == 0 && p.CODFee == 0 && p.ReturnFee == 0 {
			p.DeliveryFee, p.CODFee, p.ReturnFee = f.Delivery, f.COD, f.Return
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

func billed(s parcel.Status) bool {
	return s == parcel.StatusDelivered || s == parcel.StatusRefused || s == parcel.StatusReturned
}

// feesParcelsSQL reads the account and tracking code of the parcels $2 of
// store $1: a period's every billed parcel, one primary-key search each.
// By key, whatever the planner believes of the store: see
// pgtest.RequireKeyed, TestStatementLookUpsSearchByKey.
const feesParcelsSQL = `SELECT p.id, p.account_id, p.tracking FROM (SELECT DISTINCT id FROM unnest($2::uuid[]) AS u(id)) u,
LATERAL (SELECT id, account_id, tracking FROM parcels WHERE store_id = (SELECT $1::uuid) AND id = u.id OFFSET 0) p`

// fees looks up the carrier fees of the final parcels among ps.
func (s FeeSource) fees(ctx context.Context, store uuid.UUID, ps []billing.DeliveredParcel) (map[uuid.UUID]Fees, error) {
	var ids []uuid.UUID
	info := make(map[uuid.UUID]billing.DeliveredParcel, len(ps))
	for _, p := range ps {
		if billed(p.Status) {
			ids = append(ids, p.ID)
			info[p.ID] = p
		}
	}
	out := make(map[uuid.UUID]Fees, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	err := postgres.InSnapshot(ctx, s.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		book, err := LoadPriceBook(ctx, tx, store, uuid.Nil)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, feesParcelsSQL, store, ids)
		if err != nil {
			return fmt.Errorf("carrier fees: %w", err)
		}
		type where struct {
			account  uuid.UUID
			tracking string
		}
		at := make(map[uuid.UUID]where, len(ids))
		trackings := map[uuid.UUID][]string{}
		for rows.Next() {
			var id uuid.UUID
			var w where
			if err := rows.Scan(&id, &w.account, &w.tracking); err != nil {
				rows.Close()
				return fmt.Errorf("carrier fees: %w", err)
			}
			at[id] = w
			if w.tracking != "" {
				trackings[w.account] = append(trackings[w.account], w.tracking)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("carrier fees: %w", err)
		}
		firsts := map[uuid.UUID]map[string]lineRow{}
		for acc, ts := range trackings {
			if firsts[acc], err = firstLines(ctx, tx, store, acc, ts); err != nil {
				return err
			}
		}
		for id, w := range at {
			p := info[id]
			delivered := p.Status == parcel.StatusDelivered
			if l, ok := firsts[w.account][w.tracking]; ok && w.tracking != "" && (l.Outcome == Delivered) == delivered {
				switch {
				case l.Itemised:
					out[id] = Fees{Delivery: l.DeliveryFee, Return: l.ReturnFee, COD: l.CODFee}
				case delivered:
					out[id] = Fees{Delivery: l.Fees}
				default:
					out[id] = Fees{Return: l.Fees}
				}
				continue
			}
			day0 := p.DeliveredAt
			if day0.IsZero() {
				day0 = p.ConfirmedAt
			}
			if pl, ok := book.Find(w.account, p.City, day(day0)); ok {
				f, err := pl.Expected(delivered, p.COD)
				if err != nil {
					return fmt.Errorf("carrier fees of parcel %v: %w", id, err)
				}
				out[id] = f
			}
		}
		return nil
	})
	return out, err
}
