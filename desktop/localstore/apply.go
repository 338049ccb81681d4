package localstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
)

// ApplyPages applies Pull responses, in order, to the replica in one transaction
// (DESIGN.md, Sync protocol, point 6):
//
//  1. undo the pending mutations (restore their before-images, newest first)
//     on the leads the pages write or decide; those on other leads stay
//     applied, the rows under them unchanged (all are undone when a page
//     drops a scope);
//  2. drop the rows of removed scopes and of scopes to re-sync (their cursors
//     too; the outbox is kept), then apply the changes: rows upserted in the
//     view they came in (full or redacted), deleted ones removed; a rejection
//     of this client's mutation becomes a conflict and settles its entry;
//  3. move the cursors, and drop the outbox entries whose outcome is now
//     known (their recorded version is at or below their scope's cursor; a
//     rejected one leaves a conflict with its reason);
//  4. re-apply the still-pending undone mutations with the same pure functions,
//     capturing new before-images. One that no longer applies locally stays
//     queued: the server decides.
//
// Nothing in the outbox is dropped without an outcome. It fails, changing
// nothing, on a database error or a malformed row.
//
// Applying several pages in one transaction costs one commit (one fsync)
// instead of one each; the pages must be consecutive answers (each pulled
// from the cursors the previous one ends at).
func (db *DB) ApplyPages(ctx context.Context, pages ...*leadifyv1.PullResponse) error {
	err := db.applyPages(ctx, func(context.Context, *stmtCache) ([]*leadifyv1.PullResponse, error) { return pages, nil })
	if errors.Is(err, errNothingToApply) {
		return nil
	}
	return err
}

// errNothingToApply ends an apply whose pages turn out to be empty.
var errNothingToApply = errors.New("nothing to apply")

// ApplyDelivered applies one scope's changes delivered in the Subscribe
// stream, starting at version from, if they continue the replica: its
// cursor for the scope (same epoch, not mid-way through a sync from zero) is
// at or above from. Only the changes above the cursor are applied, as a page
// ending at the delivery's cursor, with the same rebase as ApplyPages; the
// cursor is read in the apply's own transaction. It reports whether the
// replica must pull instead: the delivery does not continue it (it starts
// above the cursor: one was missed), or it was already past the delivery
// while push results recorded since the last apply wait for an apply.
func (db *DB) ApplyDelivered(ctx context.Context, from int64, sc *leadifyv1.ScopeChanges) (pull bool, err error) {
	if sc == nil || sc.ResyncRequired || sc.HasMore || sc.Initial || from <= 0 {
		return true, nil
	}
	past := false
	err = db.applyPages(ctx, func(ctx context.Context, q *stmtCache) ([]*leadifyv1.PullResponse, error) {
		var (
			version, epoch int64
			initial        bool
		)
		err := q.QueryRowContext(ctx, `SELECT version, epoch, initial FROM cursors WHERE scope_id = ?`, sc.ScopeId).
			Scan(&version, &epoch, &initial)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if epoch != sc.Epoch || initial || version < from {
			return nil, nil
		}
		if version >= sc.Cursor {
			past = true
			return nil, nil
		}
		page := &leadifyv1.ScopeChanges{ScopeId: sc.ScopeId, Kind: sc.Kind, Epoch: sc.Epoch, Cursor: sc.Cursor}
		for _, ch := range sc.Changes {
			if ch.Version > version {
				page.Changes = append(page.Changes, ch)
			}
		}
		return []*leadifyv1.PullResponse{{Scopes: []*leadifyv1.ScopeChanges{page}}}, nil
	})
	switch {
	case errors.Is(err, errNothingToApply) && past:
		return db.ResultsAwaitApply(), nil
	case errors.Is(err, errNothingToApply):
		return true, nil
	case err != nil:
		return true, err
	}
	return false, nil
}

