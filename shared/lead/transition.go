package lead

import (
	"fmt"
	"slices"
)

// transitions is the table of legal status changes: transitions[from] lists
// every status a lead in status from may move to. A status not listed is
// illegal, including staying in the same status, except for the call outcomes
// that can be recorded again (another unanswered call, a new callback time,
// still unreachable).
//
// The rules:
//   - An open lead (new, no_answer, callback, unreachable) may take any call
//     outcome, be confirmed, cancelled or marked duplicate. Nothing goes back
//     to new from an open status.
//   - wrong_number may be cancelled or marked duplicate, or go back to new when
//     the lead's phone number is edited (the edit resets the lead so it is
//     called again; the edit mutation is the one that asks for this move).
//   - confirmed may only be cancelled (the customer changes their mind after
//     confirming, before or after the parcel leaves).
//   - cancelled is terminal: a cancelled order that comes back is a new lead.
//   - duplicate may go back to new (an agent unmarks a lead wrongly taken for a
//     duplicate).
var transitions = [...][]Status{
	StatusNew:         fromOpen,
	StatusNoAnswer:    fromOpen,
	StatusCallback:    fromOpen,
	StatusUnreachable: fromOpen,
	StatusWrongNumber: {StatusNew, StatusCancelled, StatusDuplicate},
	StatusConfirmed:   {StatusCancelled},
	StatusCancelled:   nil,
	StatusDuplicate:   {StatusNew},
}

// fromOpen lists the statuses an open lead may move to. Every call outcome is
// included, so repeating an outcome (no_answer → no_answer) is legal; new is
// not a call outcome, so new → new is not.
var fromOpen = []Status{
	StatusNoAnswer, StatusCallback, StatusUnreachable, StatusWrongNumber,
	StatusConfirmed, StatusCancelled, StatusDuplicate,
}

// CanTransition reports whether a lead in status from may move to status to.
// It is false for any invalid status.
func CanTransition(from, to Status) bool {
	if !from.Valid() || !to.Valid() {
		return false
	}
	return slices.Contains(transitions[from], to)
}

// Targets returns the statuses a lead in status from may move to, in display
// order; it is empty for cancelled and for an invalid status.
func Targets(from Status) []Status {
	if !from.Valid() {
		return nil
	}
	return slices.Clone(transitions[from])
}

// Transition returns nil if a lead in status from may move to status to, and a
// *TransitionError naming both statuses otherwise.
func Transition(from, to Status) error {
	if !CanTransition(from, to) {
		return &TransitionError{From: from, To: to}
	}
	return nil
}

// TransitionError reports an illegal lead status change.
type TransitionError struct {
	From, To Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("illegal lead status transition from %v to %v", e.From, e.To)
}
