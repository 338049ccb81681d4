package syncer

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaVersion is the sync schema this server speaks; it also accepts
// clients one version behind.
const SchemaVersion = 1

// Service is the server side of sync.
type Service struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// NewService returns a Service. now is the server clock (time.Now outside
// simulations).
func NewService(pool *pgxpool.Pool, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{pool: pool, now: now}
}
