// Package syncsim is the deterministic simulation of Leadify's sync: the real
// server handlers on a real Postgres database, and several desktop clients —
// the real localstore replica and syncclient, each on its own SQLite file —
// driven one step at a time by a seeded scheduler that owns the transport
// (dropping, duplicating, delaying and reordering calls), the clock, the ids of
// the rows clients create, and crashes — and server-side writers that reserve
// their versions aside (syncer.WriteAside, as a commission run's chunks do),
// left open across other steps and then committed, failed or killed, while
// every step checks that no replica's cursor passes versions still to come.
// At every quiet point (where open aside writers end first) an oracle written
// as plain SQL from DESIGN.md's visibility rules — not the Pull code — checks
// that every replica equals its user's view, that no acknowledged mutation was
// lost or applied twice, and that every rejection reached its user as a conflict.
package syncsim

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/mattn/go-sqlite3" // the oracle reads replicas directly

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/syncclient"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/server"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// Config is one simulation run.
type Config struct {
	Seed       uint64
	Steps      int
	Agents     int // default 3
	QuietEvery int // steps between quiet points; default 250
	Bugs       syncer.Bugs
	// ClientBugs plants bugs in every replica (simulation tests only).
	ClientBugs localstore.Bugs
	// StopAtViolation ends the run at the first step or quiet point that
	// found a violation (the planted-bug tests).
	StopAtViolation bool
	// TraceFrom logs every step's action and the clients' calls from this
	// step on (0: never).
	TraceFrom int
	Logf      func(format string, args ...any)
}

// Report is what a run saw.
type Report struct {
	Seed        uint64
	Steps       int
	QuietPoints int
	Actions     map[string]int
	Faults      map[string]int
	Conflicts   map[string]int
	Violations  []string
	// Elapsed is the wall time of the steps and quiet points (setup excluded).
	Elapsed time.Duration
	// Digest is a hash of the final state — the server's leads, events and
	// recorded mutations, and every replica — with the ids the server makes
	// up itself left out: two runs of one seed must print the same.
	Digest string
}

// Durability says what the simulation relaxes, and why that is sound.
const Durability = "replicas run with SQLite synchronous=OFF and Postgres with synchronous_commit=off: " +
	"the simulation kills clients inside the process and never crashes the machine, so no fsync can matter " +
	"(the outbox's durability against kill -9 is syncclient's kill test)"

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d steps, %d quiet points, %d violations\n", r.Seed, r.Steps, r.QuietPoints, len(r.Violations))
	if r.Elapsed > 0 {
		fmt.Fprintf(&b, "  wall %s, %.0f steps/s\n", r.Elapsed.Round(time.Millisecond), float64(r.Steps)/r.Elapsed.Seconds())
	}
	fmt.Fprintf(&b, "  digest %s\n  %s\n", r.Digest, Durability)
	for _, m := range []struct {
		name string
		m    map[string]int
	}{{"actions", r.Actions}, {"faults", r.Faults}, {"conflicts", r.Conflicts}} {
		keys := make([]string, 0, len(m.m))
		for k := range m.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "  %s:", m.name)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%d", k, m.m[k])
		}
		b.WriteByte('\n')
	}
	for i, v := range r.Violations {
		if i == 20 {
			fmt.Fprintf(&b, "  … %d more\n", len(r.Violations)-20)
			break
		}
		fmt.Fprintf(&b, "  VIOLATION %s\n", v)
	}
	return b.String()
}

// Sim is one running simulation.
type Sim struct {
	t       testing.TB
	cfg     Config
	rng     *rand.Rand
	env     *servertest.Env
	store   uuid.UUID
	seller  *servertest.Clients
	clients []*client
	delayed []delayedCall
	now     time.Time
	report  Report
	dir     string
	// owner is the oracle's connection: the tables' owner, not subject to
	// row-level security, opened once for the run.
	owner *pgx.Conn
	// srv is the server instance the clients' calls reach: restarts replace it.
	srv *server.Server
	// started is when the steps began (setup excluded), for the rate.
	started time.Time
	// imported counts the leads imported so far (their names).
	imported int
	// authGen stands for the hub's count of auth signals: membership and
	// permission changes raise it, as their triggers signal a real hub.
	authGen int64
	// asidePool is the pool of the aside writers (syncer.WriteAside), a
	// process of their own; aside are those open, oldest first; asideEnded
	// what became of the others, and asideLeads each of their leads' writer
	// (an index into asideEnded).
	asidePool  *pgxpool.Pool
	aside      []*asideWriter
	asideEnded []asideEnd
	asideLeads map[uuid.UUID]int
}

