package syncer

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Hub fans commit notifications out to subscribed clients. Every server
// instance runs one: it LISTENs on NotifyChannel with a dedicated connection,
// so a commit on any instance pokes subscribers on all of them.
type Hub struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	mu   sync.Mutex
	subs map[uuid.UUID]map[*Subscription]struct{}
	// authGen counts AuthChannel signals (and listener reconnects, after
	// which signals may have been missed): a stream whose actor was read
	// under an older generation authenticates again before delivering.
	authGen atomic.Int64
}

// AuthChannel is signalled (migration 00015) when a session is revoked, a
// user disabled, a membership or a store changed: actors may be stale.
const AuthChannel = "leadify_auth"

// AuthGeneration is the number of auth signals seen so far.
func (h *Hub) AuthGeneration() int64 { return h.authGen.Load() }

// NewHub returns a hub; Run starts it.
func NewHub(pool *pgxpool.Pool, log *slog.Logger) *Hub {
	return &Hub{pool: pool, log: log, subs: map[uuid.UUID]map[*Subscription]struct{}{}}
}

// Subscription receives pokes for a set of scopes. Pokes coalesce: C signals
// that something changed and Take returns the newest version per scope.
type Subscription struct {
	C       chan struct{}
	hub     *Hub
	scopes  []uuid.UUID
	mu      sync.Mutex
	pending map[uuid.UUID]int64
}

// Subscribe follows the scopes until Close.
func (h *Hub) Subscribe(scopes []uuid.UUID) *Subscription {
	s := &Subscription{C: make(chan struct{}, 1), hub: h, scopes: scopes, pending: map[uuid.UUID]int64{}}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, sc := range scopes {
		if h.subs[sc] == nil {
			h.subs[sc] = map[*Subscription]struct{}{}
		}
		h.subs[sc][s] = struct{}{}
	}
	return s
}

// Close stops the subscription.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, sc := range s.scopes {
		delete(h.subs[sc], s)
		if len(h.subs[sc]) == 0 {
			delete(h.subs, sc)
		}
	}
}

// Take returns and clears the pending pokes.
func (s *Subscription) Take() map[uuid.UUID]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.pending
	s.pending = map[uuid.UUID]int64{}
	return out
}

func (h *Hub) poke(scope uuid.UUID, version int64) {
	h.mu.Lock()
	subs := make([]*Subscription, 0, len(h.subs[scope]))
	for s := range h.subs[scope] {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		if s.pending[scope] < version {
			s.pending[scope] = version
		}
		s.mu.Unlock()
		select {
		case s.C <- struct{}{}:
		default: // already signalled: coalesced
		}
	}
}

// Run listens until ctx ends, reconnecting after failures. Subscribers are
// poked on every reconnect too, since notifications may have been missed.
func (h *Hub) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := h.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("sync notifications: listener lost, reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (h *Hub) listen(ctx context.Context) error {
	conn, err := h.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel+"; LISTEN "+AuthChannel); err != nil {
		return err
	}
	defer func() { _, _ = conn.Exec(context.Background(), "UNLISTEN *") }()
	h.authGen.Add(1)
	h.pokeAll()
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Channel == AuthChannel {
			// Counted before any later poke is handed out: a stream woken by
			// a change committed after this signal sees the new generation.
			h.authGen.Add(1)
			continue
		}
		scope, v, ok := strings.Cut(n.Payload, ":")
		id, err1 := uuid.Parse(scope)
		version, err2 := strconv.ParseInt(v, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		h.poke(id, version)
	}
}

func (h *Hub) pokeAll() {
	h.mu.Lock()
	scopes := make([]uuid.UUID, 0, len(h.subs))
	for sc := range h.subs {
		scopes = append(scopes, sc)
	}
	h.mu.Unlock()
	for _, sc := range scopes {
		h.poke(sc, 0)
	}
}
