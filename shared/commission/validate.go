package commission

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalid is wrapped by every validation error, so callers can tell bad
// input (errors.Is(err, ErrInvalid)) from failures.
var ErrInvalid = errors.New("invalid commission rule")

// FieldError names the field of a rule that is wrong and why.
type FieldError struct {
	Field  string // JSON name, with a tier index when it applies: "tiers[1].from"
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap returns [ErrInvalid].
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks a rule on its own: known kind, trigger and beneficiary,
// non-negative amounts and rates of at most 100 %, tiers sorted without
// overlap, possible conditions (a minimum below the maximum, no empty names)
// and a validity period that is not empty. It returns every problem found,
// joined, each a [*FieldError] wrapping [ErrInvalid].
func (r Rule) Validate() error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if strings.TrimSpace(r.ID) == "" {
		add(fieldErr("id", "is required"))
	}
	if strings.TrimSpace(r.Name) == "" {
		add(fieldErr("name", "is required"))
	}
	switch r.Beneficiary {
	case BeneficiaryAgent, BeneficiaryPlatform:
	default:
		add(fieldErr("beneficiary", "must be agent or platform, not %q", r.Beneficiary))
	}
	switch r.Trigger {
	case TriggerConfirmed, TriggerDelivered:
	default:
		add(fieldErr("trigger", "must be confirmed or delivered, not %q", r.Trigger))
	}
	switch r.Kind {
	case KindPercentage:
		add(checkRate("rateBp", r.RateBP))
		if r.RateBP == 0 {
			add(fieldErr("rateBp", "a percentage rule needs a rate above 0"))
		}
		add(noTiers(r))
	case KindFixed:
		if r.Fixed <= 0 {
			add(fieldErr("fixed", "a fixed rule needs an amount above 0, not %d centimes", r.Fixed))
		}
		add(noTiers(r))
	case KindTiered:
		if r.RateBP != 0 || r.Fixed != 0 {
			add(fieldErr("rateBp", "a tiered rule takes its rates from its tiers"))
		}
		switch r.TierBasis {
		case BasisOrderAmount, BasisMonthlyVolume:
		default:
			add(fieldErr("tierBasis", "must be order_amount or monthly_volume, not %q", r.TierBasis))
		}
		errs = append(errs, checkTiers(r.Tiers)...)
	default:
		add(fieldErr("kind", "must be percentage, fixed or tiered, not %q", r.Kind))
	}
	errs = append(errs, r.Conditions.check()...)
	if r.Priority < 0 {
		add(fieldErr("priority", "must not be negative"))
	}
	if r.ValidFrom.IsZero() {
		add(fieldErr("validFrom", "is required"))
	}
	if !r.ValidUntil.IsZero() && !r.ValidUntil.After(r.ValidFrom) {
		add(fieldErr("validUntil", "must be after validFrom: the rule would never apply"))
	}
	return errors.Join(errs...)
}

func checkRate(field string, bp int64) error {
	if bp < 0 {
		return fieldErr(field, "must not be negative")
	}
	if bp > MaxRateBP {
		return fieldErr(field, "%d basis points is above 100 %%", bp)
	}
	return nil
}

func noTiers(r Rule) error {
	if len(r.Tiers) > 0 || r.TierBasis != "" {
		return fieldErr("tiers", "only a tiered rule has tiers")
	}
	return nil
}

func checkTiers(tiers []Tier) []error {
	if len(tiers) == 0 {
		return []error{fieldErr("tiers", "a tiered rule needs at least one tier")}
	}
	var errs []error
	for i, t := range tiers {
		name := fmt.Sprintf("tiers[%d]", i)
		if t.From < 0 {
			errs = append(errs, fieldErr(name+".from", "must not be negative"))
		}
		if t.To != 0 && t.To <= t.From {
			errs = append(errs, fieldErr(name+".to", "must be above from (%d), or 0 for no bound", t.From))
		}
		if t.To == 0 && i != len(tiers)-1 {
			errs = append(errs, fieldErr(name+".to", "only the last tier may be unbounded"))
		}
		if err := checkRate(name+".rateBp", t.RateBP); err != nil {
			errs = append(errs, err)
		}
		if t.Fixed < 0 {
			errs = append(errs, fieldErr(name+".fixed", "must not be negative"))
		}
		if t.RateBP == 0 && t.Fixed == 0 {
			errs = append(errs, fieldErr(name, "pays nothing: give a rate or a fixed amount"))
		}
		if i > 0 {
			prev := tiers[i-1]
			if t.From < prev.From {
				errs = append(errs, fieldErr(name+".from", "tiers must be sorted by from"))
			} else if prev.To == 0 || t.From < prev.To {
				errs = append(errs, fieldErr(name+".from", "overlaps tier %d [%d, %s)", i-1, prev.From, bound(prev.To)))
			}
		}
	}
	return errs
}

