package syncclient_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/syncclient"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// replica is a desktop replica (its own SQLite file) synced through the real server.
type replica struct {
	t  *testing.T
	db *localstore.DB
	c  *syncclient.Client
}

func newReplica(t *testing.T, env *servertest.Env, who *servertest.Clients, pageRows int32) *replica {
	t.Helper()
	db, err := localstore.Open(t.Context(), filepath.Join(t.TempDir(), "replica.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return &replica{t: t, db: db, c: client(t, env.URL, who.Token, db, pageRows)}
}

func client(t *testing.T, url, token string, db *localstore.DB, pageRows int32) *syncclient.Client {
	c, err := syncclient.New(syncclient.Config{BaseURL: url, Token: token, DB: db, DeviceName: "test", PageRows: pageRows})
	require.NoError(t, err)
	return c
}

func (r *replica) sync() {
	r.t.Helper()
	require.NoError(r.t, r.c.Sync(context.Background()))
}

func (r *replica) do(store uuid.UUID, m mutation.Mutation) int64 {
	r.t.Helper()
	id, err := r.c.Do(context.Background(), store, m)
	require.NoError(r.t, err)
	return id
}

func (r *replica) lead(id uuid.UUID) (mutation.Lead, bool) {
	r.t.Helper()
	l, _, ok, err := r.db.Lead(context.Background(), id)
	require.NoError(r.t, err)
	return l, ok
}

func (r *replica) status() syncclient.Status {
	r.t.Helper()
	st, err := r.c.Status(context.Background())
	require.NoError(r.t, err)
	return st
}

func (r *replica) events(id uuid.UUID, kind mutation.EventKind) int {
	r.t.Helper()
	evs, err := r.db.LeadEvents(context.Background(), id)
	require.NoError(r.t, err)
	n := 0
	for _, e := range evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func TestOfflineEditsThenSync(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "offline")
	ids := env.SeedLeads(tn.StoreID, 3, "Offline")
	seller := newReplica(t, env, tn.Seller, 0)
	seller.sync()

	// Offline: the same replica behind an address nobody answers.
	offline := client(t, "http://127.0.0.1:1", tn.Seller.Token, seller.db, 0)
	_, err := offline.Do(t.Context(), tn.StoreID, &mutation.AddNote{Lead: ids[0], EventID: uuid.New(), Note: "offline note"})
	require.NoError(t, err)
	_, err = offline.Do(t.Context(), tn.StoreID, &mutation.ConfirmLead{Lead: ids[1], EventID: uuid.New()})
	require.NoError(t, err)
	_, err = offline.Do(t.Context(), tn.StoreID, &mutation.ConfirmLead{Lead: ids[1], EventID: uuid.New()})
	var rej *mutation.Rejection
	require.ErrorAs(t, err, &rej, "a local rejection is returned, nothing queued")
	require.Equal(t, mutation.CodeTransition, rej.Code)

	require.Error(t, offline.Sync(t.Context()))
	st, err := offline.Status(t.Context())
	require.NoError(t, err)
	require.False(t, st.Online)
	require.Equal(t, 2, st.Pending)
	l, _ := seller.lead(ids[1])
	require.Equal(t, lead.StatusConfirmed, l.Status, "applied optimistically")

	seller.sync()
	st = seller.status()
	require.True(t, st.Online)
	require.Zero(t, st.Pending)
	require.Zero(t, st.Conflicts)
	require.False(t, st.LastSync.IsZero())

	other := newReplica(t, env, tn.Seller, 0)
	other.sync()
	l, _ = other.lead(ids[1])
	require.Equal(t, lead.StatusConfirmed, l.Status)
	require.Equal(t, 1, other.events(ids[0], mutation.EventNote))
	require.Equal(t, 1, seller.events(ids[0], mutation.EventNote), "the local event was replaced by the server's, not doubled")
}

func TestAgentAndSellerConverge(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "converge")
	env.SeedLeads(tn.StoreID, 6, "Converge")
	agent, seller := newReplica(t, env, tn.Agent, 0), newReplica(t, env, tn.Seller, 0)
	agent.sync()
	seller.sync()
	mine, err := agent.c.Claim(t.Context(), tn.StoreID, 2)
	require.NoError(t, err)
	require.Len(t, mine, 2)
	a, b := uuid.MustParse(mine[0]), uuid.MustParse(mine[1])
	l, ok := agent.lead(a)
	require.True(t, ok)
	require.Equal(t, tn.Agent.UserID, l.AssignedTo)
	require.NotEmpty(t, l.PhoneE164, "a claimed lead arrives in full")

	agent.do(tn.StoreID, &mutation.RecordCall{Lead: a, EventID: uuid.New(), Outcome: lead.OutcomeNoAnswer})
	agent.do(tn.StoreID, &mutation.RecordCall{Lead: a, EventID: uuid.New(), Outcome: lead.OutcomeNoAnswer})
	seller.sync()
	seller.do(tn.StoreID, &mutation.EditLead{Lead: b, EventID: uuid.New(),
		Edits: mutation.Edits{Address: &mutation.Change[string]{Old: "Converge street", New: "2 Rue Neuve"}}})
	agent.sync()
	seller.sync()
	agent.sync()

	for _, id := range []uuid.UUID{a, b} {
		x, _ := agent.lead(id)
		y, _ := seller.lead(id)
		require.Equal(t, y.Status, x.Status)
		require.Equal(t, y.Address, x.Address)
		require.Equal(t, y.CallAttempts, x.CallAttempts)
		require.Equal(t, y.Version, x.Version)
	}
	x, _ := seller.lead(a)
	require.Equal(t, int32(2), x.CallAttempts)
	y, _ := agent.lead(b)
	require.Equal(t, "2 Rue Neuve", y.Address, "the seller's edit reached the agent")
	require.Zero(t, agent.status().Pending)
	require.Zero(t, seller.status().Pending)
}

func TestLostPushReplyIsAnsweredFromTheRecord(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "lostreply")
	ids := env.SeedLeads(tn.StoreID, 1, "Lost")
	r := newReplica(t, env, tn.Seller, 0)
	r.sync()
	r.do(tn.StoreID, &mutation.RecordCall{Lead: ids[0], EventID: uuid.New(), Outcome: lead.OutcomeNoAnswer})

	// The push reaches the server but its reply is lost: send it as the client would.
	client, err := r.db.ClientID(t.Context())
	require.NoError(t, err)
	out, err := r.db.Outbox(t.Context(), 0, true, 10)
	require.NoError(t, err)
	require.Len(t, out, 1)
	_, err = tn.Seller.Sync.Push(t.Context(), connect.NewRequest(&leadifyv1.PushRequest{ClientId: client.String(),
		Mutations: []*leadifyv1.Mutation{{MutationId: out[0].MutationID, StoreId: out[0].StoreID, Name: out[0].Name,
			Version: out[0].Version, Args: out[0].Args}}}))
	require.NoError(t, err)

	r.sync() // pushes it again: a repeat
	require.Zero(t, r.status().Pending)
	other := newReplica(t, env, tn.Seller, 0)
	other.sync()
	l, _ := other.lead(ids[0])
	require.Equal(t, int32(1), l.CallAttempts, "applied exactly once")
	require.Equal(t, 1, other.events(ids[0], mutation.EventCall))
	l, _ = r.lead(ids[0])
	require.Equal(t, int32(1), l.CallAttempts)
}

