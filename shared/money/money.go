// Package money represents amounts of Moroccan dirhams (MAD) as an int64 count
// of centimes, parses the prices sellers type into their sheets and shops
// ("249,00", "1 299.50 MAD", "١٢٠ درهم"), formats amounts for people and for
// machines, and does the arithmetic the platform needs (sums, quantities,
// percentages) with overflow checks and one explicit rounding rule: half away
// from zero. Floating point is never used.
package money

import (
	"errors"
	"math"
	"math/bits"
	"strconv"
)

// Amount is an amount of Moroccan dirhams in centimes: 100 is 1 MAD. It may be
// negative (refunds, reversals), but [Parse] never returns a negative amount.
type Amount int64

// Units of Amount, so that 120 dirhams can be written 120 * money.Dirham.
const (
	Centime Amount = 1
	Dirham  Amount = 100
)

// ErrOverflow is returned, possibly wrapped, when a result does not fit in an
// Amount.
var ErrOverflow = errors.New("amount out of range")

// Add returns a+b. It fails with [ErrOverflow] if the sum does not fit.
func (a Amount) Add(b Amount) (Amount, error) {
	sum := a + b
	if (b > 0 && sum < a) || (b < 0 && sum > a) {
		return 0, ErrOverflow
	}
	return sum, nil
}

// Sub returns a-b. It fails with [ErrOverflow] if the difference does not fit.
func (a Amount) Sub(b Amount) (Amount, error) {
	diff := a - b
	if (b > 0 && diff > a) || (b < 0 && diff < a) {
		return 0, ErrOverflow
	}
	return diff, nil
}

// Sum returns the total of amounts, 0 for none. It fails with [ErrOverflow] if
// a running total does not fit.
func Sum(amounts ...Amount) (Amount, error) {
	var total Amount
	for _, a := range amounts {
		var err error
		if total, err = total.Add(a); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// Mul returns a*n, for a unit price times a quantity. It fails with
// [ErrOverflow] if the product does not fit.
func (a Amount) Mul(n int64) (Amount, error) {
	return mulDiv(int64(a), n, 1)
}

// MulRate returns a × basisPoints / 10 000, rounded half away from zero to the
// centime: 2.5 % is 250 basis points, and 5 % of 0,10 MAD is 0,01 MAD (0,005
// rounds up) while 5 % of -0,10 MAD is -0,01 MAD. It fails with [ErrOverflow]
// if the result does not fit.
func (a Amount) MulRate(basisPoints int64) (Amount, error) {
	return mulDiv(int64(a), basisPoints, 10_000)
}

// Percent returns percent % of a, rounded like [Amount.MulRate]. Use MulRate
// for fractional percentages. It fails with [ErrOverflow] if the result does
// not fit.
func (a Amount) Percent(percent int64) (Amount, error) {
	return mulDiv(int64(a), percent, 100)
}

// mulDiv returns x*y/d rounded half away from zero, computing the product on
// 128 bits so that only the final result can overflow. d must be positive.
func mulDiv(x, y, d int64) (Amount, error) {
	neg := (x < 0) != (y < 0)
	hi, lo := bits.Mul64(abs(x), abs(y))
	ud := uint64(d)
	if hi >= ud {
		return 0, ErrOverflow
	}
	q, r := bits.Div64(hi, lo, ud)
	limit := uint64(math.MaxInt64)
	if neg {
		limit++ // -2⁶³ fits
	}
	if q > limit {
		return 0, ErrOverflow
	}
	if r >= ud-r { // 2r ≥ d: round half away from zero
		q++
	}
	if q > limit {
		return 0, ErrOverflow
	}
	if neg {
		return Amount(-q), nil // two's complement: -2⁶³ stays -2⁶³
	}
	return Amount(q), nil
}

func abs(x int64) uint64 {
	if x < 0 {
		return uint64(-x) // -MinInt64 wraps to itself, whose uint64 is 2^63
	}
	return uint64(x)
}

// Format returns the amount as people in Morocco read it: thousands separated
// by a space, a decimal comma, two decimals and the currency,
// "1 299,50 MAD" or "-12,00 MAD".
func (a Amount) Format() string {
	return string(a.AppendFormat(make([]byte, 0, 24)))
}

// AppendFormat appends [Amount.Format]'s text to b.
func (a Amount) AppendFormat(b []byte) []byte {
	units, cents, neg := a.split()
	var buf [20]byte
	digits := strconv.AppendUint(buf[:0], units, 10)
	if neg {
		b = append(b, '-')
	}
	for i := range len(digits) {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b = append(b, ' ')
		}
		b = append(b, digits[i])
	}
	b = append(b, ',', byte('0'+cents/10), byte('0'+cents%10))
	return append(b, " MAD"...)
}

// String returns [Amount.Format].
func (a Amount) String() string {
	return a.Format()
}

// Plain returns the amount as a bare decimal with a point and two decimals,
// "1299.50" or "-12.00", the form carrier APIs and CSV exports expect.
func (a Amount) Plain() string {
	units, cents, neg := a.split()
	b := make([]byte, 0, 24)
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendUint(b, units, 10)
	return string(append(b, '.', byte('0'+cents/10), byte('0'+cents%10)))
}

// split returns the dirhams and centimes of |a|, and whether a is negative.
func (a Amount) split() (units, cents uint64, neg bool) {
	m := abs(int64(a))
	return m / 100, m % 100, a < 0
}
