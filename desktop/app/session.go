package app

import (
	"cmp"
	"errors"
	"log/slog"
	"strings"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/serverclient"
)

// Account is the signed-in person and the server they signed in to.
type Account struct {
	ServerURL     string `json:"serverUrl"`
	UserID        string `json:"userId"`
	Email         string `json:"email"`
	FullName      string `json:"fullName"`
	PlatformAdmin bool   `json:"platformAdmin"`
}

// Session signs the user in and out.
type Session struct{ core *core }

// SignIn checks the email and password with the server at serverURL and saves the
// session, so the next start is already signed in.
func (s *Session) SignIn(serverURL, email, password string) (Account, error) {
	baseURL, err := serverclient.NormalizeURL(serverURL)
	if err != nil {
		return Account{}, err
	}
	email = strings.TrimSpace(email)
	if email == "" || password == "" {
		return Account{}, errors.New("enter your email and password")
	}
	ctx, db, err := s.core.database()
	if err != nil {
		return Account{}, err
	}
	client, err := s.core.newClient(baseURL, "")
	if err != nil {
		return Account{}, err
	}
	res, err := client.Login(ctx, email, password, s.core.opts.DeviceName)
	if err != nil {
		return Account{}, err
	}
	u := res.GetUser()
	sess := localstore.Session{
		ServerURL: baseURL, Token: res.GetToken(), LastContact: s.core.opts.Now(),
		User: localstore.User{ID: u.GetId(), Email: u.GetEmail(), FullName: u.GetFullName(), PlatformAdmin: u.GetPlatformAdmin()},
	}
	if res.GetExpiresAt() != nil {
		sess.ExpiresAt = res.GetExpiresAt().AsTime()
	}
	if err := db.SaveSession(ctx, sess); err != nil {
		return Account{}, err
	}
	s.core.emit(EventSyncStatus, s.core.statusOf(ctx, db, sess, true, ""))
	return accountOf(sess), nil
}

// SignOut revokes the session on the server when it can be reached and forgets
// it locally in any case, with the cached stores.
func (s *Session) SignOut() error {
	si, err := s.core.session()
	if errors.Is(err, ErrNotSignedIn) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := si.client.Logout(si.ctx); err != nil {
		// Offline or already revoked: the token dies when it expires.
		slog.Warn("sign out on the server", "err", err)
	}
	_, err = s.core.forget(si)
	return err
}

// Current returns the saved account, or nil when nobody is signed in. It reads
// the local database only, so it answers at once, online or not; a session the
// server has revoked is detected by the next server call. A session past its
// expiry time is forgotten.
func (s *Session) Current() (*Account, error) {
	si, err := s.core.session()
	if errors.Is(err, ErrNotSignedIn) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if exp := si.saved.ExpiresAt; !exp.IsZero() && !s.core.opts.Now().Before(exp) {
		_, err := s.core.forget(si)
		return nil, err
	}
	a := accountOf(si.saved)
	return &a, nil
}

// DefaultServerURL returns the address to prefill the sign-in form with: the one
// configured for this run (LEADIFY_SERVER_URL), else the last one used, else
// FallbackServerURL.
func (s *Session) DefaultServerURL() (string, error) {
	if s.core.opts.ServerURL != "" {
		return s.core.opts.ServerURL, nil
	}
	ctx, db, err := s.core.database()
	if err != nil {
		return "", err
	}
	last, err := db.LastServerURL(ctx)
	if err != nil {
		return "", err
	}
	return cmp.Or(last, FallbackServerURL), nil
}

func accountOf(s localstore.Session) Account {
	return Account{
		ServerURL: s.ServerURL, UserID: s.User.ID, Email: s.User.Email,
		FullName: s.User.FullName, PlatformAdmin: s.User.PlatformAdmin,
	}
}
