package parcels

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/syncserver/postgres"
)

// DeadWebhook is a stored webhook that processing gave up on.
type DeadWebhook struct {
	Store      uuid.UUID
	ID         uuid.UUID
	Account    uuid.UUID
	Carrier    string
	ReceivedAt time.Time
	Attempts   int
	LastError  string
	Body       []byte
	Query      string
}

// ListDead returns up to limit dead webhooks visible in scope, newest first.
func (s *Service) ListDead(ctx context.Context, scope postgres.Scope, limit int) ([]DeadWebhook, error) {
	var out []DeadWebhook
	err := postgres.InTx(ctx, s.Pool, scope, func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT store_id, id, account_id, carrier, received_at, attempts, last_error, body, query
FROM webhook_inbox WHERE status = 'dead' ORDER BY received_at DESC LIMIT $1`, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadWebhook, error) {
			var d DeadWebhook
			return d, r.Scan(&d.Store, &d.ID, &d.Account, &d.Carrier, &d.ReceivedAt, &d.Attempts, &d.LastError, &d.Body, &d.Query)
		})
		return err
	})
	return out, err
}

// Replay puts a dead webhook back to pending and enqueues its processing in
// tx. It returns postgres.ErrNotFound if tx's scope sees no dead webhook
// with this id in store.
func (s *Service) Replay(ctx context.Context, tx *postgres.Tx, store, id uuid.UUID) error {
	tag, err := tx.Exec(ctx, `UPDATE webhook_inbox SET status = 'pending', attempts = 0, last_error = '', processed_at = NULL
WHERE store_id = $1 AND id = $2 AND status = 'dead'`, store, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("dead webhook %v: %w", id, postgres.ErrNotFound)
	}
	return s.enqueueProcessing(ctx, tx, []StoredDelivery{{Store: store, ID: id}})
}