type client struct {
	name  string
	role  mutation.Role
	user  uuid.UUID
	email string
	token string
	path  string
	db    *localstore.DB
	sc    *syncclient.Client
	read  *sql.DB
	tr    *transport
	acked []acked
	// checked is how many of acked were checked at a quiet point already
	// (all of them are checked again at the end of the run).
	checked int
	crashAt string
	removed bool
	// follow is the client's delivering Subscribe stream, as the server
	// instance followSrv keeps it (nil: no stream open); held are
	// deliveries the network holds back, to arrive late and out of order.
	follow    *syncer.Follower
	followSrv *server.Server
	held      []*leadifyv1.DeliveredChanges
	// pageRows is the client's pull page size: one agent pulls in pages of
	// a few rows, so page boundaries fall everywhere (resyncs, visibility
	// changes); the rest in pages of 50, which most pulls fit in one.
	pageRows int32
}

type acked struct {
	id    int64
	event uuid.UUID
	name  string
	lead  uuid.UUID
}

type crash struct{ point string }

// Run runs a simulation and returns its report; violations are in the report,
// not test failures, so that callers can assert what they expect.
func Run(t testing.TB, cfg Config) Report {
	if cfg.Agents == 0 {
		cfg.Agents = 3
	}
	if cfg.QuietEvery == 0 {
		cfg.QuietEvery = 250
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	s := &Sim{t: t, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), dir: t.TempDir(), asideLeads: map[uuid.UUID]int{},
		report: Report{Seed: cfg.Seed, Actions: map[string]int{}, Faults: map[string]int{}, Conflicts: map[string]int{}}}
	s.setup()
	s.cfg.Logf("setup done")
	s.started = time.Now()
	ctx := context.Background()
	for step := 1; step <= cfg.Steps; step++ {
		s.report.Steps = step
		s.step(ctx)
		if step%cfg.QuietEvery == 0 || step == cfg.Steps {
			s.quiet(ctx)
		}
		if cfg.StopAtViolation && len(s.report.Violations) > 0 {
			break
		}
	}
	// A run stopped at a violation may leave aside writers open.
	s.resolveAside(ctx)
	// Every acknowledged mutation once more, now that the run is over (and
	// ended on a quiet point: not when it stopped at a violation).
	if s.report.Steps%cfg.QuietEvery == 0 || s.report.Steps == cfg.Steps {
		for _, c := range s.clients {
			s.checkAcked(ctx, c, c.acked)
		}
	}
	s.report.Elapsed = time.Since(s.started)
	if s.srv != s.env.Server {
		_ = s.srv.Stop(ctx)
	}
	s.report.Digest = s.digest(ctx)
	for _, c := range s.clients {
		s.countConflicts(c.read)
		c.db.Close()
		c.read.Close()
	}
	return s.report
}

func (s *Sim) clock() time.Time { return s.now }

// restart replaces the server instance the clients reach with a new one on
// the same database, as a deploy does: whatever the old one held in memory
// (shared pull reads, hub subscriptions) is gone, and calls held back in the
// network reach the new one. Member and permission changes keep going through
// the first instance, so they also cross instances.
func (s *Sim) restart(ctx context.Context) {
	srv, err := server.New(s.env.DB.App, s.env.Server.Config())
	if err != nil {
		s.t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		s.t.Fatal(err)
	}
	if s.srv != s.env.Server {
		if err := s.srv.Stop(ctx); err != nil {
			s.t.Fatal(err)
		}
	}
	s.srv = srv
	s.count(s.report.Faults, "server-restart")
}

