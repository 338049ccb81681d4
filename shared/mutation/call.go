package mutation

import (
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/leadify/leadify/shared/lead"
)

// RecordCall records a call attempt that did not confirm or cancel the lead:
// the lead moves to the outcome's status (shared/lead's Record), its call
// attempts go up by one, and its callback time is set for a callback and
// cleared otherwise. It needs "leads.call".
//
// Besides the checks every mutation makes (see [Mutation]), it is rejected
// with CodeInvalid for a missing or unknown outcome, a note over 2,000
// characters, a callback without a time or with a time not after env.Now, or
// a callback time given with another outcome; and with CodeTransition when
// the lead's status does not take call outcomes (confirmed, cancelled,
// duplicate, wrong_number).
type RecordCall struct {
	Lead       uuid.UUID    `json:"lead_id"`
	EventID    uuid.UUID    `json:"event_id"`
	Outcome    lead.Outcome `json:"outcome"`
	Note       string       `json:"note,omitempty"`
	CallbackAt time.Time    `json:"callback_at,omitzero"`
}

func (RecordCall) Name() string        { return "RecordCall" }
func (RecordCall) Version() int        { return 1 }
func (m RecordCall) LeadID() uuid.UUID { return m.Lead }

func (m RecordCall) validate() error {
	if err := checkIDs(m.Lead, m.EventID); err != nil {
		return err
	}
	if !m.Outcome.Valid() {
		return errors.New("call outcome is missing")
	}
	if err := checkMultiline("note", m.Note, maxNote); err != nil {
		return err
	}
	callback := m.Outcome == lead.OutcomeCallback
	if callback && m.CallbackAt.IsZero() {
		return errors.New("a callback needs a time")
	}
	if !callback && !m.CallbackAt.IsZero() {
		return errors.New("a callback time is only for the callback outcome")
	}
	return nil
}

// Apply implements [Mutation].
func (m RecordCall) Apply(env Env, cur *Lead) (Result, *Rejection) {
	c, rej := begin(env, cur, m, permCall)
	if rej != nil {
		return Result{}, rej
	}
	to, err := lead.Record(c.lead.Status, m.Outcome)
	if err != nil {
		return Result{}, transitionRejection(c.lead.Status, m.Outcome.Status(), "a call cannot be recorded on it")
	}
	c.data["outcome"] = m.Outcome.String()
	if m.Outcome == lead.OutcomeCallback {
		if !m.CallbackAt.After(env.Now) {
			return Result{}, reject(CodeInvalid, "Callback time %s is not in the future", formatTime(m.CallbackAt))
		}
		c.lead.CallbackAt = m.CallbackAt.UTC()
		c.data["callback_at"] = c.lead.CallbackAt.Format(time.RFC3339)
	}
	c.lead.Status = to
	c.lead.CallAttempts++
	return c.finish(m.EventID, EventCall, m.Note)
}

// AddNote appends a note to the lead's activity log and changes nothing else
// (but the holder's lease, renewed like by every mutation of the holder). It
// needs "leads.call" and works in every status. Besides the shared checks, it
// is rejected with CodeInvalid for a blank note or one over 2,000 characters.
type AddNote struct {
	Lead    uuid.UUID `json:"lead_id"`
	EventID uuid.UUID `json:"event_id"`
	Note    string    `json:"note"`
}

func (AddNote) Name() string        { return "AddNote" }
func (AddNote) Version() int        { return 1 }
func (m AddNote) LeadID() uuid.UUID { return m.Lead }

func (m AddNote) validate() error {
	if err := checkIDs(m.Lead, m.EventID); err != nil {
		return err
	}
	return checkRequired("note", m.Note, maxNote)
}

// Apply implements [Mutation].
func (m AddNote) Apply(env Env, cur *Lead) (Result, *Rejection) {
	c, rej := begin(env, cur, m, permCall)
	if rej != nil {
		return Result{}, rej
	}
	return c.finish(m.EventID, EventNote, m.Note)
}
