package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/carrier/ameex"
	"github.com/leadify/leadify/syncserver/carrier/coliix"
	"github.com/leadify/leadify/syncserver/carrier/sendit"
	"github.com/leadify/leadify/syncserver/remit"
)

// demoTariffs are what the demo's carriers charge per parcel, everywhere
// (City "") and in the city they are based in, in the range of Moroccan
// carriers' rates for cash-on-delivery e-commerce parcels: a delivery fee, a
// cash-on-delivery fee (a percentage of the cash collected, or a fixed
// amount) and a return fee for a refused or returned parcel. The carrier
// demo gives its sandbox accounts these price lists, and the invoice demo's
// parcels are charged by them.
var demoTariffs = map[string][]remit.PriceList{
	coliix.Name: {
		{DeliveryFee: 35 * money.Dirham, ReturnFee: 15 * money.Dirham, CODFeeBP: 100},
		{City: "casablanca", DeliveryFee: 25 * money.Dirham, ReturnFee: 10 * money.Dirham, CODFeeBP: 100},
	},
	ameex.Name: {
		{DeliveryFee: 39 * money.Dirham, ReturnFee: 19 * money.Dirham, CODFeeFixed: 5 * money.Dirham},
		{City: "rabat", DeliveryFee: 29 * money.Dirham, ReturnFee: 14 * money.Dirham, CODFeeFixed: 5 * money.Dirham},
	},
	sendit.Name: {
		{DeliveryFee: 37 * money.Dirham, ReturnFee: 17 * money.Dirham, CODFeeBP: 80},
		{City: "marrakech", DeliveryFee: 27 * money.Dirham, ReturnFee: 12 * money.Dirham, CODFeeBP: 80},
	},
}

// demoPriceLists returns the carrier's demo price lists for account, valid
// from the day since falls on, open-ended (none for a carrier without
// tariffs).
func demoPriceLists(carrier string, account uuid.UUID, since time.Time) remit.PriceBook {
	since = since.UTC().Truncate(24 * time.Hour)
	var book remit.PriceBook
	for _, t := range demoTariffs[carrier] {
		t.Account, t.ValidFrom = account, since
		book = append(book, t)
	}
	return book
}

// saveDemoPriceLists gives a store's carrier account the carrier's demo
// price lists, valid from since.
func saveDemoPriceLists(ctx context.Context, tx pgx.Tx, store uuid.UUID, carrier string, account uuid.UUID, since time.Time) error {
	for _, p := range demoPriceLists(carrier, account, since) {
		if err := remit.SavePriceList(ctx, tx, store, uuid.Nil, &p); err != nil {
			return fmt.Errorf("price list of %s: %w", carrier, err)
		}
	}
	return nil
}

// demoFees is what the carrier's demo price list charges for a parcel to
// cityID that reached its final status at t: zero for a carrier without
// tariffs.
func demoFees(carrier, cityID string, t time.Time, delivered bool, cod money.Amount) (remit.Fees, error) {
	book := demoPriceLists(carrier, uuid.Nil, t)
	pl, ok := book.Find(uuid.Nil, cityID, t.UTC().Truncate(24*time.Hour))
	if !ok {
		return remit.Fees{}, nil
	}
	return pl.Expected(delivered, cod)
}
