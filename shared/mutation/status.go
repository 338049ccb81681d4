package mutation

import (
	"errors"

	"github.com/google/uuid"

	"github.com/leadify/leadify/shared/lead"
)

// ConfirmLead confirms the order: the lead moves to confirmed. Edits, if any,
// are applied first as compare-and-set (see [EditLead]); a wrong_number lead
// must have its phone edited with EditLead (which moves it back to new)
// before it can be confirmed. It needs "leads.confirm".
//
// Besides the checks every mutation makes (see [Mutation]), it is rejected
// with CodeTransition when the lead's current status cannot move to
// confirmed; CodeStale or CodeInvalid when an edit fails as it would in
// EditLead; and CodeInvalid when, after the edits, the lead has no item or a
// cash-on-delivery amount not above zero.
type ConfirmLead struct {
	Lead    uuid.UUID `json:"lead_id"`
	EventID uuid.UUID `json:"event_id"`
	Edits   Edits     `json:"edits,omitzero"`
}

func (ConfirmLead) Name() string        { return "ConfirmLead" }
func (ConfirmLead) Version() int        { return 1 }
func (m ConfirmLead) LeadID() uuid.UUID { return m.Lead }

func (m ConfirmLead) validate() error {
	if err := checkIDs(m.Lead, m.EventID); err != nil {
		return err
	}
	return m.Edits.validate()
}

// Apply implements [Mutation].
func (m ConfirmLead) Apply(env Env, cur *Lead) (Result, *Rejection) {
	c, rej := begin(env, cur, m, permConfirm)
	if rej != nil {
		return Result{}, rej
	}
	if !lead.CanTransition(c.lead.Status, lead.StatusConfirmed) {
		return Result{}, transitionRejection(c.lead.Status, lead.StatusConfirmed, "it cannot be confirmed")
	}
	if rej := m.Edits.apply(c); rej != nil {
		return Result{}, rej
	}
	switch {
	case len(c.lead.Items) == 0:
		return Result{}, reject(CodeInvalid, "Add at least one item before confirming the lead")
	case c.lead.COD <= 0:
		return Result{}, reject(CodeInvalid, "Set a cash-on-delivery amount above 0 before confirming the lead")
	}
	if rej := c.move(lead.StatusConfirmed, "it cannot be confirmed"); rej != nil {
		return Result{}, rej
	}
	return c.finish(m.EventID, EventConfirm, "")
}

// CancelLead cancels the order for the given reason, kept in the lead's
// CancelReason and as the event's note. It needs "leads.cancel".
//
// Besides the checks every mutation makes (see [Mutation]), it is rejected
// with CodeInvalid for a blank reason or one over 2,000 characters, and with
// CodeTransition when the lead is already cancelled or is marked duplicate.
type CancelLead struct {
	Lead    uuid.UUID `json:"lead_id"`
	EventID uuid.UUID `json:"event_id"`
	Reason  string    `json:"reason"`
}

func (CancelLead) Name() string        { return "CancelLead" }
func (CancelLead) Version() int        { return 1 }
func (m CancelLead) LeadID() uuid.UUID { return m.Lead }

func (m CancelLead) validate() error {
	if err := checkIDs(m.Lead, m.EventID); err != nil {
		return err
	}
	return checkRequired("cancel reason", m.Reason, maxNote)
}

// Apply implements [Mutation].
func (m CancelLead) Apply(env Env, cur *Lead) (Result, *Rejection) {
	c, rej := begin(env, cur, m, permCancel)
	if rej != nil {
		return Result{}, rej
	}
	if rej := c.move(lead.StatusCancelled, "it cannot be cancelled"); rej != nil {
		return Result{}, rej
	}
	c.lead.CancelReason = m.Reason
	return c.finish(m.EventID, EventCancel, m.Reason)
}

// MarkDuplicate marks the lead as a duplicate of another lead of the store.
// Apply sees one lead only: whether DuplicateOf exists is for the caller to
// check. It needs "leads.edit".
//
// Besides the checks every mutation makes (see [Mutation]), it is rejected
// with CodeInvalid for a missing DuplicateOf or one equal to the lead's own
// id, and with CodeTransition when the lead is confirmed, cancelled or
// already marked duplicate.
type MarkDuplicate struct {
	Lead        uuid.UUID `json:"lead_id"`
	EventID     uuid.UUID `json:"event_id"`
	DuplicateOf uuid.UUID `json:"duplicate_of"`
}

func (MarkDuplicate) Name() string        { return "MarkDuplicate" }
func (MarkDuplicate) Version() int        { return 1 }
func (m MarkDuplicate) LeadID() uuid.UUID { return m.Lead }

func (m MarkDuplicate) validate() error {
	if err := checkIDs(m.Lead, m.EventID); err != nil {
		return err
	}
	switch m.DuplicateOf {
	case uuid.Nil:
		return errors.New("the lead it duplicates is missing")
	case m.Lead:
		return errors.New("a lead cannot be a duplicate of itself")
	}
	return nil
}

// Apply implements [Mutation].
func (m MarkDuplicate) Apply(env Env, cur *Lead) (Result, *Rejection) {
	c, rej := begin(env, cur, m, permEdit)
	if rej != nil {
		return Result{}, rej
	}
	if rej := c.move(lead.StatusDuplicate, "it cannot be marked duplicate"); rej != nil {
		return Result{}, rej
	}
	c.lead.DuplicateOf = m.DuplicateOf
	c.data["duplicate_of"] = m.DuplicateOf.String()
	return c.finish(m.EventID, EventDup, "")
}

// UnmarkDuplicate takes back a duplicate mark: the lead returns to new and
// its DuplicateOf is cleared. It needs "leads.edit". Besides the checks every
// mutation makes (see [Mutation]), it is rejected with CodeTransition when
// the lead is not marked duplicate.
type UnmarkDuplicate struct {
	Lead    uuid.UUID `json:"lead_id"`
	EventID uuid.UUID `json:"event_id"`
}

func (UnmarkDuplicate) Name() string        { return "UnmarkDuplicate" }
func (UnmarkDuplicate) Version() int        { return 1 }
func (m UnmarkDuplicate) LeadID() uuid.UUID { return m.Lead }

func (m UnmarkDuplicate) validate() error { return checkIDs(m.Lead, m.EventID) }

// Apply implements [Mutation].
func (m UnmarkDuplicate) Apply(env Env, cur *Lead) (Result, *Rejection) {
	c, rej := begin(env, cur, m, permEdit)
	if rej != nil {
		return Result{}, rej
	}
	if c.lead.Status != lead.StatusDuplicate {
		return Result{}, reject(CodeTransition, "Lead is not marked duplicate")
	}
	if rej := c.move(lead.StatusNew, "it cannot be unmarked"); rej != nil {
		return Result{}, rej
	}
	c.data["duplicate_of"] = c.lead.DuplicateOf.String()
	c.lead.DuplicateOf = uuid.Nil
	return c.finish(m.EventID, EventUndup, "")
}
