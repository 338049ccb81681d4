package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/commission"
)

// Entry statuses in the ledger.
const (
	StatusPending  = "pending"  // confirmed, parcel not yet delivered
	StatusEarned   = "earned"   // due
	StatusPaid     = "paid"     // paid out or invoiced
	StatusReversed = "reversed" // cancelled by a reversal entry (both carry it)
)

// versioner hands out versions of a sync scope; *syncer.Writer is one.
type versioner interface {
	Reserve(scope uuid.UUID, n int) (int64, error)
}

// entryRow is a ledger row to write. Reversal rows carry only their key: the
// amounts are copied from the entry they reverse, so that a reversal cancels
// exactly what was written, whatever the rules say today.
type entryRow struct {
	RuleID     uuid.UUID
	ParcelID   uuid.UUID
	Kind       commission.EntryKind
	Agent      uuid.UUID
	Status     string
	Entry      commission.Entry
	OccurredAt time.Time
}

var entryColumns = []string{"store_id", "id", "version", "rule_id", "parcel_id", "kind", "beneficiary", "agent_id",
	"status", "base", "amount", "rule_name", "calculation", "occurred_at"}

const stageDDL = `CREATE TEMP TABLE IF NOT EXISTS commission_entries_in (LIKE commission_entries INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`

// writeEntries appends rows to the store's ledger inside tx and returns how
// many entries were new. Rows whose (rule, parcel, kind) is already in the
// ledger are skipped, so writing the same rows twice changes nothing; a
// reversal of an entry that does not exist is dropped. Earn entries that get
// reversed here move to status reversed (a paid one stays paid and its
// reversal is earned: a clawback on the next payout). Versions come from v.
func writeEntries(ctx context.Context, tx pgx.Tx, v versioner, store uuid.UUID, rows []entryRow) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	// COPY cannot write a table under row-level security: copy into a
	// transaction-local table, then insert from it (RLS checks every row).
	if _, err := tx.Exec(ctx, stageDDL); err != nil {
		return 0, fmt.Errorf("staging table: %w", err)
	}
	// Duplicates within the batch (a parcel reported twice) are dropped here.
	type key struct {
		rule, parcel uuid.UUID
		kind         commission.EntryKind
	}
	seen := make(map[key]bool, len(rows))
	src := make([][]any, 0, len(rows))
	var earns, reversals int
	for _, r := range rows {
		k := key{r.RuleID, r.ParcelID, r.Kind}
		if seen[k] {
			continue
		}
		seen[k] = true
		if r.Kind == commission.KindReversal {
			reversals++
		} else {
			earns++
		}
		var agent *uuid.UUID
		if r.Agent != uuid.Nil {
			agent = &r.Agent
		}
		src = append(src, []any{store, uuid.Must(uuid.NewV7()), int64(0), r.RuleID, r.ParcelID, string(r.Kind), string(r.Entry.Beneficiary),
			agent, r.Status, int64(r.Entry.Base), int64(r.Entry.Amount), r.Entry.RuleName, r.Entry.Calculation, r.OccurredAt})
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"commission_entries_in"}, entryColumns, pgx.CopyFromRows(src)); err != nil {
		return 0, fmt.Errorf("copy entries: %w", err)
	}
	n, err := insertStaged(ctx, tx, v, store, earns, reversals)
	if _, terr := tx.Exec(ctx, `TRUNCATE commission_entries_in`); err == nil && terr != nil {
		err = terr
	}
	return n, err
}

