package syncer

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/syncserver/events"
)

// SchemaVersion is the sync schema this server speaks; it also accepts
// clients one version behind.
const SchemaVersion = 1

// Bugs plants known bugs in the sync server, for the simulation to prove it
// catches them. All false in production.
type Bugs struct {
	// ApplyRepeats applies a repeated mutation again instead of answering it
	// from the record.
	ApplyRepeats bool
	// SkipVisibilityDelete does not send a delete when a row leaves a user's view.
	SkipVisibilityDelete bool
}

// Service is the server side of sync.
type Service struct {
	pool   *pgxpool.Pool
	events *events.Bus
	now    func() time.Time
	bugs   Bugs
	share  pullShare
	// deliveries are the shared reads of Subscribe streams' deliveries.
	deliveries deliveryShare
}

// clock is the wall clock for the pull share's expiry: shared reads are keyed by
// versions, so the simulation's clock has no say in them.
func (s *Service) clock() time.Time { return time.Now() }

// NewService returns a Service. now is the server clock (time.Now outside
// simulations).
// Lead status changes other capabilities react to are published on bus.
func NewService(pool *pgxpool.Pool, bus *events.Bus, now func() time.Time, bugs Bugs) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{pool: pool, events: bus, now: now, bugs: bugs}
}
