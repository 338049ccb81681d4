package syncer_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// replica is a minimal client for these tests: it follows cursors and keeps the
// rows it was sent, in the view it was sent them.
type replica struct {
	t        testing.TB
	c        *servertest.Clients
	client   string
	nextID   int64
	cursors  map[string]*leadifyv1.Cursor
	leads    map[string]*leadifyv1.Change
	events   map[string]*leadifyv1.LeadEventRow
	rejected map[int64]*leadifyv1.RejectionRow
}

func newReplica(t testing.TB, c *servertest.Clients) *replica {
	r := &replica{t: t, c: c, client: uuid.NewString(), cursors: map[string]*leadifyv1.Cursor{},
		leads: map[string]*leadifyv1.Change{}, events: map[string]*leadifyv1.LeadEventRow{}, rejected: map[int64]*leadifyv1.RejectionRow{}}
	hs, err := c.Sync.Handshake(context.Background(), connect.NewRequest(&leadifyv1.HandshakeRequest{ClientId: r.client,
		SchemaVersion: syncer.SchemaVersion, MutationSetHash: mutation.SetHash(), DeviceName: "test"}))
	require.NoError(t, err)
	r.nextID = hs.Msg.NextMutationId
	return r
}

// pull pulls until no scope has more, returning the number of pages.
func (r *replica) pull(maxRows int32) int {
	pages := 0
	for {
		req := &leadifyv1.PullRequest{ClientId: r.client, MaxRows: maxRows}
		for _, c := range r.cursors {
			req.Cursors = append(req.Cursors, c)
		}
		resp, err := r.c.Sync.Pull(context.Background(), connect.NewRequest(req))
		require.NoError(r.t, err)
		pages++
		more := false
		for _, id := range resp.Msg.RemovedScopes {
			delete(r.cursors, id)
			r.dropStore(id)
		}
		for _, sc := range resp.Msg.Scopes {
			if sc.ResyncRequired {
				r.dropStore(sc.ScopeId)
			}
			prev := r.cursors[sc.ScopeId]
			for _, ch := range sc.Changes {
				if prev != nil {
					require.Greater(r.t, ch.Version, prev.Version, "a page never repeats a version")
				}
				require.LessOrEqual(r.t, ch.Version, sc.Cursor, "a page ends on its cursor")
				switch {
				case ch.Table == "leads" && ch.Deleted:
					delete(r.leads, ch.Id)
				case ch.Table == "leads":
					r.leads[ch.Id] = ch
				case ch.Table == "lead_events" && ch.Deleted:
					delete(r.events, ch.Id)
				case ch.Table == "lead_events":
					r.events[ch.Id] = ch.GetLeadEvent()
				case ch.Table == "rejections":
					rj := ch.GetRejection()
					r.rejected[rj.MutationId] = rj
				}
			}
			r.cursors[sc.ScopeId] = &leadifyv1.Cursor{ScopeId: sc.ScopeId, Version: sc.Cursor, Epoch: sc.Epoch,
				Initial: sc.Initial, InitialPurged: sc.InitialPurged}
			more = more || sc.HasMore
		}
		if !more {
			return pages
		}
	}
}

func (r *replica) dropStore(store string) {
	for id, ch := range r.leads {
		if ch.GetLead().StoreId == store {
			delete(r.leads, id)
		}
	}
	for id, e := range r.events {
		if e.StoreId == store {
			delete(r.events, id)
		}
	}
	delete(r.cursors, store)
}

func (r *replica) mutation(store uuid.UUID, m mutation.Mutation) *leadifyv1.Mutation {
	name, version, args, err := mutation.Encode(m)
	require.NoError(r.t, err)
	pb := &leadifyv1.Mutation{MutationId: r.nextID, StoreId: store.String(), Name: name, Version: int32(version), Args: args}
	r.nextID++
	return pb
}

func (r *replica) push(ms ...*leadifyv1.Mutation) *leadifyv1.PushResponse {
	resp, err := r.c.Sync.Push(context.Background(), connect.NewRequest(&leadifyv1.PushRequest{ClientId: r.client, Mutations: ms}))
	require.NoError(r.t, err)
	return resp.Msg
}

