package parcels_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/carrier"
	"github.com/leadify/leadify/syncserver/carrier/ameex"
	"github.com/leadify/leadify/syncserver/carrier/ameex/ameextest"
	"github.com/leadify/leadify/syncserver/carrier/coliix"
	"github.com/leadify/leadify/syncserver/carrier/coliix/coliixtest"
	"github.com/leadify/leadify/syncserver/carrier/sendit"
	"github.com/leadify/leadify/syncserver/carrier/sendit/sendittest"
	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/secrets"
	"github.com/leadify/leadify/syncserver/servertest"
)

// The SIGKILL tests run leadify-server as its own process on a test
// database, with the carrier fakes in the test process, and kill it with
// SIGKILL at seed-chosen points — at named crash points inside the server
// (parcels.CrashEnv: between a recorded attempt and its call, between a
// carrier's answer and its record, between a stored webhook and its
// acknowledgement, between an applied batch and its job's completion) and
// at random moments — restarting it each time. LEADIFY_SIGKILL_SEED replays
// a run; LEADIFY_SIGKILL_ROUNDS changes the number of kills (default 24).
//
// After each kill the test does what River's rescuer does five minutes
// later (server.go's RescueStuckJobsAfter): the dead instance's running
// jobs become available again. It also brings retries scheduled by
// backoff forward. Both only compress waiting; what runs is the server's.

func sigkillSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LEADIFY_SIGKILL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "LEADIFY_SIGKILL_SEED")
		seed = v
	}
	t.Logf("seed %d (replay with LEADIFY_SIGKILL_SEED=%d)", seed, seed)
	t.Cleanup(func() {
		if t.Failed() {
			fmt.Fprintf(os.Stderr, "%s failed with LEADIFY_SIGKILL_SEED=%d\n", t.Name(), seed)
		}
	})
	return seed
}

func sigkillRounds(t *testing.T) int {
	if s := os.Getenv("LEADIFY_SIGKILL_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "LEADIFY_SIGKILL_ROUNDS")
		return n
	}
	return 24
}

// proc is a leadify-server process that is killed and restarted on one
// database and address.
type proc struct {
	t      *testing.T
	db     *pgtest.DB
	keys   string
	addr   string
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
}

func newProc(t *testing.T) *proc {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	p := &proc{t: t, db: pgtest.New(t), keys: secrets.GenerateKey("sigkill"), addr: addr, url: "http://" + addr}
	servertest.ServerBinary(t)
	t.Cleanup(p.kill)
	return p
}

func (p *proc) keyring() *secrets.Keyring {
	kr, err := secrets.ParseKeyring(p.keys)
	require.NoError(p.t, err)
	return kr
}

// start runs the server with the crash points of spec and waits until it
// is ready. It returns false when the process died first (a crash point
// reached during start-up).
func (p *proc) start(spec string) bool {
	p.t.Helper()
	cmd := exec.Command(servertest.ServerBinary(p.t), "serve", "--addr", p.addr, "--log-level", "error")
	cmd.Env = servertest.ProcessEnv("DATABASE_URL="+p.db.AppURL, "LEADIFY_SECRET_KEYS="+p.keys, parcels.CrashEnv+"="+spec)
	stderr, err := cmd.StderrPipe()
	require.NoError(p.t, err)
	require.NoError(p.t, cmd.Start())
	p.cmd, p.exited = cmd, make(chan struct{})
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.t.Log("server: " + sc.Text())
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func(exited chan struct{}) {
		<-logged
		_ = cmd.Wait()
		close(exited)
	}(p.exited)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.exited:
			return false
		default:
		}
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		require.True(p.t, time.Now().Before(deadline), "leadify-server did not become ready")
		time.Sleep(10 * time.Millisecond)
	}
}

// kill sends SIGKILL to a running server and waits for it to be gone.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

// awaitDeath waits up to d for the server to kill itself at a crash point
// and reports whether it did; otherwise the test kills it.
func (p *proc) awaitDeath(d time.Duration) bool {
	select {
	case <-p.exited:
		p.cmd = nil
		return true
	case <-time.After(d):
		p.kill()
		return false
	}
}

