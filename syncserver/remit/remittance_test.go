package remit_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/remit"
)

func TestPriceListValidation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	base := remit.PriceList{Account: f.account, DeliveryFee: 20 * money.Dirham, ReturnFee: 15 * money.Dirham,
		CODFeeFixed: 5 * money.Dirham, ValidFrom: march}
	require.NoError(t, f.savePrice(f.store, base))

	for name, tc := range map[string]struct {
		edit func(*remit.PriceList)
		want string
	}{
		"negative":      {func(p *remit.PriceList) { p.DeliveryFee = -1 }, "is negative"},
		"absurd":        {func(p *remit.PriceList) { p.ReturnFee = 1 << 50 }, "out of range"},
		"rate":          {func(p *remit.PriceList) { p.CODFeeBP = 10_001 }, "basis points"},
		"city":          {func(p *remit.PriceList) { p.City = "atlantis" }, "unknown city"},
		"partial day":   {func(p *remit.PriceList) { p.ValidFrom = march.Add(time.Hour) }, "midnights"},
		"ends first":    {func(p *remit.PriceList) { p.ValidFrom, p.ValidUntil = march.AddDate(0, 2, 0), march.AddDate(0, 1, 0) }, "not after"},
		"overlap":       {func(p *remit.PriceList) { p.ValidFrom = march.AddDate(0, 1, 0) }, "overlaps"},
		"overlap early": {func(p *remit.PriceList) { p.ValidFrom, p.ValidUntil = march.AddDate(0, -1, 0), march.AddDate(0, 0, 1) }, "overlaps"},
	} {
		p := base
		p.ID = uuid.Nil
		tc.edit(&p)
		err := f.savePrice(f.store, p)
		require.ErrorIs(t, err, remit.ErrInvalid, name)
		require.Contains(t, err.Error(), tc.want, name)
	}
	// Adjacent periods and another city do not overlap.
	early := base
	early.ValidFrom, early.ValidUntil = march.AddDate(0, -2, 0), march
	require.NoError(t, f.savePrice(f.store, early))
	casa := base
	casa.City, casa.DeliveryFee = "casablanca", 15*money.Dirham
	require.NoError(t, f.savePrice(f.store, casa))
	// Another store's account is not found from this store.
	_, accountB := f.newStore("Other")
	other := base
	other.Account = accountB
	require.ErrorIs(t, f.savePrice(f.store, other), postgres.ErrNotFound)
}

func TestPriceBookFindsCityThenDefault(t *testing.T) {
	t.Parallel()
	acc := uuid.New()
	book := remit.PriceBook{
		{ID: uuid.New(), Account: acc, DeliveryFee: 35 * money.Dirham, ValidFrom: march},
		{ID: uuid.New(), Account: acc, City: "casablanca", DeliveryFee: 20 * money.Dirham, ValidFrom: march, ValidUntil: march.AddDate(0, 1, 0)},
	}
	p, ok := book.Find(acc, "casablanca", march.AddDate(0, 0, 3))
	require.True(t, ok)
	require.Equal(t, 20*money.Dirham, p.DeliveryFee)
	p, ok = book.Find(acc, "casablanca", march.AddDate(0, 1, 3))
	require.True(t, ok, "after the city's list ends, the default applies")
	require.Equal(t, 35*money.Dirham, p.DeliveryFee)
	_, ok = book.Find(acc, "rabat", march.AddDate(0, 0, -1))
	require.False(t, ok, "before any list")
	_, ok = book.Find(uuid.New(), "rabat", march)
	require.False(t, ok, "another account")
	fees, err := (&remit.PriceList{DeliveryFee: 20 * money.Dirham, CODFeeFixed: 2 * money.Dirham, CODFeeBP: 150}).Expected(true, 249*money.Dirham)
	require.NoError(t, err)
	require.Equal(t, remit.Fees{Delivery: 20 * money.Dirham, COD: 2*money.Dirham + 374*money.Centime}, fees, "1.5 % of 249 = 3.735 → 3.74")
}

