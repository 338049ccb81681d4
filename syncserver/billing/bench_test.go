package billing_test

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
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
	"github.com/leadify/leadify/syncserver/postgres"
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

// streamSource generates n delivered parcels of one store on the fly, in
// (DeliveredAt, ID) order, the way a Postgres cursor would stream them.
type streamSource struct{ n int }

func (s streamSource) Parcels(ctx context.Context, store uuid.UUID, from, to time.Time, fn func(billing.DeliveredParcel) error) error {
	agent := uuid.New()
	step := to.Sub(from) / time.Duration(s.n+1)
	for i := range s.n {
		at := from.Add(time.Duration(i+1) * step)
		p := billing.DeliveredParcel{ID: uuid.New(), Store: store, Agent: agent, Carrier: "coliix", City: "casablanca",
			COD: money.Amount(249_00 + i%500), ConfirmedAt: at, DeliveredAt: at, Status: parcel.StatusDelivered}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkCommissionRun runs commissions over benchParcels delivered parcels
// (two entries each: an agent's fixed fee and the platform's percentage) into
// a fresh store, and reports parcels/s. Compare with BenchmarkCopyBaseline.
func BenchmarkCommissionRun(b *testing.B) {
	f := setup(b)
	n := benchParcels(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		store := f.newStore("Bench " + uuid.NewString()[:8])
		f.saveRules(store, agentRule(uuid.New(), commission.TriggerDelivered, 10_00), platformRule(uuid.New(), 300))
		r := &billing.Runner{Pool: f.pool, Source: streamSource{n}}
		b.StartTimer()
		res, err := r.Run(ctx, store, march)
		require.NoError(b, err)
		require.Equal(b, 2*n, res.Written)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "parcels/s")
}

// BenchmarkCopyBaseline COPYs the same number of ledger rows (2 per parcel)
// into a table shaped and indexed like commission_entries, without row-level
// security, versions or idempotency: the floor the run is measured against.
func BenchmarkCopyBaseline(b *testing.B) {
	f := setup(b)
	n := benchParcels(b)
	ctx := context.Background()
	rules, now := []uuid.UUID{uuid.New(), uuid.New()}, time.Now()
	rows := make([][]any, 0, 2*n)
	for range n {
		p := uuid.New()
		for k, ben := range []string{"agent", "platform"} {
			rows = append(rows, []any{f.store, uuid.New(), int64(len(rows) + 1), rules[k], p, "earn", ben, nil, "earned",
				int64(249_00), int64(747 + k), "Frais", "3,00 % × 249,00 MAD = 7,47 MAD", now})
		}
	}
	cols := []string{"store_id", "id", "version", "rule_id", "parcel_id", "kind", "beneficiary", "agent_id",
		"status", "base", "amount", "rule_name", "calculation", "occurred_at"}
	b.ResetTimer()
	for b.Loop() {
		err := postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE baseline (LIKE commission_entries INCLUDING DEFAULTS INCLUDING INDEXES) ON COMMIT DROP`); err != nil {
				return err
			}
			for off := 0; off < len(rows); off += 4000 { // the run's chunk: 2,000 parcels
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"baseline"}, cols, pgx.CopyFromRows(rows[off:min(off+4000, len(rows))])); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(b, err)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "parcels/s")
}

// BenchmarkInvoicePDF renders one invoice of 2,000 lines.
func BenchmarkInvoicePDF(b *testing.B) {
	inv := sampleInvoice(b, 2000)
	signer, _ := testSigner(b)
	claim, err := signer.Sign(inv)
	require.NoError(b, err)
	link := claim.URL("https://app.leadify.ma")
	var out bytes.Buffer
	for b.Loop() {
		out.Reset()
		require.NoError(b, billing.RenderPDF(&out, billing.Document{Invoice: inv, Status: billing.InvoiceIssued, VerifyURL: link}))
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/invoice")
	b.ReportMetric(float64(out.Len())/1024, "KiB")
}

// BenchmarkInvoiceBatch renders 1,000 invoices of 60 lines each on every
// core, the PDF half of a period-end batch.
func BenchmarkInvoiceBatch(b *testing.B) {
	inv := sampleInvoice(b, 60)
	signer, _ := testSigner(b)
	claim, err := signer.Sign(inv)
	require.NoError(b, err)
	link := claim.URL("https://app.leadify.ma")
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
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/1000-invoices")
}
