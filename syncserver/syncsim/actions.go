package syncsim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// crashPoints are where a client may be killed: before and after a push
// reaches the server, between pulling a page and applying it, inside the
// apply (after undo and apply, before the cursor moves with the commit),
// and around local commits.
var crashPoints = []string{"push:before-send", "push:after-reply", "pull:before-apply", "apply:before-commit",
	"apply:after-commit", "do:before-commit", "do:after-commit", "results:before-commit", "deliver:before-apply"}

func (s *Sim) step(ctx context.Context) {
	action := s.pick(map[string]int{
		"agent-do": 30, "seller-do": 10, "sync": 18, "pull": 5, "claim": 8, "offline": 4, "online": 6, "clock": 5,
		"import": 4, "deliver-delayed": 4, "crash": 3, "permissions": 2, "membership": 2, "archive": 2, "purge": 1,
		"restart": 1, "stream": 12, "stream-late": 2, "aside-open": 3, "aside-commit": 2, "aside-abort": 2,
	})
	s.count(s.report.Actions, action)
	s.trace("step %d: %s", s.report.Steps, action)
	switch action {
	case "agent-do":
		s.agentDo(ctx, s.clients[1+s.rng.IntN(len(s.clients)-1)])
	case "seller-do":
		s.sellerDo(ctx, s.clients[0])
	case "sync":
		c := s.clients[s.rng.IntN(len(s.clients))]
		s.guard(c, func() error { return c.sc.Sync(ctx) })
	case "pull": // pull without pushing: pending local work must be rebased on top
		c := s.clients[s.rng.IntN(len(s.clients))]
		if err, crashed := s.guard(c, func() error { return c.sc.Pull(ctx) }); err == nil && !crashed {
			s.checkOptimistic(ctx, c)
		}
	case "claim":
		c := s.clients[1+s.rng.IntN(len(s.clients)-1)]
		s.guard(c, func() error { _, err := c.sc.Claim(ctx, s.store, int32(1+s.rng.IntN(3))); return err })
	case "offline":
		s.clients[s.rng.IntN(len(s.clients))].tr.offline = true
	case "online":
		s.clients[s.rng.IntN(len(s.clients))].tr.offline = false
	case "clock":
		if s.rng.IntN(4) == 0 {
			s.now = s.now.Add(25 * time.Hour) // leases lapse
		} else {
			s.now = s.now.Add(time.Duration(1+s.rng.IntN(90)) * time.Minute)
		}
	case "import":
		n := 1 + s.rng.IntN(4)
		// The pool is topped up, not grown without end: a store whose agents
		// keep up, so that a long run's state (and the oracle's work at each
		// quiet point) stays bounded.
		if s.openLeads(ctx) >= maxOpenLeads {
			s.count(s.report.Actions, "import:pool-full")
			return
		}
		s.seed(ctx, n, "Imported")
	case "archive":
		s.archive(ctx)
	case "purge":
		s.purge(ctx)
	case "restart":
		s.restart(ctx)
	case "deliver-delayed":
		if len(s.delayed) > 0 {
			i := s.rng.IntN(len(s.delayed))
			d := s.delayed[i]
			s.delayed = append(s.delayed[:i], s.delayed[i+1:]...)
			s.serve(d.req, d.body)
		}
	case "crash":
		c := s.clients[s.rng.IntN(len(s.clients))]
		c.crashAt = crashPoints[s.rng.IntN(len(crashPoints))]
	case "permissions":
		s.togglePool(ctx)
		s.authGen++
	case "membership":
		s.toggleMember(ctx)
		s.authGen++
	case "stream":
		s.stream(ctx, s.clients[s.rng.IntN(len(s.clients))])
	case "stream-late":
		c := s.clients[s.rng.IntN(len(s.clients))]
		if len(c.held) > 0 {
			i := s.rng.IntN(len(c.held))
			d := c.held[i]
			c.held = append(c.held[:i], c.held[i+1:]...)
			s.applyDelivered(ctx, c, d)
		}
	case "aside-open":
		s.openAside(ctx)
	case "aside-commit", "aside-abort":
		if len(s.aside) == 0 {
			s.count(s.report.Actions, action+":none-open")
			return
		}
		s.endAside(ctx, s.rng.IntN(len(s.aside)), action == "aside-commit")
	}
	s.checkAsideCursors(ctx)
}

