package parcels_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/syncclient"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/carrier/ameex"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// BenchmarkWebhookToReplica sends Ameex webhooks at a paced 1,000 per
// second to a leadify-server process, each moving one of n parcels to
// delivered, and measures the time from the moment a webhook is sent to
// the commit that makes the parcel's new status visible in the SQLite
// replica of a subscribed desktop sync client (desktop/syncclient and
// desktop/localstore, synchronous=FULL): p50 and p99, with the webhook
// acknowledgement latency (its baseline: the inbox alone) and the rate
// achieved. n is LEADIFY_BENCH_ROWS capped at 20,000 (20 s), default 10,000.
func BenchmarkWebhookToReplica(b *testing.B) {
	const rate = 1000
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("LEADIFY_BENCH_ROWS")); err == nil && v > 0 {
		n = min(v, 20_000)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pg := pgtest.New(b)
	// LEADIFY_BENCH_DB_PARAMS adds connection parameters to the server's
	// database URL (e.g. "&pool_max_conns=16").
	env := servertest.StartProcessOn(b, pg, "DATABASE_URL="+pg.AppURL+os.Getenv("LEADIFY_BENCH_DB_PARAMS"))
	tn := env.NewTenant(env.Admin(), "replica")
	acc, err := tn.Seller.Carriers.CreateCarrierAccount(ctx, connect.NewRequest(&leadifyv1.CreateCarrierAccountRequest{StoreId: tn.StoreID.String(),
		Carrier: ameex.Name, Label: "Ameex", Credentials: &leadifyv1.CarrierCredentials{BaseUrl: "https://api.ameex.app", ApiId: "i", ApiKey: "k"}}))
	if err != nil {
		b.Fatal(err)
	}
	account := uuid.MustParse(acc.Msg.Account.Id)
	hookURL := strings.TrimRight(env.URL, "/") + acc.Msg.WebhookPath
	leads := env.SeedLeads(tn.StoreID, n, "replica")
	for start := 0; start < n; start += syncer.BulkChunk {
		end := min(start+syncer.BulkChunk, n)
		err := syncer.Write(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(w *syncer.Writer) error {
			first, err := w.Reserve(tn.StoreID, end-start)
			if err != nil {
				return err
			}
			for i := start; i < end; i++ {
				if _, err := w.Tx.Exec(ctx, `INSERT INTO parcels (store_id, id, version, created_at, updated_at, lead_id, account_id, carrier, tracking, status, creation)
VALUES ($1, $2, $3, now(), now(), $4, $5, 'ameex', $6, 'out_for_delivery', 'created')`, tn.StoreID, uuid.Must(uuid.NewV7()), first+int64(i-start), leads[i], account,
					fmt.Sprintf("MRK%08d", i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}

	path := filepath.Join(b.TempDir(), "replica.db")
	db, err := localstore.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	read, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		b.Fatal(err)
	}
	defer read.Close()
	var (
		mu      sync.Mutex
		seen    int64 // highest parcel version read from the replica
		arrived = make([]time.Time, n)
		got     int
	)
	db.SetHook(func(point string) {
		if point != "apply:after-commit" {
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		rows, err := read.Query(`SELECT tracking, version FROM parcels WHERE version > ? AND status = 'delivered'`, seen)
		if err != nil {
			return
		}
		defer rows.Close()
		for rows.Next() {
			var code string
			var v int64
			if rows.Scan(&code, &v) != nil {
				continue
			}
			seen = max(seen, v)
			if i, err := strconv.Atoi(strings.TrimPrefix(code, "MRK")); err == nil && i < n && arrived[i].IsZero() {
				arrived[i] = now
				got++
			}
		}
	})
	sc, err := syncclient.New(syncclient.Config{BaseURL: env.URL, Token: tn.Seller.Token, DB: db, PageRows: 5000})
	if err != nil {
		b.Fatal(err)
	}
	if err := sc.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	go func() { _ = sc.Run(ctx) }()
	time.Sleep(time.Second) // the Subscribe stream is up

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	sent := make([]time.Time, n)
	acks := make([]time.Duration, n)
	for b.Loop() {
		work := make(chan int, n)
		var wg sync.WaitGroup
		for range 128 {
			wg.Go(func() {
				for i := range work {
					body := fmt.Sprintf("CODE=MRK%08d&STATUT=DELIVERED&STATUT_NAME=Livr%%C3%%A9&STATUT_COLOR=%%2300ff00&STATUT_S=&STATUT_S_NAME=&COMMENT=&DATE=2026-03-15+13%%3A17%%3A11", i)
					t0 := time.Now()
					resp, err := hc.Post(hookURL, "application/x-www-form-urlencoded", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						continue
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("webhook %d: status %d", i, resp.StatusCode)
					}
					acks[i] = time.Since(t0)
				}
			})
		}
		start := time.Now()
		for i := range n {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
				time.Sleep(d)
			}
			sent[i] = time.Now()
			work <- i
		}
		close(work)
		wg.Wait()
		sendRate := float64(n) / time.Since(start).Seconds()
		deadline := time.Now().Add(time.Minute)
		for {
			mu.Lock()
			done := got
			mu.Unlock()
			if done == n {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d statuses reached the replica", done, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		lat := make([]time.Duration, n)
		for i := range n {
			lat[i] = arrived[i].Sub(sent[i])
		}
		slices.Sort(lat)
		// Where the time goes: sent → the status committed in Postgres.
		applied := make([]time.Duration, 0, n)
		env.InStore(func(tx *postgres.Tx) error {
			rows, err := tx.Query(ctx, `SELECT tracking, updated_at FROM parcels WHERE store_id = $1 AND status = 'delivered'`, tn.StoreID)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var code string
				var at time.Time
				if err := rows.Scan(&code, &at); err != nil {
					return err
				}
				if i, err := strconv.Atoi(strings.TrimPrefix(code, "MRK")); err == nil && i < n {
					applied = append(applied, at.Sub(sent[i]))
				}
			}
			return rows.Err()
		}, tn.StoreID)
		slices.Sort(applied)
		slices.Sort(acks)
		pct := func(d []time.Duration, p float64) float64 {
			return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
		}
		b.ReportMetric(pct(lat, 0.50), "replica-p50-ms")
		b.ReportMetric(pct(lat, 0.99), "replica-p99-ms")
		b.ReportMetric(pct(applied, 0.50), "applied-p50-ms")
		b.ReportMetric(pct(applied, 0.99), "applied-p99-ms")
		b.ReportMetric(pct(acks, 0.50), "ack-p50-ms")
		b.ReportMetric(pct(acks, 0.99), "ack-p99-ms")
		b.ReportMetric(sendRate, "webhooks/s")
		b.ReportMetric(float64(n), "webhooks")
	}
}
