package commission_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
)

// randomRules returns a valid rule set of every kind with random conditions.
func randomRules(rng *rand.Rand) []commission.Rule {
	var rules []commission.Rule
	for i := range 1 + rng.IntN(6) {
		r := pct(fmt.Sprintf("r%d", i), i, 1+rng.Int64N(commission.MaxRateBP))
		r.Stacks = rng.IntN(3) == 0
		if rng.IntN(2) == 0 {
			r.Beneficiary = commission.BeneficiaryPlatform
		}
		switch rng.IntN(3) {
		case 1:
			r.Kind, r.RateBP, r.Fixed = commission.KindFixed, 0, money.Amount(1+rng.Int64N(100_00))
		case 2:
			r.Kind, r.RateBP, r.TierBasis = commission.KindTiered, 0, commission.BasisOrderAmount
			r.Tiers = []commission.Tier{{From: 0, To: 300_00, RateBP: 300}, {From: 300_00, RateBP: 500, Fixed: 2_00}}
		}
		if rng.IntN(3) == 0 {
			r.Conditions.Cities = []string{[]string{"casablanca", "rabat"}[rng.IntN(2)]}
		}
		rules = append(rules, r)
	}
	commission.Sort(rules)
	return rules
}

func randomOrder(rng *rand.Rand, i int) commission.Order {
	o := order(money.Amount(rng.Int64N(2000_00)))
	o.ParcelID = fmt.Sprintf("p%d", i)
	o.City = []string{"casablanca", "rabat", "fes"}[rng.IntN(3)]
	return o
}

// TestLedgerProperties checks, over random rule sets and orders, that
// re-posting changes nothing, that a reversal cancels exactly its entry, and
// that the balance is the sum of what was not reversed.
func TestLedgerProperties(t *testing.T) {
	t.Parallel()
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		rules := randomRules(rng)
		var l commission.Ledger
		want := map[commission.Beneficiary]money.Amount{}
		reversed := map[string]bool{}
		perParcel := map[string][]commission.Entry{}
		for i := range 50 {
			o := randomOrder(rng, i)
			entries, err := commission.Evaluate(rules, o)
			require.NoError(t, err)
			require.Equal(t, len(entries), l.Post(o.ParcelID, entries))
			require.Zero(t, l.Post(o.ParcelID, entries), "re-posting must change nothing")
			perParcel[o.ParcelID] = entries
			if rng.IntN(4) == 0 {
				n, err := l.ReverseParcel(o.ParcelID)
				require.NoError(t, err)
				require.Equal(t, len(entries), n)
				n, err = l.ReverseParcel(o.ParcelID)
				require.NoError(t, err)
				require.Zero(t, n, "reversing twice must change nothing")
				reversed[o.ParcelID] = true
				continue
			}
			for _, e := range entries {
				want[e.Beneficiary] += e.Amount
			}
		}
		for _, b := range []commission.Beneficiary{commission.BeneficiaryAgent, commission.BeneficiaryPlatform} {
			got, err := l.Balance(b)
			require.NoError(t, err)
			require.Equal(t, want[b], got, "seed %d beneficiary %s", seed, b)
		}
		// Every reversal names an earn posting of the same rule and parcel
		// and cancels it to the centime.
		earn := map[commission.Key]commission.Posting{}
		for _, p := range l.Postings() {
			if p.Kind == commission.KindEarn {
				earn[p.Key()] = p
			}
		}
		for _, p := range l.Postings() {
			if p.Kind != commission.KindReversal {
				continue
			}
			require.True(t, reversed[p.ParcelID])
			orig, ok := earn[commission.Key{RuleID: p.RuleID, ParcelID: p.ParcelID, Kind: commission.KindEarn}]
			require.True(t, ok)
			require.Zero(t, orig.Amount+p.Amount)
			require.Equal(t, orig.Base, p.Base)
		}
	}
}

// TestEvaluateDeterministic: the order in which rules are given never
// changes the entries, once sorted.
func TestEvaluateDeterministic(t *testing.T) {
	t.Parallel()
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 11))
		rules := randomRules(rng)
		o := randomOrder(rng, 0)
		want, err := commission.Evaluate(rules, o)
		require.NoError(t, err)
		shuffled := append([]commission.Rule(nil), rules...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		commission.Sort(shuffled)
		got, err := commission.Evaluate(shuffled, o)
		require.NoError(t, err)
		require.Equal(t, want, got)
		for _, e := range got {
			require.GreaterOrEqual(t, e.Amount, money.Amount(0), "valid rules never pay a negative amount")
		}
	}
}
