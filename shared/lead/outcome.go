package lead

import (
	"errors"
	"fmt"
)

// Outcome is what an agent records after a call that did not confirm or cancel
// the lead. Each outcome moves the lead to the status of the same name. The
// zero value is not a valid outcome.
type Outcome uint8

// The call outcomes.
const (
	OutcomeNoAnswer    Outcome = iota + 1 // rang, nobody picked up
	OutcomeCallback                       // customer asked to be called later
	OutcomeUnreachable                    // phone off or out of coverage
	OutcomeWrongNumber                    // the number is not the customer's
)

var outcomeStatus = [...]Status{
	OutcomeNoAnswer:    StatusNoAnswer,
	OutcomeCallback:    StatusCallback,
	OutcomeUnreachable: StatusUnreachable,
	OutcomeWrongNumber: StatusWrongNumber,
}

// Outcomes returns every valid outcome.
func Outcomes() []Outcome {
	return []Outcome{OutcomeNoAnswer, OutcomeCallback, OutcomeUnreachable, OutcomeWrongNumber}
}

// Valid reports whether o is one of the defined outcomes.
func (o Outcome) Valid() bool {
	return o >= OutcomeNoAnswer && o <= OutcomeWrongNumber
}

// Status returns the lead status an outcome leads to, or 0 (an invalid
// status) for an invalid outcome.
func (o Outcome) Status() Status {
	if !o.Valid() {
		return 0
	}
	return outcomeStatus[o]
}

// String returns the outcome's stable name, the same as its status's name
// ("no_answer", "callback", "unreachable", "wrong_number"). An invalid outcome
// prints as "Outcome(N)".
func (o Outcome) String() string {
	if !o.Valid() {
		return fmt.Sprintf("Outcome(%d)", uint8(o))
	}
	return outcomeStatus[o].String()
}

// ErrUnknownOutcome is returned, wrapped, by [ParseOutcome] for text that names
// no call outcome.
var ErrUnknownOutcome = errors.New("unknown call outcome")

// ParseOutcome returns the outcome named name, matched exactly. It fails with
// an error wrapping [ErrUnknownOutcome] for any other text, including the names
// of statuses that are not call outcomes ("new", "confirmed", …).
func ParseOutcome(name string) (Outcome, error) {
	for _, o := range Outcomes() {
		if o.String() == name {
			return o, nil
		}
	}
	return 0, fmt.Errorf("parse call outcome %q: %w", name, ErrUnknownOutcome)
}

// MarshalText implements [encoding.TextMarshaler]. It fails for an invalid
// outcome.
func (o Outcome) MarshalText() ([]byte, error) {
	if !o.Valid() {
		return nil, fmt.Errorf("marshal call outcome: invalid value %d", uint8(o))
	}
	return []byte(o.String()), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParseOutcome].
func (o *Outcome) UnmarshalText(text []byte) error {
	parsed, err := ParseOutcome(string(text))
	if err != nil {
		return err
	}
	*o = parsed
	return nil
}

// Record returns the status a lead in status from moves to when an agent
// records outcome o. It fails with a *TransitionError if the move is illegal
// (for example recording a call on a confirmed lead), and with a plain error
// if o is invalid.
func Record(from Status, o Outcome) (Status, error) {
	if !o.Valid() {
		return from, fmt.Errorf("record call on %v lead: invalid outcome %d", from, uint8(o))
	}
	to := o.Status()
	if err := Transition(from, to); err != nil {
		return from, err
	}
	return to, nil
}