// applyPages applies the pages choose returns, in one transaction; choose
// runs first inside it. No pages: nothing is written (errNothingToApply).
func (db *DB) applyPages(ctx context.Context, choose func(context.Context, *stmtCache) ([]*leadifyv1.PullResponse, error)) error {
	results := db.resultsGen.Load() // the results this apply's dropDecided sees, at least
	err := inTxOn(ctx, db.pulls, func(tx *sql.Tx) error {
		q := db.newPullStmtCache(tx)
		defer q.close()
		pages, err := choose(ctx, q)
		if err != nil {
			return err
		}
		if len(pages) == 0 {
			return errNothingToApply
		}
		if db.clientID.Load() == nil { // once the identity is known, the row exists
			if err := ensureMeta(ctx, q); err != nil {
				return err
			}
		}
		var client, user string
		err = q.QueryRowContext(ctx, `SELECT client_id, user_id FROM replica_meta`).Scan(&client, &user)
		if err != nil {
			return err
		}
		var queued int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&queued); err != nil {
			return err
		}
		pending := queued
		if db.planted().SkipRebase {
			pending = 0
		}
		var touched map[string]bool // nil: every lead
		if pending > 0 {
			if touched, err = touchedLeads(ctx, tx, pages, client); err != nil {
				return fmt.Errorf("find the leads the page touches: %w", err)
			}
			if err := undo(ctx, tx, q, touched); err != nil {
				return fmt.Errorf("undo pending mutations: %w", err)
			}
		}
		a, err := newApplier(ctx, tx, q, client)
		if err != nil {
			return err
		}
		for _, page := range pages {
			if err := a.page(ctx, tx, page, user); err != nil {
				return err
			}
		}
		if queued > 0 { // an empty outbox has nothing to decide
			if err := dropDecided(ctx, q, db.now().UnixMicro()); err != nil {
				return fmt.Errorf("drop decided mutations: %w", err)
			}
		}
		if pending > 0 {
			if err := redo(ctx, tx, db, q, touched); err != nil {
				return fmt.Errorf("re-apply pending mutations: %w", err)
			}
		}
		db.at("apply:before-commit")
		return nil
	})
	if err != nil {
		return err
	}
	raise(&db.appliedGen, results)
	db.at("apply:after-commit")
	return nil
}

// touchedLeads returns the leads whose pending mutations must be undone and
// re-applied around pages: the leads it writes or deletes (directly or through
// their events), and those of the outbox entries it decides (their scope's
// cursor passes their version, or their rejection arrives). The mutations on
// other leads stay applied: the rows under them do not change. It returns nil
// (every lead) when a page drops a scope.
func touchedLeads(ctx context.Context, tx *sql.Tx, pages []*leadifyv1.PullResponse, client string) (map[string]bool, error) {
	touched := map[string]bool{}
	var err error
	add := func(query string, args ...any) {
		if err != nil {
			return
		}
		var rows *sql.Rows
		if rows, err = tx.QueryContext(ctx, query, args...); err != nil {
			return
		}
		defer rows.Close()
		for rows.Next() {
			var id sql.NullString
			if err = rows.Scan(&id); err != nil {
				return
			}
			touched[id.String] = true
		}
		err = rows.Err()
	}
	var scopes []*leadifyv1.ScopeChanges
	for _, page := range pages {
		if len(page.RemovedScopes) > 0 {
			return nil, nil
		}
		scopes = append(scopes, page.Scopes...)
	}
	for _, sc := range scopes {
		if sc.ResyncRequired {
			return nil, nil
		}
		add(`SELECT json_extract(args, '$.lead_id') FROM outbox WHERE result_scope = ? AND result_version <= ?`, sc.ScopeId, sc.Cursor)
		for _, ch := range sc.Changes {
			switch {
			case ch.Table == "leads":
				touched[ch.Id] = true
			case ch.Table == "lead_events" && ch.GetLeadEvent() != nil:
				touched[ch.GetLeadEvent().LeadId] = true
			case ch.Table == "lead_events":
				add(`SELECT lead_id FROM lead_events WHERE id = ?`, ch.Id)
			case ch.Table == "rejections" && ch.GetRejection().GetClientId() == client:
				add(`SELECT json_extract(args, '$.lead_id') FROM outbox WHERE mutation_id = ?`, ch.GetRejection().MutationId)
			}
		}
	}
	return touched, err
}