func claim(t testing.TB, c *servertest.Clients, store uuid.UUID, n int32) []string {
	resp, err := c.Sync.ClaimLeads(context.Background(), connect.NewRequest(&leadifyv1.ClaimLeadsRequest{StoreId: store.String(), Count: n}))
	require.NoError(t, err)
	return resp.Msg.LeadIds
}

func TestSyncedTablesOnlyThroughTheWriter(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "guard")
	ids := env.SeedLeads(tn.StoreID, 1, "Guarded")
	ctx := context.Background()
	for _, stmt := range []string{
		`UPDATE leads SET status = 'confirmed'`,
		`INSERT INTO lead_events (store_id, id, lead_id, version, created_at, kind) SELECT store_id, gen_random_uuid(), id, 99, now(), 'note' FROM leads`,
		`DELETE FROM leads`,
	} {
		err := postgres.InTx(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
			_, err := tx.Exec(ctx, stmt)
			return err
		})
		require.ErrorContains(t, err, "versioned-write helper", stmt)
	}
	// Inside the helper, a row must still get a fresh version.
	err := syncer.Write(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(w *syncer.Writer) error {
		_, err := w.Tx.Exec(ctx, `UPDATE leads SET status = 'confirmed' WHERE id = $1`, ids[0])
		return err
	})
	require.ErrorContains(t, err, "without a new version")
}