func TestRejectionBecomesAConflict(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "conflict")
	env.SeedLeads(tn.StoreID, 2, "Conflict")
	agent, seller := newReplica(t, env, tn.Agent, 0), newReplica(t, env, tn.Seller, 0)
	agent.sync()
	mine, err := agent.c.Claim(t.Context(), tn.StoreID, 1)
	require.NoError(t, err)
	id := uuid.MustParse(mine[0])
	seller.sync()

	agent.do(tn.StoreID, &mutation.ConfirmLead{Lead: id, EventID: uuid.New()}) // offline, not yet pushed
	seller.do(tn.StoreID, &mutation.CancelLead{Lead: id, EventID: uuid.New(), Reason: "customer changed their mind"})
	seller.sync()
	agent.sync()

	st := agent.status()
	require.Zero(t, st.Pending)
	require.Equal(t, 1, st.Conflicts)
	cs, err := agent.db.Conflicts(t.Context())
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, "ConfirmLead", cs[0].Name)
	require.Equal(t, id.String(), cs[0].LeadID)
	require.Equal(t, string(mutation.CodeTransition), cs[0].Code)
	require.Contains(t, cs[0].Reason, "cancelled")
	l, _ := agent.lead(id)
	require.Equal(t, lead.StatusCancelled, l.Status, "the optimistic confirm was rolled back")
	require.NoError(t, agent.db.MarkConflictsSeen(t.Context()))
	require.Zero(t, agent.status().Conflicts)
}

