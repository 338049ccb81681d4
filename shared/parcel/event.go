package parcel

// Event names a domain event that a parcel status change emits. Other
// capabilities react to these (commission entries and reversals, stock
// release); they are written to domain_events in the same transaction as the
// change.
type Event string

// The parcel domain events.
const (
	EventDelivered Event = "parcel.delivered"
	EventRefused   Event = "parcel.refused"
	EventReturned  Event = "parcel.returned"
	EventCancelled Event = "parcel.cancelled"
)

// TransitionEvent returns the domain event emitted when a parcel moves from
// status from to status to, and whether there is one. Only a legal move (see
// [CanTransition]) into delivered, refused, returned or cancelled emits an
// event, so a repeated or out-of-order report never emits one twice.
func TransitionEvent(from, to Status) (Event, bool) {
	if !CanTransition(from, to) {
		return "", false
	}
	switch to {
	case StatusDelivered:
		return EventDelivered, true
	case StatusRefused:
		return EventRefused, true
	case StatusReturned:
		return EventReturned, true
	case StatusCancelled:
		return EventCancelled, true
	}
	return "", false
}