func TestClaimPushPullAndViews(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.Admin()
	tn := env.NewTenant(admin, "flow")
	ctx := context.Background()
	env.SeedLeads(tn.StoreID, 12, "Customer")

	// A second agent in the same store.
	inv, err := tn.Seller.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: tn.StoreID.String(),
		Email: "second@flow.test", Role: leadifyv1.Role_ROLE_AGENT}))
	require.NoError(t, err)
	acc, err := env.ClientsFor("").Auth.AcceptInvitation(ctx, connect.NewRequest(&leadifyv1.AcceptInvitationRequest{Token: inv.Msg.Token,
		FullName: "Second Agent", Password: servertest.Password}))
	require.NoError(t, err)
	second := env.ClientsFor(acc.Msg.Session.Token)

	mine := claim(t, tn.Agent, tn.StoreID, 3)
	require.Len(t, mine, 3)
	theirs := claim(t, second, tn.StoreID, 2)
	require.Len(t, theirs, 2)
	require.Empty(t, intersect(mine, theirs), "first come, first served")

	agent, other, seller := newReplica(t, tn.Agent), newReplica(t, second), newReplica(t, tn.Seller)
	agent.pull(5)
	other.pull(1000)
	seller.pull(1000)

	require.Len(t, seller.leads, 12, "sellers see every lead")
	for _, ch := range seller.leads {
		require.False(t, ch.Redacted)
		require.NotEmpty(t, ch.GetLead().PhoneE164)
	}
	require.Len(t, agent.leads, 12-2, "an agent sees their leads and the pool, not another agent's")
	for id, ch := range agent.leads {
		if contains(mine, id) {
			require.False(t, ch.Redacted)
			require.Equal(t, "+212612345678", ch.GetLead().PhoneE164)
		} else {
			require.True(t, ch.Redacted, "pool leads are redacted for agents")
			require.Empty(t, ch.GetLead().PhoneE164)
			require.Empty(t, ch.GetLead().CustomerName)
			require.Empty(t, ch.GetLead().Address)
		}
	}
	for _, id := range theirs {
		require.NotContains(t, agent.leads, id)
	}

	// Record a call on a claimed lead; it reaches the seller, not the other agent.
	lid := uuid.MustParse(mine[0])
	m1 := agent.mutation(tn.StoreID, &mutation.RecordCall{Lead: lid, EventID: uuid.New(), Outcome: lead.OutcomeNoAnswer, Note: "rings out"})
	resp := agent.push(m1)
	require.Len(t, resp.Results, 1)
	require.True(t, resp.Results[0].Applied, resp.Results[0].Reason)
	require.Equal(t, tn.StoreID.String(), resp.Results[0].ScopeId)

	// The same mutation again (a lost reply): answered from the record, not applied twice.
	again := agent.push(m1)
	require.Equal(t, resp.Results[0].Version, again.Results[0].Version)
	agent.pull(100)
	seller.pull(100)
	other.pull(100)
	require.Equal(t, "no_answer", agent.leads[mine[0]].GetLead().Status)
	require.Equal(t, int32(1), seller.leads[mine[0]].GetLead().CallAttempts, "applied exactly once")
	var notes int
	for _, e := range seller.events {
		if e.LeadId == mine[0] && e.Kind == string(mutation.EventCall) {
			notes++
		}
	}
	require.Equal(t, 1, notes)
	for _, e := range other.events {
		require.NotEqual(t, mine[0], e.LeadId, "another agent never sees this lead's history")
	}

	// A gap is refused with the id to resend from; nothing after it is looked at.
	skip := agent.mutation(tn.StoreID, &mutation.AddNote{Lead: lid, EventID: uuid.New(), Note: "lost"})
	late := agent.mutation(tn.StoreID, &mutation.AddNote{Lead: lid, EventID: uuid.New(), Note: "after the gap"})
	gap := agent.push(late)
	require.Equal(t, skip.MutationId, gap.ResendFrom)
	require.Empty(t, gap.Results)
	both := agent.push(skip, late)
	require.Len(t, both.Results, 2)
	require.True(t, both.Results[0].Applied && both.Results[1].Applied)

	// The other agent acting on this agent's lead is rejected, and the
	// rejection reaches them as a row even if the reply is lost.
	bad := other.mutation(tn.StoreID, &mutation.ConfirmLead{Lead: lid, EventID: uuid.New()})
	res := other.push(bad)
	require.False(t, res.Results[0].Applied)
	require.Equal(t, string(mutation.CodeNotHolder), res.Results[0].Code)
	other.pull(100)
	require.Contains(t, other.rejected, bad.MutationId)
	require.NotEmpty(t, other.rejected[bad.MutationId].Reason)
	agent.pull(100)
	require.Empty(t, agent.rejected)

	// Releasing the lead: it goes back to the pool, redacted for agents, and its
	// history leaves the releasing agent's replica.
	rel := agent.push(agent.mutation(tn.StoreID, &mutation.ReleaseLead{Lead: lid, EventID: uuid.New()}))
	require.True(t, rel.Results[0].Applied, rel.Results[0].Reason)
	agent.pull(100)
	require.True(t, agent.leads[mine[0]].Redacted)
	for _, e := range agent.events {
		require.NotEqual(t, mine[0], e.LeadId, "the history of a released lead is dropped")
	}
}

// A commit pokes every subscriber of a store at once; those who see the same
// view of the same versions are answered from one read, and get what each
// would have read alone.
func TestPullsOfTheSameVersionsShareOneRead(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "share")
	leads := env.SeedLeads(tn.StoreID, 4, "Shared")
	claimed := claim(t, tn.Agent, tn.StoreID, 1)
	target := leads[0]
	if contains(claimed, target.String()) {
		target = leads[1]
	}
	subs := []*replica{newReplica(t, tn.Seller), newReplica(t, tn.Seller), newReplica(t, tn.Seller)}
	agent := newReplica(t, tn.Agent)
	for _, r := range append(subs, agent) {
		r.pull(1000)
	}
	writer := newReplica(t, tn.Seller)
	writer.pull(1000)
	res := writer.push(writer.mutation(tn.StoreID, mutation.AddNote{Lead: target, EventID: uuid.New(), Note: "shared"}))
	require.True(t, res.Results[0].Applied)

	before := env.Server.Sync.SharedReads()
	var pages []*leadifyv1.ScopeChanges
	for _, r := range subs {
		resp, err := r.c.Sync.Pull(context.Background(), connect.NewRequest(&leadifyv1.PullRequest{ClientId: r.client,
			Cursors: []*leadifyv1.Cursor{r.cursors[tn.StoreID.String()]}}))
		require.NoError(t, err)
		for _, sc := range resp.Msg.Scopes {
			if sc.ScopeId == tn.StoreID.String() {
				pages = append(pages, sc)
			}
		}
	}
	require.Len(t, pages, 3)
	require.NotEmpty(t, pages[0].Changes, "the note and its lead")
	for _, p := range pages[1:] {
		require.True(t, proto.Equal(pages[0], p), "a shared answer is the same answer")
	}
	require.Equal(t, before+1, env.Server.Sync.SharedReads(), "three sellers at the same cursor: one read")

	// The agent's view differs (the lead is in the pool, redacted): a read of its own.
	agent.pull(1000)
	require.Equal(t, before+2, env.Server.Sync.SharedReads())
	require.True(t, agent.leads[target.String()].Redacted)
	for _, r := range subs {
		r.pull(1000)
		require.Len(t, r.leads, 4)
		require.False(t, r.leads[target.String()].Redacted)
	}
}

