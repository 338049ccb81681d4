package syncer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/postgres"
)

// A pull reads several tables of several scopes. Written as plain sequential
// queries (storeChanges and friends take a querier), they are run twice: once
// against a recorder that notes each query and returns no rows, and once
// against the answers of a single batch holding all of them and the
// snapshot's COMMIT. A pull is then two round trips to Postgres whatever it
// reads, instead of one per table.
//
// And when a commit pokes a hundred subscribers of a store at once, they all
// ask for the same versions of the same scope in the same view: the first
// reads them, the others wait for its answer (pullShare). The rows between two
// versions of a scope are a pure function of those versions — every write to
// a scope takes the next versions under the scope's row lock — so a shared
// answer is the one each pull would have read itself.

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type queuedQuery struct {
	sql  string
	args []any
}

// recorder notes the queries a reader makes and answers each with no rows.
type recorder struct{ queries []queuedQuery }

func (r *recorder) Query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	r.queries = append(r.queries, queuedQuery{sql: sql, args: args})
	return emptyRows{}, nil
}

// replayer answers the same reader's queries, in the same order, from a batch.
type replayer struct {
	br      pgx.BatchResults
	queries []queuedQuery
	next    int
}

func (r *replayer) Query(_ context.Context, sql string, _ ...any) (pgx.Rows, error) {
	if r.next >= len(r.queries) || r.queries[r.next].sql != sql {
		return nil, fmt.Errorf("pull batch: query %d is not the one recorded", r.next)
	}
	r.next++
	return r.br.Query()
}

type emptyRows struct{}

