package mutation

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/leadify/leadify/shared/lead"
)

// The permissions the mutations need, as named in syncserver/auth.
const (
	permCall    = "leads.call"
	permConfirm = "leads.confirm"
	permCancel  = "leads.cancel"
	permEdit    = "leads.edit"
	permClaim   = "leads.claim"
	permAssign  = "leads.assign"
)

// permAction completes "You are not allowed to … in this store".
var permAction = map[string]string{
	permCall:    "record calls and notes on leads",
	permConfirm: "confirm leads",
	permCancel:  "cancel leads",
	permEdit:    "edit leads",
	permClaim:   "claim or release leads",
	permAssign:  "assign leads",
}

// change is a mutation being applied: the lead as it was, the working copy
// that becomes the result, and the data of the event to append.
type change struct {
	env  Env
	was  *Lead
	lead Lead
	data map[string]string
}

// begin runs the checks every mutation shares, in order, and returns a change
// to work on. It rejects with
//   - CodeNotFound if cur is nil, has another id than m's lead, or is deleted;
//   - CodeForbidden if the actor lacks perm in the store;
//   - CodeNotHolder if the actor is not a seller or admin and does not hold
//     the lead (a lapsed lease still counts: lease expiry changes who may
//     claim a lead, not who holds it);
//   - CodeInvalid if m's arguments are malformed.
func begin(env Env, cur *Lead, m Mutation, perm string) (*change, *Rejection) {
	switch {
	case cur == nil || cur.ID != m.LeadID():
		return nil, reject(CodeNotFound, "Lead not found")
	case cur.DeletedAt != nil:
		return nil, reject(CodeNotFound, "Lead was deleted")
	case !env.Actor.Permissions[perm]:
		return nil, reject(CodeForbidden, "You are not allowed to %s in this store", permAction[perm])
	case !actsOnAnyLead(env.Actor.Role) && !holds(cur, env.Actor.UserID):
		return nil, notHolder(env, cur)
	}
	if err := m.validate(); err != nil {
		return nil, reject(CodeInvalid, "%s", capitalize(err.Error()))
	}
	return &change{env: env, was: cur, lead: clone(*cur), data: map[string]string{}}, nil
}

// actsOnAnyLead reports whether role may act on any lead of its store, held
// or not. Every other role, unknown ones included, must hold the lead.
func actsOnAnyLead(role Role) bool {
	return role == RoleSeller || role == RoleAdmin
}

// holds reports whether user holds l (whatever the lease's expiry).
func holds(l *Lead, user uuid.UUID) bool {
	return user != uuid.Nil && l.AssignedTo == user
}

func notHolder(env Env, l *Lead) *Rejection {
	if l.AssignedTo == uuid.Nil {
		return reject(CodeNotHolder, "Lead is back in the pool")
	}
	return reject(CodeNotHolder, "Lead was claimed by %s", env.name(l.AssignedTo))
}

// name returns the display name of user, or "another agent".
func (env Env) name(user uuid.UUID) string {
	if n := env.Names[user]; n != "" {
		return n
	}
	return "another agent"
}

// move sets the lead's status to to, or rejects with CodeTransition if the
// table of shared/lead forbids it from the current status. cannot completes
// the reason: "it cannot be confirmed".
func (c *change) move(to lead.Status, cannot string) *Rejection {
	from := c.lead.Status
	if !lead.CanTransition(from, to) {
		return transitionRejection(from, to, cannot)
	}
	c.lead.Status = to
	return nil
}

// transitionRejection explains why a lead in status from cannot move to to:
// "Lead is already confirmed", "Lead is already cancelled; it cannot be
// confirmed". cannot completes the reason when the statuses differ.
func transitionRejection(from, to lead.Status, cannot string) *Rejection {
	if from == to {
		return reject(CodeTransition, "Lead is already %s", describe(from))
	}
	return statusRejection(from, cannot)
}

// statusRejection rejects with CodeTransition because the lead is in status
// s: "Lead is already cancelled; it cannot be edited".
func statusRejection(s lead.Status, cannot string) *Rejection {
	already := ""
	if s.Valid() && !s.IsOpen() {
		already = "already "
	}
	return reject(CodeTransition, "Lead is %s%s; %s", already, describe(s), cannot)
}

// describe completes "Lead is …" for status s.
func describe(s lead.Status) string {
	switch s {
	case lead.StatusNew:
		return "new"
	case lead.StatusNoAnswer:
		return "marked no answer"
	case lead.StatusCallback:
		return "waiting for a callback"
	case lead.StatusUnreachable:
		return "marked unreachable"
	case lead.StatusWrongNumber:
		return "marked wrong number"
	case lead.StatusConfirmed:
		return "confirmed"
	case lead.StatusCancelled:
		return "cancelled"
	case lead.StatusDuplicate:
		return "marked duplicate"
	}
	return "in an unknown status"
}

// finish stamps the lead (UpdatedAt, the holder's lease renewal, CallbackAt
// cleared outside the callback status) and returns it with one event of the
// given kind, carrying the status change if there is one.
func (c *change) finish(eventID uuid.UUID, kind EventKind, note string) (Result, *Rejection) {
	l := c.lead
	now, actor := c.env.Now, c.env.Actor.UserID
	l.UpdatedAt = now
	if c.env.Lease > 0 && holds(c.was, actor) && holds(&l, actor) {
		l.LeaseUntil = now.Add(c.env.Lease)
	}
	if l.Status != lead.StatusCallback {
		l.CallbackAt = time.Time{}
	}
	ev := LeadEvent{
		ID:        eventID,
		StoreID:   l.StoreID,
		LeadID:    l.ID,
		CreatedAt: now,
		ActorID:   actor,
		Kind:      kind,
		Note:      note,
	}
	if len(c.data) > 0 {
		ev.Data = c.data
	}
	if l.Status != c.was.Status {
		ev.FromStatus, ev.ToStatus = c.was.Status, l.Status
	}
	return Result{Lead: l, Events: []LeadEvent{ev}}, nil
}

// clone returns a copy of l that shares no memory with it.
func clone(l Lead) Lead {
	l.Items = slices.Clone(l.Items)
	l.Custom = maps.Clone(l.Custom)
	if l.DeletedAt != nil {
		t := *l.DeletedAt
		l.DeletedAt = &t
	}
	return l
}

func reject(code Code, format string, args ...any) *Rejection {
	return &Rejection{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// capitalize upper-cases the first letter of an ASCII reason.
func capitalize(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// formatTime writes t for a reason: "2025-06-01 10:42 UTC".
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