func TestPullPagesEndOnVersionBoundaries(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "pages")
	env.SeedLeads(tn.StoreID, 25, "Paged")
	r := newReplica(t, tn.Seller)
	pages := r.pull(10)
	require.Len(t, r.leads, 25)
	require.Equal(t, 3, pages, "25 rows in pages of 10")
	require.Equal(t, 1, r.pull(10), "nothing more")
}

func TestLapsedLeaseIsClaimedAndOfflineWorkIsRejected(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	env := servertest.Start(t, servertest.WithClock(clock))
	admin := env.Admin()
	tn := env.NewTenant(admin, "lease")
	ctx := context.Background()
	env.SeedLeads(tn.StoreID, 1, "Leased")
	first := claim(t, tn.Agent, tn.StoreID, 1)
	require.Len(t, first, 1)
	sara := newReplica(t, tn.Agent)
	sara.pull(100)

	inv, err := tn.Seller.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: tn.StoreID.String(),
		Email: "karim@lease.test", Role: leadifyv1.Role_ROLE_AGENT}))
	require.NoError(t, err)
	acc, err := env.ClientsFor("").Auth.AcceptInvitation(ctx, connect.NewRequest(&leadifyv1.AcceptInvitationRequest{Token: inv.Msg.Token,
		FullName: "Karim", Password: servertest.Password}))
	require.NoError(t, err)
	karim := env.ClientsFor(acc.Msg.Session.Token)
	require.Empty(t, claim(t, karim, tn.StoreID, 1), "a held lease is not claimable")

	offset.Store(int64(25 * time.Hour)) // the 24 h lease lapses
	stolen := claim(t, karim, tn.StoreID, 1)
	require.Equal(t, first, stolen)

	// Sara worked offline meanwhile: her work comes back rejected, saying why.
	lid := uuid.MustParse(first[0])
	res := sara.push(sara.mutation(tn.StoreID, &mutation.RecordCall{Lead: lid, EventID: uuid.New(), Outcome: lead.OutcomeNoAnswer}))
	require.False(t, res.Results[0].Applied)
	require.Equal(t, string(mutation.CodeNotHolder), res.Results[0].Code)
	require.Contains(t, res.Results[0].Reason, "Karim")
	sara.pull(100)
	require.NotContains(t, sara.leads, first[0], "the lead left her replica")
}

