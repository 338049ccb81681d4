package syncsim

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/syncserver/auth"
)

// quiet brings every client back online with a clean network, delivers what
// was held back, syncs until every outbox is empty and every replica caught
// up, then checks the oracle.
func (s *Sim) quiet(ctx context.Context) {
	s.report.QuietPoints++
	// The checks compare settled states: every aside writer ends first.
	s.resolveAside(ctx)
	for _, d := range s.delayed {
		s.serve(d.req, d.body)
	}
	s.delayed = nil
	for _, c := range s.clients {
		c.tr.offline, c.tr.faults, c.crashAt = false, false, ""
	}
	// Everyone syncs twice: the second round brings what others pushed
	// after one's first pull, and a re-handshake after a membership change.
	for round := 0; round < 2; round++ {
		for _, c := range s.clients {
			if err := c.sc.Sync(ctx); err != nil {
				s.violate("%s cannot sync on a clean network: %v", c.name, err)
			}
		}
	}
	before := len(s.report.Violations)
	s.check(ctx)
	s.cfg.Logf("quiet point %d at step %d: %d new violations (%s)", s.report.QuietPoints, s.report.Steps, len(s.report.Violations)-before,
		time.Since(s.started).Round(time.Millisecond))
	for _, c := range s.clients {
		c.tr.faults = true
	}
}

// check compares every replica with the oracle's view of the database.
func (s *Sim) check(ctx context.Context) {
	conn := s.owner

	// No lead was changed twice by one mutation: each call attempt left one event.
	rows, err := conn.Query(ctx, `SELECT l.id::text, l.call_attempts, count(e.id) FILTER (WHERE e.kind = 'call')
FROM leads l LEFT JOIN lead_events e ON e.store_id = l.store_id AND e.lead_id = l.id
GROUP BY l.id, l.call_attempts HAVING l.call_attempts <> count(e.id) FILTER (WHERE e.kind = 'call')`)
	if err != nil {
		s.t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var attempts, events int
		if err := rows.Scan(&id, &attempts, &events); err != nil {
			s.t.Fatal(err)
		}
		s.violate("lead %s counts %d call attempts but has %d call events: a mutation applied twice", id, attempts, events)
	}
	rows.Close()

	for _, c := range s.clients {
		s.checkClient(ctx, conn, c)
	}
	s.checkAside(ctx)
}

type leadView struct {
	status, assignedTo string
	redacted           bool
	attempts           int
}

func (s *Sim) checkClient(ctx context.Context, conn *pgx.Conn, c *client) {
	// The user's standing in the store, from the membership row and the
	// role's definition — DESIGN.md point 11 — not from the Pull code.
	var role string
	var granted, revoked []string
	err := conn.QueryRow(ctx, `SELECT role, granted, revoked FROM store_members WHERE store_id = $1 AND user_id = $2`,
		s.store, c.user).Scan(&role, &granted, &revoked)
	member := err == nil
	if err != nil && err != pgx.ErrNoRows {
		s.t.Fatal(err)
	}
	all, pool := false, false
	if member {
		for _, p := range auth.Effective(auth.Role(role), granted, revoked) {
			all = all || p == auth.LeadsViewAll
			pool = pool || p == auth.LeadsViewPool
		}
	}
	want := map[string]leadView{}
	wantEvents := map[string]bool{}
	if member {
		rows, err := conn.Query(ctx, `SELECT id::text, status, coalesce(assigned_to::text, ''), call_attempts,
  NOT ($2 OR coalesce(assigned_to = $3, false)) AS redacted
FROM leads WHERE store_id = $1 AND deleted_at IS NULL
  AND ($2 OR assigned_to = $3 OR (assigned_to IS NULL AND $4))`, s.store, all, c.user, pool)
		if err != nil {
			s.t.Fatal(err)
		}
		for rows.Next() {
			var id string
			var v leadView
			if err := rows.Scan(&id, &v.status, &v.assignedTo, &v.attempts, &v.redacted); err != nil {
				s.t.Fatal(err)
			}
			want[id] = v
		}
		rows.Close()
		rows, err = conn.Query(ctx, `SELECT e.id::text FROM lead_events e JOIN leads l ON l.store_id = e.store_id AND l.id = e.lead_id
WHERE e.store_id = $1 AND l.deleted_at IS NULL AND ($2 OR l.assigned_to = $3)`, s.store, all, c.user)
		if err != nil {
			s.t.Fatal(err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				s.t.Fatal(err)
			}
			wantEvents[id] = true
		}
		rows.Close()
	}

	got := map[string]leadView{}
	q, err := c.read.QueryContext(ctx, `SELECT id, status, assigned_to, call_attempts, redacted FROM leads`)
	if err != nil {
		s.t.Fatal(err)
	}
	for q.Next() {
		var id string
		var v leadView
		if err := q.Scan(&id, &v.status, &v.assignedTo, &v.attempts, &v.redacted); err != nil {
			s.t.Fatal(err)
		}
		got[id] = v
	}
	q.Close()
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			s.violate("%s: lead %s (%+v) missing from the replica%s", c.name, id, w, s.asideLabel(id))
		case w.redacted != g.redacted || w.status != g.status || w.attempts != g.attempts || (!w.redacted && w.assignedTo != g.assignedTo):
			s.violate("%s: lead %s is %+v in the replica, %+v on the server", c.name, id, g, w)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			s.violate("%s: lead %s is in the replica but outside the user's view%s", c.name, id, s.asideLabel(id))
		}
	}
	gotEvents := readIDs(s, c.read, `SELECT id FROM lead_events`)
	for id := range wantEvents {
		if !gotEvents[id] {
			s.violate("%s: lead event %s missing from the replica", c.name, id)
		}
	}
	for id := range gotEvents {
		if !wantEvents[id] {
			s.violate("%s: lead event %s is in the replica but outside the user's view", c.name, id)
		}
	}

	// Every acknowledged mutation has an outcome, applied once or rejected
	// and shown as a conflict: those acknowledged since the last quiet point
	// now (all of them again at the end of the run).
	var queued int
	if err := c.read.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&queued); err != nil {
		s.t.Fatal(err)
	}
	if queued > 0 {
		s.violate("%s: %d mutations still without an outcome after a quiet sync", c.name, queued)
	}
	s.checkAcked(ctx, c, c.acked[c.checked:])
	c.checked = len(c.acked)
}

