package money_test

import (
	"errors"
	"math"
	"testing"

	"github.com/leadify/leadify/shared/money"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want money.Amount
	}{
		{"249,00", 24900},
		{"120 DH", 12000},
		{"1 299.50 MAD", 129950},
		{"149.9", 14990},
		{"1,299.50", 129950},
		{"1.299,50", 129950},
		{"450", 45000},
		{" 120dh ", 12000},
		{"١٢٠", 12000},
		{"۱۲۰", 12000},
		{"120 درهم", 12000},
		{"MAD 99", 9900},
		{"MAD99", 9900},
		{"99 Dhs", 9900},
		{"99 dh.", 9900},
		{"99 dirhams", 9900},
		{"١٢٠ درهم", 12000},
		{"٩٩ د.م.", 9900},
		{"١٬٢٩٩٫٥٠", 129950},
		{"\u200f١٢٠\u200f", 12000},
		{"1\u00a0299,50\u00a0MAD", 129950}, // no-break spaces
		{"1\u202f299,50 MAD", 129950},      // narrow no-break space
		{"12.345", 1234500},                // lone separator + 3 digits: thousands
		{"1,500", 150000},
		{"1.500", 150000},
		{"0.500", 50},        // cannot be thousands: decimal, trailing zero dropped
		{"1234.500", 123450}, // likewise
		{"149.9000", 14990},  // extra decimals that are zeros
		{"1 000 000", 100000000},
		{"1.000.000", 100000000},
		{"1,000,000.05", 100000005},
		{"1 000 000,05 MAD", 100000005},
		{"0", 0},
		{"0,00", 0},
		{"0,5", 50},
		{"007", 700},
		{"1299", 129900},
		{"92233720368547758.07", math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := money.Parse(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseFixturePrices(t *testing.T) {
	t.Parallel()
	for _, tt := range fixturePrices {
		got, err := money.Parse(tt.in)
		require.NoError(t, err, "input %q", tt.in)
		require.Equal(t, money.Amount(tt.want), got, "input %q", tt.in)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want error
	}{
		{"", money.ErrEmpty},
		{"   ", money.ErrEmpty},
		{"\u200f", money.ErrEmpty},
		{"gratuit", money.ErrNoNumber},
		{"Gratuit", money.ErrNoNumber},
		{"MAD", money.ErrNoNumber},
		{"مجاني", money.ErrNoNumber},
		{"-5", money.ErrNegative},
		{"- 5", money.ErrNegative},
		{"MAD -5", money.ErrNegative},
		{"−120 DH", money.ErrNegative},
		{"2 x 120", money.ErrMultipleNumbers},
		{"120/150", money.ErrMultipleNumbers},
		{"120 - 150", money.ErrMultipleNumbers},
		{"120 DH + 30 livraison", money.ErrMultipleNumbers},
		{"1  299", money.ErrMultipleNumbers}, // two spaces: not a group separator
		{"120 DH livraison", money.ErrUnexpectedText},
		{"prix: 120", money.ErrUnexpectedText},
		{"120 EUR", money.ErrUnexpectedText},
		{"+120", money.ErrUnexpectedText},
		{"120.", money.ErrUnexpectedText},
		{"120,-", money.ErrUnexpectedText},
		{"1.29.5", money.ErrSyntax},
		{"1,299,50", money.ErrSyntax},
		{"1 29", money.ErrSyntax},
		{"12 34,50", money.ErrSyntax},
		{"1.299.50", money.ErrSyntax},
		{"1,299 50", money.ErrSyntax},
		{"1.299,500.00", money.ErrSyntax},
		{"1,2.3", money.ErrSyntax},
		{"0,299.50", money.ErrSyntax},
		{"1299,000.50", money.ErrSyntax},
		{"12.3456", money.ErrPrecision},
		{"1,299.505", money.ErrPrecision},
		{"0.001", money.ErrPrecision},
		{"92233720368547758.08", money.ErrOverflow},
		{"99999999999999999999999", money.ErrOverflow},
		{"1 000 000 000 000 000 000", money.ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := money.Parse(tt.in)
			require.ErrorIs(t, err, tt.want)
			require.Zero(t, got)
			var pe *money.ParseError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.in, pe.Input)
			require.Contains(t, err.Error(), "parse amount")
		})
	}
}

func TestParseErrorMessages(t *testing.T) {
	t.Parallel()
	_, err := money.Parse("gratuit")
	require.EqualError(t, err, `parse amount "gratuit": no number in text`)
	_, err = money.Parse("120 DH livraison")
	require.EqualError(t, err, `parse amount "120 DH livraison": unexpected text "livraison"`)
	_, err = money.Parse("-5")
	require.EqualError(t, err, `parse amount "-5": negative amount`)
}

func TestFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in            money.Amount
		format, plain string
	}{
		{0, "0,00 MAD", "0.00"},
		{5, "0,05 MAD", "0.05"},
		{50, "0,50 MAD", "0.50"},
		{12000, "120,00 MAD", "120.00"},
		{99999, "999,99 MAD", "999.99"},
		{100000, "1 000,00 MAD", "1000.00"},
		{129950, "1 299,50 MAD", "1299.50"},
		{100000005, "1 000 000,05 MAD", "1000000.05"},
		{-1200, "-12,00 MAD", "-12.00"},
		{-129950, "-1 299,50 MAD", "-1299.50"},
		{math.MaxInt64, "92 233 720 368 547 758,07 MAD", "92233720368547758.07"},
		{math.MinInt64, "-92 233 720 368 547 758,08 MAD", "-92233720368547758.08"},
	}
	for _, tt := range tests {
		t.Run(tt.plain, func(t *testing.T) {
			require.Equal(t, tt.format, tt.in.Format())
			require.Equal(t, tt.format, tt.in.String())
			require.Equal(t, tt.plain, tt.in.Plain())
			if tt.in >= 0 {
				for _, s := range []string{tt.format, tt.plain} {
					back, err := money.Parse(s)
					require.NoError(t, err, "round trip of %q", s)
					require.Equal(t, tt.in, back)
				}
			}
		})
	}
}