// insertStaged moves the staged rows (earns and reversals of them) into the
// ledger.
func insertStaged(ctx context.Context, tx pgx.Tx, v versioner, store uuid.UUID, earns, reversals int) (int, error) {
	// Fresh statistics, so the planner probes the ledger's unique index
	// rather than scanning a ledger of millions for a few thousand keys.
	if _, err := tx.Exec(ctx, `ANALYZE commission_entries_in`); err != nil {
		return 0, fmt.Errorf("analyze staging: %w", err)
	}
	// Drop keys already in the ledger.
	tag, err := tx.Exec(ctx, `DELETE FROM commission_entries_in s USING commission_entries e
WHERE e.store_id = s.store_id AND e.rule_id = s.rule_id AND e.parcel_id = s.parcel_id AND e.kind = s.kind`)
	if err != nil {
		return 0, fmt.Errorf("skip known entries: %w", err)
	}
	if tag.RowsAffected() > 0 {
		// Recount: which kinds were dropped is not known from the tag alone.
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 'earn'), count(*) FILTER (WHERE kind = 'reversal')
FROM commission_entries_in`).Scan(&earns, &reversals); err != nil {
			return 0, fmt.Errorf("count staged entries: %w", err)
		}
	}
	earned, err := insertKind(ctx, tx, v, store, commission.KindEarn, earns)
	if err != nil || reversals == 0 {
		return earned, err
	}
	// Reversals copy what they reverse, now that the batch's earns are in.
	if _, err := tx.Exec(ctx, `UPDATE commission_entries_in s SET reverses = e.id, beneficiary = e.beneficiary,
  agent_id = e.agent_id, base = e.base, amount = -e.amount, rule_name = e.rule_name,
  calculation = 'annulation : ' || e.calculation,
  status = CASE e.status WHEN 'paid' THEN 'earned' ELSE 'reversed' END
FROM commission_entries e
WHERE s.kind = 'reversal' AND e.store_id = s.store_id AND e.rule_id = s.rule_id AND e.parcel_id = s.parcel_id AND e.kind = 'earn'`); err != nil {
		return 0, fmt.Errorf("resolve reversals: %w", err)
	}
	tag, err = tx.Exec(ctx, `DELETE FROM commission_entries_in WHERE kind = 'reversal' AND reverses IS NULL`)
	if err != nil {
		return 0, fmt.Errorf("drop reversals of nothing: %w", err)
	}
	reversed, err := insertKind(ctx, tx, v, store, commission.KindReversal, reversals-int(tag.RowsAffected()))
	if err != nil {
		return 0, err
	}
	if reversed > 0 {
		if err := markReversed(ctx, tx, v, store); err != nil {
			return 0, err
		}
	}
	return earned + reversed, nil
}

// insertKind moves the n staged rows of one kind into the ledger with fresh
// versions and returns n.
func insertKind(ctx context.Context, tx pgx.Tx, v versioner, store uuid.UUID, kind commission.EntryKind, n int) (int, error) {
	if n == 0 {
		return 0, nil
	}
	first, err := v.Reserve(store, n)
	if err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO commission_entries (store_id, id, version, rule_id, parcel_id, kind, beneficiary,
  agent_id, status, base, amount, rule_name, calculation, reverses, occurred_at)
SELECT store_id, id, $2 + row_number() OVER (ORDER BY occurred_at, parcel_id, rule_id) - 1, rule_id, parcel_id, kind,
  beneficiary, agent_id, status, base, amount, rule_name, calculation, reverses, occurred_at
FROM commission_entries_in WHERE kind = $1`, string(kind), first)
	if err != nil {
		return 0, fmt.Errorf("insert %s entries: %w", kind, err)
	}
	return n, nil
}

// markReversed moves the earn entries reversed by this batch to status
// reversed, unless they were already paid.
func markReversed(ctx context.Context, tx pgx.Tx, v versioner, store uuid.UUID) error {
	return restatus(ctx, tx, v, store, StatusReversed, `SELECT e.id FROM commission_entries e
JOIN commission_entries_in s ON s.store_id = e.store_id AND s.reverses = e.id
WHERE e.status IN ('pending', 'earned')`)
}

// restatus sets status on the entries whose ids the query returns, each with
// a new version. The query must select from commission_entries only ids of
// store.
func restatus(ctx context.Context, tx pgx.Tx, v versioner, store uuid.UUID, status, idQuery string, args ...any) error {
	rows, err := tx.Query(ctx, idQuery, args...)
	if err != nil {
		return fmt.Errorf("select entries to mark %s: %w", status, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("select entries to mark %s: %w", status, err)
	}
	if len(ids) == 0 {
		return nil
	}
	first, err := v.Reserve(store, len(ids))
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE commission_entries e SET status = $3, version = $4 + u.ord - 1, updated_at = now()
FROM unnest($2::uuid[]) WITH ORDINALITY AS u(id, ord)
WHERE e.store_id = $1 AND e.id = u.id`, store, ids, status, first)
	if err != nil {
		return fmt.Errorf("mark entries %s: %w", status, err)
	}
	return nil
}
