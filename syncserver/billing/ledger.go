package billing

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/postgres"
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

// entryKey is what makes an entry unique in a store's ledger (the unique
// index commission_entries_parcel_key): a rule pays a parcel once, and
// reverses that once.
type entryKey struct {
	parcel, rule uuid.UUID
	kind         commission.EntryKind
}

// storedEntry is what a write needs to know of an entry already in the
// ledger: a reversal copies it, a promotion or reversal restatuses it.
type storedEntry struct {
	id          uuid.UUID
	beneficiary string
	agent       uuid.UUID
	status      string
	base        int64
	amount      int64
	ruleName    string
	calculation string
}

// writeEntries appends rows to the store's ledger inside tx and returns how
// many entries were new. Rows whose (parcel, rule, kind) is already in the
// ledger are skipped, so writing the same rows twice changes nothing; a
// reversal of an entry that does not exist is dropped. Earn entries that get
// reversed here move to status reversed (a paid one stays paid and its
// reversal is earned: a clawback on the next payout). Versions come from v.
func writeEntries(ctx context.Context, tx pgx.Tx, v versioner, store uuid.UUID, rows []entryRow) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	var b batch
	return b.write(ctx, tx, v, store, rows, true, false)
}

// errKnown: an optimistic insert met an entry already in the ledger.
var errKnown = errors.New("some entries are already in the ledger")

// keyOrder is a row's place in the ledger's parcel key: its parcel id as two
// integers (compared faster than bytes), then its index.
type keyOrder struct {
	hi, lo uint64
	row    int32
}

// batch turns rows into one INSERT of new ledger entries; its buffers are
// reused from one chunk to the next.
type batch struct {
	cols  entryColumns
	mark  []uuid.UUID // ledger entries the batch reverses
	known map[entryKey]storedEntry
	// prepared says cols hold the n rows of prepareBlind, for write.
	prepared bool
	n        int
	ids      entryIDs
	order    []keyOrder // rows in key order
	// The probe's parameters.
	parcels postgres.Column
	probe   postgres.Params
}

