// Package auth authenticates Leadify's users and decides what they may do:
// argon2id password hashes, session tokens stored hashed and revocable, login
// throttling kept in Postgres, roles with granular per-store permissions, and the
// Connect interceptor that puts the authenticated Actor in every request's context.
package auth

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/leadify/leadify/syncserver/postgres"
)

// ErrNoStore means the store does not exist or the actor may not know it does.
var ErrNoStore = errors.New("store not found")

// ErrForbidden means the actor sees the store but lacks the permission.
var ErrForbidden = errors.New("permission denied")

// Membership is the actor's place in one store.
type Membership struct {
	StoreID     uuid.UUID
	StoreName   string
	SellerID    uuid.UUID
	Role        Role
	Granted     []string
	Revoked     []string
	Permissions []Permission
	// Epoch changes whenever the member's role or permissions change.
	Epoch int64
	// LeaseMinutes is the store's lead lease length.
	LeaseMinutes int32
}

// Actor is an authenticated user and their stores.
type Actor struct {
	UserID        uuid.UUID
	Email         string
	FullName      string
	PlatformAdmin bool
	SessionID     uuid.UUID
	// SessionExpires is when the session ends (zero: not known).
	SessionExpires time.Time
	Memberships    []Membership
}

// Scope is what the actor's transactions may see.
func (a *Actor) Scope() postgres.Scope {
	if a.PlatformAdmin {
		return postgres.Scope{AllStores: true, UserID: a.UserID}
	}
	ids := make([]uuid.UUID, len(a.Memberships))
	for i, m := range a.Memberships {
		ids[i] = m.StoreID
	}
	scope := postgres.StoreScope(ids...)
	scope.UserID = a.UserID
	return scope
}

// Membership returns the actor's membership of a store, if any.
func (a *Actor) Membership(store uuid.UUID) (Membership, bool) {
	for _, m := range a.Memberships {
		if m.StoreID == store {
			return m, true
		}
	}
	return Membership{}, false
}

// Can reports whether the actor holds the permission in the store.
func (a *Actor) Can(store uuid.UUID, p Permission) bool {
	if a.PlatformAdmin {
		return true
	}
	m, ok := a.Membership(store)
	return ok && slices.Contains(m.Permissions, p)
}

// Require returns ErrNoStore when the actor is not in the store at all (so that
// the store's existence does not leak) and ErrForbidden when they are but lack p.
func (a *Actor) Require(store uuid.UUID, p Permission) error {
	if a.PlatformAdmin {
		return nil
	}
	if _, ok := a.Membership(store); !ok {
		return ErrNoStore
	}
	if !a.Can(store, p) {
		return ErrForbidden
	}
	return nil
}

// OwnsSeller reports whether the actor may act for the seller: its owner or a
// platform admin.
func (a *Actor) OwnsSeller(ownerUserID uuid.UUID) bool {
	return a.PlatformAdmin || ownerUserID == a.UserID
}

type actorKey struct{}

// WithActor returns a context carrying the actor.
func WithActor(ctx context.Context, a *Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the context's actor, or nil for unauthenticated calls.
func ActorFrom(ctx context.Context) *Actor {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	return a
}
