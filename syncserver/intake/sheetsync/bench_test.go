package sheetsync_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/intake/sample"
	"github.com/leadify/leadify/syncserver/intake/sheets"
	"github.com/leadify/leadify/syncserver/intake/sheets/sheetstest"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// benchRows is the sheet size (LEADIFY_INTAKE_BENCH_ROWS, default 100,000).
func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("LEADIFY_INTAKE_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// bigSheet repeats the sample's rows under fresh order ids, with phones
// varied so most rows are distinct customers.
func bigSheet(tb testing.TB, n int) [][]string {
	row := bigSheetRow(tb)
	rows := make([][]string, n+1)
	for i := range rows {
		rows[i] = row(i)
	}
	return rows
}

// bigSheetRow returns bigSheet's i-th row (0: the header), made on demand.
func bigSheetRow(tb testing.TB) func(i int) []string {
	f := bytes.NewReader(sample.CSV)
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	all, err := cr.ReadAll()
	require.NoError(tb, err)
	header, sample := all[0], all[1:]
	return func(i int) []string {
		if i == 0 {
			return header
		}
		i--
		row := append([]string(nil), sample[i%len(sample)]...)
		if len(row) > 3 {
			row[0] = fmt.Sprintf("B-%07d", i)
			row[3] = fmt.Sprintf("06%08d", 10_000_000+i*7%89_999_999)
		}
		return row
	}
}

// peakHeap samples the heap in use until stop is called, and returns the
// peak above the level at the start.
func peakHeap() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// cpuMeter reads CPU-seconds spent so far by this process and by the
// Postgres backends serving the benchmark's database: on a machine shared
// with other work, CPU time is steadier than wall time. The backends' time
// comes from /proc (a local Postgres on Linux, readable by this user);
// without it pg reports -1.
type cpuMeter struct {
	owner *pgx.Conn // lists the database's backends
}

func (c cpuMeter) read(ctx context.Context) (goCPU, pgCPU float64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		goCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	rows, err := c.owner.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return goCPU, -1
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return goCPU, -1
	}
	const ticks = 100 // USER_HZ on Linux
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(int(pid)), "stat"))
		if err != nil {
			return goCPU, -1
		}
		// Fields after the command's closing parenthesis: utime and stime
		// are the 12th and 13th.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			return goCPU, -1
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		pgCPU += (ut + st) / ticks
	}
	return goCPU, pgCPU
}

// BenchmarkSheetImport imports a big sheet from the fake Sheets API on
// loopback into Postgres (the whole pipeline: batchGet chunks, parsing,
// duplicate detection, chunked versioned writes), then syncs the unchanged
// sheet again; the baseline is a binary COPY of the same rows already parsed.
func BenchmarkSheetImport(b *testing.B) {
	n := benchRows()
	fake := sheetstest.New()
	b.Cleanup(fake.Close)
	// Rows made as they are read: the fake holds no sheet, so the heap
	// measured is the importer's (a sheet held in this process would also
	// let the garbage collector wait longer).
	fake.SetSheetFunc("bench", "Commandes", n+1, 12, bigSheetRow(b))
	env := servertest.Start(b)
	ctx := context.Background()
	meterConn, err := pgx.Connect(ctx, env.DB.OwnerURL)
	require.NoError(b, err)
	defer meterConn.Close(ctx)
	meter := cpuMeter{owner: meterConn}

	b.Run(fmt.Sprintf("rows=%d/import", n), func(b *testing.B) {
		for range b.N {
			tn := env.NewTenant(env.Admin(), "bench"+uuid.NewString()[:6])
			src := uuid.New()
			env.InStore(func(tx *postgres.Tx) error {
				return intake.CreateSource(ctx, tx, intake.SourceRow{StoreID: tn.StoreID, ID: src, Kind: intake.KindSheet, Name: "b"})
			}, tn.StoreID)
			target := intake.Target{StoreID: tn.StoreID, SellerID: tn.SellerID, SourceID: src, Source: "sheet"}
			im := &intake.Importer{Pool: env.DB.App}
			client, err := sheets.New(ctx, sheets.Config{Endpoint: fake.URL + "/"})
			require.NoError(b, err)
			var goCPU, pgCPU float64
			run := func() (time.Duration, uint64, *intake.Report) {
				stop := peakHeap()
				go0, pg0 := meter.read(ctx)
				defer func() {
					go1, pg1 := meter.read(ctx)
					goCPU, pgCPU = go1-go0, pg1-pg0
					if pg0 < 0 || pg1 < 0 {
						pgCPU = -1
					}
				}()
				start := time.Now()
				s, err := client.Open(ctx, "bench", sheets.Range{Sheet: "Commandes", FirstCol: "A", HeaderRow: 1}, 0)
				require.NoError(b, err)
				m, err := intake.Resolve(intake.Suggest(s.Header()), s.Header())
				require.NoError(b, err)
				rep, err := im.Run(ctx, target, m, s, intake.RunOptions{})
				require.NoError(b, err)
				return time.Since(start), stop(), rep
			}
			full, fullPeak, rep := run()
			fullGo, fullPG := goCPU, pgCPU
			require.Equal(b, n, rep.Counts.Rows())
			again, againPeak, rep2 := run()
			b.ReportMetric(fullGo, "import-go-cpu-s")
			b.ReportMetric(fullPG, "import-pg-cpu-s")
			if pgCPU >= 0 { // -1: the backends' CPU could not be read
				b.ReportMetric(goCPU+pgCPU, "resync-cpu-s")
			}
			require.Equal(b, rep.Counts.Imported+rep.Counts.Duplicate, rep2.Counts.Unchanged)
			b.ReportMetric(full.Seconds(), "import-s")
			b.ReportMetric(float64(n)/full.Seconds(), "rows/s")
			b.ReportMetric(float64(fullPeak)/(1<<20), "import-peak-MB")
			b.ReportMetric(again.Seconds(), "resync-s")
			b.ReportMetric(100*again.Seconds()/full.Seconds(), "resync-%-of-import")
			b.ReportMetric(float64(againPeak)/(1<<20), "resync-peak-MB")
		}
	})

	b.Run(fmt.Sprintf("rows=%d/baseline-copy", n), func(b *testing.B) {
		// The same rows, parsed before the clock starts.
		s, err := func() (*sheets.Source, error) {
			c, err := sheets.New(ctx, sheets.Config{Endpoint: fake.URL + "/"})
			if err != nil {
				return nil, err
			}
			return c.Open(ctx, "bench", sheets.Range{Sheet: "Commandes", FirstCol: "A", HeaderRow: 1}, 0)
		}()
		require.NoError(b, err)
		m, err := intake.Resolve(intake.Suggest(s.Header()), s.Header())
		require.NoError(b, err)
		var rows [][]any
		store, now := uuid.New(), time.Now()
		for {
			rec, err := s.Next()
			if err == io.EOF {
				break
			}
			require.NoError(b, err)
			r := m.Parse(rec.Num, rec.Cells, rec.Ragged)
			items, _ := json.Marshal([]mutation.Item{{Name: r.Product, Qty: r.Qty, UnitPrice: r.Price}})
			custom, _ := json.Marshal(r.Custom)
			rows = append(rows, []any{store, uuid.New(), int64(len(rows) + 1), now, now, "new", r.Name, r.Phone.Raw,
				r.Phone.E164, r.City.ID, r.CityRaw, r.Address, items, int64(r.Price), r.Source, r.OrderID, custom})
		}
		owner, err := pgx.Connect(ctx, env.DB.OwnerURL)
		require.NoError(b, err)
		defer owner.Close(ctx)
		cols := []string{"store_id", "id", "version", "created_at", "updated_at", "status", "customer_name", "phone_raw",
			"phone_e164", "city_id", "city_raw", "address", "items", "cod", "source", "external_ref", "custom"}
		b.ResetTimer()
		for i := range b.N {
			table := fmt.Sprintf("bench_leads_%d", i)
			_, err := owner.Exec(ctx, `CREATE TABLE `+table+` (LIKE leads INCLUDING DEFAULTS INCLUDING INDEXES)`)
			require.NoError(b, err)
			go0, pg0 := meter.read(ctx)
			start := time.Now()
			for lo := 0; lo < len(rows); lo += 2000 { // the same transaction size as the import
				_, err := owner.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows[lo:min(lo+2000, len(rows))]))
				require.NoError(b, err)
			}
			d := time.Since(start)
			go1, pg1 := meter.read(ctx)
			b.ReportMetric(d.Seconds(), "copy-s")
			b.ReportMetric(go1-go0, "copy-go-cpu-s")
			b.ReportMetric(pg1-pg0, "copy-pg-cpu-s")
			b.ReportMetric(float64(len(rows))/d.Seconds(), "rows/s")
		}
	})
}

