package remit

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/money"
)

// Match is how a statement line reconciles with the store's parcels.
type Match string

// Matches. Every line has exactly one.
const (
	Matched        Match = "matched"         // the parcel, its outcome and its COD agree
	AmountMismatch Match = "amount_mismatch" // delivered, but the COD differs from the parcel's
	StatusMismatch Match = "status_mismatch" // the carrier's outcome is not the parcel's status
	UnknownParcel  Match = "unknown_parcel"  // no parcel of this account has the tracking code
	PaidTwice      Match = "paid_twice"      // an earlier line (this statement or another) settled it already
)

// Matches lists every match in report order.
var Matches = []Match{Matched, AmountMismatch, StatusMismatch, UnknownParcel, PaidTwice}

// Parcel is what reconciliation knows of the parcel a line names.
type Parcel struct {
	ID      uuid.UUID
	Status  string // canonical parcel status
	COD     money.Amount
	City    string
	FinalAt time.Time // when it reached its status
}

// ReconciledLine is a statement line with its parcel, match and fee audit.
type ReconciledLine struct {
	Line
	Parcel *Parcel // nil when unknown
	Match  Match
	// Expected is what the line should have been charged per the price list
	// (nil when the parcel is unknown or no list applies); Flags are the
	// fee audit's findings.
	Expected *Fees
	Flags    []FeeFlag
}

// Classify reconciles one line: earlier says an earlier line named the same
// tracking code.
func Classify(l Line, p *Parcel, earlier bool) Match {
	switch {
	case earlier:
		return PaidTwice
	case p == nil:
		return UnknownParcel
	case (l.Outcome == Delivered) != (p.Status == "delivered"):
		return StatusMismatch
	case l.Outcome == Delivered && l.COD != p.COD:
		return AmountMismatch
	}
	return Matched
}

// Bucket counts lines of one match and sums their nets.
type Bucket struct {
	Lines int
	Net   money.Amount
}

// Summary is a remittance's reconciliation: per match, and in all. The
// buckets always sum to the total: every line is in exactly one.
type Summary struct {
	ByMatch map[Match]Bucket
	Total   Bucket
	// Shortfall is what delivered lines paid less than their parcels' COD
	// (amount mismatches where the carrier collected less).
	Shortfall money.Amount
	// FeeOvercharge and FeeUndercharge sum the fee audit's differences.
	FeeOvercharge, FeeUndercharge money.Amount
	Flags                         int
}

// Summarise sums reconciled lines. Overflow is an error, never a wrong total.
func Summarise(lines []ReconciledLine) (Summary, error) {
	s := Summary{ByMatch: map[Match]Bucket{}}
	for _, l := range lines {
		b := s.ByMatch[l.Match]
		b.Lines++
		var err error
		if b.Net, err = b.Net.Add(l.Net); err != nil {
			return s, fmt.Errorf("%w: the remittance's total overflows", ErrInvalid)
		}
		s.ByMatch[l.Match] = b
		s.Total.Lines++
		if s.Total.Net, err = s.Total.Net.Add(l.Net); err != nil {
			return s, fmt.Errorf("%w: the remittance's total overflows", ErrInvalid)
		}
		if l.Match == AmountMismatch && l.Parcel != nil && l.Parcel.COD > l.COD {
			d, _ := l.Parcel.COD.Sub(l.COD)
			if s.Shortfall, err = s.Shortfall.Add(d); err != nil {
				return s, fmt.Errorf("%w: the shortfall overflows", ErrInvalid)
			}
		}
		for _, f := range l.Flags {
			s.Flags++
			switch {
			case f.Direction == Over:
				s.FeeOvercharge, err = s.FeeOvercharge.Add(f.Difference)
			case f.Direction == Under:
				s.FeeUndercharge, err = s.FeeUndercharge.Add(-f.Difference)
			}
			if err != nil {
				return s, fmt.Errorf("%w: the fee audit's total overflows", ErrInvalid)
			}
		}
	}
	return s, nil
}

// Lines are matched to parcels and to earlier lines by hash joins in Go:
// one query for the lines, then per carrier account one for the parcels and
// one for the first line naming each tracking code, each a single pass
// whatever the planner thinks of freshly imported tables.