func TestLeaseStolenWhileOffline(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	env := servertest.Start(t, servertest.WithClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }))
	tn := env.NewTenant(env.Admin(), "stolen")
	env.SeedLeads(tn.StoreID, 1, "Stolen")
	sara := newReplica(t, env, tn.Agent, 0)
	sara.sync()
	got, err := sara.c.Claim(t.Context(), tn.StoreID, 1)
	require.NoError(t, err)
	id := uuid.MustParse(got[0])
	sara.do(tn.StoreID, &mutation.RecordCall{Lead: id, EventID: uuid.New(), Outcome: lead.OutcomeNoAnswer, Note: "offline"})

	inv, err := tn.Seller.Accounts.InviteMember(t.Context(), connect.NewRequest(&leadifyv1.InviteMemberRequest{
		StoreId: tn.StoreID.String(), Email: "karim@stolen.test", Role: leadifyv1.Role_ROLE_AGENT}))
	require.NoError(t, err)
	acc, err := env.ClientsFor("").Auth.AcceptInvitation(t.Context(), connect.NewRequest(&leadifyv1.AcceptInvitationRequest{
		Token: inv.Msg.Token, FullName: "Karim", Password: servertest.Password}))
	require.NoError(t, err)
	karim := newReplica(t, env, env.ClientsFor(acc.Msg.Session.Token), 0)
	offset.Store(int64(25 * time.Hour))
	stolen, err := karim.c.Claim(t.Context(), tn.StoreID, 1)
	require.NoError(t, err)
	require.Equal(t, got, stolen)

	sara.sync()
	cs, err := sara.db.Conflicts(t.Context())
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, string(mutation.CodeNotHolder), cs[0].Code)
	require.Contains(t, cs[0].Reason, "Karim")
	_, ok := sara.lead(id)
	require.False(t, ok, "the lead left her replica")
	require.Zero(t, sara.status().Pending)
}

func TestRemovedMembershipDropsTheStoreKeepsTheOutbox(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "removed")
	env.SeedLeads(tn.StoreID, 3, "Removed")
	agent := newReplica(t, env, tn.Agent, 0)
	agent.sync()
	mine, err := agent.c.Claim(t.Context(), tn.StoreID, 1)
	require.NoError(t, err)
	id := uuid.MustParse(mine[0])
	agent.do(tn.StoreID, &mutation.AddNote{Lead: id, EventID: uuid.New(), Note: "before removal"})

	_, err = tn.Seller.Accounts.RemoveMember(t.Context(), connect.NewRequest(&leadifyv1.RemoveMemberRequest{
		StoreId: tn.StoreID.String(), UserId: tn.Agent.UserID.String()}))
	require.NoError(t, err)
	require.NoError(t, agent.c.Pull(t.Context()))
	n, err := agent.db.LeadCount(t.Context(), tn.StoreID)
	require.NoError(t, err)
	require.Zero(t, n, "the store's rows are dropped")
	require.Equal(t, 1, agent.status().Pending, "the outbox is kept")

	agent.sync()
	st := agent.status()
	require.Zero(t, st.Pending)
	require.Equal(t, 1, st.Conflicts, "the server's answer is a conflict, not silence")
}

