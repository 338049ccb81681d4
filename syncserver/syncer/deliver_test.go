package syncer_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/servertest"
)

// stream is a delivering Subscribe stream's messages, as they arrive.
type stream struct {
	msgs chan *leadifyv1.SubscribeResponse
	err  chan error
}

func subscribe(t *testing.T, r *replica) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var cursors []*leadifyv1.Cursor
	for _, c := range r.cursors {
		cursors = append(cursors, c)
	}
	st, err := r.c.Sync.Subscribe(ctx, connect.NewRequest(&leadifyv1.SubscribeRequest{ClientId: r.client, Deliver: true, Cursors: cursors}))
	require.NoError(t, err)
	require.True(t, st.Receive(), "the first message says: pull now (%v)", st.Err())
	s := &stream{msgs: make(chan *leadifyv1.SubscribeResponse, 100), err: make(chan error, 1)}
	go func() {
		for st.Receive() {
			s.msgs <- st.Msg()
		}
		s.err <- st.Err()
	}()
	return s
}

// until collects the stream's messages for scope until one leaves the
// replica at version to (delivered up to it, or poked at or past it).
func (s *stream) until(t *testing.T, scope string, to int64) (delivered []*leadifyv1.DeliveredChanges, poked bool) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m := <-s.msgs:
			if m.ScopeId != scope {
				continue
			}
			if m.Delivered != nil {
				delivered = append(delivered, m.Delivered)
				if m.Delivered.Changes.Cursor >= to {
					return delivered, poked
				}
				continue
			}
			poked = true
			if m.Version >= to {
				return delivered, poked
			}
		case err := <-s.err:
			t.Fatalf("the stream ended: %v", err)
		case <-deadline:
			t.Fatalf("nothing for %s up to %d", scope, to)
		}
	}
}

// Changes delivered in the Subscribe stream are exactly what each subscriber
// would have pulled from the same cursor, in its own view: a seller sees
// everything, an agent its own leads in full, the pool redacted and nothing
// of another agent's; and subscribers in the same view share one read.
func TestDeliveriesAreWhatAPullWouldReturn(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "deliver")
	ctx := context.Background()
	leads := env.SeedLeads(tn.StoreID, 6, "Delivered")
	inv, err := tn.Seller.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: tn.StoreID.String(),
		Email: "second@deliver.test", Role: leadifyv1.Role_ROLE_AGENT}))
	require.NoError(t, err)
	acc, err := env.ClientsFor("").Auth.AcceptInvitation(ctx, connect.NewRequest(&leadifyv1.AcceptInvitationRequest{Token: inv.Msg.Token,
		FullName: "Second Agent", Password: servertest.Password}))
	require.NoError(t, err)
	second := env.ClientsFor(acc.Msg.Session.Token)
	mine := claim(t, tn.Agent, tn.StoreID, 2)
	theirs := claim(t, second, tn.StoreID, 1)

	sellers := []*replica{newReplica(t, tn.Seller), newReplica(t, tn.Seller)}
	agent, other := newReplica(t, tn.Agent), newReplica(t, second)
	subs := append([]*replica{agent, other}, sellers...)
	streams := make([]*stream, len(subs))
	for i, r := range subs {
		r.pull(1000)
		streams[i] = subscribe(t, r)
	}
	before := map[*replica]*leadifyv1.Cursor{}
	for _, r := range subs {
		before[r] = proto.Clone(r.cursors[tn.StoreID.String()]).(*leadifyv1.Cursor)
	}
	reads := env.Server.Sync.DeliveryReads()

	// A seller notes something on an agent's lead, another agent's and a pool lead.
	writer := newReplica(t, tn.Seller)
	writer.pull(1000)
	pool := leads[0]
	for contains(mine, pool.String()) || contains(theirs, pool.String()) {
		pool = leads[len(leads)-1]
		leads = leads[:len(leads)-1]
	}
	var ms []*leadifyv1.Mutation
	for _, l := range []uuid.UUID{uuid.MustParse(mine[0]), uuid.MustParse(theirs[0]), pool} {
		ms = append(ms, writer.mutation(tn.StoreID, mutation.AddNote{Lead: l, EventID: uuid.New(), Note: "delivered"}))
	}
	res := writer.push(ms...)
	last := res.Results[len(res.Results)-1].Version

	for i, r := range subs {
		delivered, poked := streams[i].until(t, tn.StoreID.String(), last)
		require.False(t, poked, "a poke-sized change is delivered, not poked")
		var got []*leadifyv1.Change
		from := before[r].Version
		for _, d := range delivered {
			require.Equal(t, from, d.From, "deliveries follow each other")
			got = append(got, d.Changes.Changes...)
			from = d.Changes.Cursor
		}
		// What a pull from the same cursor returns.
		resp, err := r.c.Sync.Pull(ctx, connect.NewRequest(&leadifyv1.PullRequest{ClientId: r.client,
			Cursors: []*leadifyv1.Cursor{before[r]}}))
		require.NoError(t, err)
		var want []*leadifyv1.Change
		for _, sc := range resp.Msg.Scopes {
			if sc.ScopeId == tn.StoreID.String() {
				want = sc.Changes
				require.Equal(t, sc.Cursor, from)
			}
		}
		require.NotEmpty(t, want)
		sort.SliceStable(got, func(a, b int) bool { return got[a].Version < got[b].Version })
		require.Len(t, got, len(want))
		for j := range want {
			require.True(t, proto.Equal(want[j], got[j]), "change %d for %s: want %v, got %v", j, r.c.Token[:6], want[j], got[j])
		}
	}
	// The agent's deliveries: its own lead in full with the note, the pool
	// lead redacted without it, nothing of the other agent's lead (at most
	// the delete its new version sends to those who cannot see it).
	delivered := map[string]*leadifyv1.Change{}
	resp, err := agent.c.Sync.Pull(ctx, connect.NewRequest(&leadifyv1.PullRequest{ClientId: agent.client,
		Cursors: []*leadifyv1.Cursor{before[agent]}}))
	require.NoError(t, err)
	for _, sc := range resp.Msg.Scopes {
		for _, ch := range sc.Changes {
			delivered[ch.Id] = ch
		}
	}
	require.False(t, delivered[mine[0]].GetRedacted())
	require.True(t, delivered[pool.String()].GetRedacted())
	if ch := delivered[theirs[0]]; ch != nil {
		require.True(t, ch.Deleted, "another agent's lead only ever as a delete")
		require.Nil(t, ch.Row)
	}
	// Two sellers and two agents at the same cursor: three views, at most
	// one read each per poke (the push commits once).
	require.LessOrEqual(t, env.Server.Sync.DeliveryReads()-reads, int64(3*len(res.Results)))
}

