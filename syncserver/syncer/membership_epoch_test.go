package syncer_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/servertest"
)

// A replica that slept through its user's removal from a store and re-join
// (with permission changes on both sides) re-syncs the store: the new
// membership's epoch is not the one its cursor holds. Found by the
// simulation: the re-join restarted the epoch at 1, a permission change made
// it 2 again, and the replica kept a pool-less view of a pool it now sees.
func TestRejoinedMemberResyncs(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "rejoin")
	env.SeedLeads(tn.StoreID, 3, "Pool")
	ctx := context.Background()
	store, agent := tn.StoreID.String(), tn.Agent.UserID.String()
	setPool := func(view bool) {
		req := &leadifyv1.SetMemberPermissionsRequest{StoreId: store, UserId: agent}
		if !view {
			req.Revoked = []string{"leads.view_pool"}
		}
		_, err := tn.Seller.Accounts.SetMemberPermissions(ctx, connect.NewRequest(req))
		require.NoError(t, err)
	}

	setPool(false)
	r := newReplica(t, tn.Agent)
	r.pull(100)
	require.Empty(t, r.leads, "no pool view")
	held := r.cursors[store]
	require.NotNil(t, held)

	_, err := tn.Seller.Accounts.RemoveMember(ctx, connect.NewRequest(&leadifyv1.RemoveMemberRequest{StoreId: store, UserId: agent}))
	require.NoError(t, err)
	inv, err := tn.Seller.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: store,
		Email: tn.AgentEmail, Role: leadifyv1.Role_ROLE_AGENT}))
	require.NoError(t, err)
	acc, err := env.ClientsFor("").Auth.AcceptInvitation(ctx, connect.NewRequest(&leadifyv1.AcceptInvitationRequest{
		Token: inv.Msg.Token, Password: servertest.Password}))
	require.NoError(t, err)
	setPool(true) // the new membership's first change

	rejoined := env.ClientsFor(acc.Msg.Session.Token)
	resp, err := rejoined.Sync.Pull(ctx, connect.NewRequest(&leadifyv1.PullRequest{ClientId: r.client, MaxRows: 100,
		Cursors: []*leadifyv1.Cursor{held}}))
	require.NoError(t, err)
	var got *leadifyv1.ScopeChanges
	for _, sc := range resp.Msg.Scopes {
		if sc.ScopeId == store {
			got = sc
		}
	}
	require.NotNil(t, got)
	require.True(t, got.ResyncRequired, "the cursor's epoch %d belongs to the old membership", held.Epoch)
	leads := 0
	for _, ch := range got.Changes {
		if ch.Table == "leads" {
			leads++
		}
	}
	require.Equal(t, 3, leads, "the pool, redacted")
}