func TestUnits(t *testing.T) {
	t.Parallel()
	require.Equal(t, money.Amount(12050), 120*money.Dirham+50*money.Centime)
}

func TestAddSub(t *testing.T) {
	t.Parallel()
	const maxA, minA = money.Amount(math.MaxInt64), money.Amount(math.MinInt64)
	tests := []struct {
		a, b          money.Amount
		sum, diff     money.Amount
		sumOK, diffOK bool
	}{
		{12000, 3000, 15000, 9000, true, true},
		{-500, 200, -300, -700, true, true},
		{maxA, 1, 0, maxA - 1, false, true},
		{maxA, -1, maxA - 1, 0, true, false},
		{minA, -1, 0, minA + 1, false, true},
		{minA, 1, minA + 1, 0, true, false},
		{0, minA, minA, 0, true, false},
		{-1, minA, 0, maxA, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.a.Plain()+"±"+tt.b.Plain(), func(t *testing.T) {
			sum, err := tt.a.Add(tt.b)
			if tt.sumOK {
				require.NoError(t, err)
				require.Equal(t, tt.sum, sum)
			} else {
				require.ErrorIs(t, err, money.ErrOverflow)
			}
			diff, err := tt.a.Sub(tt.b)
			if tt.diffOK {
				require.NoError(t, err)
				require.Equal(t, tt.diff, diff)
			} else {
				require.ErrorIs(t, err, money.ErrOverflow)
			}
		})
	}
}

