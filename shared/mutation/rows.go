// Package mutation holds Leadify's named, versioned mutations — every change a
// user makes to synced data (record a call, confirm, cancel, edit, note,
// release, assign…) — and their pure apply functions. The desktop applies a
// mutation to its replica optimistically and the sync server applies the same
// function to the source of truth, so both sides compute the same rows. Apply
// is pure: (current rows, actor, server time) → (new rows | rejection). Ids of
// rows a mutation creates travel in its arguments, so both sides create the
// same row. Edits carry the old and the new value of each field and apply as
// compare-and-set.
package mutation

import (
	"time"

	"github.com/google/uuid"

	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/money"
)

// Item is one line of a lead's order.
type Item struct {
	SKU       string       `json:"sku,omitempty"`
	Name      string       `json:"name"`
	Qty       int32        `json:"qty"`
	UnitPrice money.Amount `json:"unit_price"`
}

// Lead is a synced lead row, in the store scope. Version is the store scope's
// counter at the row's last write; the apply functions leave it alone (the
// versioned-write helper stamps it).
type Lead struct {
	ID           uuid.UUID         `json:"id"`
	StoreID      uuid.UUID         `json:"store_id"`
	Version      int64             `json:"version"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
	DeletedAt    *time.Time        `json:"deleted_at,omitempty"`
	Status       lead.Status       `json:"status"`
	CustomerName string            `json:"customer_name"`
	PhoneRaw     string            `json:"phone_raw"`
	PhoneE164    string            `json:"phone_e164"`
	CityID       string            `json:"city_id"`
	CityRaw      string            `json:"city_raw"`
	Address      string            `json:"address"`
	Items        []Item            `json:"items"`
	COD          money.Amount      `json:"cod"`
	Source       string            `json:"source"`
	ExternalRef  string            `json:"external_ref"`
	Custom       map[string]string `json:"custom,omitempty"`
	AssignedTo   uuid.UUID         `json:"assigned_to"` // uuid.Nil: in the pool
	LeaseUntil   time.Time         `json:"lease_until"` // zero when unassigned
	CallAttempts int32             `json:"call_attempts"`
	CallbackAt   time.Time         `json:"callback_at"` // zero unless status is callback
	CancelReason string            `json:"cancel_reason,omitempty"`
	DuplicateOf  uuid.UUID         `json:"duplicate_of"`
	Score        int32             `json:"score"`
}

// EventKind names an entry of a lead's activity log.
type EventKind string

// The event kinds.
const (
	EventCall     EventKind = "call"
	EventConfirm  EventKind = "confirm"
	EventCancel   EventKind = "cancel"
	EventNote     EventKind = "note"
	EventEdit     EventKind = "edit"
	EventDup      EventKind = "duplicate"
	EventUndup    EventKind = "unduplicate"
	EventClaim    EventKind = "claim"
	EventRelease  EventKind = "release"
	EventAssign   EventKind = "assign"
	EventImported EventKind = "imported"
)

// LeadEvent is one entry of a lead's activity log (a call attempt, a note, a
// status change), in the store scope. Events are never edited.
type LeadEvent struct {
	ID         uuid.UUID         `json:"id"`
	StoreID    uuid.UUID         `json:"store_id"`
	LeadID     uuid.UUID         `json:"lead_id"`
	Version    int64             `json:"version"`
	CreatedAt  time.Time         `json:"created_at"`
	ActorID    uuid.UUID         `json:"actor_id"`
	Kind       EventKind         `json:"kind"`
	FromStatus lead.Status       `json:"from_status,omitempty"`
	ToStatus   lead.Status       `json:"to_status,omitempty"`
	Note       string            `json:"note,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
}

// Role is the actor's role in the lead's store.
type Role string

// The roles, as in the accounts model.
const (
	RoleAdmin  Role = "admin"
	RoleSeller Role = "seller"
	RoleAgent  Role = "agent"
)

// Actor is who applies a mutation, with their permissions in the lead's store
// (permission names as in syncserver/auth: "leads.call", "leads.confirm", …).
type Actor struct {
	UserID      uuid.UUID
	Name        string
	Role        Role
	Permissions map[string]bool
}

// Env is everything an apply function may depend on besides the rows.
type Env struct {
	Actor Actor
	Now   time.Time     // the server's clock on the server, the local clock on the desktop
	Lease time.Duration // the store's lead lease length (renewed by the holder's mutations)
	// Names maps user ids to display names for rejection reasons ("Lead was
	// claimed by Sara"). Optional: a user not in it is "another agent".
	Names map[uuid.UUID]string
}

// Result is what an applied mutation writes: the lead's new state and the
// activity-log entries it appends.
type Result struct {
	Lead   Lead
	Events []LeadEvent
}

// Code classifies a rejection.
type Code string

// The rejection codes.
const (
	CodeNotFound   Code = "not_found"          // the lead does not exist or is not visible
	CodeForbidden  Code = "forbidden"          // the actor lacks the permission
	CodeNotHolder  Code = "not_holder"         // the lead is (now) someone else's, or in the pool
	CodeTransition Code = "illegal_transition" // the status cannot move that way from where it is now
	CodeStale      Code = "stale"              // a compare-and-set edit's old value no longer matches
	CodeInvalid    Code = "invalid"            // the arguments are malformed
)

// Rejection is why a mutation was not applied, in plain language for the UI
// ("Lead was claimed by Sara at 10:42"; "Phone was changed to 0612… by Karim").
type Rejection struct {
	Code   Code   `json:"code"`
	Reason string `json:"reason"`
}

func (r *Rejection) Error() string { return string(r.Code) + ": " + r.Reason }