// write appends rows to the ledger. With probe it does so under the store's
// scope lock (taken here), so that what is "already in the ledger" cannot
// change until commit — every writer that reads the ledger to write it takes
// it: the entries of the rows' parcels are read first, and rows already in
// the ledger are left out.
//
// Without probe the rows are inserted blindly, without the lock (the run's
// chunks write through syncer.WriteAside, several at once), and the
// ledger's unique key is the check: errKnown (the transaction is then
// aborted) says some were already there, or that a reversal needs its entry
// read from the ledger, and the caller writes again with probe. So a store's
// month written for the first time, the common case, costs no lookup and
// holds no lock. promote also moves the pending earn entries of delivered
// parcels among rows to earned, found by the probe (promote implies probe).
func (b *batch) write(ctx context.Context, tx pgx.Tx, v versioner, store uuid.UUID, rows []entryRow, probe, promote bool) (int, error) {
	probe = probe || promote
	if probe {
		if err := v.Lock(store); err != nil {
			return 0, err
		}
	}
	n, prepared := b.n, b.prepared
	b.prepared = false
	if probe || !prepared {
		b.known = nil
		if probe {
			if err := b.readKnown(ctx, tx, store, rows); err != nil {
				return 0, err
			}
		}
		var err error
		if n, err = b.prepare(rows); err != nil {
			return 0, err
		}
	}
	if n == -1 {
		return 0, errKnown // a reversal of an entry not in the batch: read the ledger
	}
	if n > 0 {
		first, err := v.Reserve(store, n)
		if err != nil {
			return 0, err
		}
		if err := b.insert(ctx, tx, store, first, n); err != nil {
			// An entry already there, or one a writer without the lock (a
			// run's other chunk) inserted meanwhile; two such chunks holding
			// each other's keys deadlock, and Postgres breaks it.
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "40P01") {
				return 0, fmt.Errorf("%w: %s", errKnown, pgErr.Message)
			}
			return 0, fmt.Errorf("insert entries: %w", err)
		}
	}
	if len(b.mark) > 0 {
		if err := restatusIDs(ctx, tx, v, store, StatusReversed, b.mark); err != nil {
			return 0, err
		}
	}
	if promote {
		// Pending (confirmation) entries of the parcels the rows pay as
		// delivered, whatever their rule: they are earned now.
		delivered := map[uuid.UUID]bool{}
		for _, r := range rows {
			if r.Kind == commission.KindEarn && r.Status == StatusEarned {
				delivered[r.ParcelID] = true
			}
		}
		var pending []uuid.UUID
		for k, e := range b.known {
			if k.kind == commission.KindEarn && e.status == StatusPending && delivered[k.parcel] {
				pending = append(pending, e.id)
			}
		}
		if len(pending) > 0 {
			slices.SortFunc(pending, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
			if err := restatusIDs(ctx, tx, v, store, StatusEarned, pending); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// probeSQL reads the entries of the parcels $2 of store $1: one look-up of
// the ledger's parcel key per parcel.
// By key, whatever the planner believes of the store: see
// pgtest.RequireKeyed, TestProbeLooksUpParcels.
const probeSQL = `SELECT e.parcel_id, e.rule_id, e.kind, e.id, e.beneficiary, e.agent_id, e.status, e.base, e.amount,
  e.rule_name, e.calculation
FROM unnest($2::uuid[]) AS p(id), LATERAL (SELECT * FROM commission_entries c
  WHERE c.store_id = (SELECT $1::uuid) AND c.parcel_id = p.id OFFSET 0) e`

// readKnown reads the ledger's entries of the rows' parcels (one index
// probe per parcel, not per row), binding and decoding in binary.
func (b *batch) readKnown(ctx context.Context, tx pgx.Tx, store uuid.UUID, rows []entryRow) error {
	b.parcels.Reset()
	b.parcels.Elem = postgres.OIDUUID
	for i, r := range rows {
		if i == 0 || r.ParcelID != rows[i-1].ParcelID {
			b.parcels.UUID(r.ParcelID)
		}
	}
	b.probe.Reset()
	b.probe.UUID(store)
	b.probe.Array(&b.parcels)
	vals, oids, formats := b.probe.Values()
	res := tx.Conn().PgConn().ExecParams(ctx, probeSQL, vals, oids, formats, probeFormats[:])
	b.known = map[entryKey]storedEntry{}
	for res.NextRow() {
		v := res.Values()
		if len(v) != 11 || len(v[7]) != 8 || len(v[8]) != 8 {
			res.Close()
			return fmt.Errorf("entries already in the ledger: unexpected row shape")
		}
		var k entryKey
		var e storedEntry
		copy(k.parcel[:], v[0])
		copy(k.rule[:], v[1])
		k.kind = commission.EntryKind(v[2])
		copy(e.id[:], v[3])
		e.beneficiary = string(v[4])
		copy(e.agent[:], v[5]) // NULL: nil, uuid.Nil
		e.status = string(v[6])
		e.base = int64(binary.BigEndian.Uint64(v[7]))
		e.amount = int64(binary.BigEndian.Uint64(v[8]))
		e.ruleName, e.calculation = string(v[9]), string(v[10])
		b.known[k] = e
	}
	if _, err := res.Close(); err != nil {
		return fmt.Errorf("entries already in the ledger: %w", err)
	}
	return nil
}

// prepareBlind encodes rows ahead of write without probe, outside the
// transaction: the run encodes a chunk while another holds the scope lock.
func (b *batch) prepareBlind(rows []entryRow) error {
	b.known = nil
	n, err := b.prepare(rows)
	b.n, b.prepared = n, err == nil
	return err
}

// prepare encodes the rows new to the ledger (not in b.known, not twice in
// rows) into b.cols and returns how many there are; -1 when a reversal's
// entry is neither among the rows nor in b.known, and b.known was not read.
// Reversals copy their entry, from the batch or from the ledger.
func (b *batch) prepare(rows []entryRow) (int, error) {
	b.mark = b.mark[:0]
	b.cols.reset()
	b.ids.begin()
	// In the order of the ledger's parcel key: the chunk's inserts into it
	// then walk its pages once, left to right, instead of landing all over
	// the window of parcels being delivered (0.65 s of Postgres CPU per
	// million entries). Rows of one key keep their order, so that of a
	// parcel reported twice the first report counts; a reversal sorts
	// after its earn ("earn" < "reversal"). So a key's repeats follow it,
	// and a reversal follows its earn when the batch has it.
	b.order = b.order[:0]
	for i := range rows {
		p := rows[i].ParcelID
		b.order = append(b.order, keyOrder{binary.BigEndian.Uint64(p[:8]), binary.BigEndian.Uint64(p[8:]), int32(i)})
	}
	slices.SortFunc(b.order, func(x, y keyOrder) int {
		if c := cmp.Compare(x.hi, y.hi); c != 0 {
			return c
		}
		if c := cmp.Compare(x.lo, y.lo); c != 0 {
			return c
		}
		a, b := &rows[x.row], &rows[y.row]
		if c := bytes.Compare(a.RuleID[:], b.RuleID[:]); c != 0 {
			return c
		}
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		return cmp.Compare(x.row, y.row)
	})
	var (
		prev     entryKey
		earn     storedEntry // the last earn written, of (parcel, rule) earnFor
		earnFor  entryKey
		haveEarn bool
	)
	for n, o := range b.order {
		r := &rows[o.row]
		k := entryKey{r.ParcelID, r.RuleID, r.Kind}
		if n > 0 && k == prev {
			continue // a parcel reported twice: its first report counts
		}
		prev = k
		if _, ok := b.known[k]; ok {
			continue
		}
		id := b.ids.next()
		if r.Kind != commission.KindReversal {
			e := storedEntry{id: id, beneficiary: string(r.Entry.Beneficiary), agent: r.Agent, status: r.Status,
				base: int64(r.Entry.Base), amount: int64(r.Entry.Amount), ruleName: r.Entry.RuleName, calculation: r.Entry.Calculation}
			earn, earnFor, haveEarn = e, entryKey{r.ParcelID, r.RuleID, commission.KindEarn}, true
			b.cols.add(id, r, &e, uuid.Nil)
			continue
		}
		ek := entryKey{r.ParcelID, r.RuleID, commission.KindEarn}
		var of storedEntry
		if haveEarn && earnFor == ek {
			of = earn
		} else if e, ok := b.known[ek]; ok {
			of = e
			if e.status == StatusPending || e.status == StatusEarned {
				b.mark = append(b.mark, e.id)
			}
		} else if b.known == nil {
			return -1, nil
		} else {
			continue // a reversal of nothing
		}
		if of.amount == math.MinInt64 {
			return 0, fmt.Errorf("reversal of entry %v: %w", of.id, money.ErrOverflow)
		}
		status := StatusReversed
		if of.status == StatusPaid {
			status = StatusEarned // a clawback, due on the next payout
		}
		rev := storedEntry{beneficiary: of.beneficiary, agent: of.agent, status: status, base: of.base, amount: -of.amount,
			ruleName: of.ruleName, calculation: "annulation : " + of.calculation}
		b.cols.add(id, r, &rev, of.id)
	}
	return b.cols.len(), nil
}

// insertSQL writes a batch: one statement, the rows as arrays (one per
// column) bound in binary. The ledger is under row-level security, which
// COPY cannot write; an INSERT of arrays needs no staging table. The arrays
// are unnested in the select list, which walks them in step without
// materialising them; versions are the reserved range's, in batch order.
const insertSQL = `INSERT INTO commission_entries (store_id, version, id, rule_id, parcel_id, kind, beneficiary,
  agent_id, status, base, amount, rule_name, calculation, reverses, occurred_at)
SELECT $1, generate_series($2::int8, $2 + cardinality($3::uuid[]) - 1), unnest($3::uuid[]), unnest($4::uuid[]),
  unnest($5::uuid[]), unnest($6::text[]), unnest($7::text[]), unnest($8::uuid[]), unnest($9::text[]),
  unnest($10::int8[]), unnest($11::int8[]), unnest($12::text[]), unnest($13::text[]), unnest($14::uuid[]),
  unnest($15::timestamptz[])`

func (b *batch) insert(ctx context.Context, tx pgx.Tx, store uuid.UUID, first int64, n int) error {
	vals, oids, formats := b.cols.params(store, first)
	tag, err := tx.Conn().PgConn().ExecParams(ctx, insertSQL, vals, oids, formats, nil).Close()
	if err != nil {
		return err
	}
	if tag.RowsAffected() != int64(n) {
		return fmt.Errorf("%d of %d entries inserted", tag.RowsAffected(), n)
	}
	return nil
}

// probeFormats asks for probeSQL's 11 columns in binary.
var probeFormats = [11]int16{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}

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
	return restatusIDs(ctx, tx, v, store, status, ids)
}

// restatusIDs sets status on the store's entries ids, each with a new version.
func restatusIDs(ctx context.Context, tx pgx.Tx, v versioner, store uuid.UUID, status string, ids []uuid.UUID) error {
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
