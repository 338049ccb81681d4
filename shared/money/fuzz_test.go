package money_test

import (
	"errors"
	"math/big"
	"testing"

	"github.com/leadify/leadify/shared/money"
	"github.com/stretchr/testify/require"
)

// FuzzParse checks that Parse never panics, fails only with its documented
// reasons, never returns a negative amount, and reads back what Format and
// Plain write.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"249,00", "120 DH", "1 299.50 MAD", "149.9", "1,299.50", "1.299,50", "450",
		" 120dh ", "١٢٠", "120 درهم", "MAD 99", "gratuit", "", "-5", "12.345",
		"99999999999999999999", "1.29.5", "2 x 120", "١٬٢٩٩٫٥٠",
	} {
		f.Add(s)
	}
	reasons := []error{
		money.ErrEmpty, money.ErrNoNumber, money.ErrNegative, money.ErrMultipleNumbers,
		money.ErrUnexpectedText, money.ErrSyntax, money.ErrPrecision, money.ErrOverflow,
	}
	f.Fuzz(func(t *testing.T, in string) {
		a, err := money.Parse(in)
		if err != nil {
			var pe *money.ParseError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, in, pe.Input)
			known := false
			for _, r := range reasons {
				known = known || errors.Is(err, r)
			}
			require.True(t, known, "undocumented failure: %v", err)
			return
		}
		require.GreaterOrEqual(t, a, money.Amount(0))
		for _, s := range []string{a.Format(), a.Plain()} {
			back, err := money.Parse(s)
			require.NoError(t, err, "reparse %q", s)
			require.Equal(t, a, back, "reparse %q", s)
		}
	})
}

// FuzzMulRate compares MulRate with exact big-integer arithmetic.
func FuzzMulRate(f *testing.F) {
	f.Add(int64(24900), int64(250))
	f.Add(int64(-10), int64(500))
	f.Add(int64(9223372036854775807), int64(5000))
	f.Add(int64(-9223372036854775808), int64(10000))
	f.Fuzz(func(t *testing.T, a, bp int64) {
		got, err := money.Amount(a).MulRate(bp)

		// want = sign × ⌊(|a·bp| + 5000) / 10000⌋
		p := new(big.Int).Mul(big.NewInt(a), big.NewInt(bp))
		q := new(big.Int).Abs(p)
		q.Add(q, big.NewInt(5000)).Quo(q, big.NewInt(10000))
		if p.Sign() < 0 {
			q.Neg(q)
		}
		if !q.IsInt64() {
			require.ErrorIs(t, err, money.ErrOverflow)
			return
		}
		require.NoError(t, err)
		require.Equal(t, q.Int64(), int64(got))
	})
}
