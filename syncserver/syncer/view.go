package syncer

import (
	"github.com/google/uuid"

	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/auth"
)

// view is how much of a row a user may see (DESIGN.md, point 11).
type view int

const (
	viewNone     view = iota // sent as a delete
	viewRedacted             // pool leads for agents: no name, phone, address
	viewFull
)

// viewer is a user's standing in one store, as far as visibility goes.
type viewer struct {
	user uuid.UUID
	all  bool // sellers, store admins, platform admins: every lead in full
	pool bool // may see the pool (redacted)
}

func viewerFor(a *auth.Actor, store uuid.UUID) viewer {
	return viewer{user: a.UserID, all: a.Can(store, auth.LeadsViewAll), pool: a.Can(store, auth.LeadsViewPool)}
}

// lead is the viewer's view of a lead: everything for those who see all;
// for agents, their own leads in full, the pool redacted, other agents' none.
func (v viewer) lead(l *mutation.Lead) view {
	switch {
	case l.DeletedAt != nil:
		return viewNone
	case v.all || l.AssignedTo == v.user:
		return viewFull
	case l.AssignedTo == uuid.Nil && v.pool:
		return viewRedacted
	}
	return viewNone
}

// event is the viewer's view of a lead event: the lead's history is visible
// with the lead in full, and not otherwise.
func (v viewer) event(parent view) view {
	if parent == viewFull {
		return viewFull
	}
	return viewNone
}

func redact(l mutation.Lead) mutation.Lead {
	l.CustomerName, l.PhoneRaw, l.PhoneE164, l.Address, l.Custom = "", "", "", "", nil
	return l
}