// A delivering stream stops delivering a store as soon as its user is no
// longer a member (it pokes; the pull that follows drops the scope), and
// ends when its session is revoked.
func TestDeliveriesFollowMembershipAndSession(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "deliver-auth")
	ctx := context.Background()
	env.SeedLeads(tn.StoreID, 2, "Before")
	agent := newReplica(t, tn.Agent)
	agent.pull(1000)
	st := subscribe(t, agent)

	env.SeedLeads(tn.StoreID, 1, "Still a member")
	v := storeVersion(t, env, tn.StoreID)
	delivered, poked := st.until(t, tn.StoreID.String(), v)
	require.False(t, poked)
	require.NotEmpty(t, delivered)

	_, err := tn.Seller.Accounts.RemoveMember(ctx, connect.NewRequest(&leadifyv1.RemoveMemberRequest{StoreId: tn.StoreID.String(),
		UserId: tn.Agent.UserID.String()}))
	require.NoError(t, err)
	env.SeedLeads(tn.StoreID, 1, "After the removal")
	v = storeVersion(t, env, tn.StoreID)
	delivered, poked = st.until(t, tn.StoreID.String(), v)
	require.Empty(t, delivered, "nothing of the store after the removal")
	require.True(t, poked)

	// A seller's stream ends with the session.
	seller := newReplica(t, tn.Seller)
	seller.pull(1000)
	sst := subscribe(t, seller)
	_, err = tn.Seller.Auth.Logout(ctx, connect.NewRequest(&leadifyv1.LogoutRequest{}))
	require.NoError(t, err)
	env.SeedLeads(tn.StoreID, 1, "After the logout")
	select {
	case err := <-sst.err:
		require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "%v", err)
	case m := <-sst.msgs:
		require.Nil(t, m.Delivered, "a delivery after the session was revoked")
		var cerr *connect.Error
		require.True(t, errors.As(<-sst.err, &cerr))
		require.Equal(t, connect.CodeUnauthenticated, cerr.Code())
	case <-time.After(15 * time.Second):
		t.Fatal("the stream of a revoked session goes on")
	}
}

func storeVersion(t *testing.T, env *servertest.Env, store uuid.UUID) int64 {
	return ownerInt(t, env, `SELECT seq FROM sync_scopes WHERE scope_id = $1`, store)
}