// lineQuery reads statement lines with their remittance.
const lineQuery = `SELECT r.id, r.reference, r.account_id, r.paid_at, r.created_at, l.line_no, l.tracking, l.outcome, l.cod,
  l.delivery_fee, l.return_fee, l.cod_fee, l.fees, l.net
FROM remittance_lines l
JOIN remittances r ON r.store_id = l.store_id AND r.id = l.remittance_id
WHERE l.store_id = $1 `

// lineRow is a line as read, with its remittance.
type lineRow struct {
	Remittance uuid.UUID
	Reference  string
	Account    uuid.UUID
	PaidAt     time.Time
	Created    time.Time // when its remittance was recorded
	ReconciledLine
}

func scanLine(row pgx.CollectableRow) (lineRow, error) {
	var (
		r              lineRow
		outcome        string
		cod, fees, net int64
		df, rf, cf     *int64
	)
	if err := row.Scan(&r.Remittance, &r.Reference, &r.Account, &r.PaidAt, &r.Created, &r.No, &r.Tracking, &outcome, &cod,
		&df, &rf, &cf, &fees, &net); err != nil {
		return r, err
	}
	r.PaidAt = r.PaidAt.UTC()
	r.Outcome, r.COD, r.Fees, r.Net = Outcome(outcome), money.Amount(cod), money.Amount(fees), money.Amount(net)
	if df != nil && rf != nil && cf != nil {
		r.Itemised = true
		r.DeliveryFee, r.ReturnFee, r.CODFee = money.Amount(*df), money.Amount(*rf), money.Amount(*cf)
	}
	return r, nil
}

// parcelsByTrackingSQL reads, per tracking code of $3 (each once), the
// oldest created parcel of account $2 of store $1 with that code: one
// search of the tracking index per code, the account a sub-select as the
// store is.
// By key, whatever the planner believes of the store: see
// pgtest.RequireKeyed, TestStatementLookUpsSearchByKey.
const parcelsByTrackingSQL = `SELECT p.tracking, p.id, p.status, p.cod, p.city_id, p.updated_at
FROM (SELECT DISTINCT t FROM unnest($3::text[]) AS u(t)) u,
LATERAL (SELECT tracking, id, status, cod, city_id, updated_at FROM parcels
  WHERE account_id = (SELECT $2::uuid) AND tracking = u.t AND store_id = (SELECT $1::uuid)
    AND deleted_at IS NULL AND creation = 'created'
  ORDER BY created_at, id LIMIT 1) p`

// firstLinesSQL reads, per tracking code of $3 (each once), the first line
// (in import order) of account $2's statements of store $1 that names it:
// one search of the lines' tracking index per code (see
// parcelsByTrackingSQL).
const firstLinesSQL = `SELECT f.* FROM (SELECT DISTINCT t FROM unnest($3::text[]) AS u(t)) u,
LATERAL (SELECT r.id, r.reference, r.account_id, r.paid_at, r.created_at, l.line_no,
    l.tracking, l.outcome, l.cod, l.delivery_fee, l.return_fee, l.cod_fee, l.fees, l.net
  FROM remittance_lines l JOIN remittances r ON r.store_id = l.store_id AND r.id = l.remittance_id
  WHERE l.store_id = (SELECT $1::uuid) AND l.tracking = u.t AND r.account_id = (SELECT $2::uuid)
  ORDER BY r.created_at, r.id, l.line_no LIMIT 1) f`

// parcelsByTracking returns the created parcels of the account with the
// given tracking codes (the oldest, if a code was reused).
func parcelsByTracking(ctx context.Context, tx pgx.Tx, store, account uuid.UUID, trackings []string) (map[string]*Parcel, error) {
	rows, err := tx.Query(ctx, parcelsByTrackingSQL, store, account, trackings)
	if err != nil {
		return nil, fmt.Errorf("parcels of the statement: %w", err)
	}
	defer rows.Close()
	out := make(map[string]*Parcel, len(trackings))
	for rows.Next() {
		var tracking string
		var p Parcel
		var cod int64
		if err := rows.Scan(&tracking, &p.ID, &p.Status, &cod, &p.City, &p.FinalAt); err != nil {
			return nil, fmt.Errorf("parcels of the statement: %w", err)
		}
		p.COD, p.FinalAt = money.Amount(cod), p.FinalAt.UTC()
		out[tracking] = &p
	}
	return out, rows.Err()
}