// undo restores the before-images of the pending mutations on the touched
// leads (all when touched is nil), newest first, and forgets them.
func undo(ctx context.Context, tx *sql.Tx, q *stmtCache, touched map[string]bool) error {
	rows, err := tx.QueryContext(ctx, `SELECT b.mutation_id, b.tbl, b.row_id, b.image, json_extract(o.args, '$.lead_id')
FROM before_images b JOIN outbox o ON o.mutation_id = b.mutation_id ORDER BY b.mutation_id DESC`)
	if err != nil {
		return err
	}
	type image struct {
		mutation  int64
		table, id string
		data      []byte
	}
	var images []image
	for rows.Next() {
		var im image
		var lead sql.NullString
		if err := rows.Scan(&im.mutation, &im.table, &im.id, &im.data, &lead); err != nil {
			rows.Close()
			return err
		}
		if touched == nil || touched[lead.String] {
			images = append(images, im)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// Restoring newest first leaves each row as its oldest image has it:
	// restore that one only (a lead with several pending mutations is written
	// once), then forget the undone mutations' images in one statement.
	type rowKey struct{ table, id string }
	oldest := map[rowKey]int{}
	var order []rowKey
	mutations := map[int64]bool{}
	for i, im := range images {
		k := rowKey{im.table, im.id}
		if _, seen := oldest[k]; !seen {
			order = append(order, k)
		}
		oldest[k] = i // images run newest first: the last one seen is the oldest
		mutations[im.mutation] = true
	}
	for _, k := range order {
		im := images[oldest[k]]
		if err := restore(ctx, q, im.table, im.id, im.data); err != nil {
			return err
		}
	}
	if len(mutations) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(mutations))
	for id := range mutations {
		ids = append(ids, id)
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `DELETE FROM before_images WHERE mutation_id IN (SELECT value FROM json_each(?))`, string(list))
	return err
}

// restore puts back one before-image (nil: the row did not exist).
func restore(ctx context.Context, tx execer, table, id string, data []byte) error {
	switch table {
	case "leads":
		if data == nil {
			_, err := tx.ExecContext(ctx, `DELETE FROM leads WHERE id = ?`, id)
			return err
		}
		var im leadImage
		if err := json.Unmarshal(data, &im); err != nil {
			return fmt.Errorf("before-image of lead %s: %w", id, err)
		}
		return writeLead(ctx, tx, &im.Lead, im.Redacted)
	case "lead_events":
		if data == nil {
			_, err := tx.ExecContext(ctx, `DELETE FROM lead_events WHERE id = ?`, id)
			return err
		}
		var e mutation.LeadEvent
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("before-image of lead event %s: %w", id, err)
		}
		return writeEvent(ctx, tx, &e)
	}
	return fmt.Errorf("before-image of unknown table %q", table)
}

// dropScope forgets a scope's rows and cursor (a store's leads, parcels and
// their events, or the user's rejections), never the outbox.
func dropScope(ctx context.Context, tx *sql.Tx, scope, user string) error {
	stmts := []string{`DELETE FROM leads WHERE store_id = ?1`, `DELETE FROM lead_events WHERE store_id = ?1`,
		`DELETE FROM parcels WHERE store_id = ?1`, `DELETE FROM parcel_events WHERE store_id = ?1`,
		`DELETE FROM cursors WHERE scope_id = ?1`}
	if scope == user {
		stmts = append(stmts, `DELETE FROM rejections`)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s, scope); err != nil {
			return fmt.Errorf("drop scope %s: %w", scope, err)
		}
	}
	return nil
}

// dropDecided removes the outbox entries whose recorded version their scope's
// cursor has reached; a rejected one leaves a conflict (unless its rejection
// row already did).
func dropDecided(ctx context.Context, tx execer, now int64) error {
	// An applied one whose scope this replica no longer follows (the
	// member was removed before its answer came back) is decided too.
	const decided = `SELECT o.mutation_id FROM outbox o JOIN cursors c ON c.scope_id = o.result_scope
WHERE c.version >= o.result_version
UNION ALL SELECT mutation_id FROM outbox WHERE result_applied = 1 AND result_scope NOT IN (SELECT scope_id FROM cursors)`
	_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO conflicts (mutation_id, name, lead_id, code, reason, created_at)
SELECT mutation_id, name, coalesce(json_extract(args, '$.lead_id'), ''), result_code, result_reason, ?
FROM outbox WHERE result_applied = 0 AND mutation_id IN (`+decided+`)`, now)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM outbox WHERE mutation_id IN (`+decided+`)`)
	return err
}

