package commission_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
)

// FuzzDecode feeds arbitrary JSON to Decode: it must never panic, every error
// must wrap ErrInvalid, a decoded rule must validate, re-encode and decode to
// the same rule, and evaluating it must either succeed with non-negative
// amounts or fail with an overflow.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"r1","name":"Livraison","beneficiary":"agent","trigger":"delivered","kind":"percentage","rateBp":250,"conditions":{},"priority":1,"validFrom":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := commission.Decode(data)
		if err != nil {
			if !errors.Is(err, commission.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded rule does not validate: %v", err)
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := commission.Decode(enc)
		if err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		enc2, _ := json.Marshal(again)
		if string(enc) != string(enc2) {
			t.Fatalf("round trip changed the rule:\n%s\n%s", enc, enc2)
		}
		for _, amt := range []money.Amount{0, 1, 249_00, 1 << 62} {
			o := commission.Order{Trigger: r.Trigger, Amount: amt, At: r.ValidFrom, AgentVolume: 10, StoreVolume: 10}
			entries, err := commission.Evaluate([]commission.Rule{r}, o)
			if err != nil {
				if !errors.Is(err, money.ErrOverflow) {
					t.Fatalf("evaluate: %v", err)
				}
				continue
			}
			for _, e := range entries {
				if e.Amount < 0 {
					t.Fatalf("negative amount %d for %s", e.Amount, enc)
				}
			}
		}
	})
}