// stream plays a client's delivering Subscribe stream for the store's
// latest commit, through the server's own Follower: a (re)subscribe from the
// replica's cursors when none is open (after a crash, a server restart or
// offline time) — whose first message, a poke, makes the client pull — then
// the message the stream would send now: changes, which the network may
// drop, duplicate or hold back, or a poke, which the client answers with a
// pull.
func (s *Sim) stream(ctx context.Context, c *client) {
	if c.tr.offline {
		c.follow, c.held = nil, nil
		return
	}
	if c.follow == nil || c.followSrv != s.srv {
		cursors, err := c.db.Cursors(ctx)
		if err != nil {
			s.t.Fatal(err)
		}
		c.follow, c.followSrv, c.held = s.srv.Sync.NewFollower(cursors), s.srv, nil
		s.count(s.report.Actions, "stream:subscribe")
		s.guard(c, func() error { return c.sc.Pull(ctx) })
		return
	}
	a, err := s.srv.Auth.Authenticate(ctx, c.token)
	if err != nil {
		s.t.Fatalf("authenticate %s: %v", c.name, err)
	}
	seq := s.storeVersion(ctx)
	msg, err := c.follow.Message(ctx, a, s.authGen, s.store, seq)
	if err != nil {
		s.t.Fatalf("deliver to %s: %v", c.name, err)
	}
	if msg != nil && msg.Delivered != nil {
		s.trace("  %s: delivery (%d, %d], %d changes, seq %d", c.name, msg.Delivered.From, msg.Delivered.Changes.Cursor,
			len(msg.Delivered.Changes.Changes), seq)
	} else {
		s.trace("  %s: %v at seq %d", c.name, msg, seq)
	}
	switch {
	case msg == nil:
		s.count(s.report.Actions, "stream:current")
	case msg.Delivered == nil:
		s.count(s.report.Actions, "stream:poke")
		s.guard(c, func() error { return c.sc.Pull(ctx) })
	default:
		if bound, ok := s.asideBound(); ok && msg.Delivered.Changes.GetCursor() > bound {
			s.violate("%s: a delivery brings the store cursor to %d, past the versions %s reserved aside by a writer still open",
				c.name, msg.Delivered.Changes.GetCursor(), s.openRanges())
		}
		fate := s.pick(map[string]int{"deliver": 80, "drop": 7, "duplicate": 7, "hold": 6})
		s.count(s.report.Faults, "stream:"+fate)
		switch fate {
		case "drop":
		case "hold":
			c.held = append(c.held, msg.Delivered)
		case "duplicate":
			s.applyDelivered(ctx, c, msg.Delivered)
			s.applyDelivered(ctx, c, msg.Delivered)
		default:
			s.applyDelivered(ctx, c, msg.Delivered)
		}
	}
}

// storeVersion is the store scope's latest version: what a commit's
// notification announces.
func (s *Sim) storeVersion(ctx context.Context) int64 {
	var seq int64
	if err := s.owner.QueryRow(ctx, `SELECT seq FROM sync_scopes WHERE scope_id = $1`, s.store).Scan(&seq); err != nil {
		s.t.Fatal(err)
	}
	return seq
}

// applyDelivered hands a delivery to the client, which applies it or, when
// it does not continue the replica, pulls.
func (s *Sim) applyDelivered(ctx context.Context, c *client, d *leadifyv1.DeliveredChanges) {
	var pull bool
	err, crashed := s.guard(c, func() error {
		var err error
		pull, err = c.sc.ApplyDelivered(ctx, d)
		return err
	})
	s.trace("  %s: delivery (%d, %d] pull=%v err=%v crashed=%v", c.name, d.From, d.GetChanges().GetCursor(), pull, err, crashed)
	if crashed {
		return
	}
	if err != nil {
		s.violate("%s: applying a delivery failed: %v", c.name, err)
		return
	}
	if !pull {
		s.count(s.report.Actions, "stream:applied")
		// The rebase check compares with the server's rows now: it holds
		// when the delivery brought the replica up to the store's latest
		// version, not after a late one (the replica is rightly behind).
		if d.GetChanges().GetCursor() == s.storeVersion(ctx) {
			s.checkOptimistic(ctx, c)
		}
		return
	}
	s.count(s.report.Actions, "stream:pull")
	if err, crashed := s.guard(c, func() error { return c.sc.Pull(ctx) }); err == nil && !crashed {
		s.checkOptimistic(ctx, c)
	}
}

// maxOpenLeads is how many leads still to be worked the store holds at most
// before imports pause.
const maxOpenLeads = 40

