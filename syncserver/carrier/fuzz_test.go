package carrier_test

import (
	"encoding/json"
	"testing"

	"github.com/leadify/leadify/syncserver/carrier"
)

func FuzzParseLocalTime(f *testing.F) {
	for _, s := range []string{"2026-03-15 13:17 :11", "1773580631", "15/03/2026 13:17", "2026-03-15T13:17:11+01:00", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, ok := carrier.ParseLocalTime(s)
		if ok == ts.IsZero() && ok {
			t.Fatalf("ok with zero time for %q", s)
		}
	})
}

func FuzzFlex(f *testing.F) {
	for _, s := range []string{`200`, `true`, `"200"`, `null`, `{}`, `"x`, `1e400`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v carrier.Flex
		_ = json.Unmarshal([]byte(s), &v)
	})
}

func FuzzFold(f *testing.F) {
	for _, s := range []string{"Livré ", "Numero_Erroné", "Ǆ̀", "\u0301x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := carrier.Fold(s)
		if carrier.Fold(k) != k {
			t.Fatalf("Fold not idempotent: %q → %q → %q", s, k, carrier.Fold(k))
		}
	})
}