func TestPagesAndRebaseAcrossPages(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "pagesize")
	ids := env.SeedLeads(tn.StoreID, 25, "Paged")
	r := newReplica(t, env, tn.Seller, 10)
	r.sync()
	n, err := r.db.LeadCount(t.Context(), tn.StoreID)
	require.NoError(t, err)
	require.Equal(t, 25, n)

	// Pending local work survives several pages of others' changes.
	r.do(tn.StoreID, &mutation.AddNote{Lead: ids[0], EventID: uuid.New(), Note: "mine"})
	other := newReplica(t, env, tn.Seller, 0)
	other.sync()
	for _, id := range ids[1:] {
		other.do(tn.StoreID, &mutation.ConfirmLead{Lead: id, EventID: uuid.New()})
	}
	other.sync()
	require.NoError(t, r.c.Pull(t.Context()))
	require.Equal(t, 1, r.status().Pending)
	require.Equal(t, 1, r.events(ids[0], mutation.EventNote), "re-applied after each page")
	l, _ := r.lead(ids[24])
	require.Equal(t, lead.StatusConfirmed, l.Status)
	r.sync()
	require.Zero(t, r.status().Pending)
	require.Equal(t, 1, r.events(ids[0], mutation.EventNote))
}

func TestResyncKeepsPendingWork(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "resync")
	env.SeedLeads(tn.StoreID, 4, "Resync")
	agent := newReplica(t, env, tn.Agent, 0)
	agent.sync()
	mine, err := agent.c.Claim(t.Context(), tn.StoreID, 1)
	require.NoError(t, err)
	id := uuid.MustParse(mine[0])
	agent.do(tn.StoreID, &mutation.AddNote{Lead: id, EventID: uuid.New(), Note: "kept through a resync"})

	// Narrowed permissions change the epoch: the store is dropped and pulled again.
	_, err = tn.Seller.Accounts.SetMemberPermissions(t.Context(), connect.NewRequest(&leadifyv1.SetMemberPermissionsRequest{
		StoreId: tn.StoreID.String(), UserId: tn.Agent.UserID.String(), Revoked: []string{"leads.view_pool"}}))
	require.NoError(t, err)
	require.NoError(t, agent.c.Pull(t.Context()))
	n, err := agent.db.LeadCount(t.Context(), tn.StoreID)
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the agent's own lead is replicated without the pool")
	require.Equal(t, 1, agent.status().Pending)
	require.Equal(t, 1, agent.events(id, mutation.EventNote), "the pending note is re-applied on the fresh rows")

	agent.sync()
	require.Zero(t, agent.status().Pending)
	require.Zero(t, agent.status().Conflicts)
	require.Equal(t, 1, agent.events(id, mutation.EventNote))
}

// Run, driven by Subscribe, brings another replica's change in without being asked.
func TestRunFollowsPokes(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "follow")
	ids := env.SeedLeads(tn.StoreID, 2, "Follow")
	a, b := newReplica(t, env, tn.Seller, 0), newReplica(t, env, tn.Seller, 0)
	a.sync()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return !b.status().LastSync.IsZero() }, 20*time.Second, 10*time.Millisecond,
		"the first sync, before the change")

	a.do(tn.StoreID, &mutation.ConfirmLead{Lead: ids[1], EventID: uuid.New()})
	a.sync()
	require.Eventually(t, func() bool {
		l, ok := b.lead(ids[1])
		return ok && l.Status == lead.StatusConfirmed
	}, 20*time.Second, 20*time.Millisecond)
	require.True(t, b.status().Online)
}

// A server that lost mutations the replica already settled asks to resend
// from a gap the outbox cannot fill: Push says so instead of skipping ids.
func TestPushReportsAGapItCannotFill(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "gap")
	ids := env.SeedLeads(tn.StoreID, 1, "Gap")
	r := newReplica(t, env, tn.Seller, 0)
	r.sync()
	r.do(tn.StoreID, &mutation.AddNote{Lead: ids[0], EventID: uuid.New(), Note: "first"})
	r.sync()
	client, err := r.db.ClientID(t.Context())
	require.NoError(t, err)
	env.InStore(func(tx *postgres.Tx) error {
		_, err := tx.Exec(t.Context(), `UPDATE sync_clients SET last_mutation_id = 0 WHERE client_id = $1`, client)
		return err
	}, tn.StoreID)
	r.do(tn.StoreID, &mutation.AddNote{Lead: ids[0], EventID: uuid.New(), Note: "second"})
	err = r.c.Push(t.Context())
	require.ErrorContains(t, err, "no longer holds")
	require.Equal(t, 1, r.status().Pending, "the unsent mutation stays queued")
}
