// Package syncer is the server side of Leadify's sync protocol: the
// versioned-write helper every write to a synced table goes through, the
// per-user views of rows, Push (mutations applied in order, once), Pull
// (cursor pages in version order), claims, and the LISTEN/NOTIFY hub behind
// Subscribe. See DESIGN.md, "Sync protocol".
package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/postgres"
)

// NotifyChannel is the Postgres channel commits are announced on.
const NotifyChannel = "leadify_sync"

// BulkChunk bounds how many rows a server-side bulk write commits per
// transaction, so pages stay bounded and scope locks are held briefly.
const BulkChunk = 2000

// Writer writes synced rows inside one transaction, stamping each with
// versions taken from its scope's counter. Get one from Write.
type Writer struct {
	Tx         *postgres.Tx
	ctx        context.Context
	locked     map[uuid.UUID]bool
	touched    map[uuid.UUID]int64
	notifyInTx bool // WriterIn: the transaction's owner commits, so notify with it
	// aside: WriteAside's reservation pool, where Reserve takes versions in
	// a transaction of its own; reserved is the range it took (first > 0).
	aside    *pgxpool.Pool
	txScope  postgres.Scope // the transaction's, for the reservation's
	reserved struct {
		scope uuid.UUID
		first int64
	}
}

// Write runs fn in a transaction of the given scope with a Writer, then — after
// commit, outside the transaction — announces the new versions of every scope
// it wrote, so subscribed clients pull. This is the only way synced tables are
// written: a database trigger refuses writes from anywhere else.
func Write(ctx context.Context, pool *pgxpool.Pool, scope postgres.Scope, fn func(w *Writer) error) error {
	return write(ctx, pool, nil, scope, fn)
}

// WriteAside is Write for a writer that must not hold its scope's lock until
// it commits: a commission run's chunks, several of one store in flight at
// once, each on its own backend. Its Reserve takes the versions in a short
// transaction of its own, which bumps the scope's counter and records the
// range with this transaction's id (sync_reservations); this transaction
// deletes the record as it commits. Until then pulls and deliveries of the
// scope stop below the range — the rows other writers commit above it wait
// with it — so no replica's cursor passes a version whose row is still to
// come; if this transaction aborts, its versions are a gap nobody waits for.
//
// fn may Reserve once, and must do so before it writes anything: a write
// holding row locks while its reservation waits for the scope's lock could
// wait on a writer that holds that lock and waits for those rows, and the
// database would not see that deadlock (one side of it is this process).
// Lock is refused: what fn reads may change under it before it commits, so
// it suits only writes that a unique key makes safe, like blind inserts.
//
// The reservations are made on reserve, a pool of their own: a writer
// holding pool's last connection while its reservation waited for another
// would wait for ever if the other writers of the run did the same.
func WriteAside(ctx context.Context, pool, reserve *pgxpool.Pool, scope postgres.Scope, fn func(w *Writer) error) error {
	return write(ctx, pool, reserve, scope, fn)
}

