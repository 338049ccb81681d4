package syncsim

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/syncserver/auth"
)

// quiet brings every client back online with a clean network, delivers what
// was held back, syncs until every outbox is empty and every replica caught
// up, then checks the oracle.
func (s *Sim) quiet(ctx context.Context) {
	s.report.QuietPoints++
	for _, d := range s.delayed {
		s.serve(d.req, d.body)
	}
	s.delayed = nil
	for _, c := range s.clients {
		c.tr.offline, c.tr.faults, c.crashAt = false, false, ""
	}
	for round := 0; round < 3; round++ {
		for _, c := range s.clients {
			if err := c.sc.Sync(ctx); err != nil {
				s.violate("%s cannot sync on a clean network: %v", c.name, err)
			}
		}
	}
	before := len(s.report.Violations)
	s.check(ctx)
	s.cfg.Logf("quiet point %d at step %d: %d new violations", s.report.QuietPoints, s.report.Steps, len(s.report.Violations)-before)
	for _, c := range s.clients {
		c.tr.faults = true
	}
}

// check compares every replica with the oracle's view of the database.
func (s *Sim) check(ctx context.Context) {
	conn, err := pgx.Connect(ctx, s.env.DB.OwnerURL) // the owner is not subject to row-level security
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(ctx)

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
			s.violate("%s: lead %s (%+v) missing from the replica", c.name, id, w)
		case w.redacted != g.redacted || w.status != g.status || w.attempts != g.attempts || (!w.redacted && w.assignedTo != g.assignedTo):
			s.violate("%s: lead %s is %+v in the replica, %+v on the server", c.name, id, g, w)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			s.violate("%s: lead %s is in the replica but outside the user's view", c.name, id)
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
	// and shown as a conflict.
	if n := len(readIDs(s, c.read, `SELECT mutation_id FROM outbox`)); n > 0 {
		s.violate("%s: %d mutations still without an outcome after a quiet sync", c.name, n)
	}
	client, err := c.db.ClientID(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	conflicts := readIDs(s, c.read, `SELECT mutation_id FROM conflicts`)
	for _, a := range c.acked {
		var applied bool
		err := conn.QueryRow(ctx, `SELECT applied FROM sync_mutations WHERE client_id = $1 AND mutation_id = $2`, client, a.id).Scan(&applied)
		if err == pgx.ErrNoRows {
			s.violate("%s: acknowledged mutation %d (%s) never reached the server", c.name, a.id, a.name)
			continue
		}
		if err != nil {
			s.t.Fatal(err)
		}
		var events int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM lead_events WHERE id = $1`, a.event).Scan(&events); err != nil {
			s.t.Fatal(err)
		}
		switch {
		case applied && events != 1:
			s.violate("%s: mutation %d (%s) applied, with %d events", c.name, a.id, a.name, events)
		case !applied && events != 0:
			s.violate("%s: mutation %d (%s) rejected, yet wrote %d events", c.name, a.id, a.name, events)
		case !applied && !conflicts[fmt.Sprint(a.id)]:
			s.violate("%s: mutation %d (%s) was rejected but the user was never shown the conflict", c.name, a.id, a.name)
		}
	}
}

func readIDs(s *Sim, db *sql.DB, q string) map[string]bool {
	rows, err := db.Query(q)
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

var _ = sort.Strings
var _ = uuid.Nil
