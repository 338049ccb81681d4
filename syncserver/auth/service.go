package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/syncserver/audit"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/queries"
)

// ErrBadCredentials is the one answer to a wrong email or a wrong password.
var ErrBadCredentials = errors.New("wrong email or password")

// ErrUnauthenticated means the token is missing, unknown, expired or revoked.
var ErrUnauthenticated = errors.New("not signed in, or the session has ended")

// ThrottledError is returned while an account or address is locked out.
type ThrottledError struct{ Until time.Time }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-ins; try again after %s", e.Until.UTC().Format(time.RFC3339))
}

// Limits are the throttling rules.
type Limits struct {
	AccountFailures int           // failures per account per window before a lock
	AddressFailures int           // failures per client address per window before a lock
	Window          time.Duration // counting window
	Lockout         time.Duration // how long a lock lasts
	SessionTTL      time.Duration
}

// DefaultLimits: 5 wrong passwords per account or 50 per address in 15 minutes
// lock that account or address for 15 minutes; sessions last 30 days.
var DefaultLimits = Limits{AccountFailures: 5, AddressFailures: 50, Window: 15 * time.Minute,
	Lockout: 15 * time.Minute, SessionTTL: 30 * 24 * time.Hour}

// Service signs users in and resolves tokens to actors.
type Service struct {
	pool   *pgxpool.Pool
	limits Limits
}

// NewService returns a Service over the pool.
func NewService(pool *pgxpool.Pool, limits Limits) *Service {
	return &Service{pool: pool, limits: limits}
}

// Session is a freshly issued session.
type Session struct {
	Token     string
	ExpiresAt time.Time
	User      queries.User
}

func accountKey(email string) string { return "account:" + strings.ToLower(strings.TrimSpace(email)) }
func addressKey(ip string) string    { return "ip:" + ip }

// Login checks the password and issues a session. Returns ErrBadCredentials,
// or a *ThrottledError while the account or the client address is locked.
func (s *Service) Login(ctx context.Context, email, password, device, clientIP string) (Session, error) {
	keys := []string{accountKey(email), addressKey(clientIP)}
	q := queries.New()
	until, err := q.LockedUntil(ctx, s.pool, keys)
	if err != nil {
		return Session{}, fmt.Errorf("read throttle: %w", err)
	}
	if until.After(time.Now()) {
		return Session{}, &ThrottledError{Until: until}
	}

	user, err := q.GetUserByEmail(ctx, s.pool, strings.TrimSpace(email))
	hash := dummyHash
	if err == nil {
		hash = user.PasswordHash
	} else if !errors.Is(postgres.Translate(err), postgres.ErrNotFound) {
		return Session{}, fmt.Errorf("find user: %w", err)
	}
	ok, err := CheckPassword(password, hash)
	if err != nil {
		return Session{}, fmt.Errorf("check password: %w", err)
	}
	if !ok || user.ID == uuid.Nil || user.DisabledAt != nil {
		return Session{}, s.recordFailure(ctx, email, clientIP)
	}

	token, tokenHash := NewToken()
	sess := Session{Token: token, ExpiresAt: time.Now().Add(s.limits.SessionTTL).Truncate(time.Microsecond), User: user}
	err = postgres.InTx(ctx, s.pool, postgres.Scope{}, func(tx *postgres.Tx) error {
		if err := tx.Q.ClearThrottle(ctx, tx, keys[0]); err != nil {
			return err
		}
		sid := uuid.Must(uuid.NewV7())
		if err := tx.Q.CreateSession(ctx, tx, queries.CreateSessionParams{ID: sid, UserID: user.ID,
			TokenHash: tokenHash, DeviceName: truncate(device, 100), ClientIp: clientIP, ExpiresAt: sess.ExpiresAt}); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: user.ID, Action: "auth.login", TargetType: "session",
			TargetID: sid.String(), Summary: map[string]any{"device": device, "ip": clientIP}})
	})
	if err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	return sess, nil
}

func (s *Service) recordFailure(ctx context.Context, email, ip string) error {
	q := queries.New()
	var locked *time.Time
	for _, k := range []struct {
		key string
		max int
	}{{accountKey(email), s.limits.AccountFailures}, {addressKey(ip), s.limits.AddressFailures}} {
		row, err := q.RecordLoginFailure(ctx, s.pool, queries.RecordLoginFailureParams{Key: k.key,
			MaxFailures: int32(k.max), LockFor: s.limits.Lockout, WindowLen: s.limits.Window})
		if err != nil {
			return fmt.Errorf("record failed login: %w", err)
		}
		if row.LockedUntil != nil && row.LockedUntil.After(time.Now()) && (locked == nil || row.LockedUntil.After(*locked)) {
			locked = row.LockedUntil
		}
	}
	if locked != nil {
		return &ThrottledError{Until: *locked}
	}
	return ErrBadCredentials
}

