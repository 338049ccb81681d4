package app

import (
	"context"
	"errors"
	"time"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/serverclient"
)

// Status is the state of the connection to the server.
type Status struct {
	// Online is true when the server answered the last probe.
	Online bool `json:"online"`
	// LastContactAt is the last time the server answered (RFC 3339, "" if never).
	LastContactAt string `json:"lastContactAt"`
	// Pending is the number of local changes not yet sent to the server.
	Pending int `json:"pending"`
	// Conflicts is the number of local changes the server refused.
	Conflicts int `json:"conflicts"`
	// Detail says why the app is offline, in words for the user; "" when online.
	Detail string `json:"detail"`
}

// Sync reports how the desktop stands with the server.
type Sync struct{ core *core }

// Status probes the server now (with the saved session) and returns the result,
// also sent to the UI as EventSyncStatus. An unreachable server is not an error:
// it is reported as offline. Fails with ErrNotSignedIn, or when the server
// refuses the session (the user is then signed out).
func (s *Sync) Status() (Status, error) {
	si, err := s.core.session()
	if err != nil {
		return Status{}, err
	}
	me, err := si.client.Me(si.ctx)
	switch {
	case err == nil:
		u := me.GetUser()
		err := si.db.UpdateUser(si.ctx, localstore.User{
			ID: si.saved.User.ID, Email: u.GetEmail(), FullName: u.GetFullName(), PlatformAdmin: u.GetPlatformAdmin(),
		})
		if err != nil {
			return Status{}, err
		}
		return s.core.reached(si)
	case errors.Is(err, serverclient.ErrUnreachable):
		_ = s.core.serverFailed(si, err)
		return statusOf(si.saved, false, err.Error()), nil
	default:
		return Status{}, s.core.serverFailed(si, err)
	}
}

// watch probes the server every ProbeInterval while someone is signed in, until
// ctx ends. Results reach the UI as events.
func (s *Sync) watch(ctx context.Context) {
	t := time.NewTicker(s.core.opts.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = s.Status() // the outcome is emitted; errors need no one else
		}
	}
}

// statusOf describes sess's connection. Pending and Conflicts stay zero until
// the desktop records changes of its own (the outbox arrives with the sync
// engine): today nothing can be waiting.
func statusOf(sess localstore.Session, online bool, detail string) Status {
	return Status{Online: online, LastContactAt: timestamp(sess.LastContact), Detail: detail}
}
