package syncer

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/postgres"
)

// Delivery in the Subscribe stream. A poke answered by a pull costs every
// subscriber a request, an authentication, a snapshot and a response; when a
// hundred replicas follow a store, that is most of the time between a commit
// and the last of them. A stream that asked for delivery instead receives the
// store's new changes themselves: the server follows where it believes the
// replica stands (the cursors the stream opened with, then what it sent), and
// after each poke reads the page a pull from there would return — once for
// all the subscribers at the same cursor in the same view — and sends it.
// The replica applies the part above its own cursor, or pulls when the page
// starts above it (it missed one). Anything unusual — a gap too long for one
// page, a resync, a scope it no longer follows — goes back to a poke.

// DeliverRows bounds a delivered page: longer gaps are left to pulls.
const DeliverRows = 1000

// delivery is what a stream sends one subscriber for one poked store scope.
type delivery struct {
	// changes is the page above from when it fits one (its changes are
	// shared between subscribers: never modify them); nil means "send a
	// poke instead", unless current says there is nothing to send at all.
	changes *leadifyv1.ScopeChanges
	from    int64
	// to is the version the scope was read at: where the subscriber stands
	// once it applies changes or pulls after the poke.
	to int64
	// current: the subscriber's cursor is already at the scope's version.
	current bool
}

// deliver reads what a stream sends the actor, a member of store scope sc,
// for a poke announcing version, when the stream believes the replica's
// cursor is from. authGen is the generation of auth signals the actor was
// read under (see Hub.AuthGeneration): shared reads are only reused within
// one generation.
//
// The read's snapshot also lists the store's members: the rows go out only
// when the actor's membership epoch is still the store's in that snapshot, so
// a stream whose actor has not yet caught up with a removal or a role change
// committed before the rows never sends them (it pokes; the pull that
// follows authenticates afresh and drops the scope).
func (s *Service) deliver(ctx context.Context, a *auth.Actor, scope uuid.UUID, sc *leadifyv1.Scope, authGen int64, from *leadifyv1.Cursor, version int64) (delivery, error) {
	poke := delivery{to: version}
	if from == nil || version <= 0 || from.Version <= 0 || from.Epoch != sc.Epoch || from.Initial {
		return poke, nil
	}
	if from.Version >= version {
		return delivery{from: from.Version, to: from.Version, current: true}, nil
	}
	v := viewerFor(a, scope)
	// Not keyed by the membership epoch: every member's is their own, and
	// the rows do not depend on it (each subscriber's check below does).
	k := deliveryKey{scope: scope, from: from.Version, gen: authGen, all: v.all}
	if !v.all {
		k.user, k.pool = v.user, v.pool
	}
	call, err := s.deliveries.get(ctx, k, version, func() *deliveryCall { return s.readDelivery(ctx, a, sc, from.Version) })
	if err != nil {
		return delivery{}, err
	}
	if call.members[a.UserID] != sc.Epoch {
		return poke, nil // the actor is behind the store's memberships
	}
	switch {
	case call.changes == nil:
		// Not the poke's version: a read begun after the poke's commit may
		// still stop below it, under another writer's reservation (WriteAside),
		// and the replica's pull will too. That writer pokes when it commits.
		return delivery{to: max(from.Version, call.to)}, nil
	case call.to <= from.Version:
		return delivery{from: from.Version, to: from.Version, current: true}, nil
	}
	page := call.changes
	return delivery{from: from.Version, to: call.to, changes: &leadifyv1.ScopeChanges{ScopeId: page.ScopeId, Kind: page.Kind,
		Epoch: sc.Epoch, Cursor: page.Cursor, Changes: page.Changes}}, nil
}

// readDelivery reads one shared delivery: the scope's version, purge mark and
// members with the snapshot's opening, then the page's rows.
func (s *Service) readDelivery(ctx context.Context, a *auth.Actor, sc *leadifyv1.Scope, from int64) *deliveryCall {
	// The read serves other streams too: it does not end with this one's.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	out := &deliveryCall{}
	id := uuid.MustParse(sc.Id)
	calls := &pullCalls{}
	var p *plannedScope
	err := postgres.ReadSnapshot(ctx, s.pool, a.Scope(), deliverySQL(id), func(snap *postgres.Snapshot, first [][][]byte) error {
		st, members, err := parseDelivery(first)
		if err != nil {
			return err
		}
		out.members, out.to = members, st.seq
		if members[a.UserID] != sc.Epoch {
			return nil // this reader cannot read it for the others either
		}
		p, _, err = s.planScope(ctx, snap, a, sc, &leadifyv1.Cursor{ScopeId: sc.Id, Version: from, Epoch: sc.Epoch}, st, DeliverRows)
		if err != nil {
			return err
		}
		if p.out.ResyncRequired || p.out.HasMore || p.out.Initial {
			p = nil // a pull's work
			return nil
		}
		calls.add(s, p)
		return calls.read(ctx, s, snap)
	})
	calls.abandon(err)
	if err == nil && p != nil {
		err = calls.await(ctx, s, a)
	}
	if err != nil {
		out.err = fmt.Errorf("deliver %s: %w", sc.Id, err)
		return out
	}
	if p != nil {
		out.changes, out.to = p.out, p.to
	}
	return out
}

