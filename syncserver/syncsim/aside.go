package syncsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// maxAside is how many aside writers (syncer.WriteAside) may be open at once.
const maxAside = 2

// asideWriter is a WriteAside in flight, as a commission run's chunk is: it
// has reserved its versions aside and inserted its leads, and waits, on its
// own goroutine and backend, for the simulation to end it — committed, failed
// or killed — while the other actions go on around it. Only the simulation's
// goroutine draws from the rng or touches the Sim: the writer's goroutine is
// told everything it needs, and every step waits for what it started, so the
// run stays deterministic.
type asideWriter struct {
	first, last int64
	xid         string // the writing transaction's id (xid8, as text)
	ids         []uuid.UUID
	opened      int // the step that opened it
	release     chan func(*syncer.Writer) error
	done        chan error
}

// asideEnd is what became of an aside writer: its leads exist (committed) or
// never will (aborted).
type asideEnd struct {
	first, last int64
	ids         []uuid.UUID
	opened      int
	ended       int
	committed   bool
	how         string
}

// asideTimeout bounds every wait for an aside writer: a writer that does not
// answer is blocked on a lock, which is a bug of the simulation (or of the
// code under test) worth failing loudly for, not a hang.
const asideTimeout = time.Minute

// openAsidePool opens the pool the aside writers use: a process of their own
// (a commission run), so that the writers' held connections never starve the
// server's pool, and the server's never theirs.
func (s *Sim) openAsidePool(ctx context.Context, url string) {
	pool, err := postgres.Open(ctx, url)
	if err != nil {
		s.t.Fatal(err)
	}
	s.asidePool = pool
	s.t.Cleanup(func() {
		// A run that failed early must not leave writers holding connections
		// (and the database, which the test then drops).
		for _, a := range s.aside {
			select {
			case a.release <- func(*syncer.Writer) error { return errors.New("the run ended") }:
			default:
			}
			select {
			case <-a.done:
			case <-time.After(asideTimeout):
			}
		}
		s.aside = nil
		pool.Close()
	})
}

// openAside starts an aside writer of n new pool leads, as the "import"
// action's, and returns once it has reserved their versions and inserted them
// (uncommitted).
func (s *Sim) openAside(ctx context.Context) {
	if len(s.aside) >= maxAside {
		s.count(s.report.Actions, "aside-open:busy")
		return
	}
	n := 1 + s.rng.IntN(4)
	if s.openLeads(ctx)+s.asidePending() >= maxOpenLeads {
		s.count(s.report.Actions, "aside-open:pool-full")
		return
	}
	leads := s.newLeads(n, "Aside")
	a := &asideWriter{opened: s.report.Steps, release: make(chan func(*syncer.Writer) error, 1), done: make(chan error, 1)}
	for _, l := range leads {
		a.ids = append(a.ids, l.ID)
	}
	ready := make(chan error, 1)
	go func() {
		// Reservations on the same pool: at most maxAside writers hold two of
		// its four connections.
		a.done <- syncer.WriteAside(context.Background(), s.asidePool, s.asidePool, postgres.StoreScope(s.store), func(w *syncer.Writer) error {
			first, err := w.Reserve(s.store, n)
			if err != nil {
				ready <- err
				return err
			}
			for i := range leads {
				leads[i].Version = first + int64(i)
			}
			if err := w.InsertLeads(leads); err != nil {
				ready <- err
				return err
			}
			if err := w.Tx.QueryRow(context.Background(), `SELECT pg_current_xact_id()::text`).Scan(&a.xid); err != nil {
				ready <- err
				return err
			}
			a.first, a.last = first, first+int64(n)-1
			ready <- nil
			end := <-a.release
			if end == nil {
				return nil
			}
			return end(w)
		})
	}()
	select {
	case err := <-ready:
		if err != nil {
			s.t.Fatalf("aside writer: %v", err)
		}
	case <-time.After(asideTimeout):
		s.t.Fatalf("step %d: an aside writer did not reserve and insert its leads in %s", s.report.Steps, asideTimeout)
	}
	s.aside = append(s.aside, a)
	s.trace("  aside writer opened: versions %d–%d, %d leads, xid %s", a.first, a.last, n, a.xid)
}

