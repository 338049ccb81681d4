package billing_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/billing/smtptest"
	parcelstore "github.com/leadify/leadify/syncserver/parcels"
)

// benchParcels is the number of delivered parcels per commission run:
// LEADIFY_BENCH_PARCELS, else LEADIFY_BENCH_ROWS (the bench task's), else
// 1,000,000.
func benchParcels(b *testing.B) int {
	s := os.Getenv("LEADIFY_BENCH_PARCELS")
	if s == "" {
		s = os.Getenv("LEADIFY_BENCH_ROWS")
	}
	if s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err)
		return n
	}
	return 1_000_000
}

// envInt reads an optional integer knob of the benchmarks (0 when unset).
func envInt(b *testing.B, name string) int {
	s := os.Getenv(name)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	require.NoError(b, err, name)
	return n
}

// benchAgents confirm the bench's parcels in turn.
const benchAgents = 20

// v7At is a UUIDv7 (what parcel ids are) minted at t.
func v7At(t time.Time, rng *rand.Rand) uuid.UUID {
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[8:], rng.Uint64())
	binary.BigEndian.PutUint64(u[:8], uint64(t.UnixMilli())<<16|rng.Uint64()&0xffff)
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	return u
}

// benchParcel is the i-th of n parcels of the month starting at from: created
// one to four days before it reached its final status (so ids, minted at
// creation, arrive out of order), delivered, confirmed by one of
// benchAgents agents.
func benchParcel(store uuid.UUID, agents []uuid.UUID, from time.Time, i, n int, rng *rand.Rand) billing.DeliveredParcel {
	step := 30 * 24 * time.Hour / time.Duration(n+1)
	at := from.Add(time.Duration(i+1) * step)
	created := at.Add(-24*time.Hour - time.Duration(rng.Int64N(int64(72*time.Hour))))
	return billing.DeliveredParcel{ID: v7At(created, rng), Store: store, Agent: agents[i%len(agents)], Carrier: "coliix",
		City: "casablanca", COD: money.Amount(249_00 + i%500), ConfirmedAt: at, DeliveredAt: at, Status: parcel.StatusDelivered}
}

// streamSource generates n delivered parcels of one store on the fly, in
// (DeliveredAt, ID) order, the way a Postgres cursor would stream them. Its
// changes are the server's (none: the parcels are not in the database), so
// that a run catches up as a server's does.
type streamSource struct {
	n      int
	agents []uuid.UUID
	parcelstore.BillingSource
}

func (s streamSource) Parcels(ctx context.Context, store uuid.UUID, from, to time.Time, fn func(billing.DeliveredParcel) error) error {
	rng := rand.New(rand.NewPCG(uint64(s.n), 7))
	for i := range s.n {
		if err := fn(benchParcel(store, s.agents, from, i, s.n, rng)); err != nil {
			return err
		}
	}
	return nil
}

func benchAgentIDs() []uuid.UUID {
	ids := make([]uuid.UUID, benchAgents)
	for i := range ids {
		ids[i] = uuid.New()
	}
	return ids
}

