// Package lead holds the rules of a lead's life: its statuses, the outcomes an
// agent can record after a call, and the table of legal status transitions. A
// lead arrives as new; agents call the customer and record outcomes (no answer,
// callback, unreachable, wrong number) until the lead is confirmed, cancelled or
// marked duplicate. The same table is enforced by the desktop app when it applies
// a mutation locally and by the sync server when it accepts it, so both sides
// agree on which changes are legal. The package is pure: no I/O, no clock.
package lead

import (
	"errors"
	"fmt"
)

// Status is where a lead stands in the confirmation process. The zero value is
// not a valid status; use [ParseStatus] to read one from text.
type Status uint8

// The lead statuses. The order is the display order and has no other meaning.
const (
	StatusNew         Status = iota + 1 // arrived, not called yet
	StatusNoAnswer                      // called, nobody picked up
	StatusCallback                      // customer asked to be called back later
	StatusUnreachable                   // phone off or out of coverage
	StatusWrongNumber                   // the number is not the customer's
	StatusConfirmed                     // customer confirmed the order; a parcel follows
	StatusCancelled                     // customer or seller cancelled; terminal
	StatusDuplicate                     // another lead is the same order
)

var statusNames = [...]string{
	StatusNew:         "new",
	StatusNoAnswer:    "no_answer",
	StatusCallback:    "callback",
	StatusUnreachable: "unreachable",
	StatusWrongNumber: "wrong_number",
	StatusConfirmed:   "confirmed",
	StatusCancelled:   "cancelled",
	StatusDuplicate:   "duplicate",
}

// Statuses returns every valid status in display order.
func Statuses() []Status {
	all := make([]Status, 0, len(statusNames)-1)
	for s := StatusNew; s <= StatusDuplicate; s++ {
		all = append(all, s)
	}
	return all
}

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool {
	return s >= StatusNew && s <= StatusDuplicate
}

// String returns the status's stable name ("new", "no_answer", …), the form
// stored in databases and sent over the wire. An invalid status prints as
// "Status(N)".
func (s Status) String() string {
	if !s.Valid() {
		return fmt.Sprintf("Status(%d)", uint8(s))
	}
	return statusNames[s]
}

// ErrUnknownStatus is returned, wrapped, by [ParseStatus] for text that names
// no status.
var ErrUnknownStatus = errors.New("unknown lead status")

// ParseStatus returns the status named name, matched exactly (lower case, as
// written by [Status.String]). It fails with an error wrapping
// [ErrUnknownStatus] for any other text.
func ParseStatus(name string) (Status, error) {
	for s := StatusNew; s <= StatusDuplicate; s++ {
		if statusNames[s] == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("parse lead status %q: %w", name, ErrUnknownStatus)
}

// MarshalText implements [encoding.TextMarshaler]. It fails for an invalid
// status, so that a zero Status is never stored by accident.
func (s Status) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("marshal lead status: invalid value %d", uint8(s))
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

// IsOpen reports whether agents still work on a lead in status s: it has not
// been confirmed, cancelled, marked duplicate or found to have a wrong number.
func (s Status) IsOpen() bool {
	switch s {
	case StatusNew, StatusNoAnswer, StatusCallback, StatusUnreachable:
		return true
	}
	return false
}

// IsTerminal reports whether no transition leaves s. Only cancelled is
// terminal; a confirmed lead can still be cancelled and a duplicate unmarked.
func (s Status) IsTerminal() bool {
	return s.Valid() && len(transitions[s]) == 0
}
