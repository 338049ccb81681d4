package localstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
)

// Membership is what the user may do in one store, as the server last said:
// local mutations are applied with it.
type Membership struct {
	StoreID      uuid.UUID
	Role         mutation.Role
	Permissions  []string
	LeaseMinutes int32
}

// ErrNoMembership is returned by Do for a store the replica has no membership of.
var ErrNoMembership = errors.New("this store is not one of yours (sync once online)")

// SetHook installs a function called at named points of the write and apply
// paths ("do:before-commit", "do:after-commit", "apply:before-commit",
// "apply:after-commit", "results:before-commit"). The kill -9 test uses it to
// crash the process there; nil removes it.
func (db *DB) SetHook(h func(point string)) { db.hook.Store(&h) }

func (db *DB) at(point string) {
	if h := db.hook.Load(); h != nil && *h != nil {
		(*h)(point)
	}
}

// ensureMeta creates the replica's identity (a client id made once) if it is
// missing.
func ensureMeta(ctx context.Context, tx execer) error {
	_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO replica_meta (id, client_id, next_mutation_id) VALUES (1, ?, 1)`,
		uuid.NewString())
	if err != nil {
		return fmt.Errorf("create replica identity: %w", err)
	}
	return nil
}

// ClientID returns this replica's client id, made once and kept.
func (db *DB) ClientID(ctx context.Context) (uuid.UUID, error) {
	if id := db.clientID.Load(); id != nil {
		return *id, nil
	}
	var id string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := ensureMeta(ctx, tx); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT client_id FROM replica_meta`).Scan(&id)
	})
	if err != nil {
		return uuid.Nil, fmt.Errorf("read client id: %w", err)
	}
	parsed, err := uuid.Parse(id)
	if err != nil {
		return uuid.Nil, fmt.Errorf("read client id: %w", err)
	}
	db.clientID.Store(&parsed)
	return parsed, nil
}

// EnsureNextMutationID makes the next local mutation id at least next (what
// the server expects after a handshake), so ids are never reused.
func (db *DB) EnsureNextMutationID(ctx context.Context, next int64) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if err := ensureMeta(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE replica_meta SET next_mutation_id = max(next_mutation_id, ?,
  coalesce((SELECT max(mutation_id) + 1 FROM outbox), 1))`, next)
		return err
	})
}

// SetIdentity records who the user is and their memberships, replacing the
// previous ones.
func (db *DB) SetIdentity(ctx context.Context, user uuid.UUID, name string, ms []Membership) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if err := ensureMeta(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE replica_meta SET user_id = ?, user_name = ?`, user.String(), name); err != nil {
			return fmt.Errorf("save user: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM memberships`); err != nil {
			return fmt.Errorf("clear memberships: %w", err)
		}
		for _, m := range ms {
			perms, err := json.Marshal(m.Permissions)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (store_id, role, permissions, lease_minutes) VALUES (?, ?, ?, ?)`,
				m.StoreID.String(), string(m.Role), string(perms), m.LeaseMinutes); err != nil {
				return fmt.Errorf("save membership: %w", err)
			}
		}
		return db.reapplyUnapplied(ctx, tx)
	})
}

// reapplyUnapplied rebases the leads of pending mutations that are not
// applied locally (they have no before-images) in stores the replica now has a
// membership of. A rebase while the replica knew no membership of their store
// — a member re-invited, whose pull brought the store's rows back before the
// handshake brought the membership — could not re-apply them, and left their
// leads as the server has them; they show again here. (Found by the
// simulation: seed 1, step 293,472.) Mutations that no longer apply stay
// queued, unapplied, as in any rebase: the server decides.
func (db *DB) reapplyUnapplied(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT json_extract(o.args, '$.lead_id') FROM outbox o
WHERE o.store_id IN (SELECT store_id FROM memberships)
  AND NOT EXISTS (SELECT 1 FROM before_images b WHERE b.mutation_id = o.mutation_id)`)
	if err != nil {
		return fmt.Errorf("find unapplied mutations: %w", err)
	}
	touched := map[string]bool{}
	for rows.Next() {
		var id sql.NullString
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		if id.Valid {
			touched[id.String] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(touched) == 0 {
		return err
	}
	q := db.newStmtCache(tx)
	defer q.close()
	if err := undo(ctx, tx, q, touched); err != nil {
		return fmt.Errorf("undo pending mutations: %w", err)
	}
	if err := redo(ctx, tx, db, q, touched); err != nil {
		return fmt.Errorf("re-apply pending mutations: %w", err)
	}
	return nil
}

// envFor is the environment local mutations in store run with, or
// ErrNoMembership.
func envFor(ctx context.Context, tx execer, store uuid.UUID, now time.Time) (mutation.Env, error) {
	var user, name, role string
	var perms []byte
	var lease int64
	err := tx.QueryRowContext(ctx, `SELECT m.user_id, m.user_name, s.role, s.permissions, s.lease_minutes
FROM replica_meta m JOIN memberships s ON s.store_id = ?`, store.String()).Scan(&user, &name, &role, &perms, &lease)
	if errors.Is(err, sql.ErrNoRows) {
		return mutation.Env{}, ErrNoMembership
	}
	if err != nil {
		return mutation.Env{}, fmt.Errorf("read membership: %w", err)
	}
	var list []string
	if err := json.Unmarshal(perms, &list); err != nil {
		return mutation.Env{}, fmt.Errorf("read permissions: %w", err)
	}
	a := mutation.Actor{UserID: uuid.MustParse(user), Name: name, Role: mutation.Role(role), Permissions: map[string]bool{}}
	for _, p := range list {
		a.Permissions[p] = true
	}
	return mutation.Env{Actor: a, Now: now, Lease: time.Duration(lease) * time.Minute}, nil
}

// Do applies m to the lead in store, in one transaction: the lead is read,
// the mutation applied with the same pure function the server runs (the
// actor from the saved memberships, the local clock), the before-images of
// the rows it touches saved, the new rows written and the mutation appended
// to the outbox under the next mutation id, which is returned. The commit is
// durable (synchronous=FULL) when Do returns. A mutation that does not apply
// locally returns its *mutation.Rejection and queues nothing; a store without
// a saved membership fails with ErrNoMembership.
func (db *DB) Do(ctx context.Context, store uuid.UUID, m mutation.Mutation) (int64, error) {
	name, version, args, err := mutation.Encode(m)
	if err != nil {
		return 0, err
	}
	var id int64
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if err := ensureMeta(ctx, tx); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT next_mutation_id FROM replica_meta`).Scan(&id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (mutation_id, store_id, name, version, args, created_at)
VALUES (?, ?, ?, ?, ?, ?)`, id, store.String(), name, version, args, micros(db.now())); err != nil {
			return fmt.Errorf("queue mutation: %w", err)
		}
		env, err := envFor(ctx, tx, store, db.now())
		if err != nil {
			return err
		}
		if err := applyLocal(ctx, tx, directLeads{tx}, id, store, m, env); err != nil {
			return err // rolls the queued entry back too
		}
		if _, err := tx.ExecContext(ctx, `UPDATE replica_meta SET next_mutation_id = ?`, id+1); err != nil {
			return err
		}
		db.at("do:before-commit")
		return nil
	})
	if err != nil {
		return 0, err
	}
	db.unsentGen.Add(1) // after the commit: a push that looked before it is not the last word
	db.at("do:after-commit")
	return id, nil
}