// BenchmarkCommissionRun runs commissions over benchParcels delivered parcels
// (two entries each: an agent's fixed fee and the platform's percentage) into
// a fresh store, then re-runs it (which must write nothing), and reports
// parcels/s of the first run beside the baseline measured in the same
// benchmark: one binary COPY of as many ledger rows, shaped like the run's,
// into a plain table with the ledger's columns, checks and indexes (no
// row-level security, no triggers, no versions, no idempotency check).
func BenchmarkCommissionRun(b *testing.B) {
	f := setup(b)
	n := benchParcels(b)
	ctx := context.Background()
	agents := benchAgentIDs()
	var runSecs, rerunSecs, runDBCPU, runGoCPU, runWAL, runCkpt float64
	for b.Loop() {
		store := f.newStore("Bench " + uuid.NewString()[:8])
		f.saveRules(store, agentRule(uuid.New(), commission.TriggerDelivered, 10_00), platformRule(uuid.New(), 300))
		r := &billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: streamSource{n, agents, parcelstore.BillingSource{Pool: f.pool}}, Chunk: envInt(b, "LEADIFY_BENCH_CHUNK"),
			Writers: envInt(b, "LEADIFY_BENCH_WRITERS")}
		db, wal, ckpt := backendCPU(b, f, nil), walPosition(b, f), checkpoints(b, f)
		cpu, start := cpuTime(b), time.Now()
		res, err := r.Run(ctx, store, march)
		require.NoError(b, err)
		runSecs += time.Since(start).Seconds()
		runGoCPU += (cpuTime(b) - cpu).Seconds()
		runDBCPU += cpuSince(backendCPU(b, f, nil), db)
		runWAL += walPosition(b, f) - wal
		runCkpt += checkpoints(b, f) - ckpt
		require.Equal(b, 2*n, res.Written)
		start = time.Now()
		again, err := r.Run(ctx, store, march)
		require.NoError(b, err)
		rerunSecs += time.Since(start).Seconds()
		require.Zero(b, again.Written)
	}
	base, baseDBCPU := copyBaseline(b, f, n, agents)
	b.ReportMetric(float64(n)*float64(b.N)/runSecs, "parcels/s")
	b.ReportMetric(float64(n)*float64(b.N)/rerunSecs, "rerun-parcels/s")
	b.ReportMetric(float64(n)/base, "baseline-parcels/s")
	b.ReportMetric(float64(n)*float64(b.N)/runSecs/(float64(n)/base), "x-baseline")
	b.ReportMetric(runWAL/float64(b.N)/(1<<20), "wal-MB")
	b.ReportMetric(runCkpt/float64(b.N), "checkpoints")
	// This process's CPU during the run: the engine's and the bench source's,
	// which generates the parcels.
	b.ReportMetric(runGoCPU/float64(b.N), "go-cpu-s")
	if runDBCPU > 0 && baseDBCPU > 0 {
		// What the database spent, whatever else the machine was doing.
		b.ReportMetric(runDBCPU/float64(b.N), "db-cpu-s")
		b.ReportMetric(baseDBCPU, "baseline-db-cpu-s")
	}
}

// backendCPU returns the CPU time each Postgres backend of the fixture's
// database has used so far (or only those of pids, when given), read from
// /proc: empty where Postgres is not on this machine or its processes cannot
// be read.
func backendCPU(b *testing.B, f *fixture, pids []int) map[int]time.Duration {
	ctx := context.Background()
	if pids == nil {
		conn, err := pgx.Connect(ctx, f.db.OwnerURL)
		require.NoError(b, err)
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
		require.NoError(b, err)
		pids, err = pgx.CollectRows(rows, pgx.RowTo[int])
		require.NoError(b, err)
	}
	out := map[int]time.Duration{}
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) in parentheses:
		// utime and stime are the 12th and 13th, in clock ticks (100 a second).
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 13 {
			continue
		}
		ut, err1 := strconv.ParseInt(fields[11], 10, 64)
		st, err2 := strconv.ParseInt(fields[12], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out[pid] = time.Duration(ut+st) * 10 * time.Millisecond
	}
	return out
}

// cpuSince sums, in seconds, what each backend in after used since before
// (a backend started since counts whole).
func cpuSince(after, before map[int]time.Duration) float64 {
	var d time.Duration
	for pid, t := range after {
		d += t - before[pid]
	}
	return d.Seconds()
}