// A statement reconciles every line: matched, amount and status mismatches,
// an unknown parcel, a line paying a parcel twice; its fees are audited; the
// carrier still owes the delivered parcels no statement names.
func TestReconcileStatement(t *testing.T) {
	t.Parallel()
	f := setup(t)
	at := march.AddDate(0, 0, 5)
	f.seedParcels(f.store, f.account, []fp{
		{"T1", "delivered", 249 * money.Dirham, "casablanca", at},
		{"T2", "delivered", 199 * money.Dirham, "rabat", at},
		{"T3", "returned", 150 * money.Dirham, "fes", at},
		{"T4", "in_transit", 120 * money.Dirham, "fes", at},
		{"T5", "delivered", 300 * money.Dirham, "tanger", at},
		{"T6", "delivered", 99 * money.Dirham, "rabat", at.Add(time.Hour)},
	})
	require.NoError(t, f.savePrice(f.store, remit.PriceList{Account: f.account, DeliveryFee: 30 * money.Dirham,
		ReturnFee: 15 * money.Dirham, CODFeeFixed: 5 * money.Dirham, ValidFrom: march}))
	require.NoError(t, f.savePrice(f.store, remit.PriceList{Account: f.account, City: "casablanca", DeliveryFee: 20 * money.Dirham,
		ReturnFee: 10 * money.Dirham, CODFeeFixed: 5 * money.Dirham, ValidFrom: march}))

	st, err := remit.ParseCSV(strings.NewReader("Code;Statut;CRBT;Frais de livraison;Frais de retour;Frais CRBT;Net\n" +
		"T1;Livré;249;20;0;5;224\n" + // matched, fees as listed (Casablanca)
		"T2;Livré;190;35;0;5;150\n" + // COD short by 9, delivery overcharged by 5
		"T3;Retourné;0;0;15;0;-15\n" + // matched return
		"T4;Livré;120;30;0;5;85\n" + // not delivered in our records
		"GHOST;Livré;500;30;0;5;465\n" + // unknown parcel
		"T1;Livré;249;20;0;5;224\n")) // paid twice
	require.NoError(t, err)
	rem, already, err := f.save(f.store, f.account, "RV-1", remit.SourceCSV, st)
	require.NoError(t, err)
	require.False(t, already)
	require.Equal(t, "coliix", rem.Carrier)

	lines, sum := f.reconcile(f.store, rem.ID)
	var matches []remit.Match
	for _, l := range lines {
		matches = append(matches, l.Match)
	}
	require.Equal(t, []remit.Match{remit.Matched, remit.AmountMismatch, remit.Matched, remit.StatusMismatch, remit.UnknownParcel,
		remit.PaidTwice}, matches)
	require.Nil(t, lines[4].Parcel)
	require.Equal(t, 6, sum.Total.Lines)
	require.Equal(t, money.Amount(224+150-15+85+465+224)*money.Dirham, sum.Total.Net)
	require.Equal(t, 9*money.Dirham, sum.Shortfall)
	require.Equal(t, 2, sum.ByMatch[remit.Matched].Lines)
	require.Empty(t, lines[0].Flags, "Casablanca's own list: 20 + 5")
	require.Equal(t, []remit.FeeFlag{{Kind: remit.FeeDelivery, Direction: remit.Over, Expected: 30 * money.Dirham,
		Charged: 35 * money.Dirham, Difference: 5 * money.Dirham}}, lines[1].Flags)
	require.Empty(t, lines[2].Flags)

	var owed []remit.Owed
	var flags []remit.LineFlag
	require.NoError(t, postgres.InSnapshot(context.Background(), f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		var err error
		if owed, err = remit.StillOwed(context.Background(), tx, f.store, march.AddDate(-1, 0, 0)); err != nil {
			return err
		}
		flags, err = remit.ListFeeFlags(context.Background(), tx, f.store, march, march.AddDate(0, 1, 0))
		return err
	}))
	require.Len(t, owed, 1)
	o := owed[0]
	require.Equal(t, 2, o.Parcels, "T5 and T6 are delivered and unsettled")
	require.Equal(t, 399*money.Dirham, o.COD)
	require.Equal(t, 70*money.Dirham, o.ExpectedFees, "(30 + 5) × 2 by the default list")
	require.Equal(t, 329*money.Dirham, o.ExpectedNet)
	require.Equal(t, 9*money.Dirham, o.Shortfall)
	require.Equal(t, "T5", o.Sample[0].Tracking, "oldest first")
	require.Len(t, flags, 1, "only T2's delivery fee; the paid-twice line's fees match the list")
	require.Equal(t, "T2", flags[0].Tracking)
	require.Equal(t, "RV-1", flags[0].Reference)
}