// checkAcked checks acknowledged mutations with one query on each side: each
// reached the server; an applied one wrote its event once (unless its lead
// was purged since), a rejected one wrote none and is in the user's conflicts.
func (s *Sim) checkAcked(ctx context.Context, c *client, list []acked) {
	if len(list) == 0 {
		return
	}
	client, err := c.db.ClientID(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	ids := make([]int64, len(list))
	events := make([]uuid.UUID, len(list))
	leads := make([]uuid.UUID, len(list))
	for i, a := range list {
		ids[i], events[i], leads[i] = a.id, a.event, a.lead
	}
	rows, err := s.owner.Query(ctx, `SELECT a.ord, m.applied,
  (SELECT count(*) FROM lead_events e WHERE e.store_id = $2 AND e.id = a.event),
  EXISTS (SELECT 1 FROM leads l WHERE l.store_id = $2 AND l.id = a.lead)
FROM unnest($3::bigint[], $4::uuid[], $5::uuid[]) WITH ORDINALITY AS a(id, event, lead, ord)
LEFT JOIN sync_mutations m ON m.client_id = $1 AND m.mutation_id = a.id
ORDER BY a.ord`, client, s.store, ids, events, leads)
	if err != nil {
		s.t.Fatal(err)
	}
	var rejected []int64
	for rows.Next() {
		var ord int64
		var applied *bool
		var n int
		var exists bool
		if err := rows.Scan(&ord, &applied, &n, &exists); err != nil {
			s.t.Fatal(err)
		}
		a := list[ord-1]
		switch {
		case applied == nil:
			s.violate("%s: acknowledged mutation %d (%s) never reached the server", c.name, a.id, a.name)
		case *applied && n != 1 && exists:
			s.violate("%s: mutation %d (%s) applied, with %d events", c.name, a.id, a.name, n)
		case !*applied && n != 0:
			s.violate("%s: mutation %d (%s) rejected, yet wrote %d events", c.name, a.id, a.name, n)
		case !*applied:
			rejected = append(rejected, a.id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	if len(rejected) == 0 {
		return
	}
	list2, _ := json.Marshal(rejected)
	shown := readIDs(s, c.read, `SELECT mutation_id FROM conflicts WHERE mutation_id IN (SELECT value FROM json_each(?))`, string(list2))
	for _, id := range rejected {
		if !shown[fmt.Sprint(id)] {
			s.violate("%s: mutation %d was rejected but the user was never shown the conflict", c.name, id)
		}
	}
}

func readIDs(s *Sim, db *sql.DB, q string, args ...any) map[string]bool {
	rows, err := db.Query(q, args...)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			s.t.Fatal(err)
		}
		out[id] = true
	}
	return out
}

func (s *Sim) countConflicts(db *sql.DB) {
	rows, err := db.Query(`SELECT code, count(*), max(reason) FROM conflicts GROUP BY code`)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var code, reason string
		var n int
		if rows.Scan(&code, &n, &reason) == nil {
			s.report.Conflicts[code] += n
			s.cfg.Logf("conflict %s, e.g. %q", code, reason)
		}
	}
}
