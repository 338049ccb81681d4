package remit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/remit"
)

// benchLines is the statement size: LEADIFY_BENCH_ROWS capped at
// remit.MaxLines (a carrier statement is never bigger), 20,000 when unset.
func benchLines(b *testing.B) int {
	n := 20_000
	if v := os.Getenv("LEADIFY_BENCH_ROWS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("LEADIFY_BENCH_ROWS=%q", v)
		}
	}
	return min(n, remit.MaxLines)
}

var errRollback = errors.New("rollback")

// BenchmarkStatement imports and reconciles one carrier statement of N
// lines against N parcels: parse the CSV, save it, reconcile and audit every
// line. Baseline, in the same run: inserting the same N lines into the same
// table in one statement (no parsing, checks, matching or audit), rolled back.
func BenchmarkStatement(b *testing.B) {
	n := benchLines(b)
	f := setup(b)
	ctx := context.Background()
	at := march.AddDate(0, 0, 3)
	ps := make([]fp, n)
	for i := range ps {
		ps[i] = fp{fmt.Sprintf("BN%07d", i), "delivered", money.Amount(100_00 + i%900_00), []string{"casablanca", "rabat", "fes"}[i%3], at}
	}
	for start := 0; start < n; start += 2000 {
		f.seedParcels(f.store, f.account, ps[start:min(start+2000, n)])
	}
	require.NoError(b, f.savePrice(f.store, remit.PriceList{Account: f.account, DeliveryFee: 30 * money.Dirham,
		ReturnFee: 15 * money.Dirham, CODFeeFixed: 5 * money.Dirham, ValidFrom: march}))
	var csv strings.Builder
	csv.WriteString("Code colis;Statut;Montant;Frais;Net\n")
	for i, p := range ps {
		fee := 35 * money.Dirham
		if i%50 == 0 {
			fee += 5 * money.Dirham // an overcharge now and then
		}
		net, _ := p.COD.Sub(fee)
		fmt.Fprintf(&csv, "%s;Livré;%s;%s;%s\n", p.Tracking, p.COD.Plain(), fee.Plain(), net.Plain())
	}
	data := []byte(csv.String())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Baseline: the same lines, inserted plainly.
		base := time.Now()
		require.ErrorIs(b, postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
			id := uuid.New()
			if _, err := tx.Exec(ctx, `INSERT INTO remittances (store_id, id, account_id, reference, paid_at, source, digest, line_count, lines_total)
VALUES ($1, $2, $3, $4, $5, 'csv', $6, $7, 0)`, f.store, id, f.account, "BASE-"+id.String(), march, id[:], n); err != nil {
				return err
			}
			nos, trs, cods, fees, nets := make([]int32, n), make([]string, n), make([]int64, n), make([]int64, n), make([]int64, n)
			for j, p := range ps {
				nos[j], trs[j], cods[j], fees[j], nets[j] = int32(j+2), p.Tracking, int64(p.COD), 35_00, int64(p.COD)-35_00
			}
			_, err := tx.Exec(ctx, `INSERT INTO remittance_lines (store_id, remittance_id, line_no, tracking, outcome, cod, fees, net)
SELECT $1, $2, u.no, u.tr, 'delivered', u.cod, u.fees, u.net FROM unnest($3::int[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[])
  AS u(no, tr, cod, fees, net)`, f.store, id, nos, trs, cods, fees, nets)
			if err != nil {
				return err
			}
			// Roll the baseline back: it is not a statement.
			return errRollback
		}), errRollback)
		baseline := time.Since(base)

		start := time.Now()
		st, err := remit.ParseCSV(strings.NewReader(string(data)))
		require.NoError(b, err)
		parsed := time.Since(start)
		rem, already, err := f.save(f.store, f.account, fmt.Sprintf("BENCH-%d", i), remit.SourceCSV, st)
		require.NoError(b, err)
		saved := time.Since(start)
		lines, sum := f.reconcile(f.store, rem.ID)
		total := time.Since(start)
		require.Len(b, lines, n)
		if !already {
			require.Equal(b, n/50+btoi(n%50 != 0), sum.Flags)
		}
		b.ReportMetric(float64(n)/total.Seconds(), "lines/s")
		b.ReportMetric(float64(n)/parsed.Seconds(), "parse-lines/s")
		b.ReportMetric(float64(n)/(saved-parsed).Seconds(), "save-lines/s")
		b.ReportMetric(float64(n)/(total-saved).Seconds(), "reconcile-lines/s")
		b.ReportMetric(float64(n)/baseline.Seconds(), "baseline-insert-lines/s")
		b.ReportMetric(total.Seconds()/baseline.Seconds(), "x-baseline")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