// rescue makes the jobs a killed instance was running available again.
// River's rescuer does so minutes later, when the dead instance's database
// sessions are long gone; rescue first waits for them to end. A session
// finishes the statement it was running when its client died — a job
// fetch, say, marking jobs running — and an UPDATE made before that fetch
// commits would not see its rows as running and would leave them stuck.
func (p *proc) rescue() {
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var busy int
		require.NoError(p.t, p.db.App.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = current_user
  AND backend_type = 'client backend' AND state <> 'idle'`).Scan(&busy))
		if busy == 0 {
			break
		}
		require.True(p.t, time.Now().Before(deadline), "the killed server's %d sessions did not end", busy)
		time.Sleep(5 * time.Millisecond)
	}
	_, err := p.db.App.Exec(ctx, `UPDATE river_job SET state = 'available', scheduled_at = now() WHERE state = 'running'`)
	require.NoError(p.t, err)
}

// hurry brings retries waiting for their backoff forward.
// logJobs logs the unfinished jobs of kind: state, attempts, when due, last error.
func (p *proc) logJobs(kind string) {
	rows, err := p.db.App.Query(context.Background(), `SELECT id, state, attempt, scheduled_at, coalesce(errors[array_length(errors, 1)]::text, '')
FROM river_job WHERE kind = $1 AND state IN ('available', 'running', 'retryable', 'scheduled', 'pending') ORDER BY id`, kind)
	if err != nil {
		p.t.Logf("list jobs: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, attempt int64
			state, last string
			due         time.Time
		)
		if err := rows.Scan(&id, &state, &attempt, &due, &last); err != nil {
			p.t.Logf("list jobs: %v", err)
			return
		}
		p.t.Logf("unfinished job %d: %s, attempt %d, due %s, last error %s", id, state, attempt, due.Format(time.RFC3339Nano), last)
	}
	var calling int
	_ = p.db.App.QueryRow(context.Background(), `SELECT count(*) FROM parcels WHERE creation = 'calling'`).Scan(&calling)
	p.t.Logf("parcels still calling: %d", calling)
	p.logActivity()
	p.dumpStacks()
}

// logActivity logs what the database's sessions are doing and waiting on.
func (p *proc) logActivity() {
	rows, err := p.db.App.Query(context.Background(), `SELECT pid, state, coalesce(wait_event_type || ':' || wait_event, ''),
  coalesce(pg_blocking_pids(pid)::text, ''), coalesce(now() - xact_start, '0'::interval)::text, left(query, 200)
FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY pid`)
	if err != nil {
		p.t.Logf("list sessions: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var (
			pid                                  int32
			state, wait, blockers, inXact, query string
		)
		if err := rows.Scan(&pid, &state, &wait, &blockers, &inXact, &query); err != nil {
			p.t.Logf("list sessions: %v", err)
			return
		}
		p.t.Logf("session %d %s wait=%s blocked-by=%s in-transaction=%s: %s", pid, state, wait, blockers, inXact, query)
	}
}

// dumpStacks makes the running server print every goroutine's stack (Go
// does on SIGQUIT) into the test log, and waits for it to exit.
func (p *proc) dumpStacks() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
	p.kill()
}

func (p *proc) hurry() {
	_, err := p.db.App.Exec(context.Background(), `UPDATE river_job SET state = 'available', scheduled_at = now() WHERE state = 'retryable'`)
	require.NoError(p.t, err)
}

// count runs a count query seeing every store.
func (p *proc) count(query string, args ...any) int {
	var n int
	require.NoError(p.t, postgres.InTx(context.Background(), p.db.App, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		return tx.QueryRow(context.Background(), query, args...).Scan(&n)
	}))
	return n
}

// query runs fn over a query's rows, seeing every store.
func (p *proc) query(fn func(pgx.Row) error, query string, args ...any) {
	p.t.Helper()
	require.NoError(p.t, postgres.InTx(context.Background(), p.db.App, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		rows, err := tx.Query(context.Background(), query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := fn(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}))
}

// unfinished counts jobs of kind not yet completed, cancelled or discarded.
func (p *proc) unfinished(kind string) int {
	return p.count(`SELECT count(*) FROM river_job WHERE kind = $1 AND state IN ('available', 'running', 'retryable', 'scheduled', 'pending')`, kind)
}

// carrierSetup is one store with a Coliix, an Ameex and a Sendit account,
// each on its fake.
type carrierSetup struct {
	p        *proc
	store    uuid.UUID
	coliix   *coliixtest.Server
	ameex    *ameextest.Server
	sendit   *sendittest.Server
	accounts map[string]uuid.UUID // carrier → account
	tokens   map[string]string
}

func newCarrierSetup(t *testing.T, p *proc, seed uint64, faults coliixtest.Faults) *carrierSetup {
	cs := &carrierSetup{p: p, accounts: map[string]uuid.UUID{}, tokens: map[string]string{}}
	cs.coliix = coliixtest.NewServer(t, coliixtest.Options{Seed: seed, Faults: faults})
	cs.ameex = ameextest.NewServer(t, ameextest.Options{Seed: seed + 1, Faults: faults})
	cs.sendit = sendittest.NewServer(t, sendittest.Options{Seed: seed + 2, Faults: faults})
	require.True(t, p.start(""))
	env := &servertest.Env{T: t, DB: p.db, URL: p.url, HTTP: http.DefaultClient}
	cs.store = env.NewTenant(env.Admin(), "sigkill").StoreID
	creds := map[string]parcels.Credentials{
		coliix.Name: {BaseURL: cs.coliix.Endpoint, Token: "test-token"},
		ameex.Name:  {BaseURL: cs.ameex.URL, APIID: "test-id", APIKey: "test-key"},
		sendit.Name: {BaseURL: cs.sendit.BaseURL, PublicKey: "test-public", SecretKey: "test-secret"},
	}
	env.InStore(func(tx *postgres.Tx) error {
		for _, name := range []string{coliix.Name, ameex.Name, sendit.Name} {
			id, token, err := parcels.InsertAccount(context.Background(), tx, p.keyring(), parcels.NewAccount{
				Store: cs.store, Carrier: name, Label: name, Credentials: creds[name], Concurrency: 4})
			if err != nil {
				return err
			}
			cs.accounts[name], cs.tokens[name] = id, token
		}
		return nil
	}, cs.store)
	return cs
}

// enqueue confirms n leads per carrier and inserts their creation jobs,
// each naming its carrier's account. It returns lead → carrier.
func (cs *carrierSetup) enqueue(t *testing.T, n int) map[uuid.UUID]string {
	ctx := context.Background()
	f := fixture{env: &servertest.Env{T: t, DB: cs.p.db}, store: cs.store}
	rc, err := river.NewClient(riverpgxv5.New(cs.p.db.App), &river.Config{})
	require.NoError(t, err)
	out := map[uuid.UUID]string{}
	var params []river.InsertManyParams
	for _, name := range []string{coliix.Name, ameex.Name, sendit.Name} {
		for _, id := range f.confirm(t, n) {
			out[id] = name
			params = append(params, river.InsertManyParams{Args: parcels.CreateArgs{Store: cs.store, Lead: id, Account: cs.accounts[name]}})
		}
	}
	rand.Shuffle(len(params), func(i, j int) { params[i], params[j] = params[j], params[i] })
	_, err = rc.InsertMany(ctx, params)
	require.NoError(t, err)
	return out
}

type sigParcel struct {
	id, lead                    uuid.UUID
	carrier, tracking, creation string
	name, status, errMsg        string
}

func (cs *carrierSetup) parcels(t *testing.T) []sigParcel {
	var out []sigParcel
	cs.p.query(func(r pgx.Row) error {
		var sp sigParcel
		err := r.Scan(&sp.id, &sp.lead, &sp.carrier, &sp.tracking, &sp.creation, &sp.name, &sp.status, &sp.errMsg)
		out = append(out, sp)
		return err
	}, `SELECT p.id, p.lead_id, p.carrier, p.tracking, p.creation, l.customer_name, p.status, p.error
FROM parcels p JOIN leads l ON l.store_id = p.store_id AND l.id = p.lead_id WHERE p.store_id = $1`, cs.store)
	return out
}

// TestSIGKILLBulkCreation kills the server at least 20 times during the
// bulk creation of 300 parcels at Coliix, Ameex and Sendit (fakes with
// every fault on: 5% of calls answered by an HTML 502 page, 25 ms a call,
// Ameex leaving out the code of 20% of its answers). In the end every
// parcel exists at its carrier exactly once, with the tracking code the
// carrier gave; a Coliix parcel whose call may have been made is held for
// review and was never sent twice.
func TestSIGKILLBulkCreation(t *testing.T) {
	if testing.Short() {
		t.Skip("SIGKILL test: skipped in -short")
	}
	t.Parallel()
	seed := sigkillSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	p := newProc(t)
	faults := coliixtest.Faults(coliixtest.DefaultFaults)
	faults.Latency = 25 * time.Millisecond
	cs := newCarrierSetup(t, p, seed, faults)
	const perCarrier = 100
	leads := cs.enqueue(t, perCarrier)
	p.kill()
	p.rescue()

	rounds := sigkillRounds(t)
	points := map[string]int{}
	killsDuringWork := 0
	for range rounds {
		spec, point := "", "random moment"
		switch rng.IntN(3) {
		case 0:
			point = parcels.CrashCreateAnswered
			spec = fmt.Sprintf("%s=%d", point, 1+rng.IntN(8))
		case 1:
			point = parcels.CrashCreateRecorded
			spec = fmt.Sprintf("%s=%d", point, 1+rng.IntN(8))
		}
		wait := time.Duration(30+rng.IntN(400)) * time.Millisecond
		working := p.unfinished("parcel_create") > 0
		if p.start(spec) {
			if !p.awaitDeath(wait) {
				point = "random moment"
			}
		}
		if working {
			killsDuringWork++
			points[point]++
		}
		p.rescue()
		p.hurry()
	}
	t.Logf("kills while creations were unfinished: %d %v", killsDuringWork, points)
	require.GreaterOrEqual(t, killsDuringWork, min(20, rounds), "kills that landed during bulk creation")

	require.True(t, p.start(""))
	deadline := time.Now().Add(2 * time.Minute)
	for p.unfinished("parcel_create") > 0 || p.count(`SELECT count(*) FROM parcels WHERE creation = 'calling'`) > 0 {
		if !time.Now().Before(deadline) {
			p.logJobs("parcel_create") // what the stuck jobs were doing, for the next look
		}
		require.True(t, time.Now().Before(deadline), "creation did not finish: %d jobs left", p.unfinished("parcel_create"))
		p.hurry()
		time.Sleep(100 * time.Millisecond)
	}
	require.Zero(t, p.count(`SELECT count(*) FROM river_job WHERE kind = 'parcel_create' AND state = 'discarded'`), "discarded creation jobs")

	ps := cs.parcels(t)
	require.Len(t, ps, len(leads), "one parcel per lead")
	byCreation := map[string]int{}
	coliixByName := map[string][]string{}
	for _, fp := range cs.coliix.Sim.All() {
		coliixByName[fp.Fields["name"]] = append(coliixByName[fp.Fields["name"]], fp.Code)
	}
	refs := map[string]bool{}
	for _, sp := range ps {
		require.Equal(t, leads[sp.lead], sp.carrier, "parcel %v at the carrier its job named", sp.id)
		byCreation[sp.carrier+"/"+sp.creation]++
		switch sp.carrier {
		case coliix.Name:
			codes := coliixByName[sp.name]
			switch sp.creation {
			case parcels.CreationCreated:
				require.Equal(t, []string{sp.tracking}, codes, "Coliix parcel %s created once, with its code", sp.name)
			case parcels.CreationReview:
				require.LessOrEqual(t, len(codes), 1, "Coliix parcel %s held for review was sent %d times", sp.name, len(codes))
			default:
				t.Fatalf("Coliix parcel %s ended %q: %s", sp.name, sp.creation, sp.errMsg)
			}
		case ameex.Name, sendit.Name:
			require.Equal(t, parcels.CreationCreated, sp.creation, "%s parcel %v: %s", sp.carrier, sp.id, sp.errMsg)
			sim := cs.ameex.Sim
			if sp.carrier == sendit.Name {
				sim = cs.sendit.Sim
			}
			at := sim.ByOrderRef(sp.id.String())
			require.Len(t, at, 1, "%s parcel %v at the carrier exactly once", sp.carrier, sp.id)
			require.Equal(t, at[0].Code, sp.tracking, "%s parcel %v tracking", sp.carrier, sp.id)
			refs[sp.carrier+"/"+sp.id.String()] = true
		}
	}
	for _, name := range []string{ameex.Name, sendit.Name} {
		sim := cs.ameex.Sim
		if name == sendit.Name {
			sim = cs.sendit.Sim
		}
		for _, fp := range sim.All() {
			require.True(t, refs[name+"/"+fp.OrderRef], "%s parcel %s (order %q) belongs to no parcel", name, fp.Code, fp.OrderRef)
		}
	}
	names := map[string]bool{}
	for _, sp := range ps {
		names[sp.name] = true
	}
	reviewedSent := 0
	for name, codes := range coliixByName {
		require.True(t, names[name], "Coliix parcel %v for no lead", codes)
		if len(codes) == 1 && byCreation["coliix/review"] > 0 {
			for _, sp := range ps {
				if sp.name == name && sp.creation == parcels.CreationReview {
					reviewedSent++
				}
			}
		}
	}
	t.Logf("outcomes %v; Coliix parcels held for review whose call had got through: %d", byCreation, reviewedSent)
}

// TestSIGKILLWebhookStorm kills the server at least 20 times while the
// fakes move 120 parcels through their lifecycles and send webhooks with
// every fault on (dropped, duplicated, reordered, delayed) and retry those
// not acknowledged, as carriers do. In the end every acknowledged webhook's
// report is in its parcel's timeline once, no other is, each parcel whose
// final report was acknowledged has that status, and each outcome's domain
// event was written once.
func TestSIGKILLWebhookStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("SIGKILL test: skipped in -short")
	}
	t.Parallel()
	seed := sigkillSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x5707))
	p := newProc(t)
	cs := newCarrierSetup(t, p, seed, coliixtest.Faults{Latency: time.Millisecond})
	const perCarrier = 40
	leads := cs.enqueue(t, perCarrier)
	deadline := time.Now().Add(time.Minute)
	for p.count(`SELECT count(*) FROM parcels WHERE creation = 'created'`) < len(leads) {
		require.True(t, time.Now().Before(deadline), "setup: parcels not created")
		time.Sleep(50 * time.Millisecond)
	}
	sims := []*struct {
		name string
		adv  func() int
	}{
		{coliix.Name, cs.coliix.Sim.Advance}, {ameex.Name, cs.ameex.Sim.Advance}, {sendit.Name, cs.sendit.Sim.Advance},
	}
	faults := coliixtest.DefaultFaults
	faults.FailRate = 0
	for _, f := range []interface {
		SetFaults(coliixtest.Faults)
	}{cs.coliix.Sim, cs.ameex.Sim, cs.sendit.Sim} {
		f.SetFaults(faults)
	}
	for _, s := range []interface{ RetryFor(time.Duration) }{cs.coliix.Webhooks, cs.ameex.Webhooks, cs.sendit.Webhooks} {
		s.RetryFor(3 * time.Minute)
	}
	hook := func(name string) string {
		return parcels.WebhookURL(p.url, name, cs.accounts[name], cs.tokens[name])
	}
	cs.coliix.SetWebhookURL(hook(coliix.Name))
	cs.ameex.SetWebhookURL(hook(ameex.Name))
	cs.sendit.SetWebhookURL(hook(sendit.Name))
	p.kill()
	p.rescue()

	rounds := sigkillRounds(t)
	points := map[string]int{}
	for range rounds {
		spec, point := "", "random moment"
		switch rng.IntN(3) {
		case 0:
			point = parcels.CrashWebhookStored
			spec = fmt.Sprintf("%s=%d", point, 1+rng.IntN(40))
		case 1:
			point = parcels.CrashWebhooksApplied
			spec = fmt.Sprintf("%s=%d", point, 1+rng.IntN(4))
		}
		// One carrier's parcels move a step each round, so the storm
		// lasts through every kill.
		s := sims[rng.IntN(len(sims))]
		wait := time.Duration(50+rng.IntN(500)) * time.Millisecond
		if p.start(spec) {
			s.adv()
			if !p.awaitDeath(wait) {
				point = "random moment"
			}
		}
		points[point]++
		p.rescue()
		p.hurry()
	}
	t.Logf("kills %v", points)

	require.True(t, p.start(""))
	for moved := 1; moved > 0; {
		moved = 0
		for _, s := range sims {
			moved += s.adv()
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range []interface{ Flush() }{cs.coliix.Webhooks, cs.ameex.Webhooks, cs.sendit.Webhooks} {
		s.Flush()
	}
	deadline = time.Now().Add(2 * time.Minute)
	for p.unfinished("carrier_webhooks") > 0 || p.count(`SELECT count(*) FROM webhook_inbox WHERE status = 'pending'`) > 0 {
		require.True(t, time.Now().Before(deadline), "webhooks not processed")
		p.hurry()
		time.Sleep(100 * time.Millisecond)
	}
	require.Zero(t, p.count(`SELECT count(*) FROM webhook_inbox WHERE status <> 'done'`), "dead webhooks")

	// What the carriers had acknowledged, by parcel.
	type report struct {
		raw string
		at  int64
	}
	acked := map[string]map[report]bool{} // account/tracking → reports
	outcomes := map[string]map[parcel.Status]bool{}
	ackCount := 0
	for _, f := range []struct {
		name string
		acks interface{ Acked() []coliixtest.Ack }
	}{{coliix.Name, cs.coliix.Webhooks}, {ameex.Name, cs.ameex.Webhooks}, {sendit.Name, cs.sendit.Webhooks}} {
		for _, a := range f.acks.Acked() {
			ev := parseAck(t, f.name, a)
			k := f.name + "/" + ev.Code
			if acked[k] == nil {
				acked[k], outcomes[k] = map[report]bool{}, map[parcel.Status]bool{}
			}
			var at int64
			if !ev.At.IsZero() {
				at = ev.At.Unix()
			}
			acked[k][report{ev.Raw, at}] = true
			outcomes[k][ev.Status] = true
			ackCount++
		}
	}
	require.NotZero(t, ackCount)

	kinds := map[parcel.Status]string{parcel.StatusDelivered: "parcel.delivered", parcel.StatusReturned: "parcel.returned", parcel.StatusCancelled: "parcel.cancelled"}
	terminal := 0
	for _, sp := range cs.parcels(t) {
		k := sp.carrier + "/" + sp.tracking
		got := map[report]bool{}
		p.query(func(row pgx.Row) error {
			var r report
			err := row.Scan(&r.raw, &r.at)
			require.False(t, got[r], "parcel %s: report %v recorded twice", k, r)
			got[r] = true
			return err
		}, `SELECT raw_status, coalesce(extract(epoch FROM reported_at)::bigint, 0) FROM parcel_events
WHERE store_id = $1 AND parcel_id = $2 AND source = 'webhook'`, cs.store, sp.id)
		want := acked[k]
		if want == nil {
			want = map[report]bool{}
		}
		require.Equal(t, want, got, "parcel %s: timeline against the acknowledged webhooks", k)
		for st, kind := range kinds {
			n := p.count(`SELECT count(*) FROM domain_events WHERE store_id = $1 AND aggregate_id = $2 AND kind = $3`, cs.store, sp.id, kind)
			if outcomes[k][st] {
				terminal++
				require.Equal(t, st.String(), sp.status, "parcel %s: final report acknowledged", k)
				require.Equal(t, 1, n, "parcel %s: %s events", k, kind)
			} else {
				require.Zero(t, n, "parcel %s: %s events without the report", k, kind)
			}
		}
		require.LessOrEqual(t, p.count(`SELECT count(*) FROM domain_events WHERE store_id = $1 AND aggregate_id = $2 AND kind = 'parcel.refused'`, cs.store, sp.id), 1)
	}
	t.Logf("%d acknowledged deliveries; %d parcels reached their outcome", ackCount, terminal)
}

// parseAck reads an acknowledged delivery with the carrier's own parser.
func parseAck(t *testing.T, name string, a coliixtest.Ack) carrier.Event {
	u, err := url.Parse(a.URL)
	require.NoError(t, err)
	var ev carrier.Event
	switch name {
	case coliix.Name:
		v := u.Query()
		if a.Method == http.MethodPost {
			v, err = url.ParseQuery(string(a.Body))
			require.NoError(t, err)
		}
		ev, err = coliix.ParseWebhook(v)
	case ameex.Name:
		var v url.Values
		v, err = url.ParseQuery(string(a.Body))
		require.NoError(t, err)
		ev, err = ameex.ParseWebhook(v)
	case sendit.Name:
		ev, err = sendit.ParseWebhook(a.ContentType, a.Body)
	}
	require.NoError(t, err)
	return ev
}