func bound(to int64) string {
	if to == 0 {
		return "∞"
	}
	return fmt.Sprint(to)
}

func (c Conditions) check() []error {
	var errs []error
	if c.MinAmount < 0 {
		errs = append(errs, fieldErr("conditions.minAmount", "must not be negative"))
	}
	if c.MaxAmount < 0 {
		errs = append(errs, fieldErr("conditions.maxAmount", "must not be negative"))
	}
	if c.MaxAmount != 0 && c.MaxAmount < c.MinAmount {
		errs = append(errs, fieldErr("conditions.maxAmount", "is below minAmount: no order can match"))
	}
	lists := []struct {
		name string
		vals []string
	}{
		{"categories", c.Categories}, {"cities", c.Cities}, {"carriers", c.Carriers},
		{"stores", c.Stores}, {"agents", c.Agents},
	}
	for _, l := range lists {
		for i, v := range l.vals {
			if strings.TrimSpace(v) == "" {
				errs = append(errs, fieldErr(fmt.Sprintf("conditions.%s[%d]", l.name, i), "is empty"))
			}
		}
	}
	return errs
}

// ValidateSet checks rules that will be evaluated together: each rule on its
// own, unique ids, and no two non-stacking rules of the same beneficiary and
// trigger with the same priority whose validity periods overlap — which one
// applies would be undefined. Returns every problem, joined, each wrapping
// [ErrInvalid].
func ValidateSet(rules []Rule) error {
	var errs []error
	seen := make(map[string]bool, len(rules))
	for i, r := range rules {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("rule %q: %w", r.ID, err))
		}
		if seen[r.ID] {
			errs = append(errs, fmt.Errorf("rule %q: %w", r.ID, fieldErr("id", "is used twice")))
		}
		seen[r.ID] = true
		for _, o := range rules[:i] {
			if r.Stacks || o.Stacks || r.Beneficiary != o.Beneficiary || r.Trigger != o.Trigger || r.Priority != o.Priority {
				continue
			}
			if periodsOverlap(r, o) {
				errs = append(errs, fmt.Errorf("rule %q: %w", r.ID, fieldErr("priority",
					"contradicts rule %q: same priority %d, both exclusive, overlapping dates", o.ID, r.Priority)))
			}
		}
	}
	return errors.Join(errs...)
}

func periodsOverlap(a, b Rule) bool {
	aEndsBeforeB := !a.ValidUntil.IsZero() && !a.ValidUntil.After(b.ValidFrom)
	bEndsBeforeA := !b.ValidUntil.IsZero() && !b.ValidUntil.After(a.ValidFrom)
	return !aEndsBeforeB && !bEndsBeforeA
}

// Decode reads a rule from its JSON form, rejecting unknown fields and
// trailing data, and validates it. Errors for bad JSON and invalid rules both
// wrap [ErrInvalid].
func Decode(data []byte) (Rule, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Rule
	if err := dec.Decode(&r); err != nil {
		return Rule{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if dec.More() {
		return Rule{}, fmt.Errorf("%w: trailing data after the rule", ErrInvalid)
	}
	if err := r.Validate(); err != nil {
		return Rule{}, err
	}
	r.Conditions.normalize()
	return r, nil
}

// normalize sorts and deduplicates the condition lists so that equal rules
// encode equally.
func (c *Conditions) normalize() {
	for _, l := range []*[]string{&c.Categories, &c.Cities, &c.Carriers, &c.Stores, &c.Agents} {
		if len(*l) == 0 {
			*l = nil
			continue
		}
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
}
