package remit

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/postgres"
)

// Sources of a remittance.
const (
	SourceManual = "manual"
	SourceCSV    = "csv"
	SourceXLSX   = "xlsx"
)

// Remittance is one statement of what a carrier account paid out.
type Remittance struct {
	ID, Account uuid.UUID
	Carrier     string
	Reference   string
	PaidAt      time.Time
	Source      string
	Declared    *money.Amount // the statement's own total, if it had one
	LineCount   int
	Total       money.Amount // the sum of the lines' nets
	CreatedAt   time.Time
}

// Save records a statement as a remittance of the account, paid on paidAt
// (a day). It is idempotent: a statement with the same lines as one already
// saved for the account — whatever its reference or file format — returns
// that remittance with already = true and changes nothing. A reference
// already used for other lines fails with ErrConflict. An empty reference
// becomes one derived from the lines.
func Save(ctx context.Context, tx pgx.Tx, store, actor, account uuid.UUID, ref string, paidAt time.Time, source string,
	st *Statement) (rem Remittance, already bool, err error) {
	carrier, err := accountOf(ctx, tx, store, account)
	if err != nil {
		return rem, false, err
	}
	if paidAt.IsZero() {
		return rem, false, invalidf("paid_at is required")
	}
	if source == SourceManual {
		if err := st.Validate(); err != nil {
			return rem, false, err
		}
	}
	total, err := st.Total()
	if err != nil {
		return rem, false, err
	}
	digest := st.Digest()
	ref = strings.TrimSpace(ref)
	if ref == "" {
		ref = "REL-" + strings.ToUpper(hex.EncodeToString(digest[:5]))
	}
	if len(ref) > 100 {
		return rem, false, invalidf("reference longer than 100 characters")
	}
	// One import per account at a time: the digest and reference checks
	// below and the insert are then atomic.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('remittances:' || $1::text, 0))`, account); err != nil {
		return rem, false, fmt.Errorf("lock remittances: %w", err)
	}
	var existing uuid.UUID
	err = tx.QueryRow(ctx, `SELECT id FROM remittances WHERE store_id = $1 AND account_id = $2 AND digest = $3`,
		store, account, digest[:]).Scan(&existing)
	switch {
	case err == nil:
		rem, err := Get(ctx, tx, store, existing)
		return rem, true, err
	case !errors.Is(err, pgx.ErrNoRows):
		return rem, false, fmt.Errorf("find statement: %w", err)
	}
	err = tx.QueryRow(ctx, `SELECT id FROM remittances WHERE store_id = $1 AND account_id = $2 AND reference = $3`,
		store, account, ref).Scan(&existing)
	switch {
	case err == nil:
		return rem, false, fmt.Errorf("%w: statement %q was already imported with other lines (remittance %v)", ErrConflict, ref, existing)
	case !errors.Is(err, pgx.ErrNoRows):
		return rem, false, fmt.Errorf("find statement: %w", err)
	}
	rem = Remittance{ID: uuid.Must(uuid.NewV7()), Account: account, Carrier: carrier, Reference: ref,
		PaidAt: time.Date(paidAt.Year(), paidAt.Month(), paidAt.Day(), 0, 0, 0, 0, time.UTC), Source: source,
		Declared: st.Declared, LineCount: len(st.Lines), Total: total}
	var declared *int64
	if st.Declared != nil {
		d := int64(*st.Declared)
		declared = &d
	}
	var actorID *uuid.UUID
	if actor != uuid.Nil {
		actorID = &actor
	}
	if err := tx.QueryRow(ctx, `INSERT INTO remittances (store_id, id, account_id, reference, paid_at, source, digest, declared_total,
  line_count, lines_total, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING created_at`,
		store, rem.ID, account, ref, rem.PaidAt, source, digest[:], declared, rem.LineCount, int64(total), actorID).Scan(&rem.CreatedAt); err != nil {
		return rem, false, fmt.Errorf("save remittance: %w", postgres.Translate(err))
	}
	// COPY cannot write a table under row-level security: insert in chunks
	// of unnested arrays instead.
	const chunk = 5000
	for start := 0; start < len(st.Lines); start += chunk {
		lines := st.Lines[start:min(start+chunk, len(st.Lines))]
		n := len(lines)
		nos, trackings, outcomes := make([]int32, n), make([]string, n), make([]string, n)
		cods, fees, nets := make([]int64, n), make([]int64, n), make([]int64, n)
		dfs, rfs, cfs := make([]*int64, n), make([]*int64, n), make([]*int64, n)
		for i, l := range lines {
			nos[i], trackings[i], outcomes[i] = int32(l.No), l.Tracking, string(l.Outcome)
			cods[i], fees[i], nets[i] = int64(l.COD), int64(l.Fees), int64(l.Net)
			if l.Itemised {
				d, r, c := int64(l.DeliveryFee), int64(l.ReturnFee), int64(l.CODFee)
				dfs[i], rfs[i], cfs[i] = &d, &r, &c
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO remittance_lines (store_id, remittance_id, line_no, tracking, outcome, cod,
  delivery_fee, return_fee, cod_fee, fees, net)
SELECT $1, $2, u.no, u.tracking, u.outcome, u.cod, u.df, u.rf, u.cf, u.fees, u.net
FROM unnest($3::int[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])
  AS u(no, tracking, outcome, cod, df, rf, cf, fees, net)`,
			store, rem.ID, nos, trackings, outcomes, cods, dfs, rfs, cfs, fees, nets); err != nil {
			return rem, false, fmt.Errorf("save remittance lines: %w", postgres.Translate(err))
		}
	}
	return rem, false, nil
}

const remittanceColumns = `r.id, r.account_id, a.carrier, r.reference, r.paid_at, r.source, r.declared_total, r.line_count,
  r.lines_total, r.created_at`

func scanRemittance(row pgx.CollectableRow) (Remittance, error) {
	var r Remittance
	var declared *int64
	var total int64
	err := row.Scan(&r.ID, &r.Account, &r.Carrier, &r.Reference, &r.PaidAt, &r.Source, &declared, &r.LineCount, &total, &r.CreatedAt)
	r.Total = money.Amount(total)
	r.PaidAt = r.PaidAt.UTC()
	if declared != nil {
		d := money.Amount(*declared)
		r.Declared = &d
	}
	return r, err
}

// Get returns one remittance of the store; postgres.ErrNotFound if none.
func Get(ctx context.Context, tx pgx.Tx, store, id uuid.UUID) (Remittance, error) {
	rows, err := tx.Query(ctx, `SELECT `+remittanceColumns+` FROM remittances r JOIN carrier_accounts a ON a.id = r.account_id
WHERE r.store_id = $1 AND r.id = $2`, store, id)
	if err != nil {
		return Remittance{}, fmt.Errorf("remittance %v: %w", id, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRemittance)
	if err != nil {
		return r, fmt.Errorf("remittance %v: %w", id, postgres.Translate(err))
	}
	return r, nil
}

// List returns the store's remittances, newest payment first.
func List(ctx context.Context, tx pgx.Tx, store uuid.UUID) ([]Remittance, error) {
	rows, err := tx.Query(ctx, `SELECT `+remittanceColumns+` FROM remittances r JOIN carrier_accounts a ON a.id = r.account_id
WHERE r.store_id = $1 ORDER BY r.paid_at DESC, r.created_at DESC, r.id DESC`, store)
	if err != nil {
		return nil, fmt.Errorf("list remittances: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanRemittance)
	if err != nil {
		return nil, fmt.Errorf("list remittances: %w", err)
	}
	return out, nil
}