func TestMembershipChangesResyncOrDropTheScope(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "epoch")
	ctx := context.Background()
	env.SeedLeads(tn.StoreID, 3, "Epoch")
	r := newReplica(t, tn.Agent)
	r.pull(100)
	require.Len(t, r.leads, 3)

	_, err := tn.Seller.Accounts.SetMemberPermissions(ctx, connect.NewRequest(&leadifyv1.SetMemberPermissionsRequest{
		StoreId: tn.StoreID.String(), UserId: tn.Agent.UserID.String(), Revoked: []string{"leads.view_pool"}}))
	require.NoError(t, err)
	resp, err := tn.Agent.Sync.Pull(ctx, connect.NewRequest(&leadifyv1.PullRequest{ClientId: r.client,
		Cursors: []*leadifyv1.Cursor{r.cursors[tn.StoreID.String()]}}))
	require.NoError(t, err)
	var sc *leadifyv1.ScopeChanges
	for _, s := range resp.Msg.Scopes {
		if s.ScopeId == tn.StoreID.String() {
			sc = s
		}
	}
	require.NotNil(t, sc)
	require.True(t, sc.ResyncRequired, "narrowed permissions: drop the store and sync it again")
	r.pull(100)
	require.Empty(t, r.leads, "without leads.view_pool the pool is not replicated")

	_, err = tn.Seller.Accounts.RemoveMember(ctx, connect.NewRequest(&leadifyv1.RemoveMemberRequest{StoreId: tn.StoreID.String(), UserId: tn.Agent.UserID.String()}))
	require.NoError(t, err)
	resp, err = tn.Agent.Sync.Pull(ctx, connect.NewRequest(&leadifyv1.PullRequest{ClientId: r.client,
		Cursors: []*leadifyv1.Cursor{{ScopeId: tn.StoreID.String(), Version: 1, Epoch: 2}}}))
	require.NoError(t, err)
	require.Contains(t, resp.Msg.RemovedScopes, tn.StoreID.String())
}

// A commit through one server instance pokes a subscriber on another.
func TestSubscribePokesAcrossInstances(t *testing.T) {
	t.Parallel()
	a := servertest.Start(t)
	b := servertest.StartOn(t, a.DB)
	tn := a.NewTenant(a.Admin(), "poke")
	subCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onB := b.ClientsFor(tn.Seller.Token)
	stream, err := onB.Sync.Subscribe(subCtx, connect.NewRequest(&leadifyv1.SubscribeRequest{ClientId: uuid.NewString()}))
	require.NoError(t, err)
	require.True(t, stream.Receive(), "the first message says: pull now (%v)", stream.Err())

	a.SeedLeads(tn.StoreID, 1, "Poked")
	deadline := time.After(10 * time.Second)
	got := make(chan *leadifyv1.SubscribeResponse, 10)
	go func() {
		for stream.Receive() {
			got <- stream.Msg()
		}
	}()
	for {
		select {
		case msg := <-got:
			if msg.ScopeId == tn.StoreID.String() {
				require.Positive(t, msg.Version)
				return
			}
		case <-deadline:
			t.Fatal("no poke for the store")
		}
	}
}

