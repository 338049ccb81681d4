package phone

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireSameAsLibrary checks that Parse answers raw exactly as the library
// does, and reports whether the fast path took it.
func requireSameAsLibrary(t testing.TB, raw string) bool {
	t.Helper()
	got, gotErr := Parse(raw)
	want, wantErr := parseLibrary(raw, normalize(raw))
	require.Equal(t, want, got, "%q", raw)
	if wantErr == nil {
		require.NoError(t, gotErr, "%q", raw)
	} else {
		require.Error(t, gotErr, "%q", raw)
		require.Equal(t, wantErr.Error(), gotErr.Error(), "%q", raw)
	}
	_, fast := moroccanNSN(normalize(raw))
	return fast
}

// arabicIndic writes s's ASCII digits as Arabic-Indic (or Persian) ones.
func arabicIndic(s string, base rune) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return base + r - '0'
		}
		return r
	}, s)
}

// layout writes the nine national digits nsn the way a seller might.
func layout(r *rand.Rand, nsn string) string {
	national := []string{"", "0"}[r.IntN(2)] + nsn
	var s string
	switch r.IntN(7) {
	case 0, 1:
		s = "0" + nsn
	case 2:
		s = nsn
	case 3:
		s = "+212" + national
	case 4:
		s = "00212" + national
	case 5:
		s = "212" + national
	case 6:
		s = "+212 " + national
	}
	if r.IntN(2) == 0 { // separators between digits
		sep := []string{" ", ".", "-", " - ", "  "}[r.IntN(5)]
		var b strings.Builder
		for i, c := range s {
			b.WriteRune(c)
			if i+1 < len(s) && c != '+' && r.IntN(3) == 0 {
				b.WriteString(sep)
			}
		}
		s = b.String()
	}
	switch r.IntN(8) {
	case 0:
		s = arabicIndic(s, '٠')
	case 1:
		s = arabicIndic(s, '۰')
	case 2:
		s = "\u200e" + s + "\u200f"
	case 3:
		s = "  " + s + " "
	}
	return s
}

// mangle spoils a well-formed number in one of the ways seller data does.
func mangle(r *rand.Rand, s string) string {
	i := r.IntN(len(s) + 1)
	switch r.IntN(10) {
	case 0:
		return s[:i] + string(rune('0'+r.IntN(10))) + s[i:] // a digit too many
	case 1:
		if i < len(s) {
			return s[:i] + s[i+1:] // a character lost
		}
	case 2:
		return s + []string{".", "-", " ext 12", "#", " x3", ")", "/"}[r.IntN(7)]
	case 3:
		return []string{"(", "-", ".", "tel: ", "+", "++", "0", "00", "a", "/"}[r.IntN(10)] + s
	case 4:
		return s[:i] + []string{"(0)", "/", "a", "\t", "\u00a0", "+", ",", "*", "x"}[r.IntN(9)] + s[i:]
	case 5:
		return s + " / " + s
	case 6:
		return strings.ReplaceAll(s, "2", "")
	case 7:
		return "+" + strings.TrimLeft(s, "+0")
	case 8:
		return "0" + s
	}
	return s
}

func TestFastPathIsOn(t *testing.T) {
	k, table := maPrefixTable()
	require.NotNil(t, table, "the linked phone metadata no longer allows the Moroccan fast path")
	require.LessOrEqual(t, k, maxPrefix)
}

// TestFastPathMatchesLibrary checks the fast path against the library on
// numbers in every five-digit range Morocco's numbering could start with,
// laid out as sellers write them, and on spoiled variants of them.
func TestFastPathMatchesLibrary(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(4, 212))
	fast, slow := 0, 0
	for i := range 3 * 4000 { // every four-digit range three times
		nsn := fmt.Sprintf("%d%05d", 5000+i/3, r.IntN(100000))
		s := layout(r, nsn)
		if !requireSameAsLibrary(t, s) {
			t.Fatalf("%q did not take the fast path", s)
		}
		fast++
		if i%2 == 0 {
			if requireSameAsLibrary(t, mangle(r, s)) {
				fast++
			} else {
				slow++
			}
		}
	}
	// Numbers the fast path must leave to the library.
	for _, s := range []string{
		"", " ", "0", "06", "0612345678 / 0698765432", "(06) 12 34 56 78", "+212 (0)6 12 34 56 78",
		"tel: 0612345678", "0612345678 ext 12", "0412345678", "0912345678", "+33612345678",
		"0033 6 12 34 56 78", "06123456789", "061234567", "+2120", "212", "00212", "+212",
		"000212612345678", "0212612345678", "+00212612345678", "06.12.34.56.78.", "-0612345678",
		"٠٦١٢٣٤٥٦٧٨x", "0612345678\u00a0", "\t0612345678", "+ 212612345678", "2126123456",
	} {
		if requireSameAsLibrary(t, s) {
			fast++
		} else {
			slow++
		}
	}
	t.Logf("%d inputs through the fast path, %d through the library", fast, slow)
	require.Positive(t, slow)
}

func TestPrefixLen(t *testing.T) {
	t.Parallel()
	for pattern, want := range map[string]int{
		`[5-8]\d{8}`: 1,
		`(?:6(?:[0-79]\d|8[0-247-9])|7(?:[016-8]\d|2[0-8]|5[0-5]))\d{6}`: 3,
		`(?:592(?:4[0-2]|93)|80[89]\d\d)\d{4}`:                           5,
		`89\d{7}`:                                                        2,
		`NA`:                                                             2,
		`\d{9}`:                                                          0,
	} {
		got, ok := prefixLen(pattern)
		require.True(t, ok, pattern)
		require.Equal(t, want, got, pattern)
	}
	for _, pattern := range []string{`[5-8]\d*`, `(?:12|3)\d{7}`, `6\d{6,8}`, `6[0-8]{8}x?`, `(`} {
		_, ok := prefixLen(pattern)
		require.False(t, ok, pattern)
	}
}

// FuzzFastPath checks that Parse, fast path or not, answers every text
// exactly as the phonenumbers library does.
func FuzzFastPath(f *testing.F) {
	for _, s := range []string{
		"0612345678", "06 12 34 56 78", "06.12.34.56.78", "06-12-34-56-78", "+212612345678",
		"+212 6-12-34-56-78", "00212612345678", "212612345678", "612345678", "+2120612345678",
		"002120612345678", "2120612345678", "٠٦١٢٣٤٥٦٧٨", "۰۶۱۲۳۴۵۶۷۸", "\u200e+212 612-345678\u200e",
		"0522123456", "0800123456", "0592412345", "0893456789", "0737265167", "06123456",
		"0612345678 / 0698765432", "+33612345678", "(06) 12 34 56 78", "0612345678.", " 0612345678 ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		requireSameAsLibrary(t, raw)
	})
}

// BenchmarkParse compares Parse with the library alone on a mix of the
// layouts sellers use.
func BenchmarkParse(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	in := make([]string, 1024)
	for i := range in {
		in[i] = layout(r, fmt.Sprintf("6%08d", r.IntN(100_000_000)))
	}
	b.Run("fast", func(b *testing.B) {
		for i := range b.N {
			_, _ = Parse(in[i%len(in)])
		}
	})
	b.Run("library", func(b *testing.B) {
		for i := range b.N {
			s := in[i%len(in)]
			_, _ = parseLibrary(s, normalize(s))
		}
	})
}
