package syncer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/mutation"
)

const leadColumns = `store_id, id, version, created_at, updated_at, deleted_at, status, customer_name, phone_raw,
  phone_e164, city_id, city_raw, address, items, cod, source, external_ref, custom, assigned_to, lease_until,
  call_attempts, callback_at, cancel_reason, duplicate_of, score, customer_orders, customer_delivered, customer_refusals`

// rawLead is a lead whose JSON columns are left unparsed (Pull passes them through).
type rawLead struct {
	mutation.Lead
	items, custom []byte
	history       CustomerHistory
}

// CustomerHistory is what a lead row says about its customer (see migration
// 00011): orders before this one, parcels delivered, parcels refused or
// returned.
type CustomerHistory struct {
	Orders, Delivered, Refusals int32
}

func scanLead(row pgx.Row) (mutation.Lead, error) {
	r, err := scanRawLead(row)
	if err != nil {
		return r.Lead, err
	}
	l := r.Lead
	if err := json.Unmarshal(r.items, &l.Items); err != nil {
		return l, fmt.Errorf("lead %v items: %w", l.ID, err)
	}
	if err := json.Unmarshal(r.custom, &l.Custom); err != nil {
		return l, fmt.Errorf("lead %v custom fields: %w", l.ID, err)
	}
	if len(l.Custom) == 0 {
		l.Custom = nil
	}
	return l, nil
}

func scanRawLead(row pgx.Row) (rawLead, error) {
	var (
		l                      mutation.Lead
		status                 string
		items, custom          []byte
		cod                    int64
		assigned, dup          *uuid.UUID
		leaseUntil, callbackAt *time.Time
		h                      CustomerHistory
	)
	err := row.Scan(&l.StoreID, &l.ID, &l.Version, &l.CreatedAt, &l.UpdatedAt, &l.DeletedAt, &status, &l.CustomerName,
		&l.PhoneRaw, &l.PhoneE164, &l.CityID, &l.CityRaw, &l.Address, &items, &cod, &l.Source, &l.ExternalRef, &custom,
		&assigned, &leaseUntil, &l.CallAttempts, &callbackAt, &l.CancelReason, &dup, &l.Score, &h.Orders, &h.Delivered, &h.Refusals)
	if err != nil {
		return rawLead{Lead: l}, err
	}
	if l.Status, err = lead.ParseStatus(status); err != nil {
		return rawLead{Lead: l}, fmt.Errorf("lead %v: %w", l.ID, err)
	}
	l.COD = money.Amount(cod)
	if assigned != nil {
		l.AssignedTo = *assigned
	}
	if dup != nil {
		l.DuplicateOf = *dup
	}
	if leaseUntil != nil {
		l.LeaseUntil = *leaseUntil
	}
	if callbackAt != nil {
		l.CallbackAt = *callbackAt
	}
	return rawLead{Lead: l, items: items, custom: custom, history: h}, nil
}

// eventRow receives a lead_events row: store_id, id, lead_id, version,
// created_at, actor_id, kind, from_status, to_status, note, data.
type eventRow struct {
	e              mutation.LeadEvent
	actor          *uuid.UUID
	kind, from, to string
	data           []byte
}

func (r *eventRow) dest() []any {
	return []any{&r.e.StoreID, &r.e.ID, &r.e.LeadID, &r.e.Version, &r.e.CreatedAt, &r.actor, &r.kind, &r.from, &r.to, &r.e.Note, &r.data}
}

func (r *eventRow) event() (mutation.LeadEvent, error) {
	e := r.e
	e.Kind = mutation.EventKind(r.kind)
	if r.actor != nil {
		e.ActorID = *r.actor
	}
	var err error
	if r.from != "" {
		if e.FromStatus, err = lead.ParseStatus(r.from); err != nil {
			return e, err
		}
	}
	if r.to != "" {
		if e.ToStatus, err = lead.ParseStatus(r.to); err != nil {
			return e, err
		}
	}
	if err := json.Unmarshal(r.data, &e.Data); err != nil {
		return e, fmt.Errorf("lead event %v data: %w", e.ID, err)
	}
	if len(e.Data) == 0 {
		e.Data = nil
	}
	return e, nil
}

// leadsSQL reads the leads of store $1 with the ids $2 (each once, however
// often named), in id order, locking them in that order when forUpdate: one
// search of the primary key per id.
// By key, whatever the planner believes of the store: see
// pgtest.RequireKeyed, TestLoadLeadsSearchesByID.
func leadsSQL(forUpdate bool) string {
	lock := ""
	if forUpdate {
		lock = " FOR UPDATE"
	}
	return `SELECT l.* FROM (SELECT DISTINCT id FROM unnest($2::uuid[]) AS u(id) ORDER BY id) p,
LATERAL (SELECT ` + leadColumns + ` FROM leads WHERE store_id = (SELECT $1::uuid) AND id = p.id OFFSET 0` + lock + `) l
ORDER BY l.id`
}

// loadLeads reads leads of a store by id, locking them when forUpdate.
func loadLeads(ctx context.Context, q pgx.Tx, store uuid.UUID, ids []uuid.UUID, forUpdate bool) (map[uuid.UUID]*mutation.Lead, error) {
	rows, err := q.Query(ctx, leadsSQL(forUpdate), store, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uuid.UUID]*mutation.Lead{}
	for rows.Next() {
		l, err := scanLead(rows)
		if err != nil {
			return nil, err
		}
		out[l.ID] = &l
	}
	return out, rows.Err()
}
