package sendit

import (
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/carrier"
)

// Statuses maps Sendit delivery statuses to canonical statuses. CARRIERS.md
// does not list Sendit's statuses; these are the upper-case codes its
// integrations use. An unlisted one is kept raw and flagged, never guessed.
var Statuses = carrier.NewTable(map[string]parcel.Status{
	"NEW":         parcel.StatusSent,
	"PENDING":     parcel.StatusSent,
	"TO_PICKUP":   parcel.StatusSent,
	"PICKED_UP":   parcel.StatusPickedUp,
	"IN_TRANSIT":  parcel.StatusInTransit,
	"RECEIVED":    parcel.StatusInTransit,
	"DISTRIBUTED": parcel.StatusOutForDelivery,
	"IN_PROGRESS": parcel.StatusOutForDelivery,
	"POSTPONED":   parcel.StatusPostponed,
	"NO_ANSWER":   parcel.StatusPostponed,
	"UNREACHABLE": parcel.StatusPostponed,
	"DELIVERED":   parcel.StatusDelivered,
	"REJECTED":    parcel.StatusRefused,
	"REFUSED":     parcel.StatusRefused,
	"RETURNED":    parcel.StatusReturned,
	"CANCELED":    parcel.StatusCancelled,
	"CANCELLED":   parcel.StatusCancelled,
	"LOST":        parcel.StatusLost,
})
