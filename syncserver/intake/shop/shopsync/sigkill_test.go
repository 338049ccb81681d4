package shopsync_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
	"github.com/leadify/leadify/syncserver/servertest"
)

// The real server is SIGKILLed twice, at seed-chosen points
// (LEADIFY_SHOP_KILL_SEED, default 1), while shops send it orders and its
// jobs turn them into leads; senders retry until answered 200, as the
// platforms do. Every order ends with exactly one lead, every delivery id is
// stored once, and nothing is left pending.
func TestWebhooksSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	seed := uint64(1)
	if s, err := strconv.ParseUint(os.Getenv("LEADIFY_SHOP_KILL_SEED"), 10, 64); err == nil {
		seed = s
	}
	rng := rand.New(rand.NewPCG(seed, seed+1))
	ctx := context.Background()
	keys := "LEADIFY_SECRET_KEYS=" + secrets.GenerateKey("k1")
	env := servertest.StartProcess(t, keys)
	db := env.DB
	tn := env.NewTenant(env.Admin(), "shopkill")
	secret := []byte("shpss_kill")
	resp, err := tn.Seller.Shops.CreateShopConnection(ctx, connect.NewRequest(&leadifyv1.CreateShopConnectionRequest{
		StoreId: tn.StoreID.String(), Platform: "shopify", BaseUrl: "kill.myshopify.com",
		Credentials: &leadifyv1.ShopCredentials{AccessToken: "shpat", WebhookSecret: string(secret)}}))
	require.NoError(t, err)
	path := resp.Msg.Connection.WebhookPath

	const n = 240
	kills := []int64{int64(20 + rng.IntN(60)), int64(110 + rng.IntN(60))}
	t.Logf("seed %d: SIGKILL after %v acknowledged webhooks", seed, kills)
	var base atomic.Pointer[string]
	base.Store(&env.URL)
	var acked atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(3 * time.Minute)
	for range 12 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				body := []byte(fmt.Sprintf(benchOrder, 7000000+i, 1000+i, i, i, i, i))
				for {
					if time.Now().After(deadline) {
						t.Errorf("order %d never acknowledged", i)
						return
					}
					req, _ := http.NewRequest(http.MethodPost, *base.Load()+path, bytes.NewReader(body))
					shopify.Sign(secret, req.Header, "orders/create", fmt.Sprintf("evt-%d", i), body)
					resp, err := hc.Do(req)
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							acked.Add(1)
							break
						}
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	for _, k := range kills {
		for acked.Load() < k {
			time.Sleep(2 * time.Millisecond)
		}
		env.Kill()
		env = servertest.StartProcessOn(t, db, keys)
		base.Store(&env.URL)
	}
	wg.Wait()
	count := func(q string) int {
		var c int
		env.InStore(func(tx *postgres.Tx) error { return tx.QueryRow(ctx, q, tn.StoreID).Scan(&c) }, tn.StoreID)
		return c
	}
	require.Eventually(t, func() bool {
		return count(`SELECT count(*) FROM shop_webhooks WHERE store_id = $1 AND status = 'pending'`) == 0 &&
			count(`SELECT count(*) FROM shop_orders WHERE store_id = $1 AND lead_id IS NOT NULL`) == n
	}, 2*time.Minute, 100*time.Millisecond)
	require.Equal(t, n, count(`SELECT count(*) FROM shop_webhooks WHERE store_id = $1`), "every delivery id stored once")
	require.Equal(t, n, count(`SELECT count(*) FROM leads WHERE store_id = $1 AND source = 'shopify'`), "one lead per order")
	require.Equal(t, n, count(`SELECT count(DISTINCT lead_id) FROM intake_rows WHERE store_id = $1`))
	require.Equal(t, n, count(`SELECT count(*) FROM shop_webhooks WHERE store_id = $1 AND status = 'done'`))
}
