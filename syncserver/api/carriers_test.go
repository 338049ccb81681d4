package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/carrier/ameex/ameextest"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

func TestCarrierAccountsAndParcels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := servertest.Start(t)
	admin := env.Admin()
	ten := env.NewTenant(admin, "carriers")
	fake := ameextest.NewServer(t, ameextest.Options{MissingCodeRate: -1})
	c := ten.Seller.Carriers

	_, err := c.CreateCarrierAccount(ctx, connect.NewRequest(&leadifyv1.CreateCarrierAccountRequest{StoreId: ten.StoreID.String(), Carrier: "dhl",
		Credentials: &leadifyv1.CarrierCredentials{BaseUrl: fake.URL}}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))

	created, err := c.CreateCarrierAccount(ctx, connect.NewRequest(&leadifyv1.CreateCarrierAccountRequest{StoreId: ten.StoreID.String(), Carrier: "ameex",
		Label: "Ameex Casa", Credentials: &leadifyv1.CarrierCredentials{BaseUrl: fake.URL, ApiId: "test-id", ApiKey: "wrong"}}))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(created.Msg.WebhookPath, "/webhooks/carriers/ameex/"+created.Msg.Account.Id+"."))
	id := created.Msg.Account.Id

	tested, err := c.TestCarrierConnection(ctx, connect.NewRequest(&leadifyv1.TestCarrierConnectionRequest{AccountId: id}))
	require.NoError(t, err)
	require.False(t, tested.Msg.Ok)
	require.Contains(t, tested.Msg.Message, "credentials")

	updated, err := c.UpdateCarrierAccount(ctx, connect.NewRequest(&leadifyv1.UpdateCarrierAccountRequest{AccountId: id, Concurrency: 2,
		Credentials: &leadifyv1.CarrierCredentials{BaseUrl: fake.URL, ApiId: "test-id", ApiKey: "test-key"}, RotateWebhookToken: true}))
	require.NoError(t, err)
	require.EqualValues(t, 2, updated.Msg.Account.Concurrency)
	require.Equal(t, "Ameex Casa", updated.Msg.Account.Label)
	require.NotEqual(t, created.Msg.WebhookPath, updated.Msg.WebhookPath)
	tested, err = c.TestCarrierConnection(ctx, connect.NewRequest(&leadifyv1.TestCarrierConnectionRequest{AccountId: id}))
	require.NoError(t, err)
	require.True(t, tested.Msg.Ok, tested.Msg.Message)

	list, err := c.ListCarrierAccounts(ctx, connect.NewRequest(&leadifyv1.ListCarrierAccountsRequest{StoreId: ten.StoreID.String()}))
	require.NoError(t, err)
	require.Len(t, list.Msg.Accounts, 1)
	var sealed string
	env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT credentials FROM carrier_accounts WHERE store_id = $1`, ten.StoreID).Scan(&sealed)
	}, ten.StoreID)
	require.NotContains(t, sealed, "test-key", "credentials are sealed at rest")

	// The old webhook token no longer works; the new one does.
	post := func(path string, body string) int {
		resp, err := http.Post(env.URL+path, "application/x-www-form-urlencoded", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusNotFound, post(created.Msg.WebhookPath, "CODE=x&STATUT=SENT"))

	leads := confirmLeads(t, env, ten.StoreID, 5)
	ids := []string{}
	for _, l := range leads {
		ids = append(ids, l.String())
	}
	_, err = ten.Agent.Carriers.CreateParcels(ctx, connect.NewRequest(&leadifyv1.CreateParcelsRequest{StoreId: ten.StoreID.String(), LeadIds: ids}))
	require.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "agents do not create parcels by default")
	// Casablanca goes to a second account by a per-city rule.
	fake2 := ameextest.NewServer(t, ameextest.Options{MissingCodeRate: -1})
	second, err := c.CreateCarrierAccount(ctx, connect.NewRequest(&leadifyv1.CreateCarrierAccountRequest{StoreId: ten.StoreID.String(), Carrier: "ameex",
		Label: "Ameex Casa 2", Credentials: &leadifyv1.CarrierCredentials{BaseUrl: fake2.URL, ApiId: "test-id", ApiKey: "test-key"}}))
	require.NoError(t, err)
	_, err = c.SetCarrierCityRules(ctx, connect.NewRequest(&leadifyv1.SetCarrierCityRulesRequest{StoreId: ten.StoreID.String(),
		Rules: []*leadifyv1.CarrierCityRule{{CityId: "atlantis", AccountId: second.Msg.Account.Id}}}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	rules, err := c.SetCarrierCityRules(ctx, connect.NewRequest(&leadifyv1.SetCarrierCityRulesRequest{StoreId: ten.StoreID.String(),
		Rules: []*leadifyv1.CarrierCityRule{{CityId: "casablanca", AccountId: second.Msg.Account.Id}}}))
	require.NoError(t, err)
	require.Len(t, rules.Msg.Rules, 1)

	enq, err := c.CreateParcels(ctx, connect.NewRequest(&leadifyv1.CreateParcelsRequest{StoreId: ten.StoreID.String(), LeadIds: ids}))
	require.NoError(t, err)
	require.EqualValues(t, 5, enq.Msg.Enqueued)
	require.Eventually(t, func() bool { return len(fake2.Sim.All()) == 5 }, 20*time.Second, 20*time.Millisecond)
	require.Empty(t, fake.Sim.All(), "the seeded leads are in Casablanca: the rule wins over the default")

	// An unreadable webhook is stored, goes dead, is listed for admins and
	// can be replayed.
	require.Equal(t, http.StatusOK, post(updated.Msg.WebhookPath, "%%%"))
	var dead *leadifyv1.DeadWebhook
	require.Eventually(t, func() bool {
		resp, err := admin.Carriers.ListDeadWebhooks(ctx, connect.NewRequest(&leadifyv1.ListDeadWebhooksRequest{}))
		require.NoError(t, err)
		for _, d := range resp.Msg.Webhooks {
			if d.StoreId == ten.StoreID.String() {
				dead = d
			}
		}
		return dead != nil
	}, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, "%%%", dead.Body)
	_, err = ten.Seller.Carriers.ListDeadWebhooks(ctx, connect.NewRequest(&leadifyv1.ListDeadWebhooksRequest{}))
	require.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err))
	_, err = admin.Carriers.ReplayWebhook(ctx, connect.NewRequest(&leadifyv1.ReplayWebhookRequest{StoreId: ten.StoreID.String(), WebhookId: dead.Id}))
	require.NoError(t, err)
	_, err = admin.Carriers.ReplayWebhook(ctx, connect.NewRequest(&leadifyv1.ReplayWebhookRequest{StoreId: ten.StoreID.String(), WebhookId: dead.Id}))
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "no longer dead until processed again")
}

// pullAll pulls every scope of the caller from zero and returns the changes
// of the given table.
func pullAll(t *testing.T, as *servertest.Clients, table string) []*leadifyv1.Change {
	t.Helper()
	ctx := context.Background()
	client, _, err := handshake(ctx, as)
	require.NoError(t, err)
	cursors := map[string]*leadifyv1.Cursor{}
	var out []*leadifyv1.Change
	for range 100 {
		req := &leadifyv1.PullRequest{ClientId: client}
		for _, c := range cursors {
			req.Cursors = append(req.Cursors, c)
		}
		resp, err := as.Sync.Pull(ctx, connect.NewRequest(req))
		require.NoError(t, err)
		more := false
		for _, sc := range resp.Msg.Scopes {
			cursors[sc.ScopeId] = &leadifyv1.Cursor{ScopeId: sc.ScopeId, Version: sc.Cursor, Epoch: sc.Epoch}
			more = more || sc.HasMore
			for _, ch := range sc.Changes {
				if ch.Table == table {
					out = append(out, ch)
				}
			}
		}
		if !more {
			return out
		}
	}
	t.Fatal("pull did not end")
	return nil
}

// Parcels and their timelines replicate to whoever sees the lead in full.
func TestParcelsReplicate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := servertest.Start(t)
	ten := env.NewTenant(env.Admin(), "replica")
	fake := ameextest.NewServer(t, ameextest.Options{MissingCodeRate: -1, DeliveryRate: 1, CancelRate: -1})
	acc, err := ten.Seller.Carriers.CreateCarrierAccount(ctx, connect.NewRequest(&leadifyv1.CreateCarrierAccountRequest{StoreId: ten.StoreID.String(),
		Carrier: "ameex", Credentials: &leadifyv1.CarrierCredentials{BaseUrl: fake.URL, ApiId: "test-id", ApiKey: "test-key"}}))
	require.NoError(t, err)
	lead := confirmLeads(t, env, ten.StoreID, 1)[0]
	_, err = ten.Seller.Carriers.CreateParcels(ctx, connect.NewRequest(&leadifyv1.CreateParcelsRequest{StoreId: ten.StoreID.String(), LeadIds: []string{lead.String()}}))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(fake.Sim.All()) == 1 }, 20*time.Second, 20*time.Millisecond)
	fake.SetWebhookURL(env.URL + acc.Msg.WebhookPath)
	for fake.Sim.Advance() > 0 {
	}
	fake.Webhooks.Flush()
	require.Eventually(t, func() bool {
		for _, ch := range pullAll(t, ten.Seller, "parcels") {
			if ch.GetParcel().GetStatus() == "delivered" {
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond)
	parcels := pullAll(t, ten.Seller, "parcels")
	require.Len(t, parcels, 1)
	p := parcels[0].GetParcel()
	require.Equal(t, lead.String(), p.LeadId)
	require.Equal(t, fake.Sim.All()[0].Code, p.Tracking)
	require.Equal(t, "DELIVERED", p.RawStatus)
	timeline := pullAll(t, ten.Seller, "parcel_events")
	require.GreaterOrEqual(t, len(timeline), 2)
	for _, ch := range timeline {
		require.Equal(t, p.Id, ch.GetParcelEvent().GetParcelId())
	}
	require.Empty(t, pullAll(t, ten.Agent, "parcels"), "the agent does not hold the lead")
	require.Empty(t, pullAll(t, ten.Agent, "parcel_events"))
}
