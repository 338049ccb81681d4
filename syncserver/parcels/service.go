// Package parcels turns confirmed leads into parcels at carriers and keeps
// their statuses current: creation jobs that record every call before making
// it and reconcile after a crash, the carrier webhook endpoint (a durable
// inbox with group commit, processed by idempotent jobs), fallback polling,
// and the domain events of delivered, refused, returned and cancelled
// parcels. Parcels and their timelines are synced rows, written through the
// syncer's versioned-write helper.
package parcels

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/carrier"
	"github.com/leadify/leadify/syncserver/carrier/ameex"
	"github.com/leadify/leadify/syncserver/carrier/coliix"
	"github.com/leadify/leadify/syncserver/carrier/sendit"
	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/internal/turn"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
)

// Service is the parcels capability of one server instance.
type Service struct {
	Pool    *pgxpool.Pool
	Events  *events.Bus
	Secrets *secrets.Keyring
	Log     *slog.Logger
	// River returns the job client (it exists only after workers are
	// registered, hence a function).
	River func() *river.Client[pgx.Tx]
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTPTimeout bounds each carrier call; zero means 30 s.
	HTTPTimeout time.Duration

	Inbox *Inbox

	mu      sync.Mutex
	clients map[uuid.UUID]cachedClient
	slots   map[uuid.UUID]chan struct{}
	// callSlots holds the cluster-wide slots (made by New).
	callSlots *callSlots
	writes    storeWrites // group commit of creation records, per store
	// processing holds the stores whose webhooks a job of this instance is
	// processing (one at a time per store).
	processing turn.Turns
	// hookConns are webhook processing's own connections: the domain-event
	// consumers queued on a store's write lock cannot starve it.
	hookConns *postgres.SidePool
}

type cachedClient struct {
	updated time.Time
	c       carrier.Carrier
}

// New returns a Service; call Start to run its webhook batcher.
func New(pool *pgxpool.Pool, bus *events.Bus, keyring *secrets.Keyring, log *slog.Logger, rc func() *river.Client[pgx.Tx]) *Service {
	s := &Service{Pool: pool, Events: bus, Secrets: keyring, Log: log, River: rc,
		clients: map[uuid.UUID]cachedClient{}, slots: map[uuid.UUID]chan struct{}{}}
	s.processing.Lease = processLease
	// Every side pool is made here, not on first use, so that Close has
	// them all to close; each connects nothing until used.
	s.hookConns = postgres.NewSidePool(pool, processConns)
	s.callSlots = newCallSlots(pool)
	s.Inbox = NewInbox(pool, s.enqueueProcessing, DefaultInboxWindow)
	return s
}

// Close stops the webhook inbox's batchers and closes the service's own
// connections: webhook processing's, the inbox's and the call slots'. Call
// it once the work that uses them has stopped — the HTTP server drained
// (webhooks) and River stopped (jobs): it waits for connections in use to
// be given back. Closing it again does nothing.
func (s *Service) Close() {
	s.Inbox.Close()
	s.callSlots.close()
	s.hookConns.Close()
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Credentials are what a carrier account's sealed credentials hold: the
// API's base URL (or Coliix endpoint) and the carrier's secrets.
type Credentials struct {
	BaseURL   string `json:"base_url"`
	Token     string `json:"token,omitempty"`      // Coliix
	APIID     string `json:"api_id,omitempty"`     // Ameex
	APIKey    string `json:"api_key,omitempty"`    // Ameex
	Business  string `json:"business,omitempty"`   // Ameex sender id
	PublicKey string `json:"public_key,omitempty"` // Sendit
	SecretKey string `json:"secret_key,omitempty"` // Sendit
}

// Dial returns a carrier client for the named carrier and credentials. It
// fails for an unknown carrier or incomplete credentials.
func Dial(name string, cr Credentials, timeout time.Duration) (carrier.Carrier, error) {
	hc := carrierHTTPClient(timeout)
	switch name {
	case coliix.Name:
		return coliix.New(coliix.Config{Endpoint: cr.BaseURL, Token: cr.Token, HTTP: hc})
	case ameex.Name:
		return ameex.New(ameex.Config{BaseURL: cr.BaseURL, APIID: cr.APIID, APIKey: cr.APIKey, Business: cr.Business, HTTP: hc})
	case sendit.Name:
		return sendit.New(sendit.Config{BaseURL: cr.BaseURL, PublicKey: cr.PublicKey, SecretKey: cr.SecretKey, HTTP: hc})
	}
	return nil, fmt.Errorf("unknown carrier %q", name)
}

// Account is a carrier account row, credentials still sealed.
type Account struct {
	ID          uuid.UUID
	StoreID     uuid.UUID
	Carrier     string
	Sealed      string
	Concurrency int
	UpdatedAt   time.Time
}

// LoadAccount reads a carrier account visible in tx's scope. It returns
// postgres.ErrNotFound for an account that does not exist, is deleted or
// belongs to a store outside the scope.
func LoadAccount(ctx context.Context, tx *postgres.Tx, id uuid.UUID) (Account, error) {
	var a Account
	err := tx.QueryRow(ctx, `SELECT id, store_id, carrier, credentials, concurrency, updated_at FROM carrier_accounts
WHERE id = $1 AND deleted_at IS NULL`, id).Scan(&a.ID, &a.StoreID, &a.Carrier, &a.Sealed, &a.Concurrency, &a.UpdatedAt)
	if err != nil {
		return Account{}, fmt.Errorf("carrier account %v: %w", id, postgres.Translate(err))
	}
	return a, nil
}

// Client returns the carrier client of an account, cached until the
// account's row changes. It fails when the credentials cannot be opened.
func (s *Service) Client(a Account) (carrier.Carrier, error) {
	s.mu.Lock()
	cc, ok := s.clients[a.ID]
	s.mu.Unlock()
	if ok && cc.updated.Equal(a.UpdatedAt) {
		return cc.c, nil
	}
	plain, err := s.Secrets.Open(a.Sealed, postgres.CarrierCredentialsAD(a.ID))
	if err != nil {
		return nil, fmt.Errorf("open credentials of account %v: %w", a.ID, err)
	}
	var cr Credentials
	if err := json.Unmarshal(plain, &cr); err != nil {
		return nil, fmt.Errorf("credentials of account %v: %w", a.ID, err)
	}
	timeout := s.HTTPTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	c, err := Dial(a.Carrier, cr, timeout)
	if err != nil {
		return nil, fmt.Errorf("account %v: %w", a.ID, err)
	}
	s.mu.Lock()
	s.clients[a.ID] = cachedClient{a.UpdatedAt, c}
	s.mu.Unlock()
	return c, nil
}

// acquire takes one of the account's call slots (its concurrency), waiting
// while all are busy, across every server instance: a slot is first taken
// in this process (so waiters here do not poll Postgres), then as a
// Postgres session advisory lock (see callSlots), which makes the limit
// hold cluster-wide. Call the returned function to release it.
func (s *Service) acquire(ctx context.Context, a Account) (func(), error) {
	n := max(a.Concurrency, 1)
	s.mu.Lock()
	slot, ok := s.slots[a.ID]
	if !ok || cap(slot) != n {
		slot = make(chan struct{}, n)
		s.slots[a.ID] = slot
	}
	s.mu.Unlock()
	select {
	case slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release, err := s.callSlots.acquire(ctx, a.ID, n)
	if err != nil {
		<-slot
		return nil, err
	}
	return func() { release(); <-slot }, nil
}
