package parcels_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/carrier/ameex"
	"github.com/leadify/leadify/syncserver/carrier/ameex/ameextest"
	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/server"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// webhookBench is a store with an Ameex account on a server that works no
// jobs (processing is enqueued, not run, so only acceptance is measured).
type webhookBench struct {
	env     *servertest.Env
	store   uuid.UUID
	account uuid.UUID
	hash    []byte
	token   string
	svc     *parcels.Service
	seq     atomic.Int64
}

func newWebhookBench(b *testing.B) *webhookBench {
	env := servertest.Start(b, func(c *server.Config) { c.DisableJobs = true })
	tenant := env.NewTenant(env.Admin(), "bench")
	wb := &webhookBench{env: env, store: tenant.StoreID}
	var token string
	env.InStore(func(tx *postgres.Tx) error {
		var err error
		wb.account, token, err = parcels.InsertAccount(context.Background(), tx, env.Server.Config().Secrets, parcels.NewAccount{
			Store: wb.store, Carrier: ameex.Name, Credentials: parcels.Credentials{BaseURL: "https://api.ameex.app", APIID: "i", APIKey: "k"}})
		return err
	}, wb.store)
	wb.token = token
	h := sha256.Sum256([]byte(token))
	wb.hash = h[:]
	wb.svc = parcels.New(env.DB.App, env.Server.Events, env.Server.Config().Secrets, env.Server.Log(), func() *river.Client[pgx.Tx] { return env.Server.River })
	return wb
}

// delivery returns a new, unique Ameex webhook.
func (wb *webhookBench) delivery() parcels.Delivery {
	n := wb.seq.Add(1)
	body := fmt.Sprintf("CODE=MRK%08d&STATUT=DELIVERED&STATUT_NAME=Livr%%C3%%A9&STATUT_COLOR=%%23fff&STATUT_S=&STATUT_S_NAME=&COMMENT=&DATE=2026-03-15+13%%3A17%%3A11", n)
	return parcels.Delivery{AccountID: wb.account, TokenHash: wb.hash, Carrier: ameex.Name, Method: "POST",
		ContentType: "application/x-www-form-urlencoded", Body: []byte(body)}
}

func reportRate(b *testing.B, start time.Time, unit string) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), unit)
}

// BenchmarkWebhookInbox measures webhooks accepted and durably stored per
// second (fsync on) from 64 concurrent senders: with group commit (the
// server's path: authenticate, insert, enqueue processing, one commit per
// batch), against the baseline of one transaction per webhook doing the same
// work, and against a COPY of the same rows in batches (no authentication,
// no job: the ceiling of raw storage).
func BenchmarkWebhookInbox(b *testing.B) {
	ctx := context.Background()
	b.Run("group-commit", func(b *testing.B) {
		wb := newWebhookBench(b)
		b.SetParallelism(32)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if out, err := wb.svc.Inbox.Submit(ctx, wb.delivery()); err != nil || out != parcels.Stored {
					b.Fatalf("submit: %v %v", out, err)
				}
			}
		})
		reportRate(b, start, "webhooks/s")
	})
	b.Run("group-commit-http", func(b *testing.B) {
		wb := newWebhookBench(b)
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
		path := parcels.WebhookURL(wb.env.URL, ameex.Name, wb.account, wb.token)
		b.SetParallelism(32)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				d := wb.delivery()
				resp, err := hc.Post(path, d.ContentType, bytes.NewReader(d.Body))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
		reportRate(b, start, "webhooks/s")
	})
	b.Run("single-row-tx", func(b *testing.B) {
		wb := newWebhookBench(b)
		b.SetParallelism(32)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if out, err := wb.svc.Inbox.StoreNow(ctx, wb.delivery()); err != nil || out != parcels.Stored {
					b.Fatalf("store: %v %v", out, err)
				}
			}
		})
		reportRate(b, start, "webhooks/s")
	})
	b.Run("copy-512", func(b *testing.B) {
		wb := newWebhookBench(b)
		owner, err := postgres.Open(ctx, wb.env.DB.OwnerURL)
		if err != nil {
			b.Fatal(err)
		}
		defer owner.Close()
		b.ResetTimer()
		start := time.Now()
		for done := 0; done < b.N; {
			n := min(512, b.N-done)
			rows := make([][]any, n)
			for i := range rows {
				d := wb.delivery()
				rows[i] = []any{wb.store, uuid.Must(uuid.NewV7()), d.AccountID, d.Carrier, d.Digest(), d.Method, d.ContentType, d.Query, d.Body}
			}
			if _, err := owner.CopyFrom(ctx, pgx.Identifier{"webhook_inbox"},
				[]string{"store_id", "id", "account_id", "carrier", "digest", "method", "content_type", "query", "body"}, pgx.CopyFromRows(rows)); err != nil {
				b.Fatal(err)
			}
			done += n
		}
		reportRate(b, start, "webhooks/s")
	})
}

