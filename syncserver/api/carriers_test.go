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