func (s *Sim) pick(weights map[string]int) string {
	keys := make([]string, 0, len(weights))
	total := 0
	for k, w := range weights {
		keys = append(keys, k)
		total += w
	}
	sort.Strings(keys)
	n := s.rng.IntN(total)
	for _, k := range keys {
		if n < weights[k] {
			return k
		}
		n -= weights[k]
	}
	return keys[len(keys)-1]
}

func (s *Sim) count(m map[string]int, k string) { m[k]++ }

func (s *Sim) newID() uuid.UUID {
	var b [16]byte
	for i := range b {
		b[i] = byte(s.rng.UintN(256))
	}
	id, _ := uuid.FromBytes(b[:])
	id[6] = (id[6] & 0x0f) | 0x40 // version 4
	id[8] = (id[8] & 0x3f) | 0x80 // RFC 4122 variant
	return id
}

// trace logs what the run does from step Config.TraceFrom on (0: never),
// for replaying a seed up to a violation.
func (s *Sim) trace(format string, args ...any) {
	if s.cfg.TraceFrom > 0 && s.report.Steps >= s.cfg.TraceFrom {
		s.cfg.Logf(format, args...)
	}
}

func (s *Sim) violate(format string, args ...any) {
	v := fmt.Sprintf("step %d: ", s.report.Steps) + fmt.Sprintf(format, args...)
	s.report.Violations = append(s.report.Violations, v)
	s.cfg.Logf("%s", v)
}

func (s *Sim) setup() {
	t := s.t
	ctx := context.Background()
	db := pgtest.New(t)
	// Relaxed durability, in the simulation only: it never crashes Postgres
	// (server restarts are new server instances on the same database), so a
	// commit need not wait for its WAL flush. Pooled connections opened
	// before the setting are dropped so that every one of them has it.
	owner, err := pgx.Connect(ctx, db.OwnerURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Close(context.Background()) })
	if _, err := owner.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db.Name}.Sanitize()+" SET synchronous_commit = off"); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec(ctx, "SET synchronous_commit = off"); err != nil {
		t.Fatal(err)
	}
	db.App.Reset()
	s.owner = owner
	s.openAsidePool(ctx, db.AppURL)
	// No job runs behind the simulation's back: none of the sync's jobs
	// run on their own in a run this short of real time (the purge is
	// periodic, every six hours), and the rest never touch synced tables
	// unless a store creates parcels on confirmation, which the sim's does not.
	noJobs := servertest.Option(func(c *server.Config) { c.DisableJobs = true })
	s.env = servertest.StartOn(t, db, servertest.WithClock(s.clock), servertest.WithBugs(s.cfg.Bugs), noJobs)
	s.srv = s.env.Server
	admin := s.env.Admin()
	tn := s.env.NewTenant(admin, "sim")
	s.store, s.seller = tn.StoreID, tn.Seller
	s.addClient("seller", mutation.RoleSeller, tn.SellerEmail, tn.Seller)
	s.addClient("agent0", mutation.RoleAgent, tn.AgentEmail, tn.Agent)
	for i := 1; i < s.cfg.Agents; i++ {
		email := fmt.Sprintf("agent%d@sim.test", i)
		inv, err := tn.Seller.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: s.store.String(),
			Email: email, Role: leadifyv1.Role_ROLE_AGENT}))
		if err != nil {
			t.Fatal(err)
		}
		acc, err := s.env.ClientsFor("").Auth.AcceptInvitation(ctx, connect.NewRequest(&leadifyv1.AcceptInvitationRequest{
			Token: inv.Msg.Token, FullName: fmt.Sprintf("Agent %d", i), Password: servertest.Password}))
		if err != nil {
			t.Fatal(err)
		}
		c := s.env.ClientsFor(acc.Msg.Session.Token)
		c.UserID = uuid.MustParse(acc.Msg.Session.User.Id)
		s.addClient(fmt.Sprintf("agent%d", i), mutation.RoleAgent, email, c)
	}
	s.seed(ctx, 30, "Sim customer")
}

