package commission_test

import (
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
)

var jan = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func pct(id string, prio int, bp int64) commission.Rule {
	return commission.Rule{ID: id, Name: "Règle " + id, Beneficiary: commission.BeneficiaryAgent,
		Trigger: commission.TriggerDelivered, Kind: commission.KindPercentage, RateBP: bp,
		Priority: prio, ValidFrom: jan}
}

func fixed(id string, prio int, amt money.Amount) commission.Rule {
	r := pct(id, prio, 0)
	r.Kind, r.RateBP, r.Fixed = commission.KindFixed, 0, amt
	return r
}

func order(amount money.Amount) commission.Order {
	return commission.Order{Trigger: commission.TriggerDelivered, ParcelID: "p1", Store: "s1", Agent: "a1",
		Carrier: "coliix", City: "casablanca", Category: "beauty", Amount: amount, At: jan.AddDate(0, 1, 0),
		AgentVolume: 1, StoreVolume: 1}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	tiered := pct("tier", 1, 0)
	tiered.Kind, tiered.RateBP, tiered.TierBasis = commission.KindTiered, 0, commission.BasisOrderAmount
	tiered.Tiers = []commission.Tier{{From: 0, To: 200_00, RateBP: 500}, {From: 200_00, To: 500_00, RateBP: 700, Fixed: 1_00}, {From: 1000_00, RateBP: 1000}}
	volume := tiered
	volume.ID, volume.TierBasis = "vol", commission.BasisMonthlyVolume
	volume.Tiers = []commission.Tier{{From: 1, To: 100, Fixed: 5_00}, {From: 100, Fixed: 8_00}}
	stacking := fixed("bonus", 0, 2_00)
	stacking.Stacks = true
	casaOnly := fixed("casa", 0, 15_00)
	casaOnly.Conditions.Cities = []string{"casablanca"}
	rabatOnly := fixed("rabat", 0, 15_00)
	rabatOnly.Conditions.Cities = []string{"rabat"}
	expired := pct("old", 0, 900)
	expired.ValidUntil = jan.AddDate(0, 1, 0) // the order is exactly at ValidUntil: excluded
	future := pct("future", 0, 900)
	future.ValidFrom = jan.AddDate(0, 2, 0)
	confirmed := fixed("conf", 0, 3_00)
	confirmed.Trigger = commission.TriggerConfirmed
	platform := pct("fee", 0, 250)
	platform.Beneficiary = commission.BeneficiaryPlatform
	ranged := fixed("range", 0, 4_00)
	ranged.Conditions.MinAmount, ranged.Conditions.MaxAmount = 100_00, 300_00
	other := fixed("otheragent", 0, 9_00)
	other.Conditions.Agents = []string{"a2"}

	tests := []struct {
		name   string
		rules  []commission.Rule
		order  commission.Order
		want   []string // rule id=amount
		wantIn string   // substring of the first entry's calculation
	}{
		{"percentage half up", []commission.Rule{pct("r", 0, 333)}, order(249_00), []string{"r=829"}, "3,33 % × 249,00 MAD = 8,29 MAD"},
		{"percentage rounds half away from zero", []commission.Rule{pct("r", 0, 50)}, order(1_00), []string{"r=1"}, "0,50 %"},
		{"fixed", []commission.Rule{fixed("f", 0, 10_00)}, order(249_00), []string{"f=1000"}, "forfait 10,00 MAD"},
		{"first match wins", []commission.Rule{pct("a", 1, 500), pct("b", 2, 900)}, order(100_00), []string{"a=500"}, ""},
		{"priority not input order", []commission.Rule{pct("b", 2, 900), pct("a", 1, 500)}, order(100_00), []string{"a=500"}, ""},
		{"stacking rule adds", []commission.Rule{stacking, pct("a", 1, 500), pct("b", 2, 900)}, order(100_00), []string{"bonus=200", "a=500"}, ""},
		{"condition city matches", []commission.Rule{casaOnly, pct("a", 1, 500)}, order(100_00), []string{"casa=1500"}, ""},
		{"condition city skips", []commission.Rule{rabatOnly, pct("a", 1, 500)}, order(100_00), []string{"a=500"}, ""},
		{"condition agent skips", []commission.Rule{other}, order(100_00), nil, ""},
		{"range inside", []commission.Rule{ranged}, order(300_00), []string{"range=400"}, ""},
		{"range below", []commission.Rule{ranged}, order(99_99), nil, ""},
		{"expired at its end", []commission.Rule{expired, pct("a", 1, 500)}, order(100_00), []string{"a=500"}, ""},
		{"not yet valid", []commission.Rule{future}, order(100_00), nil, ""},
		{"other trigger", []commission.Rule{confirmed}, order(100_00), nil, ""},
		{"beneficiaries independent", []commission.Rule{platform, pct("a", 1, 500)}, order(100_00), []string{"a=500", "fee=250"}, ""},
		{"tier low", []commission.Rule{tiered}, order(199_99), []string{"tier=1000"}, "palier 0,00 MAD à 200,00 MAD"},
		{"tier middle with fixed", []commission.Rule{tiered}, order(200_00), []string{"tier=1500"}, "7,00 % × 200,00 MAD + forfait 1,00 MAD = 15,00 MAD"},
		{"tier gap pays nothing and stops", []commission.Rule{tiered, pct("z", 9, 100)}, order(700_00), nil, ""},
		{"tier open ended", []commission.Rule{tiered}, order(2000_00), []string{"tier=20000"}, "dès 1 000,00 MAD"},
		{"volume tier", []commission.Rule{volume}, func() commission.Order { o := order(1_00); o.AgentVolume = 150; return o }(), []string{"vol=800"}, "100 commandes et plus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, commission.ValidateSet(tt.rules))
			rules := append([]commission.Rule(nil), tt.rules...)
			commission.Sort(rules)
			entries, err := commission.Evaluate(rules, tt.order)
			require.NoError(t, err)
			var got []string
			for _, e := range entries {
				got = append(got, e.RuleID+"="+strconv.FormatInt(int64(e.Amount), 10))
				require.Equal(t, tt.order.Amount, e.Base)
				require.NotEmpty(t, e.RuleName)
			}
			require.Equal(t, tt.want, got)
			if tt.wantIn != "" {
				require.Contains(t, entries[0].Calculation, tt.wantIn)
			}
		})
	}
}

