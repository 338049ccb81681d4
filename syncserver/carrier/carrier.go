// Package carrier is what Leadify needs from a delivery company: create a
// parcel, track it, cancel it where the carrier allows, list its cities and
// check credentials. Each carrier (coliix, ameex, sendit, and the next one)
// is a subpackage implementing [Carrier] over that carrier's real HTTP API,
// with a stateful fake in a sibling *test package. This package also holds
// what every carrier shares: the typed errors carrier responses are turned
// into, the status [Table] that maps a carrier's status strings to the
// canonical statuses of shared/parcel, and [CreateBulk], which creates many
// parcels with bounded concurrency (no carrier has a bulk endpoint).
package carrier

import (
	"context"
	"time"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
)

// Carrier is one carrier account: a client bound to a base URL and the
// account's credentials. Implementations are safe for concurrent use.
type Carrier interface {
	// Name is the carrier's stable name ("coliix", "ameex", "sendit").
	Name() string
	// CheckCredentials makes the cheapest authenticated call the carrier
	// has. It returns an error wrapping ErrAuth for refused credentials.
	CheckCredentials(ctx context.Context) error
	// Create asks the carrier to create p and returns its tracking code.
	// An error wrapping ErrRejected means the carrier refused the parcel
	// (the call may be retried only after p is fixed); ErrUnavailable and
	// ErrTimeout mean the outcome is unknown: the parcel may or may not
	// exist at the carrier, so the caller must reconcile with Lookup (or,
	// where Lookup is unsupported, hold the parcel for review).
	Create(ctx context.Context, p Parcel) (Created, error)
	// Lookup finds the parcel created for orderRef (the Parcel.OrderRef of
	// an earlier Create). It returns ErrNotFound if the carrier has none and
	// ErrUnsupported if the carrier cannot be asked.
	Lookup(ctx context.Context, orderRef string) (Created, error)
	// Track returns a parcel's history. It returns ErrNotFound for a
	// tracking code the carrier does not know.
	Track(ctx context.Context, code string) (Tracking, error)
	// TrackMany tracks several parcels, in as few calls as the carrier
	// allows. Codes the carrier does not know are absent from the result.
	TrackMany(ctx context.Context, codes []string) (map[string]Tracking, error)
	// Cancel cancels a parcel not yet picked up. It returns ErrUnsupported
	// where cancelling is a manual step at the carrier.
	Cancel(ctx context.Context, code string) error
	// Cities lists the carrier's cities with the carrier's own ids.
	Cities(ctx context.Context) ([]City, error)
}

// Parcel is what Leadify sends to create a parcel.
type Parcel struct {
	// OrderRef is Leadify's reference for the parcel, unique per carrier
	// account; carriers that keep an order number store it, so that a
	// parcel whose creation outcome is unknown can be found again.
	OrderRef  string
	Name      string
	Phone     string // E.164 or national; sent as the carrier wants
	City      city.City
	Address   string
	Goods     string // goods description printed on the label
	Quantity  int
	COD       money.Amount // cash to collect; carriers want it > 0
	Note      string
	AllowOpen bool // the customer may open the parcel before paying
}

// Created is the carrier's answer to a successful creation.
type Created struct {
	Tracking string
}

// Tracking is a parcel's history as the carrier reports it, oldest first;
// the last event is the current status.
type Tracking struct {
	Code   string
	Events []Event
	Paid   bool // the carrier reports the cash as paid to the seller (Coliix "Payé")
}

// Current returns the last event, and false if there is none.
func (t Tracking) Current() (Event, bool) {
	if len(t.Events) == 0 {
		return Event{}, false
	}
	return t.Events[len(t.Events)-1], true
}

// Event is one status report from a carrier, by tracking or webhook.
type Event struct {
	Code string // tracking code
	// Raw is the carrier's status text exactly as received (trailing
	// spaces trimmed), kept in the parcel's history.
	Raw string
	// Status is the canonical status Raw maps to. It is zero, and Known is
	// false, for a status string the carrier table does not list: such an
	// event is kept and flagged, never guessed.
	Status parcel.Status
	Known  bool
	At     time.Time // zero when the carrier gave no usable time
	Note   string
	Place  string
}

// City is a city as the carrier knows it.
type City struct {
	ID   string // the carrier's id (Ameex numeric id, Sendit district id; Coliix: the name)
	Name string
}