// seed imports n pool leads, as intake does, through the versioned-write
// helper — with ids from the simulation's id source and times from its clock,
// so that a seed replays the same run.
func (s *Sim) seed(ctx context.Context, n int, prefix string) {
	leads := s.newLeads(n, prefix)
	err := syncer.Write(ctx, s.env.DB.App, postgres.StoreScope(s.store), func(w *syncer.Writer) error {
		first, err := w.Reserve(s.store, n)
		if err != nil {
			return err
		}
		for i := range leads {
			leads[i].Version = first + int64(i)
		}
		return w.InsertLeads(leads)
	})
	if err != nil {
		s.t.Fatalf("import leads: %v", err)
	}
}

// newLeads makes n new pool leads, their versions still to be stamped.
func (s *Sim) newLeads(n int, prefix string) []mutation.Lead {
	leads := make([]mutation.Lead, n)
	for i := range leads {
		s.imported++
		at := s.now.Add(time.Duration(i) * time.Microsecond)
		leads[i] = mutation.Lead{ID: s.newID(), StoreID: s.store, CreatedAt: at, UpdatedAt: at,
			Status: lead.StatusNew, CustomerName: fmt.Sprintf("%s %d", prefix, s.imported), PhoneRaw: "0612345678",
			PhoneE164: "+212612345678", CityID: "casablanca", CityRaw: "Casa", Address: prefix + " street",
			Items: []mutation.Item{{SKU: "ARG-100", Name: "Huile d'argan 100ml", Qty: 1, UnitPrice: 120 * money.Dirham}},
			COD:   120 * money.Dirham, Source: "sim"}
	}
	return leads
}

func (s *Sim) addClient(name string, role mutation.Role, email string, c *servertest.Clients) {
	cl := &client{name: name, role: role, user: c.UserID, email: email, token: c.Token,
		path: filepath.Join(s.dir, name+".db"), pageRows: 50}
	if name == "agent0" {
		cl.pageRows = 5
	}
	cl.tr = &transport{sim: s, name: name, faults: true}
	s.open(cl)
	s.clients = append(s.clients, cl)
}

// open (re)opens a client's replica and sync client, as the app does at start.
func (s *Sim) open(c *client) {
	ctx := context.Background()
	// synchronous=OFF: a simulated kill happens inside the process, where
	// what SQLite wrote survives without an fsync; the outbox's durability
	// against a real kill -9 (synchronous=FULL) is tested by syncclient's
	// kill test, not here.
	db, err := localstore.OpenWith(ctx, c.path, localstore.Options{Synchronous: "OFF"})
	if err != nil {
		s.t.Fatalf("open %s: %v", c.name, err)
	}
	hook := func(point string) {
		if c.crashAt == point {
			c.crashAt = ""
			panic(crash{point})
		}
	}
	db.SetHook(hook)
	db.SetClock(s.clock)
	db.PlantBugs(s.cfg.ClientBugs)
	sc, err := syncclient.New(syncclient.Config{BaseURL: "http://sim.invalid", Token: c.token, DB: db,
		HTTP: &http.Client{Transport: c.tr}, PageRows: c.pageRows, PushBatch: 5, Hook: hook, DeviceName: c.name})
	if err != nil {
		s.t.Fatal(err)
	}
	read, err := sql.Open("sqlite3", "file:"+c.path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		s.t.Fatal(err)
	}
	if c.read != nil {
		c.read.Close()
	}
	c.db, c.sc, c.read = db, sc, read
}

// guard runs a client call; a simulated crash (a panic at an armed point)
// kills the client mid-flight: its replica is closed without committing
// whatever was open, and reopened, as after kill -9.
func (s *Sim) guard(c *client, fn func() error) (err error, crashed bool) {
	defer func() {
		if r := recover(); r != nil {
			cr, ok := r.(crash)
			if !ok {
				panic(r)
			}
			s.trace("  %s: crashed at %s", c.name, cr.point)
			s.count(s.report.Faults, "crash@"+cr.point)
			c.db.Close()
			s.open(c)
			c.follow, c.held = nil, nil // its stream died with it
			crashed = true
		}
	}()
	err = fn()
	s.trace("  %s: call err=%v", c.name, err)
	return err, false
}
