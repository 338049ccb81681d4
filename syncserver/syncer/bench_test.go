package syncer_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// benchRows is how many leads the initial-sync benchmark replicates
// (LEADIFY_BENCH_ROWS; `go tool task bench` sets 1,000,000).
func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("LEADIFY_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// BenchmarkPullInitialSync measures an initial sync of a store as a seller:
// every page pulled over Connect from a leadify-server process and decoded.
// The baseline is a binary COPY out of the same rows on the same database.
func BenchmarkPullInitialSync(b *testing.B) {
	n := benchRows()
	env := servertest.StartProcess(b)
	tn := env.NewTenant(env.Admin(), "bench")
	env.SeedLeads(tn.StoreID, n, "Bench customer")
	vacuum(b, env)
	ctx := context.Background()

	// The client here only decodes and counts: the server and the wire. The
	// desktop's SQLite apply is measured in desktop/localstore.
	b.Run("pull", func(b *testing.B) {
		for b.Loop() {
			start := time.Now()
			rows, pages := pullAll(b, tn.Seller)
			if rows != n {
				b.Fatalf("pulled %d of %d leads", rows, n)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "rows/s")
			b.ReportMetric(float64(pages), "pages")
		}
	})
	b.Run("baseline-copy-out", func(b *testing.B) {
		for b.Loop() {
			start := time.Now()
			var rows int64
			err := postgres.InTx(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
				res, err := tx.Conn().PgConn().CopyTo(ctx, discard{}, fmt.Sprintf(
					`COPY (SELECT * FROM leads WHERE store_id = '%s' ORDER BY version) TO STDOUT (FORMAT binary)`, tn.StoreID))
				rows = res.RowsAffected()
				return err
			})
			if err != nil || rows != int64(n) {
				b.Fatalf("copy out: %d rows, %v", rows, err)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "rows/s")
		}
	})
}

// pullAll pulls every scope from zero, counting lead rows.
func pullAll(b *testing.B, c *servertest.Clients) (rows, pages int) {
	ctx := context.Background()
	client := newReplica(b, c).client
	cursors := map[string]*leadifyv1.Cursor{}
	for {
		req := &leadifyv1.PullRequest{ClientId: client, MaxRows: 5000}
		for _, cur := range cursors {
			req.Cursors = append(req.Cursors, cur)
		}
		resp, err := c.Sync.Pull(ctx, connect.NewRequest(req))
		if err != nil {
			b.Fatal(err)
		}
		pages++
		more := false
		for _, sc := range resp.Msg.Scopes {
			for _, ch := range sc.Changes {
				if ch.Table == "leads" {
					rows++
				}
			}
			cursors[sc.ScopeId] = &leadifyv1.Cursor{ScopeId: sc.ScopeId, Version: sc.Cursor, Epoch: sc.Epoch,
				Initial: sc.Initial, InitialPurged: sc.InitialPurged}
			more = more || sc.HasMore
		}
		if !more {
			return rows, pages
		}
	}
}

// vacuum brings a freshly seeded database to its steady state (statistics,
// visibility map), as autovacuum would long before anyone syncs the rows.
func vacuum(t testing.TB, env *servertest.Env) {
	conn, err := pgx.Connect(context.Background(), env.DB.OwnerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "VACUUM ANALYZE"); err != nil {
		t.Fatal(err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkPush measures mutations pushed by agents to a leadify-server
// process, in batches of 100: into one store, and spread over many stores.
// The baseline does the same row work (a lead updated, an event appended per
// mutation) in plain transactions of 100 with pgx batches.
func BenchmarkPush(b *testing.B) {
	for _, stores := range []int{1, 100} {
		b.Run(fmt.Sprintf("stores=%d", stores), func(b *testing.B) {
			env := servertest.StartProcess(b)
			admin := env.Admin()
			type agent struct {
				r     *replica
				store uuid.UUID
				leads []uuid.UUID
			}
			var agents []agent
			for i := range stores {
				tn := env.NewTenant(admin, fmt.Sprintf("push%d", i))
				env.SeedLeads(tn.StoreID, 50, "Push")
				ids := claim(b, tn.Agent, tn.StoreID, 50)
				a := agent{r: newReplica(b, tn.Agent), store: tn.StoreID}
				for _, id := range ids {
					a.leads = append(a.leads, uuid.MustParse(id))
				}
				agents = append(agents, a)
			}
			const batch, batches = 100, 50
			start := time.Now()
			done := 0
			for b.Loop() {
				for i := range batches {
					a := agents[i%len(agents)]
					muts := make([]*leadifyv1.Mutation, batch)
					for j := range muts {
						muts[j] = a.r.mutation(a.store, mutation.AddNote{Lead: a.leads[j%len(a.leads)], EventID: uuid.New(), Note: "bench note"})
					}
					resp := a.r.push(muts...)
					if len(resp.Results) != batch || !resp.Results[batch-1].Applied {
						b.Fatalf("push: %d results", len(resp.Results))
					}
					done += batch
				}
			}
			b.ReportMetric(float64(done)/time.Since(start).Seconds(), "mutations/s")
		})
	}
	b.Run("baseline-plain-tx", func(b *testing.B) {
		env := servertest.StartProcess(b)
		tn := env.NewTenant(env.Admin(), "plain")
		ids := env.SeedLeads(tn.StoreID, 50, "Plain")
		ctx := context.Background()
		const batch, batches = 100, 50
		start := time.Now()
		done := 0
		for b.Loop() {
			for range batches {
				err := postgres.InTx(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
					if _, err := tx.Exec(ctx, `SELECT set_config('app.sync_writer', 'on', true)`); err != nil {
						return err
					}
					var seq int64
					if err := tx.QueryRow(ctx, `UPDATE sync_scopes SET seq = seq + $2 WHERE scope_id = $1 RETURNING seq`, tn.StoreID, batch).Scan(&seq); err != nil {
						return err
					}
					bt := &pgx.Batch{}
					for j := range batch {
						v := seq - batch + int64(j) + 1
						id := ids[j%len(ids)]
						bt.Queue(`UPDATE leads SET version = $3, updated_at = now() WHERE store_id = $1 AND id = $2`, tn.StoreID, id, v)
						bt.Queue(`INSERT INTO lead_events (store_id, id, lead_id, version, created_at, kind, note) VALUES ($1, $2, $3, $4, now(), 'note', 'bench note')`,
							tn.StoreID, uuid.New(), id, v)
					}
					return tx.SendBatch(ctx, bt).Close()
				})
				if err != nil {
					b.Fatal(err)
				}
				done += batch
			}
		}
		b.ReportMetric(float64(done)/time.Since(start).Seconds(), "mutations/s")
	})
}