// deliverySQL reads a store scope's version and purge mark ('s' rows) and its
// members' epochs (one row per member) in the snapshot's first statement.
func deliverySQL(store uuid.UUID) string {
	id := postgres.QuoteLiteral(store.String())
	return `SELECT 's', sync_visible_seq(scope_id, seq), purged_below FROM sync_scopes WHERE scope_id = ` + id + `::uuid
UNION ALL SELECT user_id::text, epoch, 0 FROM store_members WHERE store_id = ` + id + `::uuid`
}

func parseDelivery(rows [][][]byte) (scopeState, map[uuid.UUID]int64, error) {
	var st scopeState
	members := make(map[uuid.UUID]int64, len(rows))
	seen := false
	for _, r := range rows {
		if len(r) != 3 {
			return st, nil, fmt.Errorf("delivery state: %d columns", len(r))
		}
		a, err1 := strconv.ParseInt(string(r[1]), 10, 64)
		b, err2 := strconv.ParseInt(string(r[2]), 10, 64)
		if err1 != nil || err2 != nil {
			return st, nil, fmt.Errorf("delivery state: bad numbers %q %q", r[1], r[2])
		}
		if string(r[0]) == "s" {
			st, seen = scopeState{seq: a, purged: b}, true
			continue
		}
		user, err := uuid.ParseBytes(r[0])
		if err != nil {
			return st, nil, fmt.Errorf("delivery state: %w", err)
		}
		members[user] = a
	}
	if !seen {
		return st, nil, fmt.Errorf("delivery state: the scope is missing")
	}
	return st, members, nil
}

type deliveryKey struct {
	scope     uuid.UUID
	from, gen int64
	all, pool bool
	user      uuid.UUID
}

// deliveryCall is one shared delivery read: in flight until done is closed,
// then read-only.
type deliveryCall struct {
	sharedRead
	to      int64                   // the scope's version in the snapshot (the page's end when changes is set)
	changes *leadifyv1.ScopeChanges // nil: no page (a pull's work, or the reader's membership failed)
	members map[uuid.UUID]int64
}

// deliveryShare holds recent delivery reads. A read serves every later
// request for the same key whose poke it covers (its version is at least
// the poke's): the rows up to a version never change.
type deliveryShare struct {
	mu    sync.Mutex
	calls map[deliveryKey]*deliveryCall
	reads atomic.Int64
}

// DeliveryReads counts the delivery reads this server did itself.
func (s *Service) DeliveryReads() int64 { return s.deliveries.reads.Load() }

func (d *deliveryShare) get(ctx context.Context, k deliveryKey, version int64, read func() *deliveryCall) (*deliveryCall, error) {
	for range 3 {
		d.mu.Lock()
		if d.calls == nil {
			d.calls = map[deliveryKey]*deliveryCall{}
		}
		now := time.Now()
		c := d.calls[k]
		if c != nil {
			select {
			case <-c.done:
				if c.err != nil || c.to < version || now.Sub(c.at) >= shareFor {
					c = nil // stale or short: read again
				}
			default:
			}
		}
		if c == nil {
			sweep(d.calls, now)
			c = &deliveryCall{sharedRead: newSharedRead(now)}
			d.calls[k] = c
			d.mu.Unlock()
			d.reads.Add(1)
			got := read()
			c.to, c.changes, c.members, c.err = got.to, got.changes, got.members, got.err
			close(c.done)
			return c, c.err
		}
		d.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if c.err == nil && c.to >= version {
			return c, nil
		}
		// A read begun before this poke's commit: read again.
	}
	return nil, fmt.Errorf("deliver: no read of version %d", version)
}

// Follower is a delivering stream's idea of where one replica stands, per
// store scope: the cursors the stream opened with, then the end of what it
// sent. It errs low, never high, unless a message is lost on the way — and
// then the replica finds the next delivery starting above its cursor and
// pulls. Not safe for concurrent use (one per stream).
type Follower struct {
	svc *Service
	at  map[uuid.UUID]*leadifyv1.Cursor
}

// NewFollower starts following a replica from its cursors.
func (s *Service) NewFollower(cursors []*leadifyv1.Cursor) *Follower {
	f := &Follower{svc: s, at: map[uuid.UUID]*leadifyv1.Cursor{}}
	for _, c := range cursors {
		if id, err := uuid.Parse(c.GetScopeId()); err == nil {
			f.at[id] = c
		}
	}
	return f
}

// Message is what the stream sends the actor (authenticated under auth
// generation authGen) for a poke of scope up to version: the changes, a
// poke, or nil when the replica already has them.
func (f *Follower) Message(ctx context.Context, a *auth.Actor, authGen int64, scope uuid.UUID, version int64) (*leadifyv1.SubscribeResponse, error) {
	poke := &leadifyv1.SubscribeResponse{ScopeId: scope.String(), Version: version}
	sc, ok := storeScope(a, scope)
	if !ok {
		delete(f.at, scope) // not a store the actor follows (now)
		return poke, nil
	}
	got, err := f.svc.deliver(ctx, a, scope, sc, authGen, f.at[scope], version)
	if err != nil {
		return poke, err
	}
	if got.current {
		return nil, nil
	}
	// After a delivery the replica stands at its end; after a poke it pulls
	// at least as far as the version read.
	f.at[scope] = &leadifyv1.Cursor{ScopeId: poke.ScopeId, Version: got.to, Epoch: sc.Epoch}
	if got.changes == nil {
		return poke, nil
	}
	return &leadifyv1.SubscribeResponse{ScopeId: poke.ScopeId, Version: got.to,
		Delivered: &leadifyv1.DeliveredChanges{From: got.from, Changes: got.changes}}, nil
}