// firstLines returns, per tracking code, the first line (in import order)
// of the account's statements that names it.
func firstLines(ctx context.Context, tx pgx.Tx, store, account uuid.UUID, trackings []string) (map[string]lineRow, error) {
	rows, err := tx.Query(ctx, firstLinesSQL, store, account, trackings)
	if err != nil {
		return nil, fmt.Errorf("first lines: %w", err)
	}
	lines, err := pgx.CollectRows(rows, scanLine)
	if err != nil {
		return nil, fmt.Errorf("first lines: %w", err)
	}
	out := make(map[string]lineRow, len(lines))
	for _, l := range lines {
		out[l.Tracking] = l
	}
	return out, nil
}

// readLines reads the lines the query selects and reconciles and audits
// each against the store's parcels, earlier lines and price lists.
func readLines(ctx context.Context, tx pgx.Tx, book PriceBook, store uuid.UUID, query string, args ...any) ([]lineRow, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read remittance lines: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanLine)
	if err != nil {
		return nil, fmt.Errorf("read remittance lines: %w", err)
	}
	byAccount := map[uuid.UUID][]string{}
	seen := map[uuid.UUID]map[string]bool{}
	for _, l := range out {
		if seen[l.Account] == nil {
			seen[l.Account] = map[string]bool{}
		}
		if !seen[l.Account][l.Tracking] {
			seen[l.Account][l.Tracking] = true
			byAccount[l.Account] = append(byAccount[l.Account], l.Tracking)
		}
	}
	parcels := map[uuid.UUID]map[string]*Parcel{}
	firsts := map[uuid.UUID]map[string]lineRow{}
	for acc, trackings := range byAccount {
		if parcels[acc], err = parcelsByTracking(ctx, tx, store, acc, trackings); err != nil {
			return nil, err
		}
		if firsts[acc], err = firstLines(ctx, tx, store, acc, trackings); err != nil {
			return nil, err
		}
	}
	for i := range out {
		r := &out[i]
		r.Parcel = parcels[r.Account][r.Tracking]
		first, ok := firsts[r.Account][r.Tracking]
		earlier := ok && (first.Remittance != r.Remittance || first.No != r.No)
		r.Match = Classify(r.Line, r.Parcel, earlier)
		r.Expected, r.Flags = Audit(book, r.Account, r.Line, r.Parcel, r.PaidAt)
	}
	return out, nil
}

// Reconcile returns a remittance of the store with every line reconciled
// and audited, and the summary.
func Reconcile(ctx context.Context, tx pgx.Tx, store, id uuid.UUID) (Remittance, []ReconciledLine, Summary, error) {
	rem, err := Get(ctx, tx, store, id)
	if err != nil {
		return rem, nil, Summary{}, err
	}
	book, err := LoadPriceBook(ctx, tx, store, rem.Account)
	if err != nil {
		return rem, nil, Summary{}, err
	}
	rows, err := readLines(ctx, tx, book, store, lineQuery+`AND l.remittance_id = $2 ORDER BY l.line_no`, store, id)
	if err != nil {
		return rem, nil, Summary{}, err
	}
	lines := make([]ReconciledLine, len(rows))
	for i := range rows {
		lines[i] = rows[i].ReconciledLine
	}
	sum, err := Summarise(lines)
	return rem, lines, sum, err
}

// Owed is what one carrier account still owes the store: delivered parcels
// no statement has settled yet, and what settled lines paid short.
type Owed struct {
	Account        uuid.UUID
	Carrier, Label string
	Parcels        int
	COD            money.Amount // cash collected on them
	// ExpectedFees is what the price lists say the carrier will keep;
	// Unpriced counts parcels no price list covers (their fees count as 0).
	ExpectedFees money.Amount
	Unpriced     int
	ExpectedNet  money.Amount // COD − ExpectedFees
	Shortfall    money.Amount // paid short on amount-mismatched lines
	Oldest       time.Time    // the oldest unsettled delivery
	// Sample is the oldest unsettled parcels (up to 100).
	Sample []OwedParcel
}

// OwedParcel is one delivered parcel not yet settled.
type OwedParcel struct {
	ID          uuid.UUID
	Tracking    string
	COD         money.Amount
	DeliveredAt time.Time
}

