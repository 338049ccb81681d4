package remit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/remit"
)

// Invoices get carrier fees: charged ones from the statement that settled
// the parcel, else the price list's, else none.
func TestFeeSourceFillsCarrierFees(t *testing.T) {
	t.Parallel()
	f := setup(t)
	at := march.AddDate(0, 0, 4)
	ids := f.seedParcels(f.store, f.account, []fp{
		{"F1", "delivered", 200 * money.Dirham, "casablanca", at}, // charged, itemised
		{"F2", "delivered", 300 * money.Dirham, "rabat", at},      // price list (1 % COD)
		{"F3", "returned", 0, "rabat", at},                        // price list return fee
		{"F4", "delivered", 100 * money.Dirham, "rabat", at},      // statement says returned: price list
	})
	require.NoError(t, f.savePrice(f.store, remit.PriceList{Account: f.account, DeliveryFee: 30 * money.Dirham,
		ReturnFee: 15 * money.Dirham, CODFeeFixed: 2 * money.Dirham, CODFeeBP: 100, ValidFrom: march}))
	st, err := remit.ParseCSV(strings.NewReader("Code;Statut;CRBT;Frais de livraison;Frais de retour;Frais CRBT;Net\n" +
		"F1;Livré;200;25;0;4;171\nF4;Retourné;0;0;10;0;-10\n"))
	require.NoError(t, err)
	_, _, err = f.save(f.store, f.account, "RV-F", remit.SourceCSV, st)
	require.NoError(t, err)

	statuses := []parcel.Status{parcel.StatusDelivered, parcel.StatusDelivered, parcel.StatusReturned, parcel.StatusDelivered}
	cods := []money.Amount{200 * money.Dirham, 300 * money.Dirham, 0, 100 * money.Dirham}
	cities := []string{"casablanca", "rabat", "rabat", "rabat"}
	var inner billing.SliceSource
	for i, id := range ids {
		inner = append(inner, billing.DeliveredParcel{ID: id, Store: f.store, City: cities[i], COD: cods[i], Status: statuses[i],
			ConfirmedAt: at.Add(-time.Hour), DeliveredAt: at.Add(time.Duration(i) * time.Minute)})
	}
	// A parcel whose source already carries fees keeps them.
	kept := billing.DeliveredParcel{ID: uuid.New(), Store: f.store, City: "rabat", COD: 50 * money.Dirham, Status: parcel.StatusDelivered,
		DeliveryFee: 1, ConfirmedAt: at, DeliveredAt: at.Add(time.Hour)}
	inner = append(inner, kept)
	src := remit.FeeSource{Inner: inner, Pool: f.pool}
	got := map[uuid.UUID]remit.Fees{}
	require.NoError(t, src.Parcels(context.Background(), f.store, march, march.AddDate(0, 1, 0), func(p billing.DeliveredParcel) error {
		got[p.ID] = remit.Fees{Delivery: p.DeliveryFee, Return: p.ReturnFee, COD: p.CODFee}
		return nil
	}))
	require.Equal(t, remit.Fees{Delivery: 25 * money.Dirham, COD: 4 * money.Dirham}, got[ids[0]])
	require.Equal(t, remit.Fees{Delivery: 30 * money.Dirham, COD: 5 * money.Dirham}, got[ids[1]])
	require.Equal(t, remit.Fees{Return: 15 * money.Dirham}, got[ids[2]])
	require.Equal(t, remit.Fees{Delivery: 30 * money.Dirham, COD: 3 * money.Dirham}, got[ids[3]])
	require.Equal(t, remit.Fees{Delivery: 1}, got[kept.ID])

	// An invoice built from it carries them.
	inv := &billing.Invoice{}
	var ps []billing.DeliveredParcel
	require.NoError(t, src.Parcels(context.Background(), f.store, march, march.AddDate(0, 1, 0), func(p billing.DeliveredParcel) error {
		ps = append(ps, p)
		return nil
	}))
	require.NoError(t, inv.Compute(ps, nil))
	require.Equal(t, money.Amount(25+30+30)*money.Dirham+1, inv.Totals.DeliveryFees)
	require.Equal(t, 15*money.Dirham, inv.Totals.ReturnFees)
}
