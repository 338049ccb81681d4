package shopsync_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify"
	"github.com/leadify/leadify/syncserver/intake/shop/shopsync"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/server"
	"github.com/leadify/leadify/syncserver/servertest"
)

// benchWebhooks is how many webhooks a run sends: LEADIFY_BENCH_ROWS / 100
// (10,000 under `go tool task bench`), 5,000 when unset.
func benchWebhooks() int {
	if n, err := strconv.Atoi(os.Getenv("LEADIFY_BENCH_ROWS")); err == nil && n > 0 {
		return max(n/100, 100)
	}
	return 5000
}

const benchOrder = `{"id":%d,"name":"#%d","phone":null,"email":"client%d@example.ma","created_at":"2026-11-20T10:00:00+01:00",
"currency":"MAD","total_price":"249.00","financial_status":"pending","payment_gateway_names":["Cash on Delivery (COD)"],
"customer":{"id":%d,"phone":"+2126%08d"},"shipping_address":{"first_name":"Salma","last_name":"Bennani","name":"Salma Bennani",
"address1":"Bd Zerktouni 12","address2":"","city":"Casablanca","province":"Casablanca-Settat","zip":"20000","country_code":"MA","phone":"06%08d"},
"line_items":[{"id":1,"product_id":2,"variant_id":3,"title":"Huile d'argan 100ml","sku":"ARG-100","quantity":2,"price":"124.50"}],
"note":"appeler après 18h","tags":""}`

// BenchmarkShopWebhooks measures Shopify webhooks verified (HMAC over the
// raw body against the connection's secret) and durably stored (group
// commit, fsync on) per second, over HTTP from 64 concurrent senders. The
// baseline, in the same run, is one COPY of the same bodies into the same
// table (no HTTP, no verification, no job). "in-process" is a server in the
// benchmark's process working no jobs (processing is enqueued in the same
// transaction, not run); "process" is the real leadify-server as its own
// process, its jobs turning the orders into leads at the same time.
func BenchmarkShopWebhooks(b *testing.B) {
	b.Run("in-process", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			webhookRun(b, servertest.Start(b, func(c *server.Config) { c.DisableJobs = true }))
		}
	})
	b.Run("process", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			webhookRun(b, servertest.StartProcess(b))
		}
	})
}

func webhookRun(b *testing.B, env *servertest.Env) {
	ctx := context.Background()
	n := benchWebhooks()
	tn := env.NewTenant(env.Admin(), "shopbench")
	secret := []byte("shpss_bench")
	resp, err := tn.Seller.Shops.CreateShopConnection(ctx, connect.NewRequest(&leadifyv1.CreateShopConnectionRequest{
		StoreId: tn.StoreID.String(), Platform: "shopify", BaseUrl: "bench.myshopify.com",
		Credentials: &leadifyv1.ShopCredentials{AccessToken: "shpat", WebhookSecret: string(secret)}}))
	if err != nil {
		b.Fatal(err)
	}
	conn := uuid.MustParse(resp.Msg.Connection.Id)
	url := env.URL + resp.Msg.Connection.WebhookPath
	bodies := make([][]byte, n)
	headers := make([]http.Header, n)
	for i := range n {
		bodies[i] = []byte(fmt.Sprintf(benchOrder, 5000000+i, 1000+i, i, i, i, i))
		headers[i] = http.Header{"Content-Type": {"application/json"}}
		shopify.Sign(secret, headers[i], "orders/create", fmt.Sprintf("evt-%d", i), bodies[i])
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	b.StartTimer()
	start := time.Now()
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i]))
				req.Header = headers[i]
				resp, err := hc.Do(req)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Store(fmt.Sprintf("status %d", resp.StatusCode))
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f != nil {
		b.Fatal(f)
	}
	var stored int
	env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM shop_webhooks WHERE store_id = $1`, tn.StoreID).Scan(&stored)
	}, tn.StoreID)
	if stored != n {
		b.Fatalf("%d webhooks stored, want %d", stored, n)
	}

	// Baseline: one COPY of the same bodies, as the owner (COPY cannot go
	// through row-level security), into the same table.
	owner, err := postgres.Open(ctx, env.DB.OwnerURL)
	if err != nil {
		b.Fatal(err)
	}
	defer owner.Close()
	rows := make([][]any, n)
	for i := range n {
		rows[i] = []any{tn.StoreID, uuid.Must(uuid.NewV7()), conn, "shopify", fmt.Sprintf("copy-%d", i), "orders/create", bodies[i]}
	}
	copyStart := time.Now()
	if _, err := owner.CopyFrom(ctx, pgx.Identifier{"shop_webhooks"}, shopsync.InsertColumns, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	copyElapsed := time.Since(copyStart)
	rate, copyRate := float64(n)/elapsed.Seconds(), float64(n)/copyElapsed.Seconds()
	b.ReportMetric(rate, "webhooks/s")
	b.ReportMetric(copyRate, "copy-webhooks/s")
	b.ReportMetric(rate/copyRate, "ratio-to-copy")
	b.ReportMetric(float64(n), "webhooks")
}

// BenchmarkShopOrdersToLeads measures the whole path: Shopify webhooks sent
// over HTTP by 64 senders, stored, and turned into leads by the processing
// jobs (intake pipeline: customers, duplicate check, row keys), until every
// order has its lead.
func BenchmarkShopOrdersToLeads(b *testing.B) {
	ctx := context.Background()
	n := benchWebhooks()
	for range b.N {
		b.StopTimer()
		env := servertest.Start(b, func(c *server.Config) { c.JobWorkers = 8 })
		tn := env.NewTenant(env.Admin(), "shopleads")
		secret := []byte("shpss_bench")
		resp, err := tn.Seller.Shops.CreateShopConnection(ctx, connect.NewRequest(&leadifyv1.CreateShopConnectionRequest{
			StoreId: tn.StoreID.String(), Platform: "shopify", BaseUrl: "bench.myshopify.com",
			Credentials: &leadifyv1.ShopCredentials{AccessToken: "shpat", WebhookSecret: string(secret)}}))
		if err != nil {
			b.Fatal(err)
		}
		url := env.URL + resp.Msg.Connection.WebhookPath
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
		var next atomic.Int64
		var wg sync.WaitGroup
		b.StartTimer()
		start := time.Now()
		for range 64 {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					body := []byte(fmt.Sprintf(benchOrder, 5000000+i, 1000+i, i, i, i, i))
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					shopify.Sign(secret, req.Header, "orders/create", fmt.Sprintf("evt-%d", i), body)
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		accepted := time.Since(start)
		for {
			var leads int
			env.InStore(func(tx *postgres.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM shop_orders WHERE store_id = $1 AND lead_id IS NOT NULL`, tn.StoreID).Scan(&leads)
			}, tn.StoreID)
			if leads >= n {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "leads/s")
		b.ReportMetric(float64(n)/accepted.Seconds(), "accepted/s")
	}
}