// copyBaseline COPYs 2n ledger rows in one transaction into a fresh plain
// table made like commission_entries (columns, checks, indexes) as the
// owner, and returns the seconds it took and the CPU seconds its backend
// used (0 when unknown). Rows are encoded in binary COPY format by hand, as
// the run encodes its own: pgx's generic CopyFrom spends more CPU on
// reflection than the database on the rows.
func copyBaseline(b *testing.B, f *fixture, n int, agents []uuid.UUID) (float64, float64) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.db.OwnerURL)
	require.NoError(b, err)
	defer conn.Close(ctx)
	pid := []int{int(conn.PgConn().PID())}
	table := "ledger_baseline_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	_, err = conn.Exec(ctx, `CREATE TABLE `+table+` (LIKE commission_entries INCLUDING ALL)`)
	require.NoError(b, err)
	defer conn.Exec(ctx, `DROP TABLE `+table) //nolint:errcheck // a throwaway database
	rules := []uuid.UUID{uuid.New(), uuid.New()}
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	pr, pw := io.Pipe()
	encode := func() error {
		var e copyRows
		e.buf = append(e.buf, "PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00"...)
		for i := range n {
			p := benchParcel(f.store, agents, march, i, n, rng)
			for k := range 2 {
				id, err := uuid.NewV7()
				if err != nil {
					return err
				}
				ben, agent, amount, calc := "agent", p.Agent, int64(10_00), "forfait 10,00 MAD"
				if k == 1 {
					ben, agent, amount, calc = "platform", uuid.Nil, int64(p.COD)*3/100, "3,00 % × 249,00 MAD = 7,47 MAD"
				}
				e.buf = binary.BigEndian.AppendUint16(e.buf, 14)
				e.uuid(f.store)
				e.uuid(id)
				e.int8(int64(2*i + k + 1))
				e.uuid(rules[k])
				e.uuid(p.ID)
				e.text("earn")
				e.text(ben)
				if agent == uuid.Nil {
					e.buf = binary.BigEndian.AppendUint32(e.buf, 0xffffffff)
				} else {
					e.uuid(agent)
				}
				e.text("earned")
				e.int8(int64(p.COD))
				e.int8(amount)
				e.text("Prime delivered")
				e.text(calc)
				e.int8(p.DeliveredAt.UnixMicro() - pgEpochMicros)
			}
			if len(e.buf) >= 1<<20 || i == n-1 {
				if i == n-1 {
					e.buf = binary.BigEndian.AppendUint16(e.buf, 0xffff)
				}
				if _, err := pw.Write(e.buf); err != nil {
					return err
				}
				e.buf = e.buf[:0]
			}
		}
		return nil
	}
	db := backendCPU(b, f, pid)
	start := time.Now()
	tx, err := conn.Begin(ctx)
	require.NoError(b, err)
	go func() { pw.CloseWithError(encode()) }()
	defer pr.Close()
	wal, ckpt := walPosition(b, f), checkpoints(b, f)
	tag, err := conn.PgConn().CopyFrom(ctx, pr, `COPY `+table+` (store_id, id, version, rule_id, parcel_id, kind,
  beneficiary, agent_id, status, base, amount, rule_name, calculation, occurred_at) FROM STDIN (FORMAT binary)`)
	require.NoError(b, err)
	require.NoError(b, tx.Commit(ctx))
	secs := time.Since(start).Seconds()
	dbCPU := 0.0
	if after := backendCPU(b, f, pid); len(after) > 0 && len(db) > 0 {
		dbCPU = cpuSince(after, db)
	}
	require.Equal(b, int64(2*n), tag.RowsAffected())
	b.ReportMetric((walPosition(b, f)-wal)/(1<<20), "baseline-wal-MB")
	b.ReportMetric(checkpoints(b, f)-ckpt, "baseline-checkpoints")
	return secs, dbCPU
}

// checkpoints is how many checkpoints the cluster has started.
func checkpoints(b *testing.B, f *fixture) float64 {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.db.OwnerURL)
	require.NoError(b, err)
	defer conn.Close(ctx)
	var n float64
	require.NoError(b, conn.QueryRow(ctx, `SELECT (checkpoints_timed + checkpoints_req)::float8 FROM pg_stat_bgwriter`).Scan(&n))
	return n
}

