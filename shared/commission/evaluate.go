package commission

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/leadify/leadify/shared/money"
)

// Matches reports whether the rule applies to the order: same trigger, order
// time within the validity period, and every condition met.
func (r Rule) Matches(o Order) bool {
	if r.Trigger != o.Trigger || o.At.Before(r.ValidFrom) {
		return false
	}
	if !r.ValidUntil.IsZero() && !o.At.Before(r.ValidUntil) {
		return false
	}
	c := r.Conditions
	if o.Amount < c.MinAmount || (c.MaxAmount != 0 && o.Amount > c.MaxAmount) {
		return false
	}
	return in(c.Categories, o.Category) && in(c.Cities, o.City) && in(c.Carriers, o.Carrier) &&
		in(c.Stores, o.Store) && in(c.Agents, o.Agent)
}

func in(list []string, v string) bool {
	return len(list) == 0 || slices.Contains(list, v)
}

// Sort orders rules the way [Evaluate] considers them: by beneficiary, then
// ascending priority, then id, so evaluation never depends on input order.
func Sort(rules []Rule) {
	slices.SortStableFunc(rules, func(a, b Rule) int {
		return cmp.Or(cmp.Compare(a.Beneficiary, b.Beneficiary), cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.ID, b.ID))
	})
}

// Evaluate returns what the rules pay for one order. For each beneficiary
// separately, rules are considered in ascending priority (ties by id): every
// matching rule applies, and evaluation stops after the first matching rule
// that does not stack. A matching rule that computes 0 (a tier gap) yields
// no entry but still stops evaluation when it does not stack. rules must be
// sorted with [Sort]; Evaluate does not validate them. It fails with
// [money.ErrOverflow] if an amount does not fit.
func Evaluate(rules []Rule, o Order) ([]Entry, error) {
	return AppendEvaluate(nil, rules, o)
}

// AppendEvaluate is [Evaluate] appending the entries to entries, for a
// caller that reuses one slice over many orders.
func AppendEvaluate(entries []Entry, rules []Rule, o Order) ([]Entry, error) {
	stopped := Beneficiary("")
	for i := range rules {
		r := &rules[i]
		if r.Beneficiary == stopped || !r.Matches(o) {
			continue
		}
		e, ok, err := r.apply(o)
		if err != nil {
			return nil, fmt.Errorf("rule %q: %w", r.ID, err)
		}
		if ok {
			entries = append(entries, e)
		}
		if !r.Stacks {
			stopped = r.Beneficiary
		}
	}
	return entries, nil
}

// apply computes the rule's amount for an order it matches; ok is false when
// the order falls in no tier.
func (r *Rule) apply(o Order) (Entry, bool, error) {
	e := Entry{RuleID: r.ID, RuleName: r.Name, Beneficiary: r.Beneficiary, Base: o.Amount}
	var err error
	switch r.Kind {
	case KindPercentage:
		e.Amount, e.Calculation, err = pay(o.Amount, r.RateBP, 0)
	case KindFixed:
		e.Amount, e.Calculation, err = pay(o.Amount, 0, r.Fixed)
	case KindTiered:
		basis := int64(o.Amount)
		if r.TierBasis == BasisMonthlyVolume {
			basis = o.StoreVolume
			if r.Beneficiary == BeneficiaryAgent {
				basis = o.AgentVolume
			}
		}
		t, found := findTier(r.Tiers, basis)
		if !found {
			return Entry{}, false, nil
		}
		e.Amount, e.Calculation, err = pay(o.Amount, t.RateBP, t.Fixed)
		e.Calculation = "palier " + r.tierLabel(t) + " : " + e.Calculation
	default:
		return Entry{}, false, fmt.Errorf("unknown kind %q", r.Kind)
	}
	return e, err == nil, err
}

func findTier(tiers []Tier, basis int64) (Tier, bool) {
	for _, t := range tiers {
		if basis >= t.From && (t.To == 0 || basis < t.To) {
			return t, true
		}
	}
	return Tier{}, false
}

func (r *Rule) tierLabel(t Tier) string {
	if r.TierBasis == BasisMonthlyVolume {
		if t.To == 0 {
			return fmt.Sprintf("%d commandes et plus", t.From)
		}
		return fmt.Sprintf("%d à %d commandes", t.From, t.To-1)
	}
	if t.To == 0 {
		return "dès " + money.Amount(t.From).Format()
	}
	return money.Amount(t.From).Format() + " à " + money.Amount(t.To).Format()
}

// pay returns rateBP of base plus fixed, and the calculation in words.
func pay(base money.Amount, rateBP int64, fixed money.Amount) (money.Amount, string, error) {
	part, err := base.MulRate(rateBP)
	if err != nil {
		return 0, "", err
	}
	total, err := part.Add(fixed)
	if err != nil {
		return 0, "", err
	}
	// One string, built in place: a commission run writes one per entry.
	b := make([]byte, 0, 64)
	if rateBP != 0 {
		b = appendRate(b, rateBP)
		b = append(b, " × "...)
		b = base.AppendFormat(b)
	}
	if fixed != 0 {
		if rateBP != 0 {
			b = append(b, " + "...)
		}
		b = append(b, "forfait "...)
		b = fixed.AppendFormat(b)
	}
	b = append(b, " = "...)
	return total, string(total.AppendFormat(b)), nil
}

// FormatRate writes basis points as a French percentage: 250 is "2,50 %".
func FormatRate(bp int64) string {
	return string(appendRate(nil, bp))
}

func appendRate(b []byte, bp int64) []byte {
	u := uint64(bp)
	if bp < 0 {
		b, u = append(b, '-'), uint64(-bp)
	}
	b = strconv.AppendUint(b, u/100, 10)
	return append(b, ',', byte('0'+u%100/10), byte('0'+u%10), ' ', '%')
}
