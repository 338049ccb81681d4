package remit_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/remit"
)

// The look-ups of a statement's (or a billing period's) parcels and earlier
// lines search the parcels' and lines' indexes by key even when the
// planner's statistics do not know the store or the account yet (the tables
// analysed before they were written): a plan reading all of the store's
// parcels or lines for every statement made reconciling and billing grow
// with the store.
func TestStatementLookUpsSearchByKey(t *testing.T) {
	t.Parallel()
	f := setup(t)
	other, otherAccount := f.newStore("Autre")
	write := func(store, account uuid.UUID, prefix string, n int) []uuid.UUID {
		ps := make([]fp, n)
		for i := range ps {
			ps[i] = fp{fmt.Sprintf("%s%d", prefix, i), "delivered", 100 * money.Dirham, "casablanca", march.AddDate(0, 0, 3)}
		}
		ids := f.seedParcels(store, account, ps)
		// A parcel whose code was reused: the oldest is the statement's.
		f.seedParcels(store, account, []fp{{prefix + "1", "returned", 0, "rabat", march.AddDate(0, 0, 5)}})
		st, err := remit.ParseCSV(strings.NewReader("Code;Statut;CRBT;Frais de livraison;Frais de retour;Frais CRBT;Net\n" +
			prefix + "0;Livré;100;25;0;4;71\n" + prefix + "1;Retourné;0;0;10;0;-10\n"))
		require.NoError(t, err)
		_, _, err = f.save(store, account, "RV-"+prefix, remit.SourceCSV, st)
		require.NoError(t, err)
		st, err = remit.ParseCSV(strings.NewReader("Code;Statut;CRBT;Net\n" + prefix + "1;Livré;100;100\n"))
		require.NoError(t, err)
		_, _, err = f.save(store, account, "RV2-"+prefix, remit.SourceCSV, st)
		require.NoError(t, err)
		f.db.Fill(t, "remittance_lines", fmt.Sprintf("store_id = '%s' AND tracking = '%s0'", store, prefix), n,
			map[string]string{"line_no": "g + 100", "tracking": fmt.Sprintf("'%s' || g", prefix)})
		return ids
	}
	write(other, otherAccount, "O", 5_000)
	f.db.Analyze(t, "parcels", "remittances", "remittance_lines")
	ids := write(f.store, f.account, "T", 20_000)

	trackings := []string{"T1", "T1", "T0", "unknown"} // a repeat, a reused code, one of no parcel
	for i := range 1_000 {
		trackings = append(trackings, fmt.Sprintf("T%d", 2+i*7))
	}
	pgtest.RequireKeyed(t, f.db.Explain(t, f.store, remit.FeesParcelsSQL, f.store, ids[:1_000]), "parcels", "id")
	pgtest.RequireKeyed(t, f.db.Explain(t, f.store, remit.ParcelsByTrackingSQL, f.store, f.account, trackings), "parcels", "tracking")
	pgtest.RequireKeyed(t, f.db.Explain(t, f.store, remit.FirstLinesSQL, f.store, f.account, trackings), "remittance_lines", "tracking", "id")

	// They read what the statements they replace read.
	byID := append(slices.Clone(ids[:1_000]), ids[0], uuid.New())
	got := f.db.Rows(t, f.store, true, remit.FeesParcelsSQL, f.store, byID)
	require.Len(t, got, 1_000)
	require.Equal(t, f.db.Rows(t, f.store, true, `SELECT id, account_id, tracking FROM parcels WHERE store_id = $1 AND id = ANY($2)`, f.store, byID), got)
	got = f.db.Rows(t, f.store, true, remit.ParcelsByTrackingSQL, f.store, f.account, trackings)
	require.Len(t, got, 1_002)
	require.Equal(t, f.db.Rows(t, f.store, true, `SELECT DISTINCT ON (tracking) tracking, id, status, cod, city_id, updated_at FROM parcels
WHERE store_id = $1 AND account_id = $2 AND tracking = ANY($3) AND deleted_at IS NULL AND creation = 'created'
ORDER BY tracking, created_at, id`, f.store, f.account, trackings), got)
	got = f.db.Rows(t, f.store, true, remit.FirstLinesSQL, f.store, f.account, trackings)
	require.Len(t, got, 1_002)
	require.Equal(t, f.db.Rows(t, f.store, true, `SELECT DISTINCT ON (l.tracking) r.id, r.reference, r.account_id, r.paid_at, r.created_at, l.line_no,
  l.tracking, l.outcome, l.cod, l.delivery_fee, l.return_fee, l.cod_fee, l.fees, l.net
FROM remittance_lines l JOIN remittances r ON r.store_id = l.store_id AND r.id = l.remittance_id
WHERE l.store_id = $1 AND r.account_id = $2 AND l.tracking = ANY($3)
ORDER BY l.tracking, r.created_at, r.id, l.line_no`, f.store, f.account, trackings), got)
	require.Empty(t, f.db.Rows(t, f.store, true, remit.ParcelsByTrackingSQL, f.store, otherAccount, trackings), "another store's account")
}
