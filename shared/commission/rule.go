// Package commission holds the pure rules that decide what an agent earns and
// what the platform charges a seller for each order: percentage (in basis
// points), fixed and tiered rules (by order amount or by monthly volume),
// conditions on amount, product category, city, carrier, store and agent,
// priority with first-match precedence and an explicit "stacks" flag,
// validity dates and the triggering event. Every commission run and every
// preview evaluates rules with this one implementation. Money is
// [money.Amount] and percentages round half away from zero
// ([money.Amount.MulRate]). The package does no I/O and reads no clock.
package commission

import (
	"time"

	"github.com/leadify/leadify/shared/money"
)

// Kind is how a rule computes its amount.
type Kind string

// The rule kinds.
const (
	KindPercentage Kind = "percentage" // RateBP of the order amount
	KindFixed      Kind = "fixed"      // Fixed per order
	KindTiered     Kind = "tiered"     // the tier that contains the basis decides
)

// Trigger is the event that makes a rule pay.
type Trigger string

// The triggering events.
const (
	TriggerConfirmed Trigger = "confirmed" // the lead was confirmed by an agent
	TriggerDelivered Trigger = "delivered" // the parcel was delivered and paid
)

// Beneficiary says who a rule's entries are for: the agent (what they earn)
// or the platform (a fee charged to the seller).
type Beneficiary string

// The beneficiaries.
const (
	BeneficiaryAgent    Beneficiary = "agent"
	BeneficiaryPlatform Beneficiary = "platform"
)

// TierBasis is what selects the tier of a tiered rule.
type TierBasis string

// The tier bases.
const (
	BasisOrderAmount   TierBasis = "order_amount"   // the order's amount in centimes
	BasisMonthlyVolume TierBasis = "monthly_volume" // orders this month, this one included
)

// MaxRateBP is the largest rate a rule may have: 100 %.
const MaxRateBP = 10_000

// Tier is one band of a tiered rule: it applies when the basis is in
// [From, To); To 0 means no upper bound and is allowed on the last tier
// only. A tier pays RateBP of the order amount plus Fixed.
type Tier struct {
	From   int64        `json:"from"`
	To     int64        `json:"to,omitempty"`
	RateBP int64        `json:"rateBp,omitempty"`
	Fixed  money.Amount `json:"fixed,omitempty"`
}

// Conditions restrict the orders a rule applies to. An empty list matches
// everything; a non-empty list matches its members. MaxAmount 0 means no
// upper bound; the range is [MinAmount, MaxAmount].
type Conditions struct {
	MinAmount  money.Amount `json:"minAmount,omitempty"`
	MaxAmount  money.Amount `json:"maxAmount,omitempty"`
	Categories []string     `json:"categories,omitempty"`
	Cities     []string     `json:"cities,omitempty"`
	Carriers   []string     `json:"carriers,omitempty"`
	Stores     []string     `json:"stores,omitempty"`
	Agents     []string     `json:"agents,omitempty"`
}

// Rule is one commission rule. Rules of the same beneficiary and trigger are
// considered in ascending Priority; a matching rule applies, and evaluation
// stops at the first matching rule that does not stack (see [Evaluate]). A
// rule is valid in [ValidFrom, ValidUntil); a zero ValidUntil is open-ended.
// Changing a rule means closing it and starting a new one, so history is never
// rewritten.
type Rule struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Beneficiary Beneficiary  `json:"beneficiary"`
	Trigger     Trigger      `json:"trigger"`
	Kind        Kind         `json:"kind"`
	RateBP      int64        `json:"rateBp,omitempty"`
	Fixed       money.Amount `json:"fixed,omitempty"`
	TierBasis   TierBasis    `json:"tierBasis,omitempty"`
	Tiers       []Tier       `json:"tiers,omitempty"`
	Conditions  Conditions   `json:"conditions"`
	Priority    int          `json:"priority"`
	Stacks      bool         `json:"stacks,omitempty"`
	ValidFrom   time.Time    `json:"validFrom"`
	ValidUntil  time.Time    `json:"validUntil,omitzero"`
}

// Order is what a rule is evaluated against: one confirmed lead or one
// delivered parcel.
type Order struct {
	Trigger  Trigger
	ParcelID string
	Store    string
	Agent    string
	Carrier  string
	City     string
	Category string
	Amount   money.Amount // the order's cash-on-delivery amount
	At       time.Time    // when the triggering event happened
	// AgentVolume and StoreVolume are the numbers of orders of the same
	// trigger the agent and the store had in At's month up to and including
	// this one; tiered rules by volume read the agent's for agent rules and
	// the store's for platform rules.
	AgentVolume, StoreVolume int64
}

// Entry is what one rule pays for one order.
type Entry struct {
	RuleID      string
	RuleName    string
	Beneficiary Beneficiary
	Base        money.Amount // the amount the rule was applied to
	Amount      money.Amount
	Calculation string // how Amount was computed, in French
}
