package mutation_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/mutation"
)

var (
	storeID  = uuid.MustParse("01900000-0000-7000-8000-000000000001")
	leadID   = uuid.MustParse("01900000-0000-7000-8000-0000000000a1")
	otherID  = uuid.MustParse("01900000-0000-7000-8000-0000000000a2") // another lead
	eventID  = uuid.MustParse("01900000-0000-7000-8000-0000000000e1")
	saraID   = uuid.MustParse("01900000-0000-7000-8000-00000000a001") // agent, holds the lead
	karimID  = uuid.MustParse("01900000-0000-7000-8000-00000000a002") // another agent
	sellerID = uuid.MustParse("01900000-0000-7000-8000-00000000b001")
	adminID  = uuid.MustParse("01900000-0000-7000-8000-00000000c001")

	now   = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	lease = 24 * time.Hour
	names = map[uuid.UUID]string{saraID: "Sara", karimID: "Karim"}
)

// agentPerms are an agent's default lead permissions (no leads.assign).
var agentPerms = []string{"leads.claim", "leads.call", "leads.confirm", "leads.cancel", "leads.edit"}

func env(id uuid.UUID, role mutation.Role, perms ...string) mutation.Env {
	set := map[string]bool{}
	for _, p := range perms {
		set[p] = true
	}
	return mutation.Env{
		Actor: mutation.Actor{UserID: id, Name: names[id], Role: role, Permissions: set},
		Now:   now,
		Lease: lease,
		Names: names,
	}
}

func sara() mutation.Env  { return env(saraID, mutation.RoleAgent, agentPerms...) }
func karim() mutation.Env { return env(karimID, mutation.RoleAgent, agentPerms...) }
func seller() mutation.Env {
	return env(sellerID, mutation.RoleSeller, append(agentPerms, "leads.assign")...)
}
func admin() mutation.Env {
	return env(adminID, mutation.RoleAdmin, append(agentPerms, "leads.assign")...)
}

// without returns e without permission perm.
func without(e mutation.Env, perm string) mutation.Env {
	e.Actor.Permissions = map[string]bool{}
	for _, p := range append(agentPerms, "leads.assign") {
		e.Actor.Permissions[p] = p != perm
	}
	return e
}

// baseLead is a new lead held by Sara, with an hour of lease left.
func baseLead() *mutation.Lead {
	return &mutation.Lead{
		ID:           leadID,
		StoreID:      storeID,
		Version:      41,
		CreatedAt:    now.Add(-48 * time.Hour),
		UpdatedAt:    now.Add(-time.Hour),
		Status:       lead.StatusNew,
		CustomerName: "Fatima Zahra",
		PhoneRaw:     "0612345678",
		PhoneE164:    "+212612345678",
		CityID:       "casablanca",
		CityRaw:      "casa",
		Address:      "12 rue des Oliviers, Maarif",
		Items:        []mutation.Item{{SKU: "ARG-50", Name: "Argan oil 50 ml", Qty: 2, UnitPrice: 120 * money.Dirham}},
		COD:          240 * money.Dirham,
		Source:       "sheet",
		Custom:       map[string]string{"size": "M"},
		AssignedTo:   saraID,
		LeaseUntil:   now.Add(time.Hour),
		CallAttempts: 1,
	}
}

// leadWith returns baseLead changed by each of fs.
func leadWith(fs ...func(*mutation.Lead)) *mutation.Lead {
	l := baseLead()
	for _, f := range fs {
		f(l)
	}
	return l
}

func status(s lead.Status) func(*mutation.Lead) {
	return func(l *mutation.Lead) { l.Status = s }
}

func heldBy(id uuid.UUID) func(*mutation.Lead) {
	return func(l *mutation.Lead) { l.AssignedTo = id }
}

func inPool(l *mutation.Lead) { l.AssignedTo, l.LeaseUntil = uuid.Nil, time.Time{} }

func leaseLapsed(l *mutation.Lead) { l.LeaseUntil = now.Add(-time.Hour) }

func deleted(l *mutation.Lead) {
	t := now.Add(-time.Minute)
	l.DeletedAt = &t
}

func dupOf(l *mutation.Lead) {
	l.Status, l.DuplicateOf = lead.StatusDuplicate, otherID
}

// sample is a mutation that applies to its lead when Sara, the holder, sends
// it.
type sample struct {
	m    mutation.Mutation
	lead func() *mutation.Lead
	perm string
}

