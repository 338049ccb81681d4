package syncsim_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/syncclient"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/servertest"
)

// BenchmarkPropagation measures how long a mutation takes from the moment
// client A's push is acknowledged to its commit in the SQLite replicas of
// 100 other clients, all subscribed to a leadify-server process: with the
// changes delivered in the Subscribe stream (deliver), and, as the baseline,
// with a poke each client answers with a pull (poke).
func BenchmarkPropagation(b *testing.B) {
	b.Run("deliver", func(b *testing.B) { benchPropagation(b, false) })
	b.Run("poke", func(b *testing.B) { benchPropagation(b, true) })
}

func benchPropagation(b *testing.B, pokesOnly bool) {
	const subscribers, pushes = 100, 30
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := servertest.StartProcess(b)
	tn := env.NewTenant(env.Admin(), "propagation")
	leads := env.SeedLeads(tn.StoreID, 10, "Propagation")
	dir := b.TempDir()

	var mu sync.Mutex
	arrived := map[uuid.UUID][]time.Time{} // event → arrival time per subscriber
	watch := map[uuid.UUID]bool{}
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4 * subscribers}}

	open := func(name, token string, hook func(*sql.DB) func(string)) (*syncclient.Client, *localstore.DB) {
		path := filepath.Join(dir, name+".db")
		db, err := localstore.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		if hook != nil {
			read, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { read.Close() })
			db.SetHook(hook(read))
		}
		sc, err := syncclient.New(syncclient.Config{BaseURL: env.URL, Token: token, DB: db, HTTP: httpc, DeviceName: name,
			PokesOnly: pokesOnly})
		if err != nil {
			b.Fatal(err)
		}
		return sc, db
	}
	for i := range subscribers {
		email := fmt.Sprintf("sub%d@propagation.test", i)
		inv, err := tn.Seller.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: tn.StoreID.String(),
			Email: email, Role: leadifyv1.Role_ROLE_SELLER}))
		if err != nil {
			b.Fatal(err)
		}
		acc, err := env.ClientsFor("").Auth.AcceptInvitation(ctx, connect.NewRequest(&leadifyv1.AcceptInvitationRequest{
			Token: inv.Msg.Token, FullName: email, Password: servertest.Password}))
		if err != nil {
			b.Fatal(err)
		}
		sc, _ := open(fmt.Sprintf("sub%d", i), acc.Msg.Session.Token, func(read *sql.DB) func(string) {
			return func(point string) {
				if point != "apply:after-commit" {
					return
				}
				now := time.Now()
				mu.Lock()
				var pending []uuid.UUID
				for ev := range watch {
					pending = append(pending, ev)
				}
				mu.Unlock()
				for _, ev := range pending {
					var one int
					if read.QueryRow(`SELECT 1 FROM lead_events WHERE id = ?`, ev.String()).Scan(&one) == nil {
						mu.Lock()
						arrived[ev] = append(arrived[ev], now)
						mu.Unlock()
					}
				}
			}
		})
		if err := sc.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		go func() { _ = sc.Run(ctx) }()
	}
	var acked time.Time
	writer, _ := open("writer", tn.Seller.Token, nil)
	if err := writer.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	time.Sleep(time.Second) // every subscriber's stream is up

	var latencies []time.Duration
	for b.Loop() {
		for range pushes {
			ev := uuid.New()
			mu.Lock()
			watch[ev] = true
			mu.Unlock()
			if _, err := writer.Do(ctx, tn.StoreID, mutation.AddNote{Lead: leads[0], EventID: ev, Note: "propagate"}); err != nil {
				b.Fatal(err)
			}
			if err := writer.Push(ctx); err != nil {
				b.Fatal(err)
			}
			acked = time.Now()
			deadline := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				n := len(arrived[ev])
				mu.Unlock()
				if n >= subscribers {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("only %d of %d subscribers got the change", n, subscribers)
				}
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			delete(watch, ev)
			for _, t := range arrived[ev] {
				latencies = append(latencies, t.Sub(acked))
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(latencies)), "deliveries")
}

// BenchmarkInitialSync replicates a store of LEADIFY_BENCH_ROWS leads (default
// 100,000; `go tool task bench` uses 1,000,000) from a leadify-server process
// into an empty SQLite replica with the real sync client: rows/s, wall time,
// and the peak memory of the client (Go heap in use) and of the server
// process (VmHWM). Baselines: desktop/localstore BenchmarkRawInsert (raw SQLite
// insert) and syncserver/syncer BenchmarkPullInitialSync (COPY out).
func BenchmarkInitialSync(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("LEADIFY_BENCH_ROWS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	env := servertest.StartProcess(b)
	tn := env.NewTenant(env.Admin(), "initial")
	env.SeedLeads(tn.StoreID, n, "Initial sync customer")
	vacuum(b, env)
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "replica.db")
		db, err := localstore.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		sc, err := syncclient.New(syncclient.Config{BaseURL: env.URL, Token: tn.Seller.Token, DB: db, PageRows: 5000})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		stop := make(chan struct{})
		peak := make(chan uint64)
		go func() {
			var max uint64
			var ms runtime.MemStats
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				runtime.ReadMemStats(&ms)
				max = maxU(max, ms.HeapInuse+ms.StackInuse)
				select {
				case <-stop:
					peak <- max
					return
				case <-t.C:
				}
			}
		}()
		start := time.Now()
		if err := sc.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		close(stop)
		clientPeak := <-peak
		got, err := db.LeadCount(ctx, tn.StoreID)
		if err != nil || got != n {
			b.Fatalf("replicated %d of %d leads: %v", got, n, err)
		}
		db.Close()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "rows/s")
		b.ReportMetric(elapsed.Seconds(), "wall-s")
		b.ReportMetric(float64(clientPeak)/(1<<20), "client-peak-MB")
		b.ReportMetric(float64(serverHWM(b, env))/(1<<20), "server-peak-MB")
	}
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// serverHWM is the leadify-server process's peak resident memory.
func serverHWM(b *testing.B, env *servertest.Env) uint64 {
	if env.PID == 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", env.PID))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// vacuum brings a freshly seeded database to the statistics autovacuum
// would have long before anyone syncs it.
func vacuum(b *testing.B, env *servertest.Env) {
	conn, err := pgx.Connect(context.Background(), env.DB.OwnerURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
}
