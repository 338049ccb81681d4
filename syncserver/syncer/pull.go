package syncer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/postgres"
)

// MaxPageRows caps a pull page.
const MaxPageRows = 5000

// ErrUnknownScope is returned for a cursor on a scope the caller does not follow.
var ErrUnknownScope = errors.New("not a scope you follow")

// Scopes lists what the actor replicates: each store they are a member of,
// with the membership's epoch, and their own user scope.
func Scopes(a *auth.Actor) []*leadifyv1.Scope {
	out := make([]*leadifyv1.Scope, 0, len(a.Memberships)+1)
	for _, m := range a.Memberships {
		out = append(out, &leadifyv1.Scope{Id: m.StoreID.String(), Kind: leadifyv1.ScopeKind_SCOPE_KIND_STORE, Epoch: m.Epoch})
	}
	return append(out, &leadifyv1.Scope{Id: a.UserID.String(), Kind: leadifyv1.ScopeKind_SCOPE_KIND_USER, Epoch: 1})
}

// storeScope is the actor's scope of store, if they follow it.
func storeScope(a *auth.Actor, store uuid.UUID) (*leadifyv1.Scope, bool) {
	m, ok := a.Membership(store)
	if !ok {
		return nil, false
	}
	return &leadifyv1.Scope{Id: store.String(), Kind: leadifyv1.ScopeKind_SCOPE_KIND_STORE, Epoch: m.Epoch}, true
}

// Pull answers one pull: for each followed scope, the changes above the
// client's cursor up to a page of maxRows (extended to the end of the last
// version), all read from one snapshot.
func (s *Service) Pull(ctx context.Context, a *auth.Actor, cursors []*leadifyv1.Cursor, maxRows int) (*leadifyv1.PullResponse, error) {
	if maxRows <= 0 || maxRows > MaxPageRows {
		maxRows = MaxPageRows
	}
	followed := Scopes(a)
	byID := map[string]*leadifyv1.Scope{}
	for _, sc := range followed {
		byID[sc.Id] = sc
	}
	resp := &leadifyv1.PullResponse{}
	at := map[string]*leadifyv1.Cursor{}
	for _, c := range cursors {
		if _, ok := byID[c.ScopeId]; !ok {
			resp.RemovedScopes = append(resp.RemovedScopes, c.ScopeId)
			continue
		}
		at[c.ScopeId] = c
	}
	calls := &pullCalls{}
	err := postgres.ReadSnapshot(ctx, s.pool, a.Scope(), statesSQL(followed), func(snap *postgres.Snapshot, first [][][]byte) error {
		states, err := parseStates(first)
		if err != nil {
			return err
		}
		budget := maxRows
		for _, sc := range followed {
			c := at[sc.Id]
			if c == nil {
				c = &leadifyv1.Cursor{ScopeId: sc.Id, Epoch: sc.Epoch}
			}
			st := states[sc.Id]
			if budget <= 0 {
				// This page is full: the scope waits for the next one.
				resp.Scopes = append(resp.Scopes, &leadifyv1.ScopeChanges{ScopeId: sc.Id, Kind: sc.Kind, Epoch: c.Epoch,
					Cursor: c.Version, HasMore: st.seq > c.Version || c.Epoch != sc.Epoch,
					Initial: c.Initial, InitialPurged: c.InitialPurged})
				continue
			}
			p, used, err := s.planScope(ctx, snap, a, sc, c, st, budget)
			if err != nil {
				return fmt.Errorf("pull %s: %w", sc.Id, err)
			}
			resp.Scopes = append(resp.Scopes, p.out)
			budget -= used
			calls.add(s, p)
		}
		return calls.read(ctx, s, snap)
	})
	calls.abandon(err)
	if err != nil {
		return nil, err
	}
	if err := calls.await(ctx, s, a); err != nil {
		return nil, err
	}
	return resp, nil
}

type scopeState struct{ seq, purged int64 }

// statesSQL reads every followed scope's counter in one statement (sent with
// the snapshot's opening): most pulls find most scopes unchanged and stop there.
// The counter is read as sync_visible_seq: below versions reserved aside by a
// writer still writing them (WriteAside).
// The ids are the server's own (from the actor), formatted here.
func statesSQL(scopes []*leadifyv1.Scope) string {
	ids := make([]string, len(scopes))
	for i, sc := range scopes {
		ids[i] = uuid.MustParse(sc.Id).String()
	}
	return `SELECT scope_id, sync_visible_seq(scope_id, seq), purged_below FROM sync_scopes WHERE scope_id = ANY(` +
		postgres.QuoteLiteral("{"+strings.Join(ids, ",")+"}") + `::uuid[])`
}