func TestSum(t *testing.T) {
	t.Parallel()
	got, err := money.Sum()
	require.NoError(t, err)
	require.Zero(t, got)
	got, err = money.Sum(24900, 3500, -1000)
	require.NoError(t, err)
	require.Equal(t, money.Amount(27400), got)
	_, err = money.Sum(math.MaxInt64, 1, -5)
	require.ErrorIs(t, err, money.ErrOverflow)
}

func TestMul(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a    money.Amount
		n    int64
		want money.Amount
		err  error
	}{
		{17900, 2, 35800, nil},
		{17900, 0, 0, nil},
		{17900, -1, -17900, nil},
		{math.MaxInt64, 1, math.MaxInt64, nil},
		{math.MaxInt64, 2, 0, money.ErrOverflow},
		{math.MinInt64, 1, math.MinInt64, nil},
		{math.MinInt64, -1, 0, money.ErrOverflow},
		{1 << 62, 2, 0, money.ErrOverflow},
		{-(1 << 62), 2, math.MinInt64, nil},
	}
	for _, tt := range tests {
		got, err := tt.a.Mul(tt.n)
		require.ErrorIs(t, err, tt.err, "%d × %d", tt.a, tt.n)
		require.Equal(t, tt.want, got, "%d × %d", tt.a, tt.n)
	}
}

func TestMulRateRoundsHalfAwayFromZero(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a    money.Amount
		bp   int64
		want money.Amount
	}{
		{10000, 1000, 1000},   // 10 % of 100 MAD
		{24900, 250, 623},     // 2.5 % of 249: 6.225 → 6.23
		{24900, -250, -623},   // negative rate rounds the same way
		{-24900, 250, -623},   // so does a negative amount
		{-24900, -250, 623},   //
		{10, 500, 1},          // 0.5 centime → 1
		{-10, 500, -1},        // -0.5 centime → -1
		{9, 500, 0},           // 0.45 centime → 0
		{-9, 500, 0},          //
		{30, 5000, 15},        // exact
		{1, 5000, 1},          // 0.5 → 1
		{1, 4999, 0},          //
		{3, 3333, 1},          // 0.9999 → 1
		{12345, 10000, 12345}, // 100 %
		{12345, 0, 0},         //
		{math.MaxInt64, 10000, math.MaxInt64},
		{math.MinInt64, 10000, math.MinInt64},
		{math.MaxInt64, 5000, 4611686018427387904}, // (2⁶³-1)/2 = …903.5 → …904
	}
	for _, tt := range tests {
		got, err := tt.a.MulRate(tt.bp)
		require.NoError(t, err, "%d × %d bp", tt.a, tt.bp)
		require.Equal(t, tt.want, got, "%d × %d bp", tt.a, tt.bp)
	}
}

func TestMulRateOverflow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a  money.Amount
		bp int64
	}{
		{math.MaxInt64, 10001},
		{math.MaxInt64, math.MaxInt64},
		{math.MinInt64, -10000},
		{math.MinInt64, math.MinInt64},
		{math.MaxInt64 / 2, 20001},
	} {
		_, err := tt.a.MulRate(tt.bp)
		require.True(t, errors.Is(err, money.ErrOverflow), "%d × %d bp", tt.a, tt.bp)
	}
}

func TestPercent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a    money.Amount
		pct  int64
		want money.Amount
		err  error
	}{
		{24900, 10, 2490, nil},
		{24950, 10, 2495, nil},
		{999, 5, 50, nil},   // 49.95 → 50
		{-999, 5, -50, nil}, // -49.95 → -50
		{17900, 100, 17900, nil},
		{17900, 0, 0, nil},
		{math.MaxInt64, 101, 0, money.ErrOverflow},
		{math.MaxInt64, math.MinInt64, 0, money.ErrOverflow},
	}
	for _, tt := range tests {
		got, err := tt.a.Percent(tt.pct)
		require.ErrorIs(t, err, tt.err, "%d%% of %d", tt.pct, tt.a)
		require.Equal(t, tt.want, got, "%d%% of %d", tt.pct, tt.a)
	}
}
