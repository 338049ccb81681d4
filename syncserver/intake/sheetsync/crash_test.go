package sheetsync_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/intake/sheets/sheetstest"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
	"github.com/leadify/leadify/syncserver/servertest"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// The server's batchGet size: the client's defaults (2,500 rows × 4 ranges).
const crashBatchRows = 2500 * 4

var a1Rows = regexp.MustCompile(`![A-Z]+(\d+):[A-Z]*(\d+)$`)

// rowSpan reads the sheet rows an A1 range asks for.
func rowSpan(t *testing.T, rg string) (from, to int) {
	m := a1Rows.FindStringSubmatch(rg)
	require.NotNil(t, m, "range %q", rg)
	from, _ = strconv.Atoi(m[1])
	to, _ = strconv.Atoi(m[2])
	return from, to
}

// TestSyncSurvivesSIGKILL runs the real server as a process of its own,
// syncing a big sheet from the fake Sheets API (in this process), and kills it
// with SIGKILL at seed-chosen points — after a chunk commits plus a random
// delay (mid-parse, mid-write, mid-commit), or while a batchGet is in flight —
// restarting it each time on the same database. The sync resumes on its own
// at every restart; in the end every accepted row of the sheet is exactly one
// lead (none lost, none doubled), and each resumed sync re-fetched at most one
// batchGet chunk it had fetched before.
//
// LEADIFY_SIGKILL_SEED replays a run (the seed is logged), LEADIFY_SIGKILL_ROWS
// sets the sheet size (default 100,000) and LEADIFY_SIGKILL_POINTS the kills
// (default 20).
func TestSyncSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a server 20 times")
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("LEADIFY_SIGKILL_SEED"), 10, 64); err == nil {
		seed = s
	}
	n := envInt("LEADIFY_SIGKILL_ROWS", 100_000)
	points := envInt("LEADIFY_SIGKILL_POINTS", 20)
	t.Logf("LEADIFY_SIGKILL_SEED=%d LEADIFY_SIGKILL_ROWS=%d LEADIFY_SIGKILL_POINTS=%d", seed, n, points)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))

	sheet := bigSheet(t, n)
	fake := sheetstest.New()
	t.Cleanup(fake.Close)
	fake.SetSheet("crash", "Commandes", sheet)

	// The kill points: a sheet row whose chunk must be committed first, and
	// how to kill then.
	type point struct {
		row     int
		inFetch bool          // kill inside the next batchGet after row is committed
		delay   time.Duration // else: kill this long after row is committed
	}
	// One point in each of points equal stretches of the first 80% of the
	// sheet: points drawn anywhere could bunch up near the end, where the sync
	// finishes before they are all reached (the last batchGet comes early).
	plan := make([]point, points)
	span := max(1, (n*8/10)/points)
	for i := range plan {
		plan[i] = point{row: 2 + i*span + rng.IntN(span), inFetch: rng.IntN(3) == 0, delay: time.Duration(rng.IntN(400)) * time.Millisecond}
	}
	slices.SortFunc(plan, func(a, b point) int { return a.row - b.row })

	// Every batchGet, by server life; armed makes the next batchGet kill
	// the server before it is answered.
	var mu sync.Mutex
	life := 0
	type fetch struct{ life, from, to int }
	var fetches []fetch
	var armed func()
	fake.OnRead(func(r sheetstest.Read) {
		if !r.Batch {
			return
		}
		mu.Lock()
		for _, rg := range r.Ranges {
			from, to := rowSpan(t, rg)
			fetches = append(fetches, fetch{life: life, from: from, to: to})
		}
		kill := armed
		armed = nil
		mu.Unlock()
		if kill != nil {
			kill()
		}
	})

	key := secrets.GenerateKey("crash")
	procEnv := []string{"LEADIFY_SHEETS_ENDPOINT=" + fake.URL + "/", "LEADIFY_SECRET_KEYS=" + key}
	env := servertest.StartProcess(t, procEnv...)
	db := env.DB
	tn := env.NewTenant(env.Admin(), "crash"+uuid.NewString()[:6])
	ctx := context.Background()
	created, err := tn.Seller.Intake.CreateSheetConnection(ctx, connect.NewRequest(&leadifyv1.CreateSheetConnectionRequest{
		StoreId: tn.StoreID.String(), Name: "Commandes", SpreadsheetId: "crash", Range: "Commandes"}))
	require.NoError(t, err) // the first sync is queued at once
	source := uuid.MustParse(created.Msg.Connection.Id)

	checkpoint := func() (state string, row int) {
		err := postgres.InTx(ctx, db.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
			err := tx.QueryRow(ctx, `SELECT state, checkpoint_row FROM intake_runs WHERE store_id = $1 AND source_id = $2
ORDER BY started_at LIMIT 1`, tn.StoreID, source).Scan(&state, &row)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		})
		require.NoError(t, err)
		return state, row
	}

	kills := 0
	deadline := time.Now().Add(5 * time.Minute)
	for _, p := range plan {
		// Wait for the point's row to be committed (or the sync to end).
		state, row := checkpoint()
		for state != "done" && row < p.row {
			require.True(t, time.Now().Before(deadline), "the sync stopped progressing at row %d (state %q)", row, state)
			time.Sleep(10 * time.Millisecond)
			state, row = checkpoint()
		}
		if state == "done" {
			break
		}
		if p.inFetch {
			killed := make(chan struct{})
			mu.Lock()
			armed = func() { env.Kill(); close(killed) }
			mu.Unlock()
			select {
			case <-killed:
			case <-time.After(time.Minute):
				mu.Lock()
				armed = nil
				mu.Unlock()
				state, _ := checkpoint()
				require.Equal(t, "done", state, "no batchGet came after row %d", p.row)
				continue
			}
		} else {
			time.Sleep(p.delay)
			env.Kill()
		}
		kills++
		mu.Lock()
		life++
		mu.Unlock()
		t.Logf("kill %d at committed row %d (planned %d, in fetch %v)", kills, row, p.row, p.inFetch)
		env = servertest.StartProcessOn(t, db, procEnv...)
	}
	for {
		if state, _ := checkpoint(); state == "done" {
			break
		}
		require.True(t, time.Now().Before(deadline), "the sync did not finish")
		time.Sleep(20 * time.Millisecond)
	}
	require.GreaterOrEqual(t, kills, min(points, 20), "the sync ended before the kill points")

	// What the sheet holds: every accepted row's key, once.
	m, err := intake.Resolve(intake.Suggest(sheet[0]), sheet[0])
	require.NoError(t, err)
	want := map[string]bool{}
	for i, cells := range sheet[1:] {
		if len(cells) == 0 {
			continue
		}
		if row := m.Parse(i+2, cells, false); row.Accepted() {
			require.NotEmpty(t, row.OrderID)
			want[row.OrderID] = true
		}
	}
	got := map[string]int{}
	var runs, keys, done int
	err = postgres.InTx(ctx, db.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT external_ref FROM leads WHERE store_id = $1`, tn.StoreID)
		if err != nil {
			return err
		}
		var ref string
		for rows.Next() {
			if err := rows.Scan(&ref); err != nil {
				return err
			}
			got[ref]++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM intake_rows r JOIN leads l ON l.store_id = r.store_id AND l.id = r.lead_id
WHERE r.store_id = $1 AND r.source_id = $2`, tn.StoreID, source).Scan(&keys); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*), min(rows_done) FROM intake_runs WHERE store_id = $1 AND source_id = $2`,
			tn.StoreID, source).Scan(&runs, &done)
	})
	require.NoError(t, err)
	for ref, c := range got {
		if c != 1 || !want[ref] {
			t.Fatalf("lead %s is there %d times, for %d accepted rows of the sheet", ref, c, map[bool]int{true: 1}[want[ref]])
		}
	}
	for ref := range want {
		if got[ref] == 0 {
			t.Fatalf("row %s lost", ref)
		}
	}
	require.Equal(t, len(want), keys, "one row key per lead")
	require.Equal(t, 1, runs, "every restart resumed the same run")
	require.Equal(t, n, done, "the run counted every row once")

	// Re-fetches: each life's first batchGet starts at most one chunk before
	// the furthest row fetched before it.
	mu.Lock()
	defer mu.Unlock()
	furthest, total, refetched := 1, 0, 0
	for i, f := range fetches {
		if f.from > n+1 {
			continue // the empty read past the end
		}
		total += min(f.to, n+1) - f.from + 1
		if os.Getenv("LEADIFY_SIGKILL_DEBUG") != "" {
			t.Logf("life %d fetched %d-%d", f.life, f.from, f.to)
		}
		if i > 0 && fetches[i-1].life != f.life || i == 0 {
			re := max(0, furthest-f.from+1)
			require.LessOrEqual(t, re, crashBatchRows, "life %d re-fetched %d rows (from row %d, %d were fetched)", f.life, re, f.from, furthest)
			refetched += re
		}
		furthest = max(furthest, min(f.to, n+1))
	}
	require.LessOrEqual(t, total, n+kills*crashBatchRows)
	t.Logf("%d kills; %d rows fetched for %d sheet rows (%d re-fetched after restarts, at most %d per restart)",
		kills, total, n, refetched, crashBatchRows)
}