func parseStates(rows [][][]byte) (map[string]scopeState, error) {
	out := make(map[string]scopeState, len(rows))
	for _, r := range rows {
		if len(r) != 3 {
			return nil, fmt.Errorf("scope state: %d columns", len(r))
		}
		id, err := uuid.ParseBytes(r[0])
		if err != nil {
			return nil, fmt.Errorf("scope state: %w", err)
		}
		var st scopeState
		if st.seq, err = strconv.ParseInt(string(r[1]), 10, 64); err != nil {
			return nil, fmt.Errorf("scope state: %w", err)
		}
		if st.purged, err = strconv.ParseInt(string(r[2]), 10, 64); err != nil {
			return nil, fmt.Errorf("scope state: %w", err)
		}
		out[id.String()] = st
	}
	return out, nil
}

// planScope works out which versions of one scope this pull sends: the
// cursor (or a resync from zero), and a page bound for long gaps. It returns
// the scope's answer, still without its rows, and the share of the page's
// budget it uses.
func (s *Service) planScope(ctx context.Context, snap *postgres.Snapshot, a *auth.Actor, sc *leadifyv1.Scope, c *leadifyv1.Cursor, st scopeState, max int) (*plannedScope, int, error) {
	id := uuid.MustParse(sc.Id)
	p := &plannedScope{kind: sc.Kind, id: id, out: &leadifyv1.ScopeChanges{ScopeId: sc.Id, Kind: sc.Kind, Epoch: sc.Epoch}}
	if sc.Kind == leadifyv1.ScopeKind_SCOPE_KIND_STORE {
		p.viewer = viewerFor(a, id)
	}
	seq, purged := st.seq, st.purged
	from := c.Version
	// A cursor under the purge mark may have missed deletions — unless it is
	// a sync from zero still catching up, begun under this very mark: such a
	// replica holds only rows sent since, and needs no tombstones.
	catchingUp := c.Initial && c.InitialPurged == purged
	if c.Epoch != sc.Epoch || (from > 0 && from < purged && !catchingUp) || from > seq {
		p.out.ResyncRequired = true
		from = 0
	}
	p.from, p.to = from, from
	p.out.Cursor = from
	if seq == from {
		return p, 0, nil
	}
	// A mutation writes a row and a few events under one version: a short gap
	// cannot hold a full page, so the bound is the counter itself.
	bound, more, used := seq, false, int(seq-from)*8
	if seq-from > int64(max/8) {
		var err error
		if bound, more, err = pageBound(ctx, snap, scopeTables(sc.Kind), scopeColumn(sc.Kind), id, from, seq, max); err != nil {
			return nil, 0, err
		}
		used = max
	} else {
		p.small = true
	}
	p.out.Cursor, p.out.HasMore, p.to = bound, more, bound
	// A sync from zero in several pages carries its purge mark along, so its
	// later pages' cursors, under the mark, are not taken for a stale replica
	// (which made a paged fresh sync of a purged store start over for ever).
	if more && (from == 0 || catchingUp) {
		p.out.Initial, p.out.InitialPurged = true, purged
	}
	return p, used, nil
}

func scopeTables(k leadifyv1.ScopeKind) []string {
	switch k {
	case leadifyv1.ScopeKind_SCOPE_KIND_STORE:
		return []string{"leads", "lead_events", "parcels", "parcel_events", "commission_entries", "invoices"}
	case leadifyv1.ScopeKind_SCOPE_KIND_USER:
		return []string{"rejections"}
	}
	return nil
}

// changes reads one planned scope's rows through q into its answer.
func (s *Service) changes(ctx context.Context, q querier, p *plannedScope) error {
	p.out.Changes = nil
	var err error
	switch p.kind {
	case leadifyv1.ScopeKind_SCOPE_KIND_STORE:
		err = s.storeChanges(ctx, q, p.viewer, p.id, p.from, p.to, p.out)
	case leadifyv1.ScopeKind_SCOPE_KIND_USER:
		err = rejectionChanges(ctx, q, p.id, p.from, p.to, p.out)
	}
	sort.SliceStable(p.out.Changes, func(i, j int) bool { return p.out.Changes[i].Version < p.out.Changes[j].Version })
	return err
}

func scopeColumn(k leadifyv1.ScopeKind) string {
	if k == leadifyv1.ScopeKind_SCOPE_KIND_USER {
		return "user_id"
	}
	return "store_id"
}

// pageBound finds the version that ends a page of about max rows above from:
// the max-th smallest version across the scope's tables (so every row of that
// version is in the page), or seq when fewer rows remain up to it.
func pageBound(ctx context.Context, tx rowQuerier, tables []string, col string, scope uuid.UUID, from, seq int64, max int) (int64, bool, error) {
	if len(tables) == 0 {
		return seq, false, nil
	}
	var union string
	for i, t := range tables {
		if i > 0 {
			union += " UNION ALL "
		}
		union += fmt.Sprintf("(SELECT version FROM %s WHERE %s = $1 AND version > $2 ORDER BY version LIMIT $3)", t, col)
	}
	var v int64
	err := tx.QueryRow(ctx, `SELECT version FROM (`+union+`) s ORDER BY version OFFSET $3 - 1 LIMIT 1`, scope, from, max).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return seq, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if v >= seq {
		// Rows above seq are rows committed above a reservation still
		// being written (WriteAside): they wait for it.
		return seq, false, nil
	}
	return v, true, nil
}

