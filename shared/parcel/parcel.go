// Package parcel holds the canonical statuses of a parcel at a carrier and the
// rules for moving between them. Every carrier status string (Coliix "Livré",
// Ameex DELIVERED, …) is mapped elsewhere to one of these statuses; this
// package decides whether a reported status changes the parcel. Carriers skip
// steps and deliver webhooks late or out of order, so a report that would move
// a parcel backwards is not an error: it is kept in the parcel's history and
// leaves the current status unchanged (see [Apply]). The package is pure: no
// I/O, no clock.
package parcel

import (
	"errors"
	"fmt"
)

// Status is a parcel's canonical status. The zero value is not a valid status;
// use [ParseStatus] to read one from text.
type Status uint8

// The canonical parcel statuses, in lifecycle order.
const (
	StatusCreated        Status = iota + 1 // created by Leadify, not yet accepted by the carrier
	StatusSent                             // accepted by the carrier, has a tracking number
	StatusPickedUp                         // collected from the seller
	StatusInTransit                        // moving between hubs, or back at a hub
	StatusOutForDelivery                   // with the delivery driver
	StatusPostponed                        // delivery rescheduled (customer asked, no answer, …)
	StatusDelivered                        // delivered and cash collected
	StatusRefused                          // customer refused the parcel at the door
	StatusReturned                         // back with the seller
	StatusCancelled                        // cancelled before delivery
	StatusLost                             // lost or destroyed by the carrier
)

var statusNames = [...]string{
	StatusCreated:        "created",
	StatusSent:           "sent",
	StatusPickedUp:       "picked_up",
	StatusInTransit:      "in_transit",
	StatusOutForDelivery: "out_for_delivery",
	StatusPostponed:      "postponed",
	StatusDelivered:      "delivered",
	StatusRefused:        "refused",
	StatusReturned:       "returned",
	StatusCancelled:      "cancelled",
	StatusLost:           "lost",
}

// Statuses returns every valid status in lifecycle order.
func Statuses() []Status {
	all := make([]Status, 0, len(statusNames)-1)
	for s := StatusCreated; s <= StatusLost; s++ {
		all = append(all, s)
	}
	return all
}

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool {
	return s >= StatusCreated && s <= StatusLost
}

// String returns the status's stable name ("created", "picked_up", …), the
// form stored in databases and sent over the wire. An invalid status prints as
// "Status(N)".
func (s Status) String() string {
	if !s.Valid() {
		return fmt.Sprintf("Status(%d)", uint8(s))
	}
	return statusNames[s]
}

// ErrUnknownStatus is returned, wrapped, by [ParseStatus] for text that names
// no canonical status.
var ErrUnknownStatus = errors.New("unknown parcel status")

// ParseStatus returns the canonical status named name, matched exactly (lower
// case, as written by [Status.String]). It fails with an error wrapping
// [ErrUnknownStatus] for any other text; carrier status strings are mapped by
// the carrier packages, not here.
func ParseStatus(name string) (Status, error) {
	for s := StatusCreated; s <= StatusLost; s++ {
		if statusNames[s] == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("parse parcel status %q: %w", name, ErrUnknownStatus)
}

// MarshalText implements [encoding.TextMarshaler]. It fails for an invalid
// status, so that a zero Status is never stored by accident.
func (s Status) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("marshal parcel status: invalid value %d", uint8(s))
	}
	return []byte(statusNames[s]), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParseStatus].
func (s *Status) UnmarshalText(text []byte) error {
	parsed, err := ParseStatus(string(text))
	if err != nil {
		return err
	}
	*s = parsed
	return nil
}

// IsFinal reports whether the parcel's journey is over: delivered, returned,
// cancelled or lost. A final status never moves back to an earlier one; the
// one move out of a final status is delivered → returned (see [CanTransition]).
// Refused is not final: the parcel still has to travel back to the seller.
func (s Status) IsFinal() bool {
	switch s {
	case StatusDelivered, StatusReturned, StatusCancelled, StatusLost:
		return true
	}
	return false
}

// IsActive reports whether the parcel is still on its way to the customer:
// any status from created to postponed.
func (s Status) IsActive() bool {
	return s >= StatusCreated && s <= StatusPostponed
}