// BenchmarkSheetImportLargest imports the largest sheet Google allows (10
// million cells: 833,333 rows of 12 columns) from the fake on loopback and
// reports the importer's peak heap: memory stays flat whatever the sheet's
// size. It runs only when LEADIFY_BENCH_ROWS is set (go tool task bench), with
// that many rows up to Google's limit.
func BenchmarkSheetImportLargest(b *testing.B) {
	limit, err := strconv.Atoi(os.Getenv("LEADIFY_BENCH_ROWS"))
	if err != nil || limit <= 0 {
		b.Skip("LEADIFY_BENCH_ROWS is not set")
	}
	n := min(limit, 10_000_000/12)
	fake := sheetstest.New()
	b.Cleanup(fake.Close)
	fake.SetSheetFunc("largest", "Commandes", n+1, 12, bigSheetRow(b))
	env := servertest.Start(b)
	ctx := context.Background()
	b.Run(fmt.Sprintf("rows=%d/import", n), func(b *testing.B) {
		for range b.N {
			tn := env.NewTenant(env.Admin(), "largest"+uuid.NewString()[:6])
			src := uuid.New()
			env.InStore(func(tx *postgres.Tx) error {
				return intake.CreateSource(ctx, tx, intake.SourceRow{StoreID: tn.StoreID, ID: src, Kind: intake.KindSheet, Name: "b"})
			}, tn.StoreID)
			client, err := sheets.New(ctx, sheets.Config{Endpoint: fake.URL + "/"})
			require.NoError(b, err)
			stop := peakHeap()
			start := time.Now()
			s, err := client.Open(ctx, "largest", sheets.Range{Sheet: "Commandes", FirstCol: "A", HeaderRow: 1}, 0)
			require.NoError(b, err)
			m, err := intake.Resolve(intake.Suggest(s.Header()), s.Header())
			require.NoError(b, err)
			im := &intake.Importer{Pool: env.DB.App}
			rep, err := im.Run(ctx, intake.Target{StoreID: tn.StoreID, SellerID: tn.SellerID, SourceID: src, Source: "sheet"}, m, s, intake.RunOptions{})
			require.NoError(b, err)
			d, peak := time.Since(start), stop()
			require.Equal(b, n, rep.Counts.Rows())
			b.ReportMetric(d.Seconds(), "import-s")
			b.ReportMetric(float64(n)/d.Seconds(), "rows/s")
			b.ReportMetric(float64(peak)/(1<<20), "import-peak-MB")
		}
	})
}
