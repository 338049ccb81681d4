package syncsim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/servertest"
)

// crashPoints are where a client may be killed: before and after a push
// reaches the server, between pulling a page and applying it, inside the
// apply (after undo and apply, before the cursor moves with the commit),
// and around local commits.
var crashPoints = []string{"push:before-send", "push:after-reply", "pull:before-apply", "apply:before-commit",
	"apply:after-commit", "do:before-commit", "do:after-commit", "results:before-commit"}

func (s *Sim) step(ctx context.Context) {
	action := s.pick(map[string]int{
		"agent-do": 30, "seller-do": 10, "sync": 18, "pull": 5, "claim": 8, "offline": 4, "online": 6, "clock": 5,
		"import": 4, "deliver-delayed": 4, "crash": 3, "permissions": 2, "membership": 2,
	})
	s.count(s.report.Actions, action)
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
		s.env.SeedLeads(s.store, 1+s.rng.IntN(4), "Imported")
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
	case "membership":
		s.toggleMember(ctx)
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
			rc.CallbackAt = time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
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
		c.acked = append(c.acked, acked{id: id, event: ev, name: m.Name()})
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
