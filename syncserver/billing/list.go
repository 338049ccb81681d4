package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/postgres"
)

// LedgerEntry is a commission entry as stored.
type LedgerEntry struct {
	ID, RuleID, ParcelID, Agent, Reverses uuid.UUID
	Kind, Beneficiary, Status             string
	RuleName, Calculation                 string
	Base, Amount                          money.Amount
	OccurredAt                            time.Time
}

// ListEntries pages the store's ledger in id order after the given id (uuid.Nil
// for the first page). agent, when not uuid.Nil, restricts the page to that
// agent's own entries.
func ListEntries(ctx context.Context, tx pgx.Tx, store, agent, after uuid.UUID, limit int) ([]LedgerEntry, error) {
	rows, err := tx.Query(ctx, `SELECT id, rule_id, parcel_id, coalesce(agent_id, '00000000-0000-0000-0000-000000000000'),
  coalesce(reverses, '00000000-0000-0000-0000-000000000000'), kind, beneficiary, status, rule_name, calculation, base, amount, occurred_at
FROM commission_entries
WHERE store_id = $1 AND id > $2 AND ($3 = '00000000-0000-0000-0000-000000000000'::uuid OR agent_id = $3)
ORDER BY id LIMIT $4`, store, after, agent, limit)
	if err != nil {
		return nil, fmt.Errorf("list entries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LedgerEntry, error) {
		var e LedgerEntry
		var base, amount int64
		err := r.Scan(&e.ID, &e.RuleID, &e.ParcelID, &e.Agent, &e.Reverses, &e.Kind, &e.Beneficiary, &e.Status,
			&e.RuleName, &e.Calculation, &base, &amount, &e.OccurredAt)
		e.Base, e.Amount = money.Amount(base), money.Amount(amount)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list entries: %w", err)
	}
	return out, nil
}

// List returns the store's invoices, newest period first, without their PDFs.
func (s *Service) List(ctx context.Context, scope postgres.Scope, store uuid.UUID) ([]Record, error) {
	var out []Record
	err := postgres.InSnapshot(ctx, s.Pool, scope, func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT status, body, paid, version FROM invoices WHERE store_id = $1 ORDER BY period_start DESC`, store)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Record, error) {
			var rec Record
			var body []byte
			var paid int64
			if err := r.Scan(&rec.Status, &body, &paid, &rec.Version); err != nil {
				return rec, err
			}
			rec.Paid = money.Amount(paid)
			return rec, json.Unmarshal(body, &rec.Invoice)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list invoices: %w", err)
	}
	return out, nil
}