func write(ctx context.Context, pool, reserve *pgxpool.Pool, scope postgres.Scope, fn func(w *Writer) error) error {
	var touched map[uuid.UUID]int64
	err := postgres.InTx(ctx, pool, scope, func(tx *postgres.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('app.sync_writer', 'on', true)`); err != nil {
			return fmt.Errorf("mark sync writer: %w", err)
		}
		w := &Writer{Tx: tx, ctx: ctx, locked: map[uuid.UUID]bool{}, touched: map[uuid.UUID]int64{}}
		if reserve != nil {
			w.aside, w.txScope = reserve, scope
		}
		if err := fn(w); err != nil {
			return err
		}
		if r := w.reserved; r.first > 0 {
			// The rows are in: the reservation ends with this commit.
			if _, err := tx.Exec(ctx, `DELETE FROM sync_reservations WHERE scope_id = $1 AND first = $2`, r.scope, r.first); err != nil {
				return fmt.Errorf("end reservation: %w", err)
			}
		}
		touched = w.touched
		return nil
	})
	if err != nil {
		return err
	}
	// The write is committed. A failed notification is not an error of the
	// write: it only delays subscribers until their next pull.
	_ = Notify(ctx, pool, touched)
	return nil
}

// Lock takes the scopes' counters' row locks, in id order so that concurrent
// writers never deadlock. Call it before reading the rows a write depends on:
// it serialises writers of a scope, making version order equal commit order.
func (w *Writer) Lock(scopes ...uuid.UUID) error {
	if w.aside != nil {
		return errors.New("lock scopes: a writer reserving aside does not lock")
	}
	var need []uuid.UUID
	for _, s := range scopes {
		if !w.locked[s] && !slices.Contains(need, s) {
			need = append(need, s)
		}
	}
	if len(need) == 0 {
		return nil
	}
	slices.SortFunc(need, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	rows, err := w.Tx.Query(w.ctx, `SELECT scope_id FROM sync_scopes WHERE scope_id = ANY($1) ORDER BY scope_id::text FOR UPDATE`, need)
	if err != nil {
		return fmt.Errorf("lock scopes: %w", err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("lock scopes: %w", err)
	}
	if len(got) != len(need) {
		return fmt.Errorf("lock scopes: %d of %d scopes exist: %w", len(got), len(need), postgres.ErrNotFound)
	}
	for _, s := range need {
		w.locked[s] = true
	}
	return nil
}

// Reserve takes n consecutive versions from the scope's counter and returns
// the first. The scope is locked if it was not already.
func (w *Writer) Reserve(scope uuid.UUID, n int) (int64, error) {
	if n <= 0 {
		return 0, fmt.Errorf("reserve %d versions", n)
	}
	if w.aside != nil {
		return w.reserveAside(scope, n)
	}
	if err := w.Lock(scope); err != nil {
		return 0, err
	}
	var last int64
	if err := w.Tx.QueryRow(w.ctx, `UPDATE sync_scopes SET seq = seq + $2 WHERE scope_id = $1 RETURNING seq`, scope, n).Scan(&last); err != nil {
		return 0, fmt.Errorf("reserve versions in %v: %w", scope, err)
	}
	w.touched[scope] = last
	if w.notifyInTx {
		if _, err := w.Tx.Exec(w.ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, fmt.Sprintf("%s:%d", scope, last)); err != nil {
			return 0, fmt.Errorf("notify: %w", err)
		}
	}
	return last - int64(n) + 1, nil
}

// reserveAsideSQL takes versions $2 of scope $1 for the writing transaction
// $3, reaping the records of writers that aborted on the way.
const reserveAsideSQL = `WITH reaped AS (
  DELETE FROM sync_reservations WHERE scope_id = $1 AND pg_xact_status(writer) = 'aborted'),
s AS (UPDATE sync_scopes SET seq = seq + $2 WHERE scope_id = $1 RETURNING seq)
INSERT INTO sync_reservations (scope_id, first, last, writer) SELECT $1, seq - $2 + 1, seq, $3::xid8 FROM s RETURNING last`

func (w *Writer) reserveAside(scope uuid.UUID, n int) (int64, error) {
	if w.reserved.first > 0 {
		return 0, fmt.Errorf("reserve versions in %v: a writer reserving aside reserves once", scope)
	}
	var xid string
	if err := w.Tx.QueryRow(w.ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid); err != nil {
		return 0, fmt.Errorf("reserve versions in %v: %w", scope, err)
	}
	var last int64
	err := postgres.InTx(w.ctx, w.aside, w.txScope, func(tx *postgres.Tx) error {
		return tx.QueryRow(w.ctx, reserveAsideSQL, scope, n, xid).Scan(&last)
	})
	if err != nil {
		return 0, fmt.Errorf("reserve versions in %v: %w", scope, postgres.Translate(err))
	}
	first := last - int64(n) + 1
	w.reserved.scope, w.reserved.first = scope, first
	w.touched[scope] = last
	return first, nil
}

func nullUUID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// PutLeads inserts or replaces leads whose Version was stamped from Reserve.
func (w *Writer) PutLeads(leads ...mutation.Lead) error {
	b := &pgx.Batch{}
	for _, l := range leads {
		if err := w.checkVersion(l.StoreID, l.Version); err != nil {
			return fmt.Errorf("lead %v: %w", l.ID, err)
		}
		items, err := json.Marshal(l.Items)
		if err != nil {
			return err
		}
		custom, err := json.Marshal(l.Custom)
		if err != nil {
			return err
		}
		if l.Custom == nil {
			custom = []byte("{}")
		}
		if l.Items == nil {
			items = []byte("[]")
		}
		b.Queue(upsertLead, l.StoreID, l.ID, l.Version, l.CreatedAt, l.UpdatedAt, l.DeletedAt, l.Status.String(),
			l.CustomerName, l.PhoneRaw, l.PhoneE164, l.CityID, l.CityRaw, l.Address, items, int64(l.COD), l.Source,
			l.ExternalRef, custom, nullUUID(l.AssignedTo), nullTime(l.LeaseUntil), l.CallAttempts, nullTime(l.CallbackAt),
			l.CancelReason, nullUUID(l.DuplicateOf), l.Score)
	}
	return w.Tx.SendBatch(w.ctx, b).Close()
}

const upsertLead = `INSERT INTO leads (store_id, id, version, created_at, updated_at, deleted_at, status, customer_name,
  phone_raw, phone_e164, city_id, city_raw, address, items, cod, source, external_ref, custom, assigned_to, lease_until,
  call_attempts, callback_at, cancel_reason, duplicate_of, score)
VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25)
ON CONFLICT (store_id, id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at,
  deleted_at = excluded.deleted_at, status = excluded.status, customer_name = excluded.customer_name,
  phone_raw = excluded.phone_raw, phone_e164 = excluded.phone_e164, city_id = excluded.city_id,
  city_raw = excluded.city_raw, address = excluded.address, items = excluded.items, cod = excluded.cod,
  source = excluded.source, external_ref = excluded.external_ref, custom = excluded.custom,
  assigned_to = excluded.assigned_to, lease_until = excluded.lease_until, call_attempts = excluded.call_attempts,
  callback_at = excluded.callback_at, cancel_reason = excluded.cancel_reason, duplicate_of = excluded.duplicate_of,
  score = excluded.score`

// PutEvents appends lead events whose Version was stamped from Reserve.
func (w *Writer) PutEvents(events ...mutation.LeadEvent) error {
	b := &pgx.Batch{}
	for _, e := range events {
		if err := w.checkVersion(e.StoreID, e.Version); err != nil {
			return fmt.Errorf("lead event %v: %w", e.ID, err)
		}
		data := []byte("{}")
		if len(e.Data) > 0 {
			var err error
			if data, err = json.Marshal(e.Data); err != nil {
				return err
			}
		}
		b.Queue(`INSERT INTO lead_events (store_id, id, lead_id, version, created_at, actor_id, kind, from_status, to_status, note, data)
VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`, e.StoreID, e.ID, e.LeadID, e.Version, e.CreatedAt, nullUUID(e.ActorID),
			string(e.Kind), statusText(e.FromStatus), statusText(e.ToStatus), e.Note, data)
	}
	return w.Tx.SendBatch(w.ctx, b).Close()
}

// Revision re-versions a lead's history — its events, parcels and parcel
// events — after a visibility change: whoever now sees the lead in full must
// pull all of it, whoever no longer does must drop it.
func (w *Writer) Revision(store, leadID uuid.UUID) error {
	for _, child := range []struct{ table, where string }{
		{"lead_events", "lead_id = $2"},
		{"parcels", "lead_id = $2"},
		{"parcel_events", "parcel_id IN (SELECT id FROM parcels WHERE store_id = $1 AND lead_id = $2)"},
	} {
		var n int
		if err := w.Tx.QueryRow(w.ctx, `SELECT count(*) FROM `+child.table+` WHERE store_id = $1 AND `+child.where, store, leadID).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", child.table, err)
		}
		if n == 0 {
			continue
		}
		first, err := w.Reserve(store, n)
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(w.ctx, `UPDATE `+child.table+` c SET version = $3 + r.rn - 1
FROM (SELECT id, row_number() OVER (ORDER BY version, id) AS rn FROM `+child.table+` WHERE store_id = $1 AND `+child.where+`) r
WHERE c.store_id = $1 AND c.id = r.id`, store, leadID, first)
		if err != nil {
			return fmt.Errorf("re-version %s: %w", child.table, err)
		}
	}
	return nil
}

// Rejection is a refused mutation, written to its user's scope.
type Rejection struct {
	ID           uuid.UUID
	UserID       uuid.UUID
	Version      int64
	ClientID     uuid.UUID
	MutationID   int64
	MutationName string
	StoreID      uuid.UUID
	LeadID       uuid.UUID
	Code         string
	Reason       string
}

// PutRejections writes rejection rows whose Version was stamped from Reserve
// on the user's scope.
func (w *Writer) PutRejections(rs ...Rejection) error {
	b := &pgx.Batch{}
	for _, r := range rs {
		if err := w.checkVersion(r.UserID, r.Version); err != nil {
			return fmt.Errorf("rejection %v: %w", r.ID, err)
		}
		b.Queue(`INSERT INTO rejections (user_id, id, version, client_id, mutation_id, mutation_name, store_id, lead_id, code, reason)
VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`, r.UserID, r.ID, r.Version, r.ClientID, r.MutationID, r.MutationName,
			nullUUID(r.StoreID), nullUUID(r.LeadID), r.Code, r.Reason)
	}
	return w.Tx.SendBatch(w.ctx, b).Close()
}

// checkVersion refuses rows stamped with a version this writer did not reserve.
func (w *Writer) checkVersion(scope uuid.UUID, v int64) error {
	top, ok := w.touched[scope]
	if !ok || v <= 0 || v > top {
		return fmt.Errorf("version %d was not reserved from scope %v", v, scope)
	}
	return nil
}

// Notify announces scopes' new versions on NotifyChannel, in one statement.
// It runs after commit: a notification is a hint to pull, never the data, so a
// lost one costs nothing (clients pull on every subscribe).
func Notify(ctx context.Context, pool *pgxpool.Pool, touched map[uuid.UUID]int64) error {
	if len(touched) == 0 {
		return nil
	}
	payloads := make([]string, 0, len(touched))
	for s, v := range touched {
		payloads = append(payloads, fmt.Sprintf("%s:%d", s, v))
	}
	_, err := pool.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, NotifyChannel, payloads)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// InsertLeads adds new leads (ids not yet in the table) from binary arrays
// (insertLeadsSQL): the bulk path for imports and fixtures. Versions must
// have been stamped from Reserve. A lead of a store the transaction does not
// see fails the call, as every lead not inserted does.
func (w *Writer) InsertLeads(leads []mutation.Lead) error {
	c := leadArraysPool.Get().(*leadArrays)
	defer leadArraysPool.Put(c)
	for len(leads) > 0 {
		part := leads[:min(len(leads), insertLeadsRows)]
		leads = leads[len(part):]
		c.reset()
		for i := range part {
			l := &part[i]
			if err := w.checkVersion(l.StoreID, l.Version); err != nil {
				return fmt.Errorf("lead %v: %w", l.ID, err)
			}
			if err := c.add(l); err != nil {
				return fmt.Errorf("lead %v: %w", l.ID, err)
			}
		}
		// Prepared once per connection: planning the statement's 25
		// unnests was a third of its cost at 500 leads.
		if _, err := w.Tx.Conn().Prepare(w.ctx, "leadify_insert_leads", insertLeadsSQL); err != nil {
			return fmt.Errorf("prepare insert leads: %w", err)
		}
		c.p.Reset()
		for _, col := range c.all() {
			c.p.Array(col)
		}
		vals, _, formats := c.p.Values()
		tag, err := w.Tx.Conn().PgConn().ExecPrepared(w.ctx, "leadify_insert_leads", vals, formats, nil).Close()
		if err != nil {
			return fmt.Errorf("insert leads: %w", err)
		}
		if tag.RowsAffected() != int64(len(part)) {
			return fmt.Errorf("insert leads: %d of %d inserted (a store this writer does not see?)", tag.RowsAffected(), len(part))
		}
	}
	return nil
}

// insertLeadsRows bounds the leads of one insertLeadsSQL: its message is
// built whole in the connection's buffer, which grows by doubling, so a
// 2,000-lead chunk in one statement left 2 MB of garbage per chunk, and the
// largest sheet's import peaked 10 MB higher.
const insertLeadsRows = 500

// insertLeadsSQL inserts a batch of leads bound as one binary array per
// column (leadArrays), unnested in step in the select list: no staging
// table, which COPY would need (it cannot write a table under row-level
// security), and no text to format or parse. Each new lead carries its
// customer's history as it stands before it: the seller's orders,
// deliveries and refusals from this phone, one primary-key search each.
const insertLeadsSQL = `INSERT INTO leads (store_id, id, version, created_at, updated_at, deleted_at, status,
  customer_name, phone_raw, phone_e164, city_id, city_raw, address, items, cod, source, external_ref, custom,
  assigned_to, lease_until, call_attempts, callback_at, cancel_reason, duplicate_of, score,
  customer_orders, customer_delivered, customer_refusals)
SELECT i.*, coalesce(c.orders, 0), coalesce(c.delivered, 0), coalesce(c.refusals, 0)
FROM (SELECT unnest($1::uuid[]) AS store_id, unnest($2::uuid[]) AS id, unnest($3::int8[]) AS version,
  unnest($4::timestamptz[]) AS created_at, unnest($5::timestamptz[]) AS updated_at,
  unnest($6::timestamptz[]) AS deleted_at, unnest($7::text[]) AS status, unnest($8::text[]) AS customer_name,
  unnest($9::text[]) AS phone_raw, unnest($10::text[]) AS phone_e164, unnest($11::text[]) AS city_id,
  unnest($12::text[]) AS city_raw, unnest($13::text[]) AS address, unnest($14::jsonb[]) AS items,
  unnest($15::int8[]) AS cod, unnest($16::text[]) AS source, unnest($17::text[]) AS external_ref,
  unnest($18::jsonb[]) AS custom, unnest($19::uuid[]) AS assigned_to, unnest($20::timestamptz[]) AS lease_until,
  unnest($21::int4[]) AS call_attempts, unnest($22::timestamptz[]) AS callback_at,
  unnest($23::text[]) AS cancel_reason, unnest($24::uuid[]) AS duplicate_of, unnest($25::int4[]) AS score) i
JOIN stores s ON s.id = i.store_id
LEFT JOIN LATERAL (SELECT orders, delivered, refusals FROM customers c
  WHERE c.seller_id = s.seller_id AND c.phone_e164 = i.phone_e164 AND i.phone_e164 <> '' OFFSET 0) c ON true`

// leadArraysPool keeps the arrays' buffers from one chunk to the next: an
// import's memory stays flat instead of growing new ones for every chunk.
var leadArraysPool = sync.Pool{New: func() any { return new(leadArrays) }}

// leadArrays are insertLeadsSQL's arrays, in its parameters' order.
type leadArrays struct {
	storeID, id, version, createdAt, updatedAt, deletedAt, status, customerName, phoneRaw postgres.Column
	phoneE164, cityID, cityRaw, address, items, cod, source, externalRef, custom          postgres.Column
	assignedTo, leaseUntil, callAttempts, callbackAt, cancelReason, duplicateOf, score    postgres.Column
	p                                                                                     postgres.Params
}

func (c *leadArrays) all() []*postgres.Column {
	return []*postgres.Column{&c.storeID, &c.id, &c.version, &c.createdAt, &c.updatedAt, &c.deletedAt, &c.status,
		&c.customerName, &c.phoneRaw, &c.phoneE164, &c.cityID, &c.cityRaw, &c.address, &c.items, &c.cod, &c.source,
		&c.externalRef, &c.custom, &c.assignedTo, &c.leaseUntil, &c.callAttempts, &c.callbackAt, &c.cancelReason,
		&c.duplicateOf, &c.score}
}

// reset empties the arrays, keeping their buffers.
func (c *leadArrays) reset() {
	const u, t, ts, i8, i4, j = postgres.OIDUUID, postgres.OIDText, postgres.OIDTimestamptz, postgres.OIDInt8,
		postgres.OIDInt4, postgres.OIDJSONB
	cols := c.all()
	for k, oid := range []uint32{u, u, i8, ts, ts, ts, t, t, t, t, t, t, t, j, i8, t, t, j, u, ts, i4, ts, t, u, i4} {
		cols[k].Elem = oid
		cols[k].Reset()
	}
}

// add appends a lead; its items and custom fields become JSON ([] and {}
// when it has none).
func (c *leadArrays) add(l *mutation.Lead) error {
	items, custom := []byte("[]"), []byte("{}")
	var err error
	if l.Items != nil {
		if items, err = json.Marshal(l.Items); err != nil {
			return err
		}
	}
	if len(l.Custom) > 0 {
		if custom, err = json.Marshal(l.Custom); err != nil {
			return err
		}
	}
	c.storeID.UUID(l.StoreID)
	c.id.UUID(l.ID)
	c.version.Int8(l.Version)
	c.createdAt.Timestamptz(l.CreatedAt)
	c.updatedAt.Timestamptz(l.UpdatedAt)
	if l.DeletedAt != nil {
		c.deletedAt.Timestamptz(*l.DeletedAt)
	} else {
		c.deletedAt.Null()
	}
	c.status.Text(l.Status.String())
	c.customerName.Text(l.CustomerName)
	c.phoneRaw.Text(l.PhoneRaw)
	c.phoneE164.Text(l.PhoneE164)
	c.cityID.Text(l.CityID)
	c.cityRaw.Text(l.CityRaw)
	c.address.Text(l.Address)
	c.items.JSONB(items)
	c.cod.Int8(int64(l.COD))
	c.source.Text(l.Source)
	c.externalRef.Text(l.ExternalRef)
	c.custom.JSONB(custom)
	c.assignedTo.NullUUID(l.AssignedTo)
	c.leaseUntil.NullTimestamptz(l.LeaseUntil)
	c.callAttempts.Int4(l.CallAttempts)
	c.callbackAt.NullTimestamptz(l.CallbackAt)
	c.cancelReason.Text(l.CancelReason)
	c.duplicateOf.NullUUID(l.DuplicateOf)
	c.score.Int4(l.Score)
	return nil
}

// WriterIn makes a Writer inside a transaction someone else owns — a domain
// event consumer's, which must commit its effect with the consumption record.
// Its notifications are queued in that transaction (Postgres delivers them at
// commit and drops them on rollback).
func WriterIn(ctx context.Context, tx *postgres.Tx) (*Writer, error) {
	if _, err := tx.Exec(ctx, `SELECT set_config('app.sync_writer', 'on', true)`); err != nil {
		return nil, fmt.Errorf("mark sync writer: %w", err)
	}
	return &Writer{Tx: tx, ctx: ctx, locked: map[uuid.UUID]bool{}, touched: map[uuid.UUID]int64{}, notifyInTx: true}, nil
}