// asidePending is how many leads the open aside writers hold uncommitted.
func (s *Sim) asidePending() int {
	n := 0
	for _, a := range s.aside {
		n += len(a.ids)
	}
	return n
}

// endAside ends the i-th open aside writer: it commits, or it aborts —
// failing with an error, or, as when its server is killed, losing its
// connection (Postgres then aborts its transaction) — and waits until the
// database has settled it.
func (s *Sim) endAside(ctx context.Context, i int, commit bool) {
	a := s.aside[i]
	s.aside = slices.Delete(s.aside, i, i+1)
	how := "committed"
	var end func(*syncer.Writer) error // nil: commit
	if !commit {
		how = "failed"
		end = func(*syncer.Writer) error { return errAsideFailed }
		if s.rng.IntN(3) == 0 {
			how, end = "killed", killAside
		}
	}
	a.release <- end
	var err error
	select {
	case err = <-a.done:
	case <-time.After(asideTimeout):
		s.t.Fatalf("step %d: the aside writer of versions %d–%d did not end in %s", s.report.Steps, a.first, a.last, asideTimeout)
	}
	switch {
	case commit && err != nil:
		s.t.Fatalf("step %d: the aside writer of versions %d–%d failed to commit: %v", s.report.Steps, a.first, a.last, err)
	case !commit && err == nil:
		s.t.Fatalf("step %d: the aside writer of versions %d–%d that was told to abort committed", s.report.Steps, a.first, a.last)
	}
	if how == "killed" {
		// Postgres notices the closed connection on its own time: wait for
		// the abort, so that what follows sees the same database every run.
		deadline := time.Now().Add(asideTimeout)
		for {
			var status *string
			if err := s.owner.QueryRow(ctx, `SELECT pg_xact_status($1::xid8)`, a.xid).Scan(&status); err != nil {
				s.t.Fatal(err)
			}
			if status != nil && *status == "aborted" {
				break
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("step %d: the killed aside writer's transaction %s is still %v", s.report.Steps, a.xid, status)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	s.count(s.report.Actions, "aside:"+how)
	s.asideEnded = append(s.asideEnded, asideEnd{first: a.first, last: a.last, ids: a.ids, opened: a.opened,
		ended: s.report.Steps, committed: commit, how: how})
	for _, id := range a.ids {
		s.asideLeads[id] = len(s.asideEnded) - 1
	}
	s.trace("  aside writer of versions %d–%d %s", a.first, a.last, how)
}

var errAsideFailed = errors.New("the aside writer failed")

// killAside is the end of a writer whose server dies: its connection closes
// under its open transaction, which Postgres then aborts.
func killAside(w *syncer.Writer) error {
	if err := w.Tx.Conn().PgConn().Conn().Close(); err != nil {
		return err
	}
	if _, err := w.Tx.Exec(context.Background(), `SELECT 1`); err != nil {
		return err
	}
	return errors.New("the killed writer's connection still answers")
}

// resolveAside ends every open aside writer, each committed or aborted as the
// rng says: quiet points and the end of a run check a settled database.
func (s *Sim) resolveAside(ctx context.Context) {
	for len(s.aside) > 0 {
		s.endAside(ctx, 0, s.rng.IntN(3) != 0)
	}
}

// asideBound is the highest store version a replica may have reached while
// aside writers are open: just below the lowest open reservation, whose rows
// are still to come. ok is false when none is open.
func (s *Sim) asideBound() (bound int64, ok bool) {
	for _, a := range s.aside {
		if !ok || a.first-1 < bound {
			bound, ok = a.first-1, true
		}
	}
	return bound, ok
}

// asideHoldsBack says whether the server holds committed store changes that
// open aside writers keep from replicas: versions above the lowest open
// reservation that are not the open writers' own (aborted writers' gaps count
// as such changes, conservatively). Checks that compare a replica that has
// just pulled with the server's rows now must not run then: the replica is
// rightly behind.
func (s *Sim) asideHoldsBack(ctx context.Context) bool {
	bound, ok := s.asideBound()
	if !ok {
		return false
	}
	return s.storeVersion(ctx)-bound > int64(s.asidePending())
}

// checkAsideCursors checks the rule aside reservations exist for: while a
// writer is open, no replica's store cursor passes below its versions, whose
// rows are still to come (a replica past them would never pull them). The
// bound is the simulation's own record of the open writers, not the server's.
func (s *Sim) checkAsideCursors(ctx context.Context) {
	bound, ok := s.asideBound()
	if !ok {
		return
	}
	for _, c := range s.clients {
		var v int64
		err := c.read.QueryRowContext(ctx, `SELECT version FROM cursors WHERE scope_id = ?`, s.store.String()).Scan(&v)
		if err != nil {
			continue // no cursor: the replica does not follow the store (yet)
		}
		if v > bound {
			s.violate("%s: the replica's store cursor is at %d, past the versions %s reserved aside by a writer still open: their rows are still to come",
				c.name, v, s.openRanges())
		}
	}
}

func (s *Sim) openRanges() string {
	out := ""
	for i, a := range s.aside {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%d–%d (opened at step %d)", a.first, a.last, a.opened)
	}
	return out
}

// asideLabel names an aside writer's lead in a violation: "" for others.
func (s *Sim) asideLabel(id string) string {
	u, err := uuid.Parse(id)
	if err != nil {
		return ""
	}
	i, ok := s.asideLeads[u]
	if !ok {
		return ""
	}
	e := s.asideEnded[i]
	return fmt.Sprintf(" (written aside with versions %d–%d, opened at step %d, %s at step %d)", e.first, e.last, e.opened, e.how, e.ended)
}

// checkAside runs at quiet points, with every aside writer ended: aborted
// writers' leads exist nowhere, committed writers' reservations are gone (an
// aborted one's record may stay until the next reservation reaps it), and
// nothing holds replicas below the store's counter.
func (s *Sim) checkAside(ctx context.Context) {
	var aborted []uuid.UUID
	for _, e := range s.asideEnded {
		if !e.committed {
			aborted = append(aborted, e.ids...)
		}
	}
	if len(aborted) > 0 {
		rows, err := s.owner.Query(ctx, `SELECT id::text FROM leads WHERE id = ANY($1)`, aborted)
		if err != nil {
			s.t.Fatal(err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				s.t.Fatal(err)
			}
			s.violate("lead %s exists on the server though its aside writer aborted%s", id, s.asideLabel(id))
		}
		rows.Close()
		list, _ := json.Marshal(aborted)
		for _, c := range s.clients {
			for id := range readIDs(s, c.read, `SELECT id FROM leads WHERE id IN (SELECT value FROM json_each(?))`, string(list)) {
				s.violate("%s: lead %s is in the replica though its aside writer aborted%s", c.name, id, s.asideLabel(id))
			}
		}
	}
	for _, r := range s.reservations(ctx) {
		if r.status != "aborted" {
			s.violate("versions %d–%d are still recorded as reserved aside, by a writer that is %s, with every aside writer ended", r.first, r.last, r.status)
		}
	}
	var seq, visible int64
	if err := s.owner.QueryRow(ctx, `SELECT seq, sync_visible_seq(scope_id, seq) FROM sync_scopes WHERE scope_id = $1`, s.store).
		Scan(&seq, &visible); err != nil {
		s.t.Fatal(err)
	}
	if visible != seq {
		s.violate("with every aside writer ended, the store's visible version is %d, below its counter %d", visible, seq)
	}
}

// reservation is a range recorded in sync_reservations, with its writer's
// status (pg_xact_status).
type reservation struct {
	first, last int64
	status      string
}

// reservations are the store's ranges still recorded as reserved aside.
func (s *Sim) reservations(ctx context.Context) []reservation {
	rows, err := s.owner.Query(ctx, `SELECT first, last, coalesce(pg_xact_status(writer), 'unknown') FROM sync_reservations
WHERE scope_id = $1 ORDER BY first`, s.store)
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (reservation, error) {
		var v reservation
		return v, r.Scan(&v.first, &v.last, &v.status)
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}