// walPosition is the cluster's WAL insert position in bytes: what a step
// wrote to the WAL is the difference (with whatever else the cluster did
// meanwhile).
func walPosition(b *testing.B, f *fixture) float64 {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.db.OwnerURL)
	require.NoError(b, err)
	defer conn.Close(ctx)
	var pos float64
	require.NoError(b, conn.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::float8`).Scan(&pos))
	return pos
}

var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// copyRows encodes rows in PostgreSQL's binary COPY format.
type copyRows struct{ buf []byte }

func (e *copyRows) uuid(id uuid.UUID) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, 16)
	e.buf = append(e.buf, id[:]...)
}

func (e *copyRows) int8(v int64) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, 8)
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v))
}

func (e *copyRows) text(s string) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(len(s)))
	e.buf = append(e.buf, s...)
}

// cpuTime is the CPU time this process has used (user and system): on a
// machine shared with other work it says what a run cost, where wall time
// says how long it waited too.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkInvoicePDF renders one invoice of 2,000 lines.
func BenchmarkInvoicePDF(b *testing.B) {
	inv := sampleInvoice(b, 2000)
	signer, _ := testSigner(b)
	claim, err := signer.Sign(inv)
	require.NoError(b, err)
	link := claim.URL("https://app.leadify.ma")
	var out bytes.Buffer
	cpu := cpuTime(b)
	for b.Loop() {
		out.Reset()
		require.NoError(b, billing.RenderPDF(&out, billing.Document{Invoice: inv, Status: billing.InvoiceIssued, VerifyURL: link}))
	}
	b.ReportMetric(float64((cpuTime(b)-cpu).Milliseconds())/float64(b.N), "cpu-ms/invoice")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/invoice")
	b.ReportMetric(float64(out.Len())/1024, "KiB")
}

// BenchmarkInvoiceBatchPDF renders 1,000 invoices of 60 lines each on every
// core: the PDF half of a period-end batch.
func BenchmarkInvoiceBatchPDF(b *testing.B) {
	inv := sampleInvoice(b, 60)
	signer, _ := testSigner(b)
	claim, err := signer.Sign(inv)
	require.NoError(b, err)
	link := claim.URL("https://app.leadify.ma")
	cpu := cpuTime(b)
	for b.Loop() {
		var g errgroup.Group
		g.SetLimit(runtime.GOMAXPROCS(0))
		for range 1000 {
			g.Go(func() error {
				var out bytes.Buffer
				return billing.RenderPDF(&out, billing.Document{Invoice: inv, Status: billing.InvoiceIssued, VerifyURL: link})
			})
		}
		require.NoError(b, g.Wait())
	}
	b.ReportMetric((cpuTime(b)-cpu).Seconds()/float64(b.N), "cpu-s/1000-invoices")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/1000-invoices")
}

// mapSource serves each store's parcels from memory.
type mapSource map[uuid.UUID]billing.SliceSource

func (m mapSource) Parcels(ctx context.Context, store uuid.UUID, from, to time.Time, fn func(billing.DeliveredParcel) error) error {
	return m[store].Parcels(ctx, store, from, to, fn)
}

// BenchmarkInvoiceBatch closes a period for 1,000 stores (sellers of 5
// stores; LEADIFY_BENCH_INVOICES and LEADIFY_BENCH_STORES_PER_SELLER to
// change) with 60 parcels each, end to
// end, as the period-end batch's per-store jobs do: draft, number, sign,
// render and store the PDF, and email it to an in-process SMTP server, with
// as many stores in flight as the batch's workers (LEADIFY_BENCH_WORKERS,
// default 4).
func BenchmarkInvoiceBatch(b *testing.B) {
	f := setup(b)
	stores := envInt(b, "LEADIFY_BENCH_INVOICES")
	if stores == 0 {
		stores = 1000
	}
	perSeller := envInt(b, "LEADIFY_BENCH_STORES_PER_SELLER")
	if perSeller == 0 {
		perSeller = 5
	}
	workers := envInt(b, "LEADIFY_BENCH_WORKERS")
	if workers == 0 {
		workers = 4
	}
	ctx := context.Background()
	src := mapSource{}
	ids := make([]uuid.UUID, 0, stores)
	owner := uuid.New()
	f.exec(`INSERT INTO users (id, email, full_name, password_hash) VALUES ($1, 'bench-owner@t.test', 'Owner', 'x')`, owner)
	for i := range stores {
		if i%perSeller == 0 {
			f.seller = uuid.New()
			f.exec(`INSERT INTO sellers (id, name, owner_user_id) VALUES ($1, 'Bench SARL', $2)`, f.seller, owner)
		}
		id := f.newStore(fmt.Sprintf("Boutique %04d", i))
		ids = append(ids, id)
		src[id] = parcels(id, f.agent, 60, uint64(i))
	}
	sink := smtptest.Start(b)
	svc := newService(b, f, src)
	svc.Config.Mail = billing.MailConfig{Addr: sink.Addr, From: "Leadify <factures@leadify.test>"}
	from, to := billing.MonthOf(march)
	cpu := cpuTime(b)
	for b.Loop() {
		var g errgroup.Group
		g.SetLimit(workers)
		for _, id := range ids {
			g.Go(func() error {
				_, err := svc.Close(ctx, id, from, to)
				return err
			})
		}
		require.NoError(b, g.Wait())
		b.StopTimer()
		require.Len(b, sink.Messages(), stores)
		b.StartTimer()
	}
	b.ReportMetric((cpuTime(b)-cpu).Seconds()/float64(b.N), "go-cpu-s/batch")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/batch")
	b.ReportMetric(float64(stores)*float64(b.N)/b.Elapsed().Seconds(), "invoices/s")
}