func (s *Sim) openLeads(ctx context.Context) int {
	var n int
	if err := s.owner.QueryRow(ctx, `SELECT count(*) FROM leads WHERE store_id = $1 AND deleted_at IS NULL
  AND status IN ('new', 'no_answer', 'callback', 'unreachable')`, s.store).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// archive deletes, as a retention job would, a few leads that are done with
// (confirmed, cancelled, wrong number or duplicate) and untouched for two days,
// or untouched for two weeks: soft deletes through the versioned-write helper,
// which every replica must drop, the leads' histories with them.
func (s *Sim) archive(ctx context.Context) {
	var n int
	err := syncer.Write(ctx, s.env.DB.App, postgres.StoreScope(s.store), func(w *syncer.Writer) error {
		n = 0
		if err := w.Lock(s.store); err != nil {
			return err
		}
		rows, err := w.Tx.Query(ctx, `SELECT id FROM leads WHERE store_id = $1 AND deleted_at IS NULL
  AND ((status IN ('confirmed', 'cancelled', 'wrong_number', 'duplicate') AND updated_at < $2) OR updated_at < $3)
ORDER BY id LIMIT 8`, s.store, s.now.Add(-48*time.Hour), s.now.Add(-14*24*time.Hour))
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil || len(ids) == 0 {
			return err
		}
		n = len(ids)
		first, err := w.Reserve(s.store, n)
		if err != nil {
			return err
		}
		for i, id := range ids {
			if _, err := w.Tx.Exec(ctx, `UPDATE leads SET deleted_at = $3, updated_at = $3, version = $4 WHERE store_id = $1 AND id = $2`,
				s.store, id, s.now, first+int64(i)); err != nil {
				return err
			}
			if err := w.Revision(s.store, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.t.Fatalf("archive: %v", err)
	}
	if n > 0 {
		s.count(s.report.Faults, "archived-leads")
	}
}

// purge runs the sync purge (a server job) now, on the simulation's clock:
// deleted leads older than a day are removed for good, and replicas whose
// cursors are below what it removed must resync.
func (s *Sim) purge(ctx context.Context) {
	n, err := syncer.Purge(ctx, s.env.DB.App, s.now.Add(-24*time.Hour))
	if err != nil {
		s.t.Fatalf("purge: %v", err)
	}
	if n > 0 {
		s.count(s.report.Faults, "purged-leads")
	}
}

// heldLead picks a lead of the client's replica: for agents one they hold in
// full, for the seller any lead. Returns false when there is none.
func (s *Sim) heldLead(c *client) (mutation.Lead, bool) {
	q := `SELECT id FROM leads WHERE redacted = 0 ORDER BY id`
	args := []any{}
	if c.role == mutation.RoleAgent {
		q = `SELECT id FROM leads WHERE redacted = 0 AND assigned_to = ? ORDER BY id`
		args = append(args, c.user.String())
	}
	rows, err := c.read.Query(q, args...)
	if err != nil {
		s.t.Fatalf("%s: read replica: %v", c.name, err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			s.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) == 0 {
		return mutation.Lead{}, false
	}
	l, _, ok, err := c.db.Lead(context.Background(), uuid.MustParse(ids[s.rng.IntN(len(ids))]))
	if err != nil {
		s.t.Fatalf("%s: read lead: %v", c.name, err)
	}
	return l, ok
}

func (s *Sim) agentDo(ctx context.Context, c *client) {
	l, ok := s.heldLead(c)
	if !ok {
		return
	}
	ev := s.newID()
	var m mutation.Mutation
	switch s.pick(map[string]int{"call": 35, "note": 15, "confirm": 12, "cancel": 6, "release": 7, "edit": 14, "edit-name": 6, "stale-edit": 5}) {
	case "call":
		o := []lead.Outcome{lead.OutcomeNoAnswer, lead.OutcomeCallback, lead.OutcomeUnreachable, lead.OutcomeWrongNumber}[s.rng.IntN(4)]
		rc := mutation.RecordCall{Lead: l.ID, EventID: ev, Outcome: o, Note: "call"}
		if o == lead.OutcomeCallback {
			rc.CallbackAt = s.now.Add(2 * time.Hour)
		}
		m = rc
	case "note":
		m = mutation.AddNote{Lead: l.ID, EventID: ev, Note: fmt.Sprintf("note %d", s.rng.IntN(1000))}
	case "confirm":
		m = mutation.ConfirmLead{Lead: l.ID, EventID: ev}
	case "cancel":
		m = mutation.CancelLead{Lead: l.ID, EventID: ev, Reason: "customer changed their mind"}
	case "release":
		m = mutation.ReleaseLead{Lead: l.ID, EventID: ev}
	case "edit":
		m = mutation.EditLead{Lead: l.ID, EventID: ev, Edits: mutation.Edits{
			Address: &mutation.Change[string]{Old: l.Address, New: fmt.Sprintf("%d Bd Zerktouni", s.rng.IntN(100000))}}}
	case "edit-name": // races the seller's edits of the same field
		m = mutation.EditLead{Lead: l.ID, EventID: ev, Edits: mutation.Edits{
			CustomerName: &mutation.Change[string]{Old: l.CustomerName, New: fmt.Sprintf("Client %d", s.rng.IntN(100000))}}}
	case "stale-edit":
		m = mutation.EditLead{Lead: l.ID, EventID: ev, Edits: mutation.Edits{
			Address: &mutation.Change[string]{Old: "not what it was", New: "Hay Riad"}}}
	}
	s.do(ctx, c, m, ev)
}

func (s *Sim) sellerDo(ctx context.Context, c *client) {
	l, ok := s.heldLead(c)
	if !ok {
		return
	}
	ev := s.newID()
	var m mutation.Mutation
	switch s.pick(map[string]int{"assign": 40, "edit": 35, "cancel": 15, "note": 10}) {
	case "assign":
		to := uuid.Nil
		if i := s.rng.IntN(len(s.clients)); i > 0 {
			to = s.clients[i].user
		}
		m = mutation.AssignLead{Lead: l.ID, EventID: ev, AgentID: to}
	case "edit":
		m = mutation.EditLead{Lead: l.ID, EventID: ev, Edits: mutation.Edits{
			CustomerName: &mutation.Change[string]{Old: l.CustomerName, New: fmt.Sprintf("Client %d", s.rng.IntN(100000))}}}
	case "cancel":
		m = mutation.CancelLead{Lead: l.ID, EventID: ev, Reason: "out of stock"}
	case "note":
		m = mutation.AddNote{Lead: l.ID, EventID: ev, Note: "seller note"}
	}
	s.do(ctx, c, m, ev)
}

func (s *Sim) do(ctx context.Context, c *client, m mutation.Mutation, ev uuid.UUID) {
	var id int64
	err, crashed := s.guard(c, func() error {
		var err error
		id, err = c.sc.Do(ctx, s.store, m)
		return err
	})
	s.trace("  %s: do %s %v on %s: id %d err %v crashed %v", c.name, m.Name(), m, m.LeadID(), id, err, crashed)
	switch {
	case crashed:
		// Killed around the local commit: not acknowledged to the user.
	case err != nil:
		var rej *mutation.Rejection
		if errors.As(err, &rej) {
			s.count(s.report.Actions, "local-reject:"+string(rej.Code))
			return
		}
		// Refused before applying (e.g. the replica no longer knows the store).
		s.count(s.report.Actions, "local-refused")
	default:
		c.acked = append(c.acked, acked{id: id, event: ev, name: m.Name(), lead: m.LeadID()})
	}
}

// togglePool narrows or widens an agent's view of the pool: a permission
// change, after which their replica must drop the store and sync it again.
func (s *Sim) togglePool(ctx context.Context) {
	c := s.clients[1+s.rng.IntN(len(s.clients)-1)]
	if c.removed {
		return
	}
	req := &leadifyv1.SetMemberPermissionsRequest{StoreId: s.store.String(), UserId: c.user.String()}
	if s.rng.IntN(2) == 0 {
		req.Revoked = []string{"leads.view_pool"}
	}
	if _, err := s.seller.Accounts.SetMemberPermissions(ctx, connect.NewRequest(req)); err != nil {
		s.t.Fatalf("set permissions of %s: %v", c.name, err)
	}
}

// toggleMember removes an agent from the store, or invites a removed one back.
func (s *Sim) toggleMember(ctx context.Context) {
	c := s.clients[1+s.rng.IntN(len(s.clients)-1)]
	if !c.removed {
		if _, err := s.seller.Accounts.RemoveMember(ctx, connect.NewRequest(&leadifyv1.RemoveMemberRequest{
			StoreId: s.store.String(), UserId: c.user.String()})); err != nil {
			s.t.Fatalf("remove %s: %v", c.name, err)
		}
		c.removed = true
		return
	}
	inv, err := s.seller.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: s.store.String(),
		Email: c.email, Role: leadifyv1.Role_ROLE_AGENT}))
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.env.ClientsFor("").Auth.AcceptInvitation(ctx, connect.NewRequest(&leadifyv1.AcceptInvitationRequest{
		Token: inv.Msg.Token, Password: servertest.Password})); err != nil {
		s.t.Fatalf("re-add %s: %v", c.name, err)
	}
	c.removed = false
}
