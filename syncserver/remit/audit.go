package remit

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/money"
)

// Direction of a fee finding.
type Direction string

// Directions.
const (
	Over        Direction = "over"          // charged more than the price list
	Under       Direction = "under"         // charged less
	NoPriceList Direction = "no_price_list" // nothing to check against
)

// FeeKind names the fee a finding is about.
type FeeKind string

// Fee kinds. A carrier that itemises its fees is checked fee by fee; one
// that gives a single figure is checked on the total.
const (
	FeeDelivery FeeKind = "delivery"
	FeeReturn   FeeKind = "return"
	FeeCOD      FeeKind = "cod"
	FeeTotal    FeeKind = "total"
)

// FeeFlag is one finding of the fee audit on a statement line.
type FeeFlag struct {
	Kind      FeeKind
	Direction Direction
	Expected  money.Amount
	Charged   money.Amount
	// Difference is Charged − Expected: positive for an overcharge.
	Difference money.Amount
}

// Audit checks the fees a line charged against the price list that applied
// to its parcel (the account's list for the parcel's city, or its default
// list, on the day the parcel reached its status — or the statement's day if
// it has not). A line without a known parcel is not audited (reconciliation
// flags it); a line no list covers gets one NoPriceList flag.
func Audit(book PriceBook, account uuid.UUID, l Line, p *Parcel, paidAt time.Time) (*Fees, []FeeFlag) {
	if p == nil {
		return nil, nil
	}
	at := paidAt
	if !p.FinalAt.IsZero() && isFinal(p.Status) {
		at = p.FinalAt
	}
	pl, ok := book.Find(account, p.City, day(at))
	if !ok {
		return nil, []FeeFlag{{Kind: FeeTotal, Direction: NoPriceList, Charged: l.Fees}}
	}
	exp, err := pl.Expected(l.Outcome == Delivered, l.COD)
	if err != nil {
		return nil, nil // an amount no price list can produce: reconciliation shows the line
	}
	var flags []FeeFlag
	check := func(k FeeKind, want, got money.Amount) {
		if want == got {
			return
		}
		d, err := got.Sub(want)
		if err != nil {
			return
		}
		dir := Over
		if d < 0 {
			dir = Under
		}
		flags = append(flags, FeeFlag{Kind: k, Direction: dir, Expected: want, Charged: got, Difference: d})
	}
	if l.Itemised {
		check(FeeDelivery, exp.Delivery, l.DeliveryFee)
		check(FeeReturn, exp.Return, l.ReturnFee)
		check(FeeCOD, exp.COD, l.CODFee)
	} else if t, err := exp.Total(); err == nil {
		check(FeeTotal, t, l.Fees)
	}
	return &exp, flags
}

func isFinal(status string) bool {
	switch status {
	case "delivered", "refused", "returned", "cancelled", "lost":
		return true
	}
	return false
}

// LineFlag is a fee finding with the line it is on.
type LineFlag struct {
	Remittance uuid.UUID
	Reference  string
	Account    uuid.UUID
	PaidAt     time.Time
	LineNo     int
	Tracking   string
	Parcel     uuid.UUID
	FeeFlag
}

// ListFeeFlags audits every line of the store's remittances paid in
// [from, to) and returns the findings, in statement and line order.
func ListFeeFlags(ctx context.Context, tx pgx.Tx, store uuid.UUID, from, to time.Time) ([]LineFlag, error) {
	if !to.After(from) {
		return nil, invalidf("the period ends before it starts")
	}
	book, err := LoadPriceBook(ctx, tx, store, uuid.Nil)
	if err != nil {
		return nil, err
	}
	rows, err := readLines(ctx, tx, book, store, lineQuery+`AND r.paid_at >= $2 AND r.paid_at < $3
ORDER BY r.paid_at, r.created_at, r.id, l.line_no`, store, from.UTC(), to.UTC())
	if err != nil {
		return nil, err
	}
	var out []LineFlag
	for _, r := range rows {
		for _, f := range r.Flags {
			out = append(out, LineFlag{Remittance: r.Remittance, Reference: r.Reference, Account: r.Account, PaidAt: r.PaidAt,
				LineNo: r.No, Tracking: r.Tracking, Parcel: r.Parcel.ID, FeeFlag: f})
		}
	}
	if len(out) > 100_000 {
		return nil, fmt.Errorf("%w: more than 100000 findings: audit a shorter period", ErrInvalid)
	}
	return out, nil
}
