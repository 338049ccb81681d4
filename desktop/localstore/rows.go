package localstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/mutation"
)

// The replica's rows are written by two paths: pulled rows (wire form, JSON
// columns passed through unparsed) and locally applied mutations
// (mutation.Lead). Both use these statements.
const (
	// upsertLeadSQL writes a lead as a local mutation (or an undo) leaves it:
	// the customer history columns, the server's alone, stay as they are.
	upsertLeadSQL = `INSERT INTO leads (id, store_id, version, redacted, created_at, updated_at, status,
  customer_name, phone_raw, phone_e164, city_id, city_raw, address, items_json, cod, source, external_ref, custom_json,
  assigned_to, lease_until, call_attempts, callback_at, cancel_reason, duplicate_of, score)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET store_id = excluded.store_id, version = excluded.version, redacted = excluded.redacted,
  created_at = excluded.created_at, updated_at = excluded.updated_at, status = excluded.status,
  customer_name = excluded.customer_name, phone_raw = excluded.phone_raw, phone_e164 = excluded.phone_e164,
  city_id = excluded.city_id, city_raw = excluded.city_raw, address = excluded.address, items_json = excluded.items_json,
  cod = excluded.cod, source = excluded.source, external_ref = excluded.external_ref, custom_json = excluded.custom_json,
  assigned_to = excluded.assigned_to, lease_until = excluded.lease_until, call_attempts = excluded.call_attempts,
  callback_at = excluded.callback_at, cancel_reason = excluded.cancel_reason, duplicate_of = excluded.duplicate_of,
  score = excluded.score`
	// pulledLeadSQL writes a lead as the server sent it, history included.
	pulledLeadSQL = `INSERT OR REPLACE INTO leads (id, store_id, version, redacted, created_at, updated_at, status,
  customer_name, phone_raw, phone_e164, city_id, city_raw, address, items_json, cod, source, external_ref, custom_json,
  assigned_to, lease_until, call_attempts, callback_at, cancel_reason, duplicate_of, score, customer_orders,
  customer_delivered, customer_refusals)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	upsertEventSQL = `INSERT OR REPLACE INTO lead_events (id, store_id, lead_id, version, created_at, actor_id, kind,
  from_status, to_status, note, data_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	selectLeadSQL = `SELECT id, store_id, version, redacted, created_at, updated_at, status, customer_name, phone_raw,
  phone_e164, city_id, city_raw, address, items_json, cod, source, external_ref, custom_json, assigned_to, lease_until,
  call_attempts, callback_at, cancel_reason, duplicate_of, score FROM leads WHERE id = ?`
	selectEventSQL = `SELECT id, store_id, lead_id, version, created_at, actor_id, kind, from_status, to_status, note,
  data_json FROM lead_events WHERE id = ?`
)

// execer is a *sql.Tx or one of its prepared statements' owner.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func pbMicros(ts *timestamppb.Timestamp) int64 {
	if ts == nil {
		return 0
	}
	return micros(ts.AsTime())
}

func idText(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

func parseID(s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, nil
	}
	return uuid.Parse(s)
}

func statusText(s lead.Status) string {
	if !s.Valid() {
		return ""
	}
	return s.String()
}

func jsonOr(v any, empty string) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if string(b) == "null" {
		return []byte(empty), nil
	}
	return b, nil
}

// pulledLeadArgs are the column values of a pulled lead.
func pulledLeadArgs(r *leadifyv1.LeadRow, version int64, redacted bool) []any {
	items, custom := r.ItemsJson, r.CustomJson
	if len(items) == 0 {
		items = []byte("[]")
	}
	if len(custom) == 0 {
		custom = []byte("{}")
	}
	return []any{r.Id, r.StoreId, version, redacted, pbMicros(r.CreatedAt), pbMicros(r.UpdatedAt), r.Status,
		r.CustomerName, r.PhoneRaw, r.PhoneE164, r.CityId, r.CityRaw, r.Address, items, r.Cod, r.Source,
		r.ExternalRef, custom, r.AssignedTo, pbMicros(r.LeaseUntil), r.CallAttempts, pbMicros(r.CallbackAt),
		r.CancelReason, r.DuplicateOf, r.Score, r.CustomerOrders, r.CustomerDelivered, r.CustomerRefusals}
}

// pulledEventArgs are the column values of a pulled lead event.
func pulledEventArgs(e *leadifyv1.LeadEventRow, version int64) ([]any, error) {
	data, err := jsonOr(e.Data, "{}")
	if err != nil {
		return nil, err
	}
	return []any{e.Id, e.StoreId, e.LeadId, version, pbMicros(e.CreatedAt), e.ActorId, e.Kind, e.FromStatus,
		e.ToStatus, e.Note, data}, nil
}

func writeLead(ctx context.Context, tx execer, l *mutation.Lead, redacted bool) error {
	items, err := jsonOr(l.Items, "[]")
	if err != nil {
		return err
	}
	custom, err := jsonOr(l.Custom, "{}")
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, upsertLeadSQL, l.ID.String(), l.StoreID.String(), l.Version, redacted,
		micros(l.CreatedAt), micros(l.UpdatedAt), l.Status.String(), l.CustomerName, l.PhoneRaw, l.PhoneE164,
		l.CityID, l.CityRaw, l.Address, items, int64(l.COD), l.Source, l.ExternalRef, custom, idText(l.AssignedTo),
		micros(l.LeaseUntil), l.CallAttempts, micros(l.CallbackAt), l.CancelReason, idText(l.DuplicateOf), l.Score)
	if err != nil {
		return fmt.Errorf("write lead %v: %w", l.ID, err)
	}
	return nil
}

func writeEvent(ctx context.Context, tx execer, e *mutation.LeadEvent) error {
	data, err := jsonOr(e.Data, "{}")
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, upsertEventSQL, e.ID.String(), e.StoreID.String(), e.LeadID.String(), e.Version,
		micros(e.CreatedAt), idText(e.ActorID), string(e.Kind), statusText(e.FromStatus), statusText(e.ToStatus), e.Note, data)
	if err != nil {
		return fmt.Errorf("write lead event %v: %w", e.ID, err)
	}
	return nil
}

// readLead returns the replica's lead id, whether it is redacted, or a nil
// lead when there is none.
func readLead(ctx context.Context, tx execer, id string) (*mutation.Lead, bool, error) {
	var (
		l                                             mutation.Lead
		lid, store, status, assigned, dup             string
		items, custom                                 []byte
		redacted                                      bool
		created, updated, leaseUntil, callback, cod64 int64
	)
	err := tx.QueryRowContext(ctx, selectLeadSQL, id).Scan(&lid, &store, &l.Version, &redacted, &created, &updated,
		&status, &l.CustomerName, &l.PhoneRaw, &l.PhoneE164, &l.CityID, &l.CityRaw, &l.Address, &items, &cod64,
		&l.Source, &l.ExternalRef, &custom, &assigned, &leaseUntil, &l.CallAttempts, &callback, &l.CancelReason,
		&dup, &l.Score)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read lead %s: %w", id, err)
	}
	var errs [5]error
	l.ID, errs[0] = uuid.Parse(lid)
	l.StoreID, errs[1] = uuid.Parse(store)
	l.AssignedTo, errs[2] = parseID(assigned)
	l.DuplicateOf, errs[3] = parseID(dup)
	l.Status, errs[4] = lead.ParseStatus(status)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, false, fmt.Errorf("read lead %s: %w", id, err)
	}
	if err := json.Unmarshal(items, &l.Items); err != nil {
		return nil, false, fmt.Errorf("read lead %s items: %w", id, err)
	}
	if err := json.Unmarshal(custom, &l.Custom); err != nil {
		return nil, false, fmt.Errorf("read lead %s custom fields: %w", id, err)
	}
	if len(l.Custom) == 0 {
		l.Custom = nil
	}
	l.COD = money.Amount(cod64)
	l.CreatedAt, l.UpdatedAt = fromMicros(created), fromMicros(updated)
	l.LeaseUntil, l.CallbackAt = fromMicros(leaseUntil), fromMicros(callback)
	return &l, redacted, nil
}

