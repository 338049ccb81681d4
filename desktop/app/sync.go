package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/serverclient"
	"github.com/leadify/leadify/desktop/syncclient"
)

// Status is the state of the connection to the server.
type Status struct {
	// Online is true when the server answered the last probe.
	Online bool `json:"online"`
	// LastContactAt is the last time the server answered (RFC 3339, "" if never).
	LastContactAt string `json:"lastContactAt"`
	// Pending is the number of local changes not yet sent to the server.
	Pending int `json:"pending"`
	// Conflicts is the number of local changes the server refused that the
	// user has not seen yet.
	Conflicts int `json:"conflicts"`
	// LastSyncAt is when the replica last caught up with the server (RFC 3339;
	// absent if never).
	LastSyncAt string `json:"lastSyncAt,omitempty"`
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
		return s.core.statusOf(si.ctx, si.db, si.saved, false, err.Error()), nil
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

// statusOf describes sess's connection and the replica's sync state: what
// waits in the outbox, the unseen conflicts and the last sync. A replica that
// cannot be read is logged and reported as empty: the connection status
// still matters.
func (c *core) statusOf(ctx context.Context, db *localstore.DB, sess localstore.Session, online bool, detail string) Status {
	st := Status{Online: online, LastContactAt: timestamp(sess.LastContact), Detail: detail}
	rs, err := db.SyncState(ctx)
	if err != nil {
		slog.Error("read sync state", "err", err)
		return st
	}
	st.Pending, st.Conflicts, st.LastSyncAt = rs.Pending, rs.Conflicts, timestamp(rs.LastSync)
	return st
}

// run keeps a sync loop (syncclient.Run) going for the saved session until
// ctx ends: started when someone signs in, restarted when the session
// changes, stopped when they sign out. It looks every ProbeInterval.
func (s *Sync) run(ctx context.Context) {
	var key string
	stop := func() {}
	defer func() { stop() }()
	t := time.NewTicker(s.core.opts.ProbeInterval)
	defer t.Stop()
	for {
		si, err := s.core.session()
		switch now := si.saved.ServerURL + " " + si.saved.Token; {
		case err != nil && key != "":
			stop()
			key, stop = "", func() {}
		case err == nil && now != key:
			stop()
			key, stop = "", func() {}
			c, err := syncclient.New(syncclient.Config{BaseURL: si.saved.ServerURL, Token: si.saved.Token, DB: si.db,
				DeviceName: s.core.opts.DeviceName})
			if err != nil {
				slog.Error("start sync", "err", err)
				break
			}
			loop, cancel := context.WithCancel(ctx)
			go func() { _ = c.Run(loop) }()
			key, stop = now, cancel
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
