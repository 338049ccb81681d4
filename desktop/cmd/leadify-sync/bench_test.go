package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/servertest"
)

// BenchmarkInitialSyncProcess is an initial sync of N leads
// (LEADIFY_BENCH_ROWS, default 100,000) by the sync core running as its own
// process into an empty replica, from a real server: rows/s end to end
// (process start, handshake, pull, apply, fsync) and the client's peak RSS.
func BenchmarkInitialSyncProcess(b *testing.B) {
	n := 100_000
	if s := os.Getenv("LEADIFY_BENCH_ROWS"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(b, err)
	}
	bin := build(b)
	env := servertest.Start(b)
	tn := env.NewTenant(env.Admin(), "benchsync")
	env.SeedLeads(tn.StoreID, n, "Bench")
	var peak int64
	for b.Loop() {
		b.StopTimer()
		db := filepath.Join(b.TempDir(), "replica.db")
		b.StartTimer()
		cmd := exec.Command(bin, "-db", db, "-server", env.URL)
		cmd.Env = append(os.Environ(), "LEADIFY_TOKEN="+tn.Seller.Token)
		cmd.Stdin = strings.NewReader("sync\n")
		out, err := cmd.Output()
		require.NoError(b, err)
		require.Contains(b, string(out), "synced\n")
		peak = max(peak, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) // KiB on Linux
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(peak)/1024, "client-peak-MB")
}
