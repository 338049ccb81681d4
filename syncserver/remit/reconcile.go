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

// lineQuery reads statement lines with the parcel each names (by account and
// tracking code) and whether an earlier line — in import order — named it.
const lineQuery = `SELECT r.id, r.reference, r.account_id, r.paid_at, l.line_no, l.tracking, l.outcome, l.cod,
  l.delivery_fee, l.return_fee, l.cod_fee, l.fees, l.net,
  p.id, p.status, p.cod, p.city_id, p.updated_at,
  EXISTS (SELECT 1 FROM remittance_lines l2 JOIN remittances r2 ON r2.store_id = l2.store_id AND r2.id = l2.remittance_id
    WHERE l2.store_id = l.store_id AND l2.tracking = l.tracking AND r2.account_id = r.account_id
      AND (r2.created_at, r2.id, l2.line_no) < (r.created_at, r.id, l.line_no))
FROM remittance_lines l
JOIN remittances r ON r.store_id = l.store_id AND r.id = l.remittance_id
LEFT JOIN LATERAL (SELECT p.id, p.status, p.cod, p.city_id, p.updated_at FROM parcels p
  WHERE p.store_id = l.store_id AND p.account_id = r.account_id AND p.tracking = l.tracking
    AND p.deleted_at IS NULL AND p.creation = 'created'
  ORDER BY p.created_at LIMIT 1) p ON true
WHERE l.store_id = $1 `

// lineRow is a line as read, with its remittance.
type lineRow struct {
	Remittance uuid.UUID
	Reference  string
	Account    uuid.UUID
	PaidAt     time.Time
	ReconciledLine
}

func readLines(ctx context.Context, tx pgx.Tx, book PriceBook, query string, args ...any) ([]lineRow, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read remittance lines: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (lineRow, error) {
		var (
			r              lineRow
			outcome        string
			cod, fees, net int64
			df, rf, cf     *int64
			pid            *uuid.UUID
			pstatus, pcity *string
			pcod           *int64
			pfinal         *time.Time
			earlier        bool
		)
		if err := row.Scan(&r.Remittance, &r.Reference, &r.Account, &r.PaidAt, &r.No, &r.Tracking, &outcome, &cod, &df, &rf, &cf,
			&fees, &net, &pid, &pstatus, &pcod, &pcity, &pfinal, &earlier); err != nil {
			return r, err
		}
		r.Outcome, r.COD, r.Fees, r.Net = Outcome(outcome), money.Amount(cod), money.Amount(fees), money.Amount(net)
		if df != nil && rf != nil && cf != nil {
			r.Itemised = true
			r.DeliveryFee, r.ReturnFee, r.CODFee = money.Amount(*df), money.Amount(*rf), money.Amount(*cf)
		}
		if pid != nil {
			r.Parcel = &Parcel{ID: *pid, Status: *pstatus, COD: money.Amount(*pcod), City: *pcity, FinalAt: pfinal.UTC()}
		}
		r.Match = Classify(r.Line, r.Parcel, earlier)
		r.Expected, r.Flags = Audit(book, r.Account, r.Line, r.Parcel, r.PaidAt)
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read remittance lines: %w", err)
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
	rows, err := readLines(ctx, tx, book, lineQuery+`AND l.remittance_id = $2 ORDER BY l.line_no`, store, id)
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

// StillOwed sums, per carrier account of the store, the delivered parcels no
// remittance line names (by account and tracking code) — the cash the
// carrier holds — and the shortfalls of lines that paid less than the COD.
func StillOwed(ctx context.Context, tx pgx.Tx, store uuid.UUID) ([]Owed, error) {
	book, err := LoadPriceBook(ctx, tx, store, uuid.Nil)
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT a.id, a.carrier, a.label, p.id, p.tracking, p.cod, p.city_id, p.updated_at
FROM parcels p JOIN carrier_accounts a ON a.id = p.account_id
WHERE p.store_id = $1 AND p.status = 'delivered' AND p.creation = 'created' AND p.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM remittance_lines l JOIN remittances r ON r.store_id = l.store_id AND r.id = l.remittance_id
    WHERE l.store_id = p.store_id AND l.tracking = p.tracking AND r.account_id = p.account_id)
ORDER BY a.id, p.updated_at, p.id`, store)
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
				out = append(out, Owed{Account: acc, Carrier: carrier, Label: label, Oldest: p.DeliveredAt})
			}
			o := &out[i]
			o.Parcels++
			var err error
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
	// Shortfalls of settled lines: the first line naming a delivered parcel
	// paid less COD than the parcel's.
	srows, err := tx.Query(ctx, `SELECT a.id, a.carrier, a.label, sum(p.cod - l.cod)::bigint
FROM remittance_lines l JOIN remittances r ON r.store_id = l.store_id AND r.id = l.remittance_id
JOIN carrier_accounts a ON a.id = r.account_id
JOIN parcels p ON p.store_id = l.store_id AND p.account_id = r.account_id AND p.tracking = l.tracking
  AND p.deleted_at IS NULL AND p.creation = 'created'
WHERE l.store_id = $1 AND l.outcome = 'delivered' AND p.status = 'delivered' AND p.cod > l.cod
  AND NOT EXISTS (SELECT 1 FROM remittance_lines l2 JOIN remittances r2 ON r2.store_id = l2.store_id AND r2.id = l2.remittance_id
    WHERE l2.store_id = l.store_id AND l2.tracking = l.tracking AND r2.account_id = r.account_id
      AND (r2.created_at, r2.id, l2.line_no) < (r.created_at, r.id, l.line_no))
GROUP BY a.id, a.carrier, a.label`, store)
	if err != nil {
		return nil, fmt.Errorf("shortfalls: %w", err)
	}
	err = func() error {
		defer srows.Close()
		for srows.Next() {
			var acc uuid.UUID
			var carrier, label string
			var short int64
			if err := srows.Scan(&acc, &carrier, &label, &short); err != nil {
				return err
			}
			i, ok := byAccount[acc]
			if !ok {
				i = len(out)
				byAccount[acc] = i
				out = append(out, Owed{Account: acc, Carrier: carrier, Label: label})
			}
			out[i].Shortfall = money.Amount(short)
		}
		return srows.Err()
	}()
	if err != nil {
		return nil, fmt.Errorf("shortfalls: %w", err)
	}
	for i := range out {
		if out[i].ExpectedNet, err = out[i].COD.Sub(out[i].ExpectedFees); err != nil {
			return nil, fmt.Errorf("%w: the expected net overflows", ErrInvalid)
		}
	}
	return out, nil
}

func day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }
