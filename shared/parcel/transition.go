package parcel

import "fmt"

// rank orders the active statuses along the way to the customer. Moving to a
// higher rank is forward movement; out_for_delivery and postponed share a rank
// and move freely between each other.
var rank = [...]int{
	StatusCreated:        1,
	StatusSent:           2,
	StatusPickedUp:       3,
	StatusInTransit:      4,
	StatusOutForDelivery: 5,
	StatusPostponed:      5,
}

// CanTransition reports whether a parcel in status from moves to status to
// when to is reported. It is false when from == to (nothing changes) and for
// any invalid status. The rules:
//
//   - Among the active statuses (created … postponed) a parcel only moves
//     forward, and may skip steps, because carriers do: created → in_transit
//     is legal, in_transit → sent is not.
//   - postponed moves to and from out_for_delivery and in_transit (the driver
//     brings a rescheduled parcel back to the hub and out again).
//   - Any active status may end in delivered, refused, returned, cancelled or
//     lost.
//   - refused may only become returned.
//   - delivered may only become returned: a customer may send a parcel back
//     after delivery, and the carrier reports it as returned; the return
//     reverses the delivery's commissions like any other return.
//   - returned, cancelled and lost are terminal.
func CanTransition(from, to Status) bool {
	if !from.Valid() || !to.Valid() || from == to {
		return false
	}
	switch from {
	case StatusRefused, StatusDelivered:
		return to == StatusReturned
	case StatusReturned, StatusCancelled, StatusLost:
		return false
	}
	// from is active.
	if !to.IsActive() {
		return true
	}
	if from == StatusPostponed && to == StatusInTransit {
		return true
	}
	return rank[to] >= rank[from]
}

// Targets returns the statuses a parcel in status from may move to, in
// lifecycle order; it is empty for a terminal or invalid status.
func Targets(from Status) []Status {
	var targets []Status
	for _, to := range Statuses() {
		if CanTransition(from, to) {
			targets = append(targets, to)
		}
	}
	return targets
}

// Apply returns the status a parcel in status current has after a carrier
// reports status reported, and whether it changed. A report that is not a
// legal move (a late webhook saying in_transit about a delivered parcel, a
// repeat of the current status, an invalid status) is not an error: the
// caller keeps it in the parcel's history and the status stays current.
func Apply(current, reported Status) (next Status, changed bool) {
	if CanTransition(current, reported) {
		return reported, true
	}
	return current, false
}

// Transition returns nil if a parcel in status from may move to status to, and
// a *TransitionError naming both statuses otherwise. Use it for changes a
// person asks for (an admin correcting a status), where an illegal move must
// be refused; use [Apply] for carrier reports.
func Transition(from, to Status) error {
	if !CanTransition(from, to) {
		return &TransitionError{From: from, To: to}
	}
	return nil
}

// TransitionError reports an illegal parcel status change.
type TransitionError struct {
	From, To Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("illegal parcel status transition from %v to %v", e.From, e.To)
}
