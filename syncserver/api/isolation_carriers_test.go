package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/carrier/ameex/ameextest"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// canaryAccounts remembers store B's carrier account per store id, for the
// cases that name it.
var canaryAccounts sync.Map

func init() {
	addIsolationCases(carriersCases)
	canarySeeders = append(canarySeeders, func(t *testing.T, b *fixtureB) {
		resp, err := b.Seller.Carriers.CreateCarrierAccount(context.Background(), connect.NewRequest(&leadifyv1.CreateCarrierAccountRequest{
			StoreId: b.StoreID.String(), Carrier: "ameex", Label: "CanaryB Ameex",
			Credentials: &leadifyv1.CarrierCredentials{BaseUrl: "https://api.ameex.app", ApiId: "canaryb-id", ApiKey: "canaryb-key"}}))
		require.NoError(t, err)
		canaryAccounts.Store(b.StoreID, resp.Msg.Account.Id)
	})
}

func canaryAccount(b *fixtureB) string {
	id, _ := canaryAccounts.Load(b.StoreID)
	return id.(string)
}

var carriersCases = map[string]isolationCase{
	"/leadify.v1.CarrierService/CreateCarrierAccount": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Carriers.CreateCarrierAccount, &leadifyv1.CreateCarrierAccountRequest{StoreId: b.StoreID.String(), Carrier: "ameex",
			Credentials: &leadifyv1.CarrierCredentials{BaseUrl: "https://api.ameex.app", ApiId: "x", ApiKey: "y"}})
	}},
	"/leadify.v1.CarrierService/UpdateCarrierAccount": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Carriers.UpdateCarrierAccount, &leadifyv1.UpdateCarrierAccountRequest{AccountId: canaryAccount(b), Label: "pwned", RotateWebhookToken: true})
	}},
	"/leadify.v1.CarrierService/ListCarrierAccounts": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Carriers.ListCarrierAccounts, &leadifyv1.ListCarrierAccountsRequest{StoreId: b.StoreID.String()})
	}},
	"/leadify.v1.CarrierService/TestCarrierConnection": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Carriers.TestCarrierConnection, &leadifyv1.TestCarrierConnectionRequest{AccountId: canaryAccount(b)})
	}},
	"/leadify.v1.CarrierService/SetCarrierCityRules": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Carriers.SetCarrierCityRules, &leadifyv1.SetCarrierCityRulesRequest{StoreId: b.StoreID.String(),
			Rules: []*leadifyv1.CarrierCityRule{{CityId: "casablanca", AccountId: canaryAccount(b)}}})
	}},
	"/leadify.v1.CarrierService/CreateParcels": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Carriers.CreateParcels, &leadifyv1.CreateParcelsRequest{StoreId: b.StoreID.String(), LeadIds: []string{b.Leads[0].String()},
			AccountId: canaryAccount(b)})
	}},
	"/leadify.v1.CarrierService/ListDeadWebhooks": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, _ *fixtureB) (proto.Message, error) {
		return unary(as.Carriers.ListDeadWebhooks, &leadifyv1.ListDeadWebhooksRequest{})
	}},
	"/leadify.v1.CarrierService/ReplayWebhook": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Carriers.ReplayWebhook, &leadifyv1.ReplayWebhookRequest{StoreId: b.StoreID.String(), WebhookId: uuid.NewString()})
	}},
}

