package billing

import (
	"bytes"
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
	Lock(scopes ...uuid.UUID) error
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

// The staging table: a transaction-local copy of the ledger's shape plus the
// rows' order in the batch. COPY cannot write a table under row-level
// security, so rows are copied here (no WAL, no index, no trigger) and moved
// into the ledger with one INSERT … SELECT per kind, which RLS checks.
const (
	stageDDL = `CREATE TEMP TABLE IF NOT EXISTS commission_entries_staged
  (LIKE commission_entries INCLUDING DEFAULTS, ord integer NOT NULL) ON COMMIT DELETE ROWS`
	stageCopy = `COPY commission_entries_staged (store_id, id, version, rule_id, parcel_id, kind, beneficiary, agent_id,
  status, base, amount, rule_name, calculation, occurred_at, ord) FROM STDIN (FORMAT binary)`
	stageFields = 15
)

// writeEntries appends rows to the store's ledger inside tx and returns how
// many entries were new. Rows whose (parcel, rule, kind) is already in the
// ledger are skipped, so writing the same rows twice changes nothing; a
// reversal of an entry that does not exist is dropped. Earn entries that get
// reversed here move to status reversed (a paid one stays paid and its
// reversal is earned: a clawback on the next payout). Versions come from v.
func writeEntries(ctx context.Context, tx pgx.Tx, v versioner, store uuid.UUID, rows []entryRow) (int, error) {
	earns, reversals, err := stage(ctx, tx, store, rows, nil)
	if err != nil || earns+reversals == 0 {
		return 0, err
	}
	return insertStaged(ctx, tx, v, store, earns, reversals)
}

// stage copies rows (without duplicates within the batch: a parcel reported
// twice) into the staging table with one binary COPY and counts them by kind.
// It takes no lock: concurrent chunks of a run stage in parallel. enc is
// reused when not nil.
func stage(ctx context.Context, tx pgx.Tx, store uuid.UUID, rows []entryRow, enc *copyEncoder) (earns, reversals int, err error) {
	if len(rows) == 0 {
		return 0, 0, nil
	}
	if _, err := tx.Exec(ctx, stageDDL); err != nil {
		return 0, 0, fmt.Errorf("staging table: %w", err)
	}
	type key struct {
		rule, parcel uuid.UUID
		kind         commission.EntryKind
	}
	seen := make(map[key]struct{}, len(rows))
	if enc == nil {
		enc = &copyEncoder{}
	}
	enc.buf = enc.buf[:0]
	enc.header()
	for i := range rows {
		r := &rows[i]
		k := key{r.RuleID, r.ParcelID, r.Kind}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		// ord numbers each kind's rows densely from 0: versions are the
		// reserved range's first plus ord when nothing was skipped.
		ord := earns
		if r.Kind == commission.KindReversal {
			ord = reversals
			reversals++
		} else {
			earns++
		}
		id, err := uuid.NewV7()
		if err != nil {
			return 0, 0, err
		}
		agent := uuid.Nil
		if r.Kind == commission.KindEarn {
			agent = r.Agent
		}
		enc.tuple(stageFields)
		enc.uuid(store)
		enc.uuid(id)
		enc.int8(0)
		enc.uuid(r.RuleID)
		enc.uuid(r.ParcelID)
		enc.text(string(r.Kind))
		enc.text(beneficiaryOf(r))
		enc.nullUUID(agent)
		enc.text(statusOf(r))
		enc.int8(int64(r.Entry.Base))
		enc.int8(int64(r.Entry.Amount))
		enc.text(r.Entry.RuleName)
		enc.text(r.Entry.Calculation)
		enc.timestamptz(r.OccurredAt)
		enc.int4(int32(ord))
	}
	enc.trailer()
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(enc.buf), stageCopy); err != nil {
		return 0, 0, fmt.Errorf("copy entries: %w", err)
	}
	return earns, reversals, nil
}

// beneficiaryOf and statusOf fill the staged columns a reversal only gets
// from the entry it reverses (placeholders that pass the table's checks).
func beneficiaryOf(r *entryRow) string {
	if r.Entry.Beneficiary == "" {
		return string(commission.BeneficiaryPlatform)
	}
	return string(r.Entry.Beneficiary)
}

func statusOf(r *entryRow) string {
	if r.Status == "" {
		return StatusEarned
	}
	return r.Status
}