func TestPushRefusesBadInput(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.Admin()
	tn := env.NewTenant(admin, "bad")
	other := env.NewTenant(admin, "otherbad")
	ctx := context.Background()
	ids := env.SeedLeads(tn.StoreID, 1, "Bad")
	foreign := env.SeedLeads(other.StoreID, 1, "Foreign")
	claim(t, tn.Agent, tn.StoreID, 1)
	r := newReplica(t, tn.Agent)

	_, err := tn.Agent.Sync.Push(ctx, connect.NewRequest(&leadifyv1.PushRequest{ClientId: uuid.NewString()}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "an unregistered client must hand-shake first")
	_, err = other.Agent.Sync.Push(ctx, connect.NewRequest(&leadifyv1.PushRequest{ClientId: r.client}))
	require.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "a forged client id of another user")
	_, err = tn.Agent.Sync.Handshake(ctx, connect.NewRequest(&leadifyv1.HandshakeRequest{ClientId: uuid.NewString(), SchemaVersion: 99}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))
	require.Contains(t, err.Error(), "update")
	_, err = tn.Agent.Sync.Push(ctx, connect.NewRequest(&leadifyv1.PushRequest{ClientId: r.client,
		Mutations: make([]*leadifyv1.Mutation, syncer.MaxPushBatch+1)}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))

	cases := []*leadifyv1.Mutation{
		{StoreId: tn.StoreID.String(), Name: "LaunchRockets", Version: 1, Args: []byte(`{}`)},
		{StoreId: tn.StoreID.String(), Name: "RecordCall", Version: 7, Args: []byte(`{}`)},
		{StoreId: tn.StoreID.String(), Name: "RecordCall", Version: 1, Args: []byte(`{"lead_id": 12`)},
		{StoreId: other.StoreID.String(), Name: "AddNote", Version: 1, Args: mustArgs(t, &mutation.AddNote{Lead: foreign[0], EventID: uuid.New(), Note: "x"})},
		{StoreId: tn.StoreID.String(), Name: "AddNote", Version: 1, Args: mustArgs(t, &mutation.AddNote{Lead: foreign[0], EventID: uuid.New(), Note: "x"})},
		{StoreId: tn.StoreID.String(), Name: "CancelLead", Version: 1, Args: []byte(`{"lead_id":"` + ids[0].String() + `","event_id":"` + uuid.NewString() + `","reason":""}`)},
	}
	for _, m := range cases {
		m.MutationId = r.nextID
		r.nextID++
	}
	res := r.push(cases...)
	require.Len(t, res.Results, len(cases))
	for i, x := range res.Results {
		require.False(t, x.Applied, "case %d", i)
		require.NotEmpty(t, x.Code, "case %d", i)
		require.NotEmpty(t, x.Reason, "case %d", i)
	}
	var foreignName string
	require.NoError(t, postgres.InTx(ctx, env.DB.App, postgres.StoreScope(other.StoreID), func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT customer_name || '/' || status FROM leads WHERE id = $1`, foreign[0]).Scan(&foreignName)
	}))
	require.Equal(t, "Foreign 0/new", foreignName, "another store's lead is untouched")
	r.pull(100)
	require.Len(t, r.rejected, len(cases), "every rejection is delivered as a row")
	for _, rj := range r.rejected {
		require.False(t, strings.Contains(rj.Reason, "Foreign"), "rejections do not leak other stores' data")
	}
}

func mustArgs(t *testing.T, m mutation.Mutation) []byte {
	_, _, args, err := mutation.Encode(m)
	require.NoError(t, err)
	return json.RawMessage(args)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// Purged deletions cannot be sent any more: a replica whose cursor is below
// them must re-sync, and then has neither the purged lead nor the others lost.
func TestPurgeForcesResyncBelowPurgedVersions(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "purge")
	ids := env.SeedLeads(tn.StoreID, 3, "Purged")
	ctx := context.Background()
	r := newReplica(t, tn.Seller)
	r.pull(100)
	stale := proto.Clone(r.cursors[tn.StoreID.String()]).(*leadifyv1.Cursor)

	require.NoError(t, syncer.Write(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(w *syncer.Writer) error {
		v, err := w.Reserve(tn.StoreID, 1)
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(ctx, `UPDATE leads SET deleted_at = now() - interval '40 days', version = $3 WHERE store_id = $1 AND id = $2`, tn.StoreID, ids[0], v)
		return err
	}))
	n, err := syncer.Purge(ctx, env.DB.App, time.Now().Add(-syncer.DefaultRetention))
	require.NoError(t, err)
	require.Equal(t, 1, n)

	resp, err := tn.Seller.Sync.Pull(ctx, connect.NewRequest(&leadifyv1.PullRequest{ClientId: r.client, Cursors: []*leadifyv1.Cursor{stale}}))
	require.NoError(t, err)
	for _, sc := range resp.Msg.Scopes {
		if sc.ScopeId == tn.StoreID.String() {
			require.True(t, sc.ResyncRequired, "the deletion was purged before this replica saw it")
		}
	}
	fresh := newReplica(t, tn.Seller)
	fresh.pull(100)
	require.Len(t, fresh.leads, 2)
	require.NotContains(t, fresh.leads, ids[0].String())
}

// Every table whose rows carry a sync version is guarded: a new synced table
// without the sync_guard trigger fails here.
func TestEverySyncedTableIsGuarded(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	notSynced := map[string]string{
		"sync_mutations":  "the record of pushed mutations; version is where each one wrote",
		"river_migration": "River's own schema version",
	}
	rows, err := env.DB.App.Query(context.Background(), `SELECT c.table_name,
  EXISTS (SELECT 1 FROM information_schema.triggers tr WHERE tr.event_object_table = c.table_name
          AND tr.action_statement LIKE '%sync_guard()%')
FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
WHERE c.table_schema = 'public' AND c.column_name = 'version' AND t.table_type = 'BASE TABLE'
ORDER BY 1`)
	require.NoError(t, err)
	defer rows.Close()
	synced := 0
	for rows.Next() {
		var table string
		var guarded bool
		require.NoError(t, rows.Scan(&table, &guarded))
		if _, ok := notSynced[table]; ok {
			continue
		}
		synced++
		require.True(t, guarded, "synced table %s has no sync_guard trigger", table)
	}
	require.NoError(t, rows.Err())
	require.GreaterOrEqual(t, synced, 3, "leads, lead_events and rejections at least")
}

// Confirming a lead publishes lead.confirmed in the push's transaction (parcel
// creation, stock and commissions hang on it); cancelling it afterwards
// publishes lead.cancelled.
func TestPushPublishesLeadStatusEvents(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "events")
	env.SeedLeads(tn.StoreID, 1, "Evented")
	got := make(chan events.Event, 4)
	env.Server.Events.Subscribe("test.lead-status", func(_ context.Context, _ *postgres.Tx, ev events.Event) error {
		got <- ev
		return nil
	}, events.LeadConfirmed, events.LeadCancelled)
	id := uuid.MustParse(claim(t, tn.Agent, tn.StoreID, 1)[0])
	r := newReplica(t, tn.Agent)
	res := r.push(r.mutation(tn.StoreID, mutation.ConfirmLead{Lead: id, EventID: uuid.New()}),
		r.mutation(tn.StoreID, mutation.CancelLead{Lead: id, EventID: uuid.New(), Reason: "changed mind"}))
	require.True(t, res.Results[0].Applied && res.Results[1].Applied)
	var kinds []events.Kind
	for range 2 {
		select {
		case ev := <-got:
			require.Equal(t, id, ev.AggregateID)
			require.Equal(t, tn.StoreID, ev.Store)
			kinds = append(kinds, ev.Kind)
		case <-time.After(20 * time.Second):
			t.Fatalf("events so far: %v", kinds)
		}
	}
	require.ElementsMatch(t, []events.Kind{events.LeadConfirmed, events.LeadCancelled}, kinds)
}

// A claim re-versions the lead's parcels too: the new holder pulls them.
func TestClaimReversionsParcels(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "parcelclaim")
	ids := env.SeedLeads(tn.StoreID, 1, "Parcelled")
	ctx := context.Background()
	parcel, account := uuid.New(), uuid.New()
	require.NoError(t, syncer.Write(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(w *syncer.Writer) error {
		if _, err := w.Tx.Exec(ctx, `INSERT INTO carrier_accounts (id, store_id, carrier, credentials) VALUES ($1, $2, 'ameex', 'v1:x:y')`, account, tn.StoreID); err != nil {
			return err
		}
		v, err := w.Reserve(tn.StoreID, 1)
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(ctx, `INSERT INTO parcels (store_id, id, version, created_at, updated_at, lead_id, account_id, carrier, status, creation)
VALUES ($1, $2, $3, now(), now(), $4, $5, 'ameex', 'created', 'created')`, tn.StoreID, parcel, v, ids[0], account)
		return err
	}))
	var before int64
	env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT seq FROM sync_scopes WHERE scope_id = $1`, tn.StoreID).Scan(&before)
	}, tn.StoreID)
	claim(t, tn.Agent, tn.StoreID, 1)
	var after int64
	env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT version FROM parcels WHERE store_id = $1 AND id = $2`, tn.StoreID, parcel).Scan(&after)
	}, tn.StoreID)
	require.Greater(t, after, before, "the parcel moved past the claim's versions, so the claimer pulls it")
}