// Authenticate resolves a bearer token to its actor. Returns ErrUnauthenticated
// for unknown, expired or revoked tokens and for disabled users.
func (s *Service) Authenticate(ctx context.Context, token string) (*Actor, error) {
	if !wellFormed(token) {
		return nil, ErrUnauthenticated
	}
	// One round trip: the session, its user and the user's memberships. Every
	// authenticated call pays for this, so it is a single statement.
	rows, err := s.pool.Query(ctx, actorByTokenSQL, HashToken(token))
	if err != nil {
		return nil, fmt.Errorf("find session: %w", err)
	}
	defer rows.Close()
	var (
		a        *Actor
		expires  time.Time
		revoked  *time.Time
		disabled *time.Time
		lastSeen time.Time
	)
	for rows.Next() {
		var (
			sessionID, userID uuid.UUID
			email, fullName   string
			admin             bool
			storeID, sellerID *uuid.UUID
			storeName, role   *string
			granted, revokedP []string
			epoch             *int64
			lease             *int32
		)
		if err := rows.Scan(&sessionID, &expires, &revoked, &lastSeen, &userID, &email, &fullName, &admin, &disabled,
			&storeID, &storeName, &sellerID, &role, &granted, &revokedP, &epoch, &lease); err != nil {
			return nil, fmt.Errorf("find session: %w", err)
		}
		if a == nil {
			a = &Actor{UserID: userID, Email: email, FullName: fullName, PlatformAdmin: admin, SessionID: sessionID}
		}
		if storeID == nil {
			continue
		}
		r, err := ParseRole(*role)
		if err != nil {
			return nil, fmt.Errorf("membership of %v: %w", *storeID, err)
		}
		a.Memberships = append(a.Memberships, Membership{StoreID: *storeID, StoreName: *storeName,
			SellerID: *sellerID, Role: r, Granted: granted, Revoked: revokedP,
			Permissions: Effective(r, granted, revokedP), Epoch: *epoch, LeaseMinutes: *lease})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find session: %w", err)
	}
	if a == nil || revoked != nil || !expires.After(time.Now()) || disabled != nil {
		return nil, ErrUnauthenticated
	}
	a.SessionExpires = expires
	row := struct {
		SessionID  uuid.UUID
		LastSeenAt time.Time
	}{a.SessionID, lastSeen}
	q := queries.New()
	if time.Since(row.LastSeenAt) > time.Minute { // coarse: one write a minute per session, not one per call
		if err := q.TouchSession(ctx, s.pool, row.SessionID); err != nil {
			return nil, fmt.Errorf("touch session: %w", err)
		}
	}
	return a, nil
}

const actorByTokenSQL = `SELECT s.id, s.expires_at, s.revoked_at, s.last_seen_at, u.id, u.email, u.full_name,
  u.platform_admin, u.disabled_at, m.store_id, m.store_name, m.seller_id, m.role, m.granted, m.revoked,
  m.epoch::bigint, m.lead_lease_minutes::int
FROM sessions s JOIN users u ON u.id = s.user_id
LEFT JOIN LATERAL actor_memberships(u.id) m ON true
WHERE s.token_hash = $1
ORDER BY m.store_name, m.store_id`

// Logout revokes the actor's current session.
func (s *Service) Logout(ctx context.Context, a *Actor) error {
	return postgres.InTx(ctx, s.pool, a.Scope(), func(tx *postgres.Tx) error {
		if err := tx.Q.RevokeSession(ctx, tx, a.SessionID); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Action: "auth.logout", TargetType: "session",
			TargetID: a.SessionID.String()})
	})
}

// ChangePassword checks the current password, stores the new one and revokes
// every other session of the user. Returns ErrBadCredentials or ErrWeakPassword.
func (s *Service) ChangePassword(ctx context.Context, a *Actor, current, next string) error {
	user, err := queries.New().GetUser(ctx, s.pool, a.UserID)
	if err != nil {
		return fmt.Errorf("load user: %w", postgres.Translate(err))
	}
	ok, err := CheckPassword(current, user.PasswordHash)
	if err != nil {
		return err
	}
	if !ok {
		return ErrBadCredentials
	}
	hash, err := HashPassword(next)
	if err != nil {
		return err
	}
	return postgres.InTx(ctx, s.pool, a.Scope(), func(tx *postgres.Tx) error {
		if err := tx.Q.SetPassword(ctx, tx, queries.SetPasswordParams{ID: a.UserID, PasswordHash: hash}); err != nil {
			return err
		}
		n, err := tx.Q.RevokeOtherSessions(ctx, tx, queries.RevokeOtherSessionsParams{UserID: a.UserID, Keep: a.SessionID})
		if err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Action: "auth.password_changed", TargetType: "user",
			TargetID: a.UserID.String(), Summary: map[string]any{"other_sessions_revoked": n}})
	})
}

// IssueSession creates a session for a user inside tx (used when accepting an
// invitation signs the new member in).
func (s *Service) IssueSession(ctx context.Context, tx *postgres.Tx, user queries.User, device, ip string) (Session, error) {
	token, hash := NewToken()
	sess := Session{Token: token, ExpiresAt: time.Now().Add(s.limits.SessionTTL).Truncate(time.Microsecond), User: user}
	err := tx.Q.CreateSession(ctx, tx, queries.CreateSessionParams{ID: uuid.Must(uuid.NewV7()), UserID: user.ID,
		TokenHash: hash, DeviceName: truncate(device, 100), ClientIp: ip, ExpiresAt: sess.ExpiresAt})
	return sess, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