func (s *Service) storeChanges(ctx context.Context, tx querier, v viewer, store uuid.UUID, from, to int64, out *leadifyv1.ScopeChanges) error {
	initial := from == 0
	rows, err := tx.Query(ctx, `SELECT `+leadColumns+` FROM leads WHERE store_id = $1 AND version > $2 AND version <= $3 ORDER BY version`, store, from, to)
	if err != nil {
		return err
	}
	for rows.Next() {
		raw, err := scanRawLead(rows)
		if err != nil {
			rows.Close()
			return err
		}
		l := &raw.Lead
		switch v.lead(l) {
		case viewFull:
			pb := LeadPB(l, raw.items, raw.custom)
			pb.CustomerOrders, pb.CustomerDelivered, pb.CustomerRefusals = raw.history.Orders, raw.history.Delivered, raw.history.Refusals
			out.Changes = append(out.Changes, &leadifyv1.Change{Version: l.Version, Id: l.ID.String(), Table: "leads",
				Row: &leadifyv1.Change_Lead{Lead: pb}})
		case viewRedacted:
			r := redact(*l)
			out.Changes = append(out.Changes, &leadifyv1.Change{Version: l.Version, Id: l.ID.String(), Table: "leads",
				Redacted: true, Row: &leadifyv1.Change_Lead{Lead: LeadPB(&r, raw.items, []byte("{}"))}})
		default:
			if !initial && !s.bugs.SkipVisibilityDelete { // an empty replica has nothing to delete
				out.Changes = append(out.Changes, &leadifyv1.Change{Version: l.Version, Id: l.ID.String(), Table: "leads", Deleted: true})
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	rows, err = tx.Query(ctx, `SELECT e.store_id, e.id, e.lead_id, e.version, e.created_at, e.actor_id, e.kind, e.from_status,
  e.to_status, e.note, e.data, l.assigned_to, l.deleted_at IS NOT NULL
FROM lead_events e JOIN leads l ON l.store_id = e.store_id AND l.id = e.lead_id
WHERE e.store_id = $1 AND e.version > $2 AND e.version <= $3 ORDER BY e.version`, store, from, to)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e        eventRow
			assigned *uuid.UUID
			deleted  bool
		)
		if err := rows.Scan(append(e.dest(), &assigned, &deleted)...); err != nil {
			return err
		}
		ev, err := e.event()
		if err != nil {
			return err
		}
		parent := viewNone
		if !deleted && (v.all || (assigned != nil && *assigned == v.user)) {
			parent = viewFull
		}
		if v.event(parent) == viewFull {
			out.Changes = append(out.Changes, &leadifyv1.Change{Version: ev.Version, Id: ev.ID.String(), Table: "lead_events",
				Row: &leadifyv1.Change_LeadEvent{LeadEvent: EventPB(&ev)}})
		} else if !initial && !s.bugs.SkipVisibilityDelete {
			out.Changes = append(out.Changes, &leadifyv1.Change{Version: ev.Version, Id: ev.ID.String(), Table: "lead_events", Deleted: true})
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := s.parcelChanges(ctx, tx, v, store, from, to, out); err != nil {
		return err
	}
	return billingChanges(ctx, tx, v, store, from, to, out)
}

func rejectionChanges(ctx context.Context, tx querier, user uuid.UUID, from, to int64, out *leadifyv1.ScopeChanges) error {
	rows, err := tx.Query(ctx, `SELECT id, version, client_id, mutation_id, mutation_name, store_id, lead_id, code, reason, created_at
FROM rejections WHERE user_id = $1 AND version > $2 AND version <= $3 ORDER BY version`, user, from, to)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r             leadifyv1.RejectionRow
			id, client    uuid.UUID
			store, leadID *uuid.UUID
			version       int64
			at            time.Time
		)
		if err := rows.Scan(&id, &version, &client, &r.MutationId, &r.MutationName, &store, &leadID, &r.Code, &r.Reason, &at); err != nil {
			return err
		}
		r.Id, r.ClientId, r.At = id.String(), client.String(), ts(at)
		if store != nil {
			r.StoreId = store.String()
		}
		if leadID != nil {
			r.LeadId = leadID.String()
		}
		out.Changes = append(out.Changes, &leadifyv1.Change{Version: version, Id: r.Id, Table: "rejections",
			Row: &leadifyv1.Change_Rejection{Rejection: &r}})
	}
	return rows.Err()
}

// Visible returns the scope's version as a pull in q's snapshot would see it
// (sync_visible_seq: below versions reserved aside by writers still writing
// them): every row of the scope that commits after that snapshot has a
// version above it. A scope q's actor does not see is an error.
func Visible(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, scope uuid.UUID) (int64, error) {
	var v int64
	if err := q.QueryRow(ctx, `SELECT sync_visible_seq(scope_id, seq) FROM sync_scopes WHERE scope_id = $1`, scope).Scan(&v); err != nil {
		return 0, fmt.Errorf("scope %v's version: %w", scope, err)
	}
	return v, nil
}