// Importing the same statement again — same reference or another, CSV or
// XLSX — changes nothing; a reference reused for other lines is refused.
func TestImportIsIdempotent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	st, err := remit.ParseCSV(strings.NewReader(coliixCSV))
	require.NoError(t, err)
	first, already, err := f.save(f.store, f.account, "RV-2026-031", remit.SourceCSV, st)
	require.NoError(t, err)
	require.False(t, already)
	counts := []int{f.count("remittances"), f.count("remittance_lines")}

	fromXLSX, _, err := remit.ParseFile(xlsxOf(t, coliixCSV))
	require.NoError(t, err)
	for _, ref := range []string{"RV-2026-031", "another name", ""} {
		again, already, err := f.save(f.store, f.account, ref, remit.SourceXLSX, fromXLSX)
		require.NoError(t, err)
		require.True(t, already)
		require.Equal(t, first.ID, again.ID)
		require.Equal(t, first.Total, again.Total)
	}
	require.Equal(t, counts, []int{f.count("remittances"), f.count("remittance_lines")})

	other, err := remit.ParseCSV(strings.NewReader("Code;CRBT\nZZ1;100\n"))
	require.NoError(t, err)
	_, _, err = f.save(f.store, f.account, "RV-2026-031", remit.SourceCSV, other)
	require.ErrorIs(t, err, remit.ErrConflict)
	require.Equal(t, counts, []int{f.count("remittances"), f.count("remittance_lines")})

	// Rows are append-only.
	err = postgres.InTx(context.Background(), f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		_, err := tx.Exec(context.Background(), `UPDATE remittance_lines SET net = 0 WHERE store_id = $1`, f.store)
		return err
	})
	require.ErrorContains(t, err, "append-only")
}

// Another store's remittance, account and lines are invisible: by the
// explicit store filter and by row-level security.
func TestRemittancesAreIsolated(t *testing.T) {
	t.Parallel()
	f := setup(t)
	storeB, accountB := f.newStore("Canary B")
	f.seedParcels(storeB, accountB, []fp{{"B1", "delivered", 100 * money.Dirham, "rabat", march}})
	st, err := remit.ParseCSV(strings.NewReader("Code;CRBT\nB1;100\n"))
	require.NoError(t, err)
	remB, _, err := f.save(storeB, accountB, "RV-B", remit.SourceCSV, st)
	require.NoError(t, err)

	_, _, err = f.save(f.store, accountB, "RV-X", remit.SourceCSV, st)
	require.ErrorIs(t, err, postgres.ErrNotFound, "B's account from A's store")
	err = postgres.InSnapshot(context.Background(), f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		if _, _, _, err := remit.Reconcile(context.Background(), tx, f.store, remB.ID); !errors.Is(err, postgres.ErrNotFound) {
			return fmt.Errorf("B's remittance from A's store: %v", err)
		}
		if _, _, _, err := remit.Reconcile(context.Background(), tx, storeB, remB.ID); !errors.Is(err, postgres.ErrNotFound) {
			return fmt.Errorf("B's remittance in A's scope: %v", err)
		}
		owed, err := remit.StillOwed(context.Background(), tx, storeB, time.Time{})
		if err != nil || len(owed) != 0 {
			return fmt.Errorf("B's still-owed in A's scope: %v %v", owed, err)
		}
		var n int
		if err := tx.QueryRow(context.Background(), `SELECT count(*) FROM remittance_lines`).Scan(&n); err != nil || n != 0 {
			return fmt.Errorf("RLS lets A's scope read %d lines (%v)", n, err)
		}
		return nil
	})
	require.NoError(t, err)
}