// insertStaged moves the staged rows (earns, then the reversals of earns)
// into the ledger under the store's scope lock, and returns how many were new.
func insertStaged(ctx context.Context, tx pgx.Tx, v versioner, store uuid.UUID, earns, reversals int) (int, error) {
	// From here on the scope is ours until commit: what is "already in the
	// ledger" cannot change under us (a concurrent chunk of the same run, or
	// another run, waits here).
	if err := v.Lock(store); err != nil {
		return 0, err
	}
	// Drop keys already in the ledger. The correlated probe always uses the
	// ledger's unique index, whatever the staging table's (absent)
	// statistics, instead of a join that could scan a ledger of millions.
	tag, err := tx.Exec(ctx, `DELETE FROM commission_entries_staged s WHERE (SELECT true FROM commission_entries e
WHERE e.store_id = s.store_id AND e.parcel_id = s.parcel_id AND e.rule_id = s.rule_id AND e.kind = s.kind LIMIT 1)`)
	if err != nil {
		return 0, fmt.Errorf("skip known entries: %w", err)
	}
	dense := tag.RowsAffected() == 0
	if !dense {
		// Recount: which kinds were dropped is not known from the tag alone.
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 'earn'), count(*) FILTER (WHERE kind = 'reversal')
FROM commission_entries_staged`).Scan(&earns, &reversals); err != nil {
			return 0, fmt.Errorf("count staged entries: %w", err)
		}
	}
	earned, err := insertKind(ctx, tx, v, store, commission.KindEarn, earns, dense)
	if err != nil || reversals == 0 {
		return earned, err
	}
	// Reversals copy what they reverse, now that the batch's earns are in.
	if _, err := tx.Exec(ctx, `UPDATE commission_entries_staged s SET reverses = e.id, beneficiary = e.beneficiary,
  agent_id = e.agent_id, base = e.base, amount = -e.amount, rule_name = e.rule_name,
  calculation = 'annulation : ' || e.calculation,
  status = CASE e.status WHEN 'paid' THEN 'earned' ELSE 'reversed' END
FROM commission_entries e
WHERE s.kind = 'reversal' AND e.store_id = s.store_id AND e.parcel_id = s.parcel_id AND e.rule_id = s.rule_id AND e.kind = 'earn'`); err != nil {
		return 0, fmt.Errorf("resolve reversals: %w", err)
	}
	tag, err = tx.Exec(ctx, `DELETE FROM commission_entries_staged WHERE kind = 'reversal' AND reverses IS NULL`)
	if err != nil {
		return 0, fmt.Errorf("drop reversals of nothing: %w", err)
	}
	dense = dense && tag.RowsAffected() == 0
	reversed, err := insertKind(ctx, tx, v, store, commission.KindReversal, reversals-int(tag.RowsAffected()), dense)
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
// versions, in batch order, and returns how many it inserted. dense says the
// rows' ords are still 0..n-1 (none was skipped), so no ranking is needed.
func insertKind(ctx context.Context, tx pgx.Tx, v versioner, store uuid.UUID, kind commission.EntryKind, n int, dense bool) (int, error) {
	if n == 0 {
		return 0, nil
	}
	first, err := v.Reserve(store, n)
	if err != nil {
		return 0, err
	}
	// No ON CONFLICT: the probe above ran under the scope lock, which every
	// writer of the ledger takes, so nothing can conflict; and a speculative
	// insertion costs every row an extra probe of each unique index. The key
	// still holds: a duplicate would fail the chunk, not be written twice.
	version := "$2 + ord"
	if !dense {
		version = "$2 + row_number() OVER (ORDER BY ord) - 1"
	}
	tag, err := tx.Exec(ctx, `INSERT INTO commission_entries (store_id, id, version, rule_id, parcel_id, kind, beneficiary,
  agent_id, status, base, amount, rule_name, calculation, reverses, occurred_at)
SELECT store_id, id, `+version+`, rule_id, parcel_id, kind,
  beneficiary, agent_id, status, base, amount, rule_name, calculation, reverses, occurred_at
FROM commission_entries_staged WHERE kind = $1`, string(kind), first)
	if err != nil {
		return 0, fmt.Errorf("insert %s entries: %w", kind, err)
	}
	return int(tag.RowsAffected()), nil
}

// markReversed moves the earn entries reversed by this batch to status
// reversed, unless they were already paid.
func markReversed(ctx context.Context, tx pgx.Tx, v versioner, store uuid.UUID) error {
	return restatus(ctx, tx, v, store, StatusReversed, `SELECT e.id FROM commission_entries e
JOIN commission_entries_staged s ON s.store_id = e.store_id AND s.reverses = e.id
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
