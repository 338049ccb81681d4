package ameex

import (
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/carrier"
)

// Statuses maps every Ameex STATUT code listed in CARRIERS.md to its
// canonical status.
var Statuses = carrier.NewTable(map[string]parcel.Status{
	"NEW_PARCEL":     parcel.StatusSent,
	"WAITING_PICKUP": parcel.StatusSent,
	"PICKED_UP":      parcel.StatusPickedUp,
	"SENT":           parcel.StatusInTransit, // sent from the pickup hub
	"RECEIVED":       parcel.StatusInTransit, // received at the destination hub
	"DISTRIBUTION":   parcel.StatusOutForDelivery,
	"IN_PROGRESS":    parcel.StatusOutForDelivery,
	"PROGRAMMED":     parcel.StatusPostponed, // delivery scheduled for a later day
	"OUT_OF_AREA":    parcel.StatusPostponed, // waits for the seller's decision
	"DELIVERED":      parcel.StatusDelivered,
	"RETURNED":       parcel.StatusReturned,
	"REFUSE":         parcel.StatusRefused,
	"REFUSED":        parcel.StatusRefused,
	"CANCELED":       parcel.StatusCancelled,
	"CANCELLED":      parcel.StatusCancelled,
})

// SubStatuses maps the IN_PROGRESS sub-statuses (STATUT_S) that mean the
// delivery will be tried again. Other sub-statuses leave IN_PROGRESS as is.
var SubStatuses = carrier.NewTable(map[string]parcel.Status{
	"POSTPONED":   parcel.StatusPostponed,
	"NO_ANSWER":   parcel.StatusPostponed,
	"UNREACHABLE": parcel.StatusPostponed,
})

// event maps a status and its optional sub-status: IN_PROGRESS with a known
// sub-status takes the sub-status's meaning, and Raw records both
// ("IN_PROGRESS/NO_ANSWER").
func event(code, statut, sub string) carrier.Event {
	ev := Statuses.Event(code, statut)
	if sub = carrierTrim(sub); sub != "" {
		ev.Raw += "/" + sub
		if s, ok := SubStatuses.Lookup(sub); ok && ev.Known && carrier.Fold(statut) == "in progress" {
			ev.Status = s
		}
	}
	return ev
}
