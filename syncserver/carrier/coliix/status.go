package coliix

import (
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/carrier"
)

// Statuses maps every Coliix status string listed in CARRIERS.md to its
// canonical status. Lookups fold case, accents, spaces, hyphens and
// underscores, and match whole strings only.
var Statuses = carrier.NewTable(map[string]parcel.Status{
	// Pre-pickup: the parcel exists at Coliix.
	"Nouveau Colis":        parcel.StatusSent,
	"Attente De Ramassage": parcel.StatusSent,
	"Programmé":            parcel.StatusSent,
	// Moving.
	"Ramassé":              parcel.StatusPickedUp,
	"Expédié":              parcel.StatusInTransit,
	"Reçu":                 parcel.StatusInTransit,
	"En Voyage":            parcel.StatusInTransit,
	"Mise en distribution": parcel.StatusOutForDelivery,
	"En cours":             parcel.StatusOutForDelivery,
	// Informational: the driver is in touch with the customer. None of
	// them is an outcome ("Confirmer par le livreur" is not delivered).
	"Confirmer par le livreur": parcel.StatusOutForDelivery,
	"Client intéressé":         parcel.StatusOutForDelivery,
	"Client pas intéressé":     parcel.StatusOutForDelivery,
	"Boite Vocal":              parcel.StatusOutForDelivery,
	"Relancé nouveau client":   parcel.StatusOutForDelivery,
	// No answer: delivery will be tried again.
	"Pas de réponse":              parcel.StatusPostponed,
	"Deuxième Appel Pas Réponse":  parcel.StatusPostponed,
	"Troisième Appel Pas Réponse": parcel.StatusPostponed,
	"Numero_Erroné":               parcel.StatusPostponed,
	"Injoignable":                 parcel.StatusPostponed,
	"Hors-zone":                   parcel.StatusPostponed,
	"Attende de relancer":         parcel.StatusPostponed,
	// Outcomes.
	"Reporté":  parcel.StatusPostponed,
	"Refusé":   parcel.StatusRefused,
	"Livré":    parcel.StatusDelivered,
	"Retourné": parcel.StatusReturned,
	// A return under way: the customer will not take the parcel, which is
	// travelling back; "Retourné" follows when it reaches the seller.
	"Demande de Retour":   parcel.StatusRefused,
	"En retour par AMANA": parcel.StatusRefused,
	"Annulé":              parcel.StatusCancelled,
	"Annulé Par Vendeur":  parcel.StatusCancelled,
})