func (emptyRows) Close()                                       {}
func (emptyRows) Err() error                                   { return nil }
func (emptyRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (emptyRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (emptyRows) Next() bool                                   { return false }
func (emptyRows) Scan(...any) error                            { return pgx.ErrNoRows }
func (emptyRows) Values() ([]any, error)                       { return nil, nil }
func (emptyRows) RawValues() [][]byte                          { return nil }
func (emptyRows) Conn() *pgx.Conn                              { return nil }
func (emptyRows) TypeMap() *pgtype.Map                         { return nil }

// plannedScope is one scope of a pull whose rows in (from, to] are to be read.
type plannedScope struct {
	kind     leadifyv1.ScopeKind
	id       uuid.UUID
	viewer   viewer
	from, to int64
	small    bool // a poke-sized gap: shareable with concurrent pulls
	out      *leadifyv1.ScopeChanges
	call     *pullCall // shared answer this pull reads (leader) or waits for
}

// pullCalls is what one pull reads itself and what it waits for.
type pullCalls struct {
	reads []*plannedScope
	waits []*plannedScope
	led   []*plannedScope // reads whose answer others may be waiting for
}

func (c *pullCalls) add(s *Service, p *plannedScope) {
	if p.to <= p.from {
		return
	}
	if p.small && p.kind == leadifyv1.ScopeKind_SCOPE_KIND_STORE {
		call, leader := s.share.join(p.key(), s.clock())
		p.call = call
		if !leader {
			c.waits = append(c.waits, p)
			return
		}
		c.led = append(c.led, p)
	}
	c.reads = append(c.reads, p)
}

// read sends every query of the pull's own reads and the snapshot's end in one
// batch, then decodes the answers.
func (c *pullCalls) read(ctx context.Context, s *Service, snap *postgres.Snapshot) error {
	rec := &recorder{}
	for _, p := range c.reads {
		if err := s.changes(ctx, rec, p); err != nil {
			return err
		}
	}
	b := &pgx.Batch{}
	for _, q := range rec.queries {
		b.Queue(q.sql, q.args...)
	}
	snap.End(b)
	br := snap.SendBatch(ctx, b)
	rep := &replayer{br: br, queries: rec.queries}
	for _, p := range c.reads {
		if err := s.changes(ctx, rep, p); err != nil {
			_ = br.Close()
			return err
		}
	}
	if rep.next != len(rec.queries) {
		_ = br.Close()
		return fmt.Errorf("pull batch: %d of %d queries read", rep.next, len(rec.queries))
	}
	if _, err := br.Exec(); err != nil { // the COMMIT
		_ = br.Close()
		return err
	}
	if err := br.Close(); err != nil {
		return err
	}
	for _, p := range c.led {
		p.call.finish(p.out.Changes, nil)
	}
	c.led = nil
	return nil
}

// abandon fails the shared reads this pull led but could not finish, so their
// waiters read for themselves.
func (c *pullCalls) abandon(err error) {
	if err == nil {
		err = fmt.Errorf("pull abandoned")
	}
	for _, p := range c.led {
		p.call.finish(nil, err)
	}
	c.led = nil
}

// await fills in the answers other pulls read; where one failed, this pull
// reads the scope itself in a snapshot of its own (the bound stays: any later
// snapshot gives a correct page for it).
func (c *pullCalls) await(ctx context.Context, s *Service, a *auth.Actor) error {
	for _, p := range c.waits {
		changes, err := p.call.wait(ctx)
		if err == nil {
			p.out.Changes = changes
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := postgres.InSnapshot(ctx, s.pool, a.Scope(), func(tx *postgres.Tx) error {
			return s.changes(ctx, tx, p)
		}); err != nil {
			return fmt.Errorf("pull %s: %w", p.id, err)
		}
	}
	return nil
}

type pullKey struct {
	scope     uuid.UUID
	from, to  int64
	all, pool bool
	user      uuid.UUID
}

func (p *plannedScope) key() pullKey {
	k := pullKey{scope: p.id, from: p.from, to: p.to, all: p.viewer.all}
	if !p.viewer.all { // those who see everything see the same rows
		k.user, k.pool = p.viewer.user, p.viewer.pool
	}
	return k
}

// pullCall is one shared read: in flight until done is closed.
type pullCall struct {
	sharedRead
	changes []*leadifyv1.Change // shared, never modified
}

func (c *pullCall) finish(changes []*leadifyv1.Change, err error) {
	select {
	case <-c.done:
		return
	default:
	}
	c.changes, c.err = changes, err
	close(c.done)
}

func (c *pullCall) wait(ctx context.Context) ([]*leadifyv1.Change, error) {
	select {
	case <-c.done:
		return c.changes, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pullShare holds recent shared reads: a burst of pulls after one poke, and
// the stragglers a little later, read the scope once.
type pullShare struct {
	mu    sync.Mutex
	calls map[pullKey]*pullCall
	reads atomic.Int64 // shareable reads done (not answered from another pull)
}

// SharedReads counts the poke-sized store reads this server did itself rather
// than take from a concurrent or recent pull of the same versions and view.
func (s *Service) SharedReads() int64 { return s.share.reads.Load() }

const (
	shareFor = 10 * time.Second
	shareMax = 4096
)

// sharedRead is the state of a read others may take the answer of
// (pullCall, deliveryCall): in flight until done is closed.
type sharedRead struct {
	done chan struct{}
	at   time.Time // when it began
	err  error
}

func newSharedRead(now time.Time) sharedRead { return sharedRead{done: make(chan struct{}), at: now} }

// settled reports whether the read is over, when it began and whether it
// failed.
func (r *sharedRead) settled() (at time.Time, failed, over bool) {
	select {
	case <-r.done:
		return r.at, r.err != nil, true
	default:
		return r.at, false, false
	}
}

// sweep bounds a map of shared reads: once it holds shareMax, the failed
// and expired reads go, then finished ones down to half — a sweep every
// shareMax/2 new keys at most, not one per key. Reads in flight stay.
func sweep[K comparable, C interface {
	settled() (time.Time, bool, bool)
}](calls map[K]C, now time.Time) {
	if len(calls) < shareMax {
		return
	}
	for k, c := range calls {
		if at, failed, over := c.settled(); over && (failed || now.Sub(at) >= shareFor || len(calls) > shareMax/2) {
			delete(calls, k)
		}
	}
}

// join returns the read for k, and whether the caller is to do it.
func (s *pullShare) join(k pullKey, now time.Time) (*pullCall, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[pullKey]*pullCall{}
	}
	if c := s.calls[k]; c != nil {
		select {
		case <-c.done:
			if c.err == nil && now.Sub(c.at) < shareFor {
				return c, false
			}
		default:
			return c, false
		}
	}
	sweep(s.calls, now)
	c := &pullCall{sharedRead: newSharedRead(now)}
	s.calls[k] = c
	s.reads.Add(1)
	return c, true
}
