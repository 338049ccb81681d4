// Package turn gives one job at a time in a server instance the turn to
// work a store's backlog, and lets the jobs that arrive meanwhile leave their
// work to it instead of waiting in a worker slot.
package turn

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// Turns holds the stores whose turn a job has. The zero value is ready.
type Turns struct {
	// Lease, when set, bounds how long a turn is held: Claim takes over a
	// turn held longer, its holder presumed stuck (a job is given a time
	// limit; a rescued one is run again), so that no job waits for ever on
	// a turn whose holder will not leave it. A holder that was taken over
	// and comes back ends only its own holding (Turn.Next).
	Lease time.Duration

	mu   sync.Mutex
	held map[uuid.UUID]*holding
	// worked are the asks a holder worked, by key, until their jobs come
	// for them (or workedFor has passed).
	worked map[string]time.Time
	pruned time.Time
}

// workedFor is how long a worked ask is remembered for its job.
const workedFor = 10 * time.Minute

// holding is one job's turn of a store.
type holding struct {
	since time.Time
	// again says a later job asked the holder to look for more work
	// before it stops.
	again bool
	asks  map[string][]uuid.UUID // handed to the holder, not yet taken
	taken map[string][]uuid.UUID // taken by the holder, not yet worked
}

// An Ask is work a job that was refused the turn hands to the holder:
// Items, which the holder's own look for work would not find. Key names
// the asking (a job's attempt): the holder says it worked it with
// Turn.Worked, and the job finds that out with Turns.WasWorked.
type Ask struct {
	Key   string
	Items []uuid.UUID
}

// A Turn is one job's holding of a store's turn, given by Claim.
type Turn struct {
	t     *Turns
	store uuid.UUID
	h     *holding
}

// Claim gives the caller the store's turn. When another job holds it, it
// asks that one to look again before it stops, hands it ask (when not nil
// and not already handed, taken or worked) and returns nil, false — unless
// that one has held it longer than Lease: then its turn is taken over,
// with what was handed to it and not worked. An ask already worked is
// refused the turn whoever holds it: its job is done (WasWorked says so).
func (t *Turns) Claim(store uuid.UUID, ask *Ask) (*Turn, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if ask != nil {
		if _, done := t.worked[ask.Key]; done {
			// A holder worked it between the job's WasWorked and this
			// Claim: the job finds that out with WasWorked, instead of
			// working it again with the turn.
			return nil, false
		}
	}
	old := t.held[store]
	if old != nil && (t.Lease <= 0 || now.Sub(old.since) < t.Lease) {
		old.again = true
		if ask != nil && len(ask.Items) > 0 {
			_, taken := old.taken[ask.Key]
			if _, done := t.worked[ask.Key]; !done && !taken {
				if old.asks == nil {
					old.asks = map[string][]uuid.UUID{}
				}
				old.asks[ask.Key] = ask.Items
			}
		}
		return nil, false
	}
	if t.held == nil {
		t.held = map[uuid.UUID]*holding{}
	}
	h := &holding{since: now}
	if old != nil { // taken over: what the stuck holder was handed and did not work is the new one's
		h.again = true
		h.asks = old.asks
		for k, items := range old.taken {
			if _, done := t.worked[k]; !done {
				if h.asks == nil {
					h.asks = map[string][]uuid.UUID{}
				}
				h.asks[k] = items
			}
		}
		if ask != nil {
			delete(h.asks, ask.Key)
		}
	}
	t.held[store] = h
	return &Turn{t: t, store: store, h: h}, true
}

// current says whether u still holds its store's turn (it was not taken
// over or ended).
func (u *Turn) current() bool { return u.t.held[u.store] == u.h }

// Next ends the turn and says true, unless a job asked to look again since
// the last call: then the turn is kept, and Next says false with the asks
// handed meanwhile, which the holder works and then reports with Worked.
// With force the turn ends whatever was asked, and the asks not worked are
// dropped (their jobs come back for them). Once the turn was taken over
// Next just says true.
func (u *Turn) Next(force bool) (ended bool, asks []Ask) {
	t := u.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if !u.current() {
		return true, nil
	}
	if !force && (u.h.again || len(u.h.asks) > 0) {
		return false, u.take()
	}
	delete(t.held, u.store)
	return true, nil
}

// Asked takes the asks handed since the last call, and any request to look
// again, keeping the turn: for a holder that goes on anyway.
func (u *Turn) Asked() []Ask {
	t := u.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if !u.current() {
		return nil
	}
	return u.take()
}

func (u *Turn) take() []Ask {
	h := u.h
	h.again = false
	if len(h.asks) == 0 {
		return nil
	}
	asks := make([]Ask, 0, len(h.asks))
	if h.taken == nil {
		h.taken = map[string][]uuid.UUID{}
	}
	for k, items := range h.asks {
		asks = append(asks, Ask{Key: k, Items: items})
		h.taken[k] = items
	}
	h.asks = nil
	return asks
}

// Worked records that the holder worked the asks of keys, for their jobs
// to find with WasWorked.
func (u *Turn) Worked(keys ...string) {
	if len(keys) == 0 {
		return
	}
	t := u.t
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.worked == nil {
		t.worked = map[string]time.Time{}
	}
	if now.Sub(t.pruned) > workedFor {
		for k, at := range t.worked {
			if now.Sub(at) > workedFor {
				delete(t.worked, k)
			}
		}
		t.pruned = now
	}
	for _, k := range keys {
		t.worked[k] = now
		delete(u.h.taken, k)
	}
}

// WasWorked says whether a holder worked the ask of key, and forgets it.
func (t *Turns) WasWorked(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.worked[key]
	delete(t.worked, key)
	return ok
}