// readEvent returns the replica's lead event id, or nil when there is none.
func readEvent(ctx context.Context, tx execer, id string) (*mutation.LeadEvent, error) {
	var (
		e                                         mutation.LeadEvent
		eid, store, leadID, actor, kind, from, to string
		data                                      []byte
		created                                   int64
	)
	err := tx.QueryRowContext(ctx, selectEventSQL, id).Scan(&eid, &store, &leadID, &e.Version, &created, &actor,
		&kind, &from, &to, &e.Note, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lead event %s: %w", id, err)
	}
	var errs [3]error
	e.ID, errs[0] = uuid.Parse(eid)
	e.StoreID, errs[1] = uuid.Parse(store)
	e.LeadID, errs[2] = uuid.Parse(leadID)
	if e.ActorID, err = parseID(actor); err != nil {
		errs[0] = err
	}
	if from != "" {
		e.FromStatus, _ = lead.ParseStatus(from)
	}
	if to != "" {
		e.ToStatus, _ = lead.ParseStatus(to)
	}
	e.Kind, e.CreatedAt = mutation.EventKind(kind), fromMicros(created)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("read lead event %s: %w", id, err)
	}
	if err := json.Unmarshal(data, &e.Data); err != nil {
		return nil, fmt.Errorf("read lead event %s data: %w", id, err)
	}
	if len(e.Data) == 0 {
		e.Data = nil
	}
	return &e, nil
}

// leadImage is a lead's before-image: the row as it was.
type leadImage struct {
	Lead     mutation.Lead `json:"lead"`
	Redacted bool          `json:"redacted"`
}

// stmtCache runs queries in a transaction through prepared statements made
// once per query text (the rebase runs the same few statements thousands of
// times).
type stmtCache struct {
	prepare func(context.Context, string) (*sql.Stmt, error) // the handle's kept statements
	tx      *sql.Tx
	stmts   map[string]*sql.Stmt
}

// newStmtCache serves a transaction of db's main handle.
func (db *DB) newStmtCache(tx *sql.Tx) *stmtCache { return newStmtCache(db.sql, &db.stmts, tx) }

// newPullStmtCache serves a transaction of db's pull handle.
func (db *DB) newPullStmtCache(tx *sql.Tx) *stmtCache {
	return newStmtCache(db.pulls, &db.pullStmts, tx)
}

// newStmtCache serves tx, a transaction of h, with h's kept statements.
func newStmtCache(h *sql.DB, kept *sync.Map, tx *sql.Tx) *stmtCache {
	return &stmtCache{prepare: func(ctx context.Context, q string) (*sql.Stmt, error) {
		return prepared(ctx, h, kept, q)
	}, tx: tx, stmts: map[string]*sql.Stmt{}}
}

// stmt returns query prepared for the transaction: the database-wide statement
// (prepared once per connection and kept) bound to it, so the same statement
// in the next transaction costs no new prepare.
func (c *stmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := c.stmts[query]; ok {
		return s, nil
	}
	parent, err := c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	s := c.tx.StmtContext(ctx, parent)
	c.stmts[query] = s
	return s, nil
}

// QueryContext runs query as a prepared statement.
func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// ExecContext runs query as a prepared statement.
func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// QueryRowContext runs query as a prepared statement. A failure to prepare
// falls back to the transaction, which reports it through the row.
func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return c.tx.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

func (c *stmtCache) close() {
	for _, s := range c.stmts {
		_ = s.Close()
	}
}