func TestEvaluateOverflow(t *testing.T) {
	t.Parallel()
	r := fixed("f", 0, math.MaxInt64)
	r.Kind, r.Fixed, r.TierBasis = commission.KindTiered, 0, commission.BasisOrderAmount
	r.Tiers = []commission.Tier{{From: 0, RateBP: 100, Fixed: math.MaxInt64}}
	_, err := commission.Evaluate([]commission.Rule{r}, order(100_00))
	require.ErrorIs(t, err, money.ErrOverflow)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tiered := func(tiers ...commission.Tier) commission.Rule {
		r := pct("t", 0, 0)
		r.Kind, r.TierBasis, r.Tiers = commission.KindTiered, commission.BasisOrderAmount, tiers
		return r
	}
	mod := func(r commission.Rule, f func(*commission.Rule)) commission.Rule { f(&r); return r }
	tests := []struct {
		name  string
		rule  commission.Rule
		field string
	}{
		{"negative rate", pct("r", 0, -5), "rateBp"},
		{"rate above 100%", pct("r", 0, 10_001), "rateBp"},
		{"zero rate", pct("r", 0, 0), "rateBp"},
		{"negative fixed", fixed("f", 0, -1), "fixed"},
		{"no id", mod(pct("r", 0, 5), func(r *commission.Rule) { r.ID = " " }), "id"},
		{"unknown kind", mod(pct("r", 0, 5), func(r *commission.Rule) { r.Kind = "bonus" }), "kind"},
		{"unknown trigger", mod(pct("r", 0, 5), func(r *commission.Rule) { r.Trigger = "shipped" }), "trigger"},
		{"unknown beneficiary", mod(pct("r", 0, 5), func(r *commission.Rule) { r.Beneficiary = "seller" }), "beneficiary"},
		{"no tiers", tiered(), "tiers"},
		{"overlapping tiers", tiered(commission.Tier{From: 0, To: 100, RateBP: 1}, commission.Tier{From: 50, RateBP: 2}), "tiers[1].from"},
		{"unsorted tiers", tiered(commission.Tier{From: 100, To: 200, RateBP: 1}, commission.Tier{From: 0, To: 50, RateBP: 2}), "tiers[1].from"},
		{"unbounded middle tier", tiered(commission.Tier{From: 0, RateBP: 1}, commission.Tier{From: 50, RateBP: 2}), "tiers[0].to"},
		{"empty tier", tiered(commission.Tier{From: 0, To: 10}), "tiers[0]"},
		{"inverted tier", tiered(commission.Tier{From: 10, To: 5, RateBP: 1}), "tiers[0].to"},
		{"tier on a fixed rule", mod(fixed("f", 0, 1), func(r *commission.Rule) { r.Tiers = []commission.Tier{{RateBP: 1}} }), "tiers"},
		{"impossible range", mod(pct("r", 0, 5), func(r *commission.Rule) { r.Conditions.MinAmount, r.Conditions.MaxAmount = 200, 100 }), "conditions.maxAmount"},
		{"negative min", mod(pct("r", 0, 5), func(r *commission.Rule) { r.Conditions.MinAmount = -1 }), "conditions.minAmount"},
		{"empty city", mod(pct("r", 0, 5), func(r *commission.Rule) { r.Conditions.Cities = []string{""} }), "conditions.cities[0]"},
		{"empty validity", mod(pct("r", 0, 5), func(r *commission.Rule) { r.ValidUntil = r.ValidFrom }), "validUntil"},
		{"no start", mod(pct("r", 0, 5), func(r *commission.Rule) { r.ValidFrom = time.Time{} }), "validFrom"},
		{"negative priority", pct("r", -1, 5), "priority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.rule.Validate()
			require.ErrorIs(t, err, commission.ErrInvalid)
			var fe *commission.FieldError
			require.ErrorAs(t, err, &fe)
			require.Contains(t, fieldsOf(err), tt.field, "error: %v", err)
		})
	}
}