// samples returns one applicable sample of every mutation.
func samples() []sample {
	l, e := leadID, eventID
	return []sample{
		{mutation.RecordCall{Lead: l, EventID: e, Outcome: lead.OutcomeNoAnswer, Note: "rang 5 times"}, baseLead, "leads.call"},
		{mutation.ConfirmLead{Lead: l, EventID: e}, baseLead, "leads.confirm"},
		{mutation.CancelLead{Lead: l, EventID: e, Reason: "customer changed their mind"}, baseLead, "leads.cancel"},
		{mutation.MarkDuplicate{Lead: l, EventID: e, DuplicateOf: otherID}, baseLead, "leads.edit"},
		{mutation.UnmarkDuplicate{Lead: l, EventID: e}, func() *mutation.Lead { return leadWith(dupOf) }, "leads.edit"},
		{mutation.EditLead{Lead: l, EventID: e, Edits: mutation.Edits{Address: &mutation.Change[string]{Old: "12 rue des Oliviers, Maarif", New: "14 rue des Oliviers"}}}, baseLead, "leads.edit"},
		{mutation.AddNote{Lead: l, EventID: e, Note: "prefers evening calls"}, baseLead, "leads.call"},
		{mutation.ReleaseLead{Lead: l, EventID: e}, baseLead, "leads.claim"},
		{mutation.AssignLead{Lead: l, EventID: e, AgentID: karimID}, baseLead, "leads.assign"},
	}
}

// requireApplied checks what every applied mutation promises, and returns
// the result.
func requireApplied(t *testing.T, e mutation.Env, cur *mutation.Lead, m mutation.Mutation) mutation.Result {
	t.Helper()
	before := clone(cur)
	res, rej := m.Apply(e, cur)
	require.Nil(t, rej, "rejected")
	require.Equal(t, before, cur, "Apply modified its input")
	requireInvariants(t, e, cur, res)
	return res
}

func requireInvariants(t *testing.T, e mutation.Env, cur *mutation.Lead, res mutation.Result) {
	t.Helper()
	l := res.Lead
	require.Equal(t, cur.ID, l.ID)
	require.Equal(t, cur.StoreID, l.StoreID)
	require.Equal(t, cur.CreatedAt, l.CreatedAt)
	require.Equal(t, cur.Version, l.Version)
	require.Equal(t, e.Now, l.UpdatedAt)
	if l.Status != lead.StatusCallback {
		require.True(t, l.CallbackAt.IsZero(), "callback time outside the callback status")
	}
	if l.Status != cur.Status {
		require.True(t, lead.CanTransition(cur.Status, l.Status), "illegal %v → %v", cur.Status, l.Status)
	}
	require.NotEmpty(t, res.Events)
	for _, ev := range res.Events {
		require.NotEqual(t, uuid.Nil, ev.ID)
		require.Equal(t, l.ID, ev.LeadID)
		require.Equal(t, l.StoreID, ev.StoreID)
		require.Equal(t, e.Actor.UserID, ev.ActorID)
		require.Equal(t, e.Now, ev.CreatedAt)
		require.Zero(t, ev.Version)
		if cur.Status != l.Status {
			require.Equal(t, cur.Status, ev.FromStatus)
			require.Equal(t, l.Status, ev.ToStatus)
		} else {
			require.Zero(t, ev.FromStatus)
			require.Zero(t, ev.ToStatus)
		}
	}
}

// clone deep-copies l, so that a test can tell whether Apply modified it.
func clone(l *mutation.Lead) *mutation.Lead {
	if l == nil {
		return nil
	}
	c := *l
	c.Items = slices.Clone(l.Items)
	c.Custom = maps.Clone(l.Custom)
	return &c
}

func requireRejected(t *testing.T, e mutation.Env, cur *mutation.Lead, m mutation.Mutation, code mutation.Code, reason string) {
	t.Helper()
	before := clone(cur)
	res, rej := m.Apply(e, cur)
	require.NotNil(t, rej, "applied: %+v", res)
	require.Equal(t, code, rej.Code, rej.Reason)
	require.NotEmpty(t, rej.Reason)
	if reason != "" {
		require.Equal(t, reason, rej.Reason)
	}
	require.Zero(t, res)
	require.Equal(t, before, cur, "Apply modified its input")
}