// Property: for random statements over random parcels, every line lands in
// exactly one bucket, the buckets sum to the remittance's total (the sum of
// its lines), and importing it again changes nothing.
func TestReconciliationTotalsProperty(t *testing.T) {
	t.Parallel()
	f := setup(t)
	rng := rand.New(rand.NewPCG(7, 11))
	statuses := []string{"delivered", "delivered", "delivered", "returned", "refused", "in_transit"}
	var ps []fp
	for i := range 60 {
		ps = append(ps, fp{fmt.Sprintf("P%03d", i), statuses[rng.IntN(len(statuses))], money.Amount(50_00 + rng.Int64N(900_00)),
			[]string{"casablanca", "rabat", "fes"}[rng.IntN(3)], march.Add(time.Duration(i) * time.Hour)})
	}
	f.seedParcels(f.store, f.account, ps)
	require.NoError(t, f.savePrice(f.store, remit.PriceList{Account: f.account, DeliveryFee: 30 * money.Dirham,
		ReturnFee: 15 * money.Dirham, CODFeeBP: 100, ValidFrom: march}))
	for round := range 8 {
		var b strings.Builder
		b.WriteString("Code;Statut;CRBT;Frais;Net\n")
		for range 1 + rng.IntN(25) {
			tracking := fmt.Sprintf("P%03d", rng.IntN(75)) // some unknown
			cod := money.Amount(rng.Int64N(900_00))
			fee := money.Amount(rng.Int64N(40_00))
			status := "Livré"
			if rng.IntN(4) == 0 {
				status, cod = "Retourné", 0
			}
			net, _ := cod.Sub(fee)
			fmt.Fprintf(&b, "%s;%s;%s;%s;%s\n", tracking, status, cod.Plain(), fee.Plain(), net.Plain())
		}
		st, err := remit.ParseCSV(strings.NewReader(b.String()))
		require.NoError(t, err, b.String())
		rem, already, err := f.save(f.store, f.account, fmt.Sprintf("R%d", round), remit.SourceCSV, st)
		require.NoError(t, err)
		require.False(t, already)
		lines, sum := f.reconcile(f.store, rem.ID)
		require.Len(t, lines, len(st.Lines))
		var n int
		var net money.Amount
		for _, m := range remit.Matches {
			n += sum.ByMatch[m].Lines
			net += sum.ByMatch[m].Net
		}
		require.Equal(t, len(st.Lines), n)
		require.Equal(t, rem.Total, net)
		require.Equal(t, rem.Total, sum.Total.Net)
		total, err := st.Total()
		require.NoError(t, err)
		require.Equal(t, total, rem.Total)

		before := []int{f.count("remittances"), f.count("remittance_lines")}
		again, already, err := f.save(f.store, f.account, fmt.Sprintf("R%d-again", round), remit.SourceCSV, st)
		require.NoError(t, err)
		require.True(t, already)
		require.Equal(t, rem.ID, again.ID)
		require.Equal(t, before, []int{f.count("remittances"), f.count("remittance_lines")})
		_, sumAgain := f.reconcile(f.store, rem.ID)
		require.Equal(t, sum, sumAgain, "re-import changes no reconciliation")
	}
}
