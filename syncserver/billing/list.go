package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// ErrBadPageToken: a page token ListEntries did not write.
var ErrBadPageToken = errors.New("bad page token")

// ledgerColumns is the select list of both of ListEntries' pages.
const ledgerColumns = `id, rule_id, parcel_id, coalesce(agent_id, '00000000-0000-0000-0000-000000000000'),
  coalesce(reverses, '00000000-0000-0000-0000-000000000000'), kind, beneficiary, status, rule_name, calculation, base, amount, occurred_at`

// ListEntries pages the store's ledger after the page token (empty for the
// first page) and returns the next page's token (empty after the last).
// The whole ledger is paged by parcel, rule and kind (its unique key, which
// never changes); agent, when not uuid.Nil, restricts it to that agent's own
// entries, paged by id through the agents' index.
func ListEntries(ctx context.Context, tx pgx.Tx, store, agent uuid.UUID, token string, limit int) ([]LedgerEntry, string, error) {
	var rows pgx.Rows
	var err error
	if agent != uuid.Nil {
		after := uuid.Nil
		if token != "" {
			if after, err = uuid.Parse(token); err != nil {
				return nil, "", fmt.Errorf("%w: %q", ErrBadPageToken, token)
			}
		}
		rows, err = tx.Query(ctx, `SELECT `+ledgerColumns+` FROM commission_entries
WHERE store_id = $1 AND agent_id = $2 AND id > $3 ORDER BY id LIMIT $4`, store, agent, after, limit)
	} else {
		var parcel, rule uuid.UUID
		var kind string
		if token != "" {
			var ok bool
			if parcel, rule, kind, ok = parseLedgerToken(token); !ok {
				return nil, "", fmt.Errorf("%w: %q", ErrBadPageToken, token)
			}
		}
		rows, err = tx.Query(ctx, `SELECT `+ledgerColumns+` FROM commission_entries
WHERE store_id = $1 AND (parcel_id, rule_id, kind) > ($2, $3, $4) ORDER BY parcel_id, rule_id, kind LIMIT $5`,
			store, parcel, rule, kind, limit)
	}
	if err != nil {
		return nil, "", fmt.Errorf("list entries: %w", err)
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
		return nil, "", fmt.Errorf("list entries: %w", err)
	}
	if len(out) < limit {
		return out, "", nil
	}
	last := out[len(out)-1]
	if agent != uuid.Nil {
		return out, last.ID.String(), nil
	}
	return out, ledgerToken(last), nil
}

// ledgerToken is the page token after e in the whole ledger's order:
// parseLedgerToken reads it back.
func ledgerToken(e LedgerEntry) string {
	return e.ParcelID.String() + "/" + e.RuleID.String() + "/" + e.Kind
}

func parseLedgerToken(token string) (parcel, rule uuid.UUID, kind string, ok bool) {
	ps, rest, ok1 := strings.Cut(token, "/")
	rs, kind, ok2 := strings.Cut(rest, "/")
	p, err1 := uuid.Parse(ps)
	r, err2 := uuid.Parse(rs)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || kind == "" {
		return uuid.Nil, uuid.Nil, "", false
	}
	return p, r, kind, true
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