// redo re-applies the queued mutations on the touched leads (all when
// touched is nil), in id order, on the rows just pulled.
func redo(ctx context.Context, tx *sql.Tx, db *DB, q *stmtCache, touched map[string]bool) error {
	rows, err := tx.QueryContext(ctx, `SELECT mutation_id, store_id, name, version, args, json_extract(args, '$.lead_id')
FROM outbox ORDER BY mutation_id`)
	if err != nil {
		return err
	}
	type entry struct {
		id          int64
		store, name string
		version     int
		args        []byte
	}
	var entries []entry
	for rows.Next() {
		var e entry
		var lead sql.NullString
		if err := rows.Scan(&e.id, &e.store, &e.name, &e.version, &e.args, &lead); err != nil {
			rows.Close()
			return err
		}
		if touched == nil || touched[lead.String] {
			entries = append(entries, e)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	now := db.now()
	leads := newBatchedLeads(q)
	envs := map[uuid.UUID]mutation.Env{}
	for _, e := range entries {
		m, err := mutation.Decode(e.name, e.version, e.args)
		if err != nil {
			continue // the server will reject it; it stays queued until then
		}
		store, err := uuid.Parse(e.store)
		if err != nil {
			continue
		}
		env, ok := envs[store]
		if !ok {
			if env, err = envFor(ctx, q, store, now); err != nil && !errors.Is(err, ErrNoMembership) {
				return err
			}
			envs[store] = env
		}
		if env.Actor.UserID == uuid.Nil {
			continue // no membership any more: the server will say
		}
		err = applyLocal(ctx, q, leads, e.id, store, m, env)
		var rej *mutation.Rejection
		if err != nil && !errors.As(err, &rej) {
			return err
		}
	}
	return leads.flush(ctx)
}

// ApplyPage applies one Pull response: ApplyPages with one page.
func (db *DB) ApplyPage(ctx context.Context, page *leadifyv1.PullResponse) error {
	return db.ApplyPages(ctx, page)
}

// page drops the scopes page removes or re-syncs, writes its changes and
// moves its cursors.
func (a *applier) page(ctx context.Context, tx *sql.Tx, page *leadifyv1.PullResponse, user string) error {
	for _, id := range page.RemovedScopes {
		if err := dropScope(ctx, tx, id, user); err != nil {
			return err
		}
		// Applied there: the outcome is known even though the rows are gone.
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE result_scope = ? AND result_applied = 1`, id); err != nil {
			return err
		}
	}
	for _, sc := range page.Scopes {
		if sc.ResyncRequired {
			if err := dropScope(ctx, tx, sc.ScopeId, user); err != nil {
				return err
			}
		}
		a.scope = sc.ScopeId
		for _, ch := range sc.Changes {
			if err := a.change(ctx, ch); err != nil {
				return fmt.Errorf("apply %s %s: %w", ch.Table, ch.Id, err)
			}
		}
		// An unchanged cursor (most scopes of most pages) writes no page.
		if _, err := a.q.ExecContext(ctx, `INSERT INTO cursors (scope_id, version, epoch, initial, initial_purged)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (scope_id) DO UPDATE SET version = excluded.version, epoch = excluded.epoch, initial = excluded.initial,
  initial_purged = excluded.initial_purged
WHERE version <> excluded.version OR epoch <> excluded.epoch OR initial <> excluded.initial
  OR initial_purged <> excluded.initial_purged`,
			sc.ScopeId, sc.Cursor, sc.Epoch, sc.Initial, sc.InitialPurged); err != nil {
			return fmt.Errorf("move cursor: %w", err)
		}
	}
	return nil
}

// applier writes a page's changes with prepared statements.
type applier struct {
	scope                                     string // of the changes being applied
	client                                    string
	tx                                        *sql.Tx
	q                                         *stmtCache
	lead, event, delLead, delEvents, delEvent *sql.Stmt
	rejection, conflict, settle               *sql.Stmt
	parcel, parcelEvent, delParcel            *sql.Stmt
	delParcelEvent, delLeadParcels            *sql.Stmt
	delLeadParcelEvents                       *sql.Stmt
}

func newApplier(_ context.Context, tx *sql.Tx, q *stmtCache, client string) (*applier, error) {
	return &applier{client: client, tx: tx, q: q}, nil
}

// The applier's statements, prepared on first use: a page of one row, as a
// subscriber's poke brings, prepares one or two, not fourteen.
const (
	delLeadSQL   = `DELETE FROM leads WHERE id = ?`
	delEventsSQL = `DELETE FROM lead_events WHERE lead_id = ?`
	delEventSQL  = `DELETE FROM lead_events WHERE id = ?`
	rejectionSQL = `INSERT OR REPLACE INTO rejections (id, client_id, mutation_id, mutation_name, store_id, lead_id, code,
  reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	conflictSQL = `INSERT OR IGNORE INTO conflicts (mutation_id, name, lead_id, code, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)`
	settleSQL   = `DELETE FROM outbox WHERE mutation_id = ?`
	parcelSQL   = `INSERT OR REPLACE INTO parcels (id, store_id, lead_id, version, carrier, tracking, status, raw_status,
  status_known, creation, error, cod, city_id, created_at, updated_at, last_report_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	parcelEventSQL = `INSERT OR REPLACE INTO parcel_events (id, store_id, parcel_id, version, created_at, reported_at,
  source, raw_status, status, known, applied, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	delParcelSQL           = `DELETE FROM parcels WHERE id = ?`
	delParcelEventSQL      = `DELETE FROM parcel_events WHERE id = ?`
	delLeadParcelsSQL      = `DELETE FROM parcels WHERE lead_id = ?`
	delLeadParcelEventsSQL = `DELETE FROM parcel_events WHERE parcel_id IN (SELECT id FROM parcels WHERE lead_id = ?)`
)

// exec runs a statement of the applier: the database's prepared statement,
// bound to the transaction the first time the page needs it.
func (a *applier) exec(ctx context.Context, stmt **sql.Stmt, query string, args ...any) (sql.Result, error) {
	if *stmt == nil {
		prepared, err := a.q.stmt(ctx, query)
		if err != nil {
			return nil, err
		}
		*stmt = prepared
	}
	return (*stmt).ExecContext(ctx, args...)
}

func (a *applier) change(ctx context.Context, ch *leadifyv1.Change) error {
	var err error
	switch ch.Table {
	case "leads":
		if ch.Deleted {
			for _, d := range []struct {
				stmt  **sql.Stmt
				query string
			}{{&a.delLead, delLeadSQL}, {&a.delEvents, delEventsSQL}, {&a.delLeadParcelEvents, delLeadParcelEventsSQL},
				{&a.delLeadParcels, delLeadParcelsSQL}} {
				if _, err = a.exec(ctx, d.stmt, d.query, ch.Id); err != nil {
					return err
				}
			}
			return nil
		}
		l := ch.GetLead()
		if l == nil {
			return errors.New("a lead change without its row")
		}
		_, err = a.exec(ctx, &a.lead, pulledLeadSQL, pulledLeadArgs(l, ch.Version, ch.Redacted)...)
	case "lead_events":
		if ch.Deleted {
			_, err = a.exec(ctx, &a.delEvent, delEventSQL, ch.Id)
			return err
		}
		e := ch.GetLeadEvent()
		if e == nil {
			return errors.New("a lead event change without its row")
		}
		args, err := pulledEventArgs(e, ch.Version)
		if err != nil {
			return err
		}
		_, err = a.exec(ctx, &a.event, upsertEventSQL, args...)
		return err
	case "rejections":
		r := ch.GetRejection()
		if ch.Deleted || r == nil {
			return nil
		}
		at := pbMicros(r.At)
		if _, err = a.exec(ctx, &a.rejection, rejectionSQL, r.Id, r.ClientId, r.MutationId, r.MutationName, r.StoreId, r.LeadId,
			r.Code, r.Reason, at); err != nil {
			return err
		}
		if r.ClientId != a.client {
			return nil // another device of this user
		}
		if _, err = a.exec(ctx, &a.conflict, conflictSQL, r.MutationId, r.MutationName, r.LeadId, r.Code, r.Reason, at); err != nil {
			return err
		}
		_, err = a.exec(ctx, &a.settle, settleSQL, r.MutationId)
	case "parcels":
		p := ch.GetParcel()
		if ch.Deleted {
			_, err = a.exec(ctx, &a.delParcel, delParcelSQL, ch.Id)
			return err
		}
		if p == nil {
			return errors.New("a parcel change without its row")
		}
		_, err = a.exec(ctx, &a.parcel, parcelSQL, p.Id, p.StoreId, p.LeadId, ch.Version, p.Carrier, p.Tracking, p.Status,
			p.RawStatus, p.StatusKnown, p.Creation, p.Error, p.Cod, p.CityId, pbMicros(p.CreatedAt), pbMicros(p.UpdatedAt),
			pbMicros(p.LastReportAt))
	case "parcel_events":
		e := ch.GetParcelEvent()
		if ch.Deleted {
			_, err = a.exec(ctx, &a.delParcelEvent, delParcelEventSQL, ch.Id)
			return err
		}
		if e == nil {
			return errors.New("a parcel event change without its row")
		}
		_, err = a.exec(ctx, &a.parcelEvent, parcelEventSQL, e.Id, e.StoreId, e.ParcelId, ch.Version, pbMicros(e.CreatedAt),
			pbMicros(e.ReportedAt), e.Source, e.RawStatus, e.Status, e.Known, e.Applied, e.Note)
	default:
		// Invoices and commission entries (invoices.go); a table of a newer
		// server has nothing to keep it in yet.
		_, err = moneyChange(ctx, a.tx, a.scope, ch)
	}
	return err
}