// StillOwed sums, per carrier account of the store, the parcels delivered
// since `since` that no remittance line names (by account and tracking
// code) — the cash the carrier still holds — and the shortfalls of the
// lines that settled them for less than their COD. Only statements recorded
// since `since` can settle those parcels, so both reads are bounded by the
// window, and matched by hash in Go.
func StillOwed(ctx context.Context, tx pgx.Tx, store uuid.UUID, since time.Time) ([]Owed, error) {
	book, err := LoadPriceBook(ctx, tx, store, uuid.Nil)
	if err != nil {
		return nil, err
	}
	type key struct {
		account  uuid.UUID
		tracking string
	}
	// The first line naming each (account, tracking) among the window's statements.
	rows, err := tx.Query(ctx, `SELECT DISTINCT ON (r.account_id, l.tracking) r.account_id, l.tracking, l.outcome, l.cod
FROM remittance_lines l JOIN remittances r ON r.store_id = l.store_id AND r.id = l.remittance_id
WHERE l.store_id = $1 AND r.created_at >= $2
ORDER BY r.account_id, l.tracking, r.created_at, r.id, l.line_no`, store, since)
	if err != nil {
		return nil, fmt.Errorf("settled parcels: %w", err)
	}
	type settledLine struct {
		delivered bool
		cod       money.Amount
	}
	settled := map[key]settledLine{}
	err = func() error {
		defer rows.Close()
		for rows.Next() {
			var k key
			var outcome string
			var cod int64
			if err := rows.Scan(&k.account, &k.tracking, &outcome, &cod); err != nil {
				return err
			}
			settled[k] = settledLine{delivered: outcome == string(Delivered), cod: money.Amount(cod)}
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, fmt.Errorf("settled parcels: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT a.id, a.carrier, a.label, p.id, p.tracking, p.cod, p.city_id, p.updated_at
FROM parcels p JOIN carrier_accounts a ON a.id = p.account_id
WHERE p.store_id = $1 AND p.status = 'delivered' AND p.creation = 'created' AND p.deleted_at IS NULL AND p.updated_at >= $2
ORDER BY a.id, p.updated_at, p.id`, store, since)
	if err != nil {
		return nil, fmt.Errorf("still owed: %w", err)
	}
	var out []Owed
	byAccount := map[uuid.UUID]int{}
	err = func() error {
		defer rows.Close()
		for rows.Next() {
			var acc uuid.UUID
			var carrier, label, cityID string
			var p OwedParcel
			var cod int64
			if err := rows.Scan(&acc, &carrier, &label, &p.ID, &p.Tracking, &cod, &cityID, &p.DeliveredAt); err != nil {
				return err
			}
			p.COD = money.Amount(cod)
			i, ok := byAccount[acc]
			if !ok {
				i = len(out)
				byAccount[acc] = i
				out = append(out, Owed{Account: acc, Carrier: carrier, Label: label})
			}
			o := &out[i]
			var err error
			if line, ok := settled[key{acc, p.Tracking}]; ok {
				if line.delivered && line.cod < p.COD {
					d, _ := p.COD.Sub(line.cod)
					if o.Shortfall, err = o.Shortfall.Add(d); err != nil {
						return fmt.Errorf("%w: the shortfall overflows", ErrInvalid)
					}
				}
				continue
			}
			if o.Parcels == 0 {
				o.Oldest = p.DeliveredAt
			}
			o.Parcels++
			if o.COD, err = o.COD.Add(p.COD); err != nil {
				return fmt.Errorf("%w: the amount owed overflows", ErrInvalid)
			}
			if pl, ok := book.Find(acc, cityID, day(p.DeliveredAt)); ok {
				fees, err := pl.Expected(true, p.COD)
				if err != nil {
					return err
				}
				t, err := fees.Total()
				if err != nil {
					return err
				}
				if o.ExpectedFees, err = o.ExpectedFees.Add(t); err != nil {
					return fmt.Errorf("%w: the expected fees overflow", ErrInvalid)
				}
			} else {
				o.Unpriced++
			}
			if len(o.Sample) < 100 {
				o.Sample = append(o.Sample, p)
			}
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, fmt.Errorf("still owed: %w", err)
	}
	kept := out[:0]
	for _, o := range out {
		if o.Parcels == 0 && o.Shortfall == 0 {
			continue
		}
		if o.ExpectedNet, err = o.COD.Sub(o.ExpectedFees); err != nil {
			return nil, fmt.Errorf("%w: the expected net overflows", ErrInvalid)
		}
		kept = append(kept, o)
	}
	return kept, nil
}

func day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }
