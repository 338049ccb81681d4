package billing_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// pullAll pulls the store's scope from scratch, following pages, and returns
// its changes by table.
func pullAll(t *testing.T, c *servertest.Clients, store uuid.UUID) map[string][]*leadifyv1.Change {
	ctx := context.Background()
	client := uuid.NewString()
	_, err := c.Sync.Handshake(ctx, connect.NewRequest(&leadifyv1.HandshakeRequest{ClientId: client,
		SchemaVersion: syncer.SchemaVersion, MutationSetHash: mutation.SetHash()}))
	require.NoError(t, err)
	out := map[string][]*leadifyv1.Change{}
	cursor := &leadifyv1.Cursor{ScopeId: store.String()}
	for range 100 {
		resp, err := c.Sync.Pull(ctx, connect.NewRequest(&leadifyv1.PullRequest{ClientId: client, Cursors: []*leadifyv1.Cursor{cursor}}))
		require.NoError(t, err)
		more := false
		for _, sc := range resp.Msg.Scopes {
			if sc.ScopeId != store.String() {
				continue
			}
			for _, ch := range sc.Changes {
				out[ch.Table] = append(out[ch.Table], ch)
			}
			cursor = &leadifyv1.Cursor{ScopeId: sc.ScopeId, Version: sc.Cursor, Epoch: sc.Epoch}
			more = sc.HasMore
		}
		if !more {
			return out
		}
	}
	t.Fatal("pull did not finish")
	return nil
}

// TestLedgerAndInvoicesReplicate: the seller's replica gets every entry and
// the invoice with its PDF; the agent's gets their own entries only.
func TestLedgerAndInvoicesReplicate(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "argan")
	f := &fixture{t: t, pool: env.DB.App, seller: tn.SellerID, store: tn.StoreID, reserve: postgres.NewSidePool(env.DB.App, 2)}
	t.Cleanup(f.reserve.Close)
	f.saveRules(f.store, agentRule(uuid.New(), commission.TriggerDelivered, 5_00), platformRule(uuid.New(), 300))
	mine := parcels(f.store, tn.Agent.UserID, 6, 21)
	others := parcels(f.store, uuid.New(), 4, 22)
	src := append(mine, others...)
	for i := range src {
		src[i].Status = parcel.StatusDelivered
	}
	ctx := context.Background()
	_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src}).Run(ctx, f.store, march)
	require.NoError(t, err)
	svc := newService(t, f, src)
	from, to := billing.MonthOf(march)
	id, err := svc.Close(ctx, f.store, from, to)
	require.NoError(t, err)

	seller := pullAll(t, tn.Seller, f.store)
	require.Len(t, seller["commission_entries"], 20)
	require.Len(t, seller["invoices"], 1)
	inv := seller["invoices"][0].GetInvoice()
	require.Equal(t, id.String(), inv.Id)
	require.Equal(t, "FA-000001", inv.Number)
	require.EqualValues(t, 10, inv.LineCount)
	require.Equal(t, "%PDF-", string(inv.Pdf[:5]))

	agent := pullAll(t, tn.Agent, f.store)
	require.Empty(t, agent["invoices"])
	require.Len(t, agent["commission_entries"], 6, "the agent's own entries only")
	for _, ch := range agent["commission_entries"] {
		require.Equal(t, tn.Agent.UserID.String(), ch.GetCommissionEntry().AgentId)
	}
}