// BenchmarkBulkCreate creates 1,000 parcels through the creation jobs against
// an Ameex fake answering every call in 100 ms, with the account's
// concurrency at 4, 8 and 16: the bound is concurrency / 0.1 s (40, 80, 160
// parcels/s), so the figures show whether we, not the carrier, are the
// limit. Every call takes its slot through the cluster-wide semaphore.
func BenchmarkBulkCreate(b *testing.B) {
	const (
		n       = 1000
		latency = 100 * time.Millisecond
	)
	ctx := context.Background()
	for _, concurrency := range []int{4, 8, 16} {
		b.Run(fmt.Sprintf("concurrency-%d", concurrency), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				env := servertest.Start(b, func(c *server.Config) { c.JobWorkers = 32 })
				tenant := env.NewTenant(env.Admin(), "bulk")
				fake := ameextest.NewServer(b, ameextest.Options{MissingCodeRate: -1, Faults: ameextest.Faults{Latency: latency}})
				env.InStore(func(tx *postgres.Tx) error {
					_, _, err := parcels.InsertAccount(ctx, tx, env.Server.Config().Secrets, parcels.NewAccount{Store: tenant.StoreID, Carrier: ameex.Name,
						Credentials: parcels.Credentials{BaseURL: fake.URL, APIID: "test-id", APIKey: "test-key"}, Concurrency: concurrency})
					return err
				}, tenant.StoreID)
				f := fixture{env: env, store: tenant.StoreID}
				leads := f.confirm(b, n)
				params := make([]river.InsertManyParams, len(leads))
				for i, id := range leads {
					params[i] = river.InsertManyParams{Args: parcels.CreateArgs{Store: tenant.StoreID, Lead: id}}
				}
				b.StartTimer()
				start := time.Now()
				if _, err := env.Server.River.InsertMany(ctx, params); err != nil {
					b.Fatal(err)
				}
				for f.count(b, `SELECT count(*) FROM parcels WHERE creation = 'created'`) < n {
					time.Sleep(50 * time.Millisecond)
				}
				elapsed := time.Since(start)
				bound := float64(concurrency) / latency.Seconds()
				b.ReportMetric(n/elapsed.Seconds(), "parcels/s")
				b.ReportMetric(bound, "bound-parcels/s")
				b.ReportMetric(n/elapsed.Seconds()/bound, "of-bound")
				b.ReportMetric(float64(fake.Sim.PeakConcurrency("/Parcels/Action/Type/Add")), "peak-calls")
				if got := len(fake.Sim.All()); got != n {
					b.Fatalf("%d parcels at the fake, want %d", got, n)
				}
			}
		})
	}
}

// BenchmarkWebhookProcessing measures webhooks applied per second by the
// processing jobs (parse, parcel event, status move, domain event, inbox
// row done), from 64 concurrent senders through the inbox, until every
// parcel is delivered.
func BenchmarkWebhookProcessing(b *testing.B) {
	const n = 3000
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		env := servertest.Start(b, func(c *server.Config) { c.JobWorkers = 8 })
		tenant := env.NewTenant(env.Admin(), "process")
		wb := &webhookBench{env: env, store: tenant.StoreID}
		var token string
		env.InStore(func(tx *postgres.Tx) error {
			var err error
			wb.account, token, err = parcels.InsertAccount(ctx, tx, env.Server.Config().Secrets, parcels.NewAccount{
				Store: wb.store, Carrier: ameex.Name, Credentials: parcels.Credentials{BaseURL: "https://api.ameex.app", APIID: "i", APIKey: "k"}})
			return err
		}, wb.store)
		h := sha256.Sum256([]byte(token))
		wb.hash = h[:]
		wb.svc = parcels.New(env.DB.App, env.Server.Events, env.Server.Config().Secrets, env.Server.Log(), func() *river.Client[pgx.Tx] { return env.Server.River })
		leads := env.SeedLeads(wb.store, n, "process")
		err := syncer.Write(ctx, env.DB.App, postgres.StoreScope(wb.store), func(w *syncer.Writer) error {
			first, err := w.Reserve(wb.store, n)
			if err != nil {
				return err
			}
			for i, lead := range leads {
				if _, err := w.Tx.Exec(ctx, `INSERT INTO parcels (store_id, id, version, created_at, updated_at, lead_id, account_id, carrier, tracking, status, creation)
VALUES ($1, $2, $3, now(), now(), $4, $5, 'ameex', $6, 'out_for_delivery', 'created')`, wb.store, uuid.Must(uuid.NewV7()), first+int64(i), lead, wb.account,
					fmt.Sprintf("MRK%08d", i+1)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		f := fixture{env: env, store: wb.store}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for g := range 64 {
			wg.Go(func() {
				for i := g; i < n; i += 64 {
					body := fmt.Sprintf("CODE=MRK%08d&STATUT=DELIVERED&STATUT_NAME=Livr%%C3%%A9&DATE=2026-03-15+13%%3A17%%3A11", i+1)
					d := parcels.Delivery{AccountID: wb.account, TokenHash: wb.hash, Carrier: ameex.Name, Method: "POST",
						ContentType: "application/x-www-form-urlencoded", Body: []byte(body)}
					if out, err := wb.svc.Inbox.Submit(ctx, d); err != nil || out != parcels.Stored {
						b.Errorf("submit: %v %v", out, err)
						return
					}
				}
			})
		}
		wg.Wait()
		accepted := time.Since(start)
		for f.count(b, `SELECT count(*) FROM parcels WHERE status = 'delivered'`) < n {
			time.Sleep(20 * time.Millisecond)
		}
		b.ReportMetric(n/time.Since(start).Seconds(), "applied/s")
		b.ReportMetric(n/accepted.Seconds(), "accepted/s")
	}
}