func (db *DB) now() time.Time {
	if f := db.clock.Load(); f != nil {
		return (*f)().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// SetClock replaces the local clock that mutations run with (the sync
// simulation owns the clock).
func (db *DB) SetClock(now func() time.Time) { db.clock.Store(&now) }

// leadRows is where applyLocal reads and writes leads: the replica itself
// (directLeads), or during a rebase a cache that writes each lead once at the
// end however many pending mutations it replays on it (batchedLeads).
type leadRows interface {
	read(ctx context.Context, id string) (*mutation.Lead, bool, error)
	write(ctx context.Context, l *mutation.Lead, redacted bool) error
}

type directLeads struct{ tx execer }

func (d directLeads) read(ctx context.Context, id string) (*mutation.Lead, bool, error) {
	return readLead(ctx, d.tx, id)
}

func (d directLeads) write(ctx context.Context, l *mutation.Lead, redacted bool) error {
	return writeLead(ctx, d.tx, l, redacted)
}

type batchedLead struct {
	lead     *mutation.Lead // nil: not in the replica
	redacted bool
	dirty    bool
}

type batchedLeads struct {
	tx    execer
	rows  map[string]*batchedLead
	dirty []string
}

func newBatchedLeads(tx execer) *batchedLeads {
	return &batchedLeads{tx: tx, rows: map[string]*batchedLead{}}
}

func cloneLead(l *mutation.Lead) *mutation.Lead {
	if l == nil {
		return nil
	}
	c := *l
	c.Items = slices.Clone(l.Items)
	if l.Custom != nil {
		c.Custom = maps.Clone(l.Custom)
	}
	return &c
}

func (b *batchedLeads) read(ctx context.Context, id string) (*mutation.Lead, bool, error) {
	r, ok := b.rows[id]
	if !ok {
		l, redacted, err := readLead(ctx, b.tx, id)
		if err != nil {
			return nil, false, err
		}
		r = &batchedLead{lead: l, redacted: redacted}
		b.rows[id] = r
	}
	return cloneLead(r.lead), r.redacted, nil
}

func (b *batchedLeads) write(_ context.Context, l *mutation.Lead, redacted bool) error {
	id := l.ID.String()
	r := b.rows[id]
	if r == nil {
		r = &batchedLead{}
		b.rows[id] = r
	}
	if !r.dirty {
		r.dirty = true
		b.dirty = append(b.dirty, id)
	}
	r.lead, r.redacted = cloneLead(l), redacted
	return nil
}

// flush writes every lead changed since the cache began, once.
func (b *batchedLeads) flush(ctx context.Context) error {
	for _, id := range b.dirty {
		r := b.rows[id]
		if err := writeLead(ctx, b.tx, r.lead, r.redacted); err != nil {
			return err
		}
		r.dirty = false
	}
	b.dirty = b.dirty[:0]
	return nil
}

// applyLocal applies m (outbox entry id) to the replica, saving before-images
// first. It returns the mutation's *mutation.Rejection when it does not apply.
func applyLocal(ctx context.Context, tx execer, leads leadRows, id int64, store uuid.UUID, m mutation.Mutation, env mutation.Env) error {
	cur, redacted, err := leads.read(ctx, m.LeadID().String())
	if err != nil {
		return err
	}
	if cur != nil && cur.StoreID != store {
		cur = nil
	}
	res, rej := m.Apply(env, cur)
	if rej != nil {
		return rej
	}
	var image []byte
	if cur != nil {
		if image, err = json.Marshal(leadImage{Lead: *cur, Redacted: redacted}); err != nil {
			return err
		}
	}
	if err := saveImage(ctx, tx, id, "leads", res.Lead.ID.String(), image); err != nil {
		return err
	}
	if err := leads.write(ctx, &res.Lead, false); err != nil {
		return err
	}
	for i := range res.Events {
		e := &res.Events[i]
		was, err := readEvent(ctx, tx, e.ID.String())
		if err != nil {
			return err
		}
		image = nil
		if was != nil {
			if image, err = json.Marshal(was); err != nil {
				return err
			}
		}
		if err := saveImage(ctx, tx, id, "lead_events", e.ID.String(), image); err != nil {
			return err
		}
		if err := writeEvent(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}

// saveImage records a row's before-image for mutation id; the first image of
// a row wins (it is the state before the mutation).
func saveImage(ctx context.Context, tx execer, id int64, table, rowID string, image []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO before_images (mutation_id, tbl, row_id, image) VALUES (?, ?, ?, ?)`,
		id, table, rowID, image)
	if err != nil {
		return fmt.Errorf("save before-image: %w", err)
	}
	return nil
}

// OutboxEntry is a queued mutation as Push sends it.
type OutboxEntry struct {
	MutationID int64
	StoreID    string
	Name       string
	Version    int32
	Args       []byte
	// Sent is true when a push reply recorded the mutation's outcome.
	Sent bool
}

// Outbox returns up to limit queued mutations with ids from fromID on, in id
// order; unsentOnly leaves out those whose outcome a push reply recorded.
func (db *DB) Outbox(ctx context.Context, fromID int64, unsentOnly bool, limit int) ([]OutboxEntry, error) {
	stmt, err := db.stmt(ctx, `SELECT mutation_id, store_id, name, version, args, result_scope IS NOT NULL
FROM outbox WHERE mutation_id >= ? AND (NOT ? OR result_scope IS NULL) ORDER BY mutation_id LIMIT ?`)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	rows, err := stmt.QueryContext(ctx, fromID, unsentOnly, limit)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxEntry
	for rows.Next() {
		var e OutboxEntry
		if err := rows.Scan(&e.MutationID, &e.StoreID, &e.Name, &e.Version, &e.Args, &e.Sent); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// RecordResults remembers, for each push result, where the mutation wrote
// (or where its rejection was written), so the entry is dropped once a pull
// passes that version. Results for entries no longer queued are ignored.
func (db *DB) RecordResults(ctx context.Context, results []*leadifyv1.MutationResult) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, r := range results {
			_, err := tx.ExecContext(ctx, `UPDATE outbox SET result_scope = ?, result_version = ?, result_applied = ?,
  result_code = ?, result_reason = ? WHERE mutation_id = ?`, r.ScopeId, r.Version, r.Applied, r.Code, r.Reason, r.MutationId)
			if err != nil {
				return fmt.Errorf("record push result: %w", err)
			}
		}
		// Applied in a scope this replica no longer follows (the member was
		// removed before the answer came): decided now, as no pull of that
		// scope will ever come to decide it.
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE result_applied = 1
  AND result_scope NOT IN (SELECT scope_id FROM cursors)`); err != nil {
			return fmt.Errorf("record push result: %w", err)
		}
		db.at("results:before-commit")
		return nil
	})
	if err == nil {
		db.resultsGen.Add(1) // a result whose version the cursor already passed is decided by the next apply
	}
	return err
}

// ResultsAwaitApply reports whether push results were recorded since the last
// apply of pulled pages began: a result whose version the cursor has already
// passed is decided only by an apply, so a pull that brings nothing must still
// apply then.
func (db *DB) ResultsAwaitApply() bool {
	return db.resultsGen.Load() != db.appliedGen.Load()
}

// Cursors returns the replica's cursor of every scope it has pulled.
func (db *DB) Cursors(ctx context.Context) ([]*leadifyv1.Cursor, error) {
	stmt, err := db.stmt(ctx, `SELECT scope_id, version, epoch, initial, initial_purged FROM cursors ORDER BY scope_id`)
	if err != nil {
		return nil, fmt.Errorf("read cursors: %w", err)
	}
	rows, err := stmt.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("read cursors: %w", err)
	}
	defer rows.Close()
	var out []*leadifyv1.Cursor
	for rows.Next() {
		c := &leadifyv1.Cursor{}
		if err := rows.Scan(&c.ScopeId, &c.Version, &c.Epoch, &c.Initial, &c.InitialPurged); err != nil {
			return nil, fmt.Errorf("read cursors: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SetLastSync records when the replica last caught up with the server.
func (db *DB) SetLastSync(ctx context.Context, t time.Time) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if err := ensureMeta(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE replica_meta SET last_sync_at = ?`, micros(t))
		return err
	})
}

// SyncState is what the UI shows about the replica.
type SyncState struct {
	Pending   int       // mutations queued without a known outcome
	Conflicts int       // conflicts not yet seen
	LastSync  time.Time // zero if never
}

// SyncState counts pending mutations and unseen conflicts.
func (db *DB) SyncState(ctx context.Context) (SyncState, error) {
	var s SyncState
	var last int64
	err := db.sql.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM conflicts WHERE seen = 0),
  coalesce((SELECT last_sync_at FROM replica_meta), 0)`).Scan(&s.Pending, &s.Conflicts, &last)
	if err != nil {
		return s, fmt.Errorf("read sync state: %w", err)
	}
	s.LastSync = fromMicros(last)
	return s, nil
}

// Conflict is a local mutation the server refused, with why in plain words.
type Conflict struct {
	ID         int64
	MutationID int64
	Name       string
	LeadID     string
	Code       string
	Reason     string
	At         time.Time
	Seen       bool
}

// Conflicts returns every conflict, newest first.
func (db *DB) Conflicts(ctx context.Context) ([]Conflict, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT id, mutation_id, name, lead_id, code, reason, created_at, seen
FROM conflicts ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("read conflicts: %w", err)
	}
	defer rows.Close()
	var out []Conflict
	for rows.Next() {
		var c Conflict
		var at int64
		if err := rows.Scan(&c.ID, &c.MutationID, &c.Name, &c.LeadID, &c.Code, &c.Reason, &at, &c.Seen); err != nil {
			return nil, fmt.Errorf("read conflicts: %w", err)
		}
		c.At = fromMicros(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// MarkConflictsSeen marks every conflict seen.
func (db *DB) MarkConflictsSeen(ctx context.Context) error {
	_, err := db.sql.ExecContext(ctx, `UPDATE conflicts SET seen = 1 WHERE seen = 0`)
	return err
}

// Lead returns the replica's lead id and whether it is redacted, or ok false.
func (db *DB) Lead(ctx context.Context, id uuid.UUID) (l mutation.Lead, redacted, ok bool, err error) {
	p, redacted, err := readLead(ctx, db.sql, id.String())
	if err != nil || p == nil {
		return mutation.Lead{}, false, false, err
	}
	return *p, redacted, true, nil
}

// LeadEvents returns the replica's events of a lead, oldest first.
func (db *DB) LeadEvents(ctx context.Context, leadID uuid.UUID) ([]mutation.LeadEvent, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT id FROM lead_events WHERE lead_id = ? ORDER BY created_at, id`, leadID.String())
	if err != nil {
		return nil, fmt.Errorf("read lead events: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := make([]mutation.LeadEvent, 0, len(ids))
	for _, id := range ids {
		e, err := readEvent(ctx, db.sql, id)
		if err != nil {
			return nil, err
		}
		if e != nil {
			out = append(out, *e)
		}
	}
	return out, nil
}

// LeadCount returns how many leads of store the replica holds.
func (db *DB) LeadCount(ctx context.Context, store uuid.UUID) (int, error) {
	var n int
	err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM leads WHERE store_id = ?`, store.String()).Scan(&n)
	return n, err
}
