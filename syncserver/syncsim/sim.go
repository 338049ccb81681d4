// Package syncsim is the deterministic simulation of Leadify's sync: the real
// server handlers on a real Postgres database, and several desktop clients —
// the real localstore replica and syncclient, each on its own SQLite file —
// driven one step at a time by a seeded scheduler that owns the transport
// (dropping, duplicating, delaying and reordering calls), the clock, the ids of
// the rows clients create, and crashes. At every quiet point an oracle written
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
	_ "github.com/mattn/go-sqlite3" // the oracle reads replicas directly

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/syncclient"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
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
	Logf       func(format string, args ...any)
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
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d steps, %d quiet points, %d violations\n", r.Seed, r.Steps, r.QuietPoints, len(r.Violations))
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
}

type client struct {
	name    string
	role    mutation.Role
	user    uuid.UUID
	email   string
	token   string
	path    string
	db      *localstore.DB
	sc      *syncclient.Client
	read    *sql.DB
	tr      *transport
	acked   []acked
	crashAt string
	removed bool
}

type acked struct {
	id    int64
	event uuid.UUID
	name  string
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
		now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), dir: t.TempDir(),
		report: Report{Seed: cfg.Seed, Actions: map[string]int{}, Faults: map[string]int{}, Conflicts: map[string]int{}}}
	s.setup()
	ctx := context.Background()
	for step := 1; step <= cfg.Steps; step++ {
		s.report.Steps = step
		s.step(ctx)
		if step%cfg.QuietEvery == 0 || step == cfg.Steps {
			s.quiet(ctx)
		}
	}
	for _, c := range s.clients {
		c.db.Close()
		c.read.Close()
	}
	for _, c := range s.clients {
		rows, err := sql.Open("sqlite3", "file:"+c.path+"?mode=ro")
		if err == nil {
			s.countConflicts(rows)
			rows.Close()
		}
	}
	return s.report
}

func (s *Sim) clock() time.Time { return s.now }

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

func (s *Sim) violate(format string, args ...any) {
	v := fmt.Sprintf("step %d: ", s.report.Steps) + fmt.Sprintf(format, args...)
	s.report.Violations = append(s.report.Violations, v)
	s.cfg.Logf("%s", v)
}

func (s *Sim) setup() {
	t := s.t
	s.env = servertest.Start(t, servertest.WithClock(s.clock), servertest.WithBugs(s.cfg.Bugs))
	admin := s.env.Admin()
	tn := s.env.NewTenant(admin, "sim")
	s.store, s.seller = tn.StoreID, tn.Seller
	s.addClient("seller", mutation.RoleSeller, tn.SellerEmail, tn.Seller)
	s.addClient("agent0", mutation.RoleAgent, tn.AgentEmail, tn.Agent)
	ctx := context.Background()
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
	s.env.SeedLeads(s.store, 30, "Sim customer")
}

func (s *Sim) addClient(name string, role mutation.Role, email string, c *servertest.Clients) {
	cl := &client{name: name, role: role, user: c.UserID, email: email, token: c.Token,
		path: filepath.Join(s.dir, name+".db")}
	cl.tr = &transport{sim: s, name: name, faults: true}
	s.open(cl)
	s.clients = append(s.clients, cl)
}

// open (re)opens a client's replica and sync client, as the app does at start.
func (s *Sim) open(c *client) {
	ctx := context.Background()
	db, err := localstore.Open(ctx, c.path)
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
	db.PlantBugs(s.cfg.ClientBugs)
	sc, err := syncclient.New(syncclient.Config{BaseURL: "http://sim.invalid", Token: c.token, DB: db,
		HTTP: &http.Client{Transport: c.tr}, PageRows: 7, PushBatch: 5, Hook: hook, DeviceName: c.name})
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
			s.count(s.report.Faults, "crash@"+cr.point)
			c.db.Close()
			s.open(c)
			crashed = true
		}
	}()
	return fn(), false
}
