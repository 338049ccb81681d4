package sheets

import (
	"strings"
	"testing"
)

// FuzzParseRange reads arbitrary connection ranges: it never panics, what it
// accepts names a sheet and letter columns, and the A1 ranges it then asks
// the API for parse back to the same sheet and columns.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"Sheet1", "'My Sheet'!A:L", "Commandes!B:M", "'It''s'!A1:Z99", "!A:B", "Sheet1!1:2", "'x", "x!", "a!b!C:D", "'!'!A:A", "Feuille 1!aa:zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			return
		}
		if r.Sheet == "" || !isLetters(r.FirstCol) || r.LastCol != "" && !isLetters(r.LastCol) {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		a1 := r.rows(2, 9)
		back, err := ParseRange(a1)
		if err != nil {
			t.Fatalf("%q → %q does not parse back: %v", s, a1, err)
		}
		if back.Sheet != r.Sheet || back.FirstCol != r.FirstCol || back.LastCol != r.LastCol {
			t.Fatalf("%q → %q → %+v, want %+v", s, a1, back, r)
		}
		if !strings.HasSuffix(a1, "9") {
			t.Fatalf("%q: rows missing in %q", s, a1)
		}
	})
}