// fieldsOf lists the fields named by a joined validation error.
func fieldsOf(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(*commission.FieldError); ok {
			out = append(out, fe.Field)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		} else if e := errors.Unwrap(err); e != nil {
			walk(e)
		}
	}
	walk(err)
	return out
}

func TestValidateSetContradictions(t *testing.T) {
	t.Parallel()
	a, b := pct("a", 1, 100), pct("b", 1, 200)
	err := commission.ValidateSet([]commission.Rule{a, b})
	require.ErrorIs(t, err, commission.ErrInvalid)
	require.ErrorContains(t, err, `contradicts rule "a"`)

	b.Stacks = true // a stacking rule at the same priority is explicit
	require.NoError(t, commission.ValidateSet([]commission.Rule{a, b}))

	b.Stacks = false
	a.ValidUntil = jan.AddDate(0, 1, 0)
	b.ValidFrom = a.ValidUntil // a successor version of the rule
	require.NoError(t, commission.ValidateSet([]commission.Rule{a, b}))

	require.ErrorContains(t, commission.ValidateSet([]commission.Rule{a, a}), "used twice")
}

func TestDecode(t *testing.T) {
	t.Parallel()
	r, err := commission.Decode([]byte(`{"id":"r1","name":"Livraison","beneficiary":"agent","trigger":"delivered",
		"kind":"percentage","rateBp":250,"conditions":{"cities":["rabat","casablanca","rabat"]},"priority":1,"validFrom":"2026-01-01T00:00:00Z"}`))
	require.NoError(t, err)
	require.Equal(t, []string{"casablanca", "rabat"}, r.Conditions.Cities)
	for _, bad := range []string{
		`{"id":"r1","bogus":1}`,
		`{"id":"r1"} {}`,
		`[]`,
		`{"id":"r1","name":"x","beneficiary":"agent","trigger":"delivered","kind":"percentage","rateBp":-1,"priority":1,"validFrom":"2026-01-01T00:00:00Z"}`,
	} {
		_, err := commission.Decode([]byte(bad))
		require.ErrorIs(t, err, commission.ErrInvalid, bad)
	}
}

func TestFormatRate(t *testing.T) {
	for bp, want := range map[int64]string{0: "0,00 %", 5: "0,05 %", 250: "2,50 %", 1250: "12,50 %", 10000: "100,00 %", -5: "-0,05 %", -250: "-2,50 %"} {
		if got := commission.FormatRate(bp); got != want {
			t.Errorf("FormatRate(%d) = %q, want %q", bp, got, want)
		}
	}
}