// confirmLeads seeds n confirmed leads in store through the versioned-write helper.
func confirmLeads(t *testing.T, env *servertest.Env, store uuid.UUID, n int) []uuid.UUID {
	t.Helper()
	ids := env.SeedLeads(store, n, "carrier")
	err := syncer.Write(context.Background(), env.DB.App, postgres.StoreScope(store), func(w *syncer.Writer) error {
		first, err := w.Reserve(store, n)
		if err != nil {
			return err
		}
		for i, id := range ids {
			if _, err := w.Tx.Exec(context.Background(), `UPDATE leads SET status = 'confirmed', version = $3 WHERE store_id = $1 AND id = $2`,
				store, id, first+int64(i)); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	return ids
}

// A webhook with store A's account and token never touches store B's
// parcels, even naming B's tracking code; B's account id with A's token is
// refused.
func TestCarrierWebhooksCannotCrossStores(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := servertest.Start(t)
	admin := env.Admin()
	a, b := env.NewTenant(admin, "hooka"), env.NewTenant(admin, "hookb")
	fake := ameextest.NewServer(t, ameextest.Options{MissingCodeRate: -1})
	creds := &leadifyv1.CarrierCredentials{BaseUrl: fake.URL, ApiId: "test-id", ApiKey: "test-key"}
	accA, err := a.Seller.Carriers.CreateCarrierAccount(ctx, connect.NewRequest(&leadifyv1.CreateCarrierAccountRequest{StoreId: a.StoreID.String(), Carrier: "ameex", Credentials: creds}))
	require.NoError(t, err)
	accB, err := b.Seller.Carriers.CreateCarrierAccount(ctx, connect.NewRequest(&leadifyv1.CreateCarrierAccountRequest{StoreId: b.StoreID.String(), Carrier: "ameex", Credentials: creds}))
	require.NoError(t, err)
	lead := confirmLeads(t, env, b.StoreID, 1)[0]
	_, err = b.Seller.Carriers.CreateParcels(ctx, connect.NewRequest(&leadifyv1.CreateParcelsRequest{StoreId: b.StoreID.String(), LeadIds: []string{lead.String()}}))
	require.NoError(t, err)
	var tracking string
	require.Eventually(t, func() bool {
		_ = postgres.InTx(ctx, env.DB.App, postgres.StoreScope(b.StoreID), func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, `SELECT tracking FROM parcels WHERE store_id = $1 AND lead_id = $2`, b.StoreID, lead).Scan(&tracking)
		})
		return tracking != ""
	}, 20*time.Second, 20*time.Millisecond)

	post := func(path string) int {
		resp, err := http.PostForm(env.URL+path, url.Values{"CODE": {tracking}, "STATUT": {"DELIVERED"}})
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	// B's account id with A's token.
	_, tokenA, _ := strings.Cut(accA.Msg.WebhookPath[strings.LastIndex(accA.Msg.WebhookPath, "/")+1:], ".")
	require.Equal(t, http.StatusNotFound, post("/webhooks/carriers/ameex/"+accB.Msg.Account.Id+"."+tokenA))
	// A's own webhook naming B's tracking code: stored for A, applied to nothing.
	require.Equal(t, http.StatusOK, post(accA.Msg.WebhookPath))
	require.Eventually(t, func() bool {
		var attempts int
		env.InStore(func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, `SELECT coalesce(max(attempts), 0) FROM webhook_inbox WHERE store_id = $1`, a.StoreID).Scan(&attempts)
		}, a.StoreID)
		return attempts >= 1
	}, 20*time.Second, 20*time.Millisecond)
	var status string
	var webhookEvents int
	env.InStore(func(tx *postgres.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT status FROM parcels WHERE store_id = $1 AND lead_id = $2`, b.StoreID, lead).Scan(&status); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM parcel_events WHERE store_id = $1 AND source = 'webhook'`, b.StoreID).Scan(&webhookEvents)
	}, b.StoreID)
	require.Equal(t, "sent", status)
	require.Zero(t, webhookEvents)

	// B's own webhook does apply.
	require.Equal(t, http.StatusOK, post(accB.Msg.WebhookPath))
	require.Eventually(t, func() bool {
		env.InStore(func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, `SELECT status FROM parcels WHERE store_id = $1 AND lead_id = $2`, b.StoreID, lead).Scan(&status)
		}, b.StoreID)
		return status == "delivered"
	}, 20*time.Second, 20*time.Millisecond)
}
