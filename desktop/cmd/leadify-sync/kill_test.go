package main_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// crashPoints are where the process kills itself (the hooks of localstore and
// syncclient); "timer" is a SIGKILL from the test after a seed-chosen delay.
var crashPoints = []string{
	"do:before-commit", "do:after-commit", // mid-write
	"push:before-send", "push:after-reply", "results:before-commit", // mid-push
	"pull:before-apply", "apply:before-commit", "apply:after-commit", // mid-apply
	"timer",
}

const wantKills = 24

// TestKill9LosesNothing runs the sync core as its own process, kills it with
// SIGKILL at seed-chosen points while it writes and syncs, restarts it on the
// same replica each time, and then checks against the server and the replica
// that every write the process acknowledged is applied exactly once and no
// write is applied twice. LEADIFY_KILL_SEED picks another seed.
func TestKill9LosesNothing(t *testing.T) {
	t.Parallel()
	seed := uint64(20261124)
	if s := os.Getenv("LEADIFY_KILL_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (LEADIFY_KILL_SEED)", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	bin := build(t)

	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "killnine")
	leads := env.SeedLeads(tn.StoreID, 4, "Kill")
	dbPath := filepath.Join(t.TempDir(), "replica.db")
	p := proc{t: t, bin: bin, db: dbPath, url: env.URL, token: tn.Seller.Token}

	// The first start signs the replica in (memberships for local writes).
	lines, killed := p.run("sync\n", "", 0)
	require.False(t, killed)
	require.Contains(t, lines, "synced")

	acked := map[string]bool{}
	killedAt := map[string]int{}
	kills := 0
	for round := 0; kills < wantKills && round < 4*wantKills; round++ {
		point := crashPoints[rng.IntN(len(crashPoints))]
		var script strings.Builder
		for j := range 6 {
			fmt.Fprintf(&script, "note %s %s r%02d-%d\n", tn.StoreID, leads[rng.IntN(len(leads))], round, j)
			if rng.IntN(3) == 0 {
				script.WriteString("sync\n")
			}
		}
		script.WriteString("drain\n")
		crash, delay := "", time.Duration(0)
		if point == "timer" {
			delay = time.Duration(5+rng.IntN(150)) * time.Millisecond
		} else {
			crash = fmt.Sprintf("%s:%d", point, 1+rng.IntN(3))
		}
		lines, killed := p.run(script.String(), crash, delay)
		for _, l := range lines {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "acked" {
				acked[f[2]] = true
			}
		}
		if killed {
			kills++
			killedAt[point]++
		}
	}
	t.Logf("%d kills by point: %v; %d writes acknowledged", kills, killedAt, len(acked))
	require.GreaterOrEqual(t, kills, 20)

	lines, killed = p.run("drain\nstatus\n", "", 0)
	require.False(t, killed)
	require.Contains(t, lines, "drained", "the last run syncs everything: %v", lines)
	require.Contains(t, lines, "status online=true pending=0 conflicts=0")

	// The server: each acknowledged note exactly once, no note twice.
	onServer := map[string]int{}
	env.InStore(func(tx *postgres.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT note, count(*) FROM lead_events WHERE store_id = $1 AND kind = 'note' GROUP BY note`, tn.StoreID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var note string
			var n int
			if err := rows.Scan(&note, &n); err != nil {
				return err
			}
			onServer[note] = n
		}
		return rows.Err()
	}, tn.StoreID)
	for note, n := range onServer {
		require.Equal(t, 1, n, "note %s applied %d times", note, n)
	}
	for tag := range acked {
		require.Equal(t, 1, onServer[tag], "acknowledged note %s lost", tag)
	}

	// The replica holds the server's rows: the same notes, once each.
	db, err := localstore.Open(t.Context(), dbPath)
	require.NoError(t, err)
	defer db.Close()
	local := map[string]int{}
	for _, id := range leads {
		evs, err := db.LeadEvents(t.Context(), id)
		require.NoError(t, err)
		for _, e := range evs {
			if e.Kind == "note" {
				local[e.Note]++
			}
		}
	}
	require.Equal(t, onServer, local)
}

// proc runs the leadify-sync binary on one replica.
type proc struct {
	t                   *testing.T
	bin, db, url, token string
}

// run feeds script to a fresh process, with LEADIFY_CRASH_AT=crash, or a
// SIGKILL after delay when delay > 0. It returns the lines printed and
// whether the process died of SIGKILL.
func (p proc) run(script, crash string, delay time.Duration) ([]string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, "-db", p.db, "-server", p.url)
	cmd.Env = append(os.Environ(), "LEADIFY_TOKEN="+p.token, "LEADIFY_CRASH_AT="+crash)
	cmd.Stdin = strings.NewReader(script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(p.t, err)
	require.NoError(p.t, cmd.Start())
	if delay > 0 {
		timer := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			require.NoError(p.t, ctx.Err(), "the process hung")
			return lines, true
		}
	}
	require.NoError(p.t, err, "stderr: %s", stderr.String())
	for _, l := range lines {
		require.False(p.t, strings.HasPrefix(l, "error"), "%s (stderr: %s)", l, stderr.String())
	}
	return lines, false
}

// build compiles this command into a temporary directory.
func build(tb testing.TB) string {
	bin := filepath.Join(tb.TempDir(), "leadify-sync")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(tb, err, "%s", out)
	return bin
}
