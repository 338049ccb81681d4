package billing_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/postgres"
)

func (f *fixture) sellerStatement(stores []uuid.UUID, from, to time.Time) *billing.SellerStatement {
	f.t.Helper()
	var st *billing.SellerStatement
	require.NoError(f.t, postgres.InSnapshot(context.Background(), f.pool, postgres.StoreScope(stores...), func(tx *postgres.Tx) error {
		var err error
		st, err = billing.SellerStatementOf(context.Background(), tx, f.seller, stores, from, to)
		return err
	}))
	return st
}

// A seller statement sums the seller's stores: opening balance, the
// period's invoices and payments, closing balance; the next period opens
// where this one closed. Stores not asked for, or of another seller, are
// not on it.
func TestSellerStatement(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	caftan := f.newStore("Caftan Chic")
	src := append(parcels(f.store, f.agent, 12, 21), parcels(caftan, f.agent, 8, 22)...)
	svc := newService(t, f, src) // issues on 2 April
	from, to := billing.MonthOf(march)
	var nets []money.Amount
	var ids []uuid.UUID
	for _, store := range []uuid.UUID{f.store, caftan} {
		d, err := svc.Draft(ctx, store, uuid.Nil, from, to)
		require.NoError(t, err)
		rec, err := svc.Issue(ctx, store, d.ID, uuid.Nil)
		require.NoError(t, err)
		nets, ids = append(nets, rec.Invoice.Totals.Net), append(ids, d.ID)
	}
	require.Positive(t, nets[0])
	april, may := to, to.AddDate(0, 1, 0)
	_, err := svc.RecordPayment(ctx, f.store, ids[0], uuid.Nil, 100_00, april.AddDate(0, 0, 4), "VIR-1")
	require.NoError(t, err)
	_, err = svc.RecordPayment(ctx, f.store, ids[0], uuid.Nil, 50_00, may.AddDate(0, 0, 2), "VIR-2")
	require.NoError(t, err)

	both := []uuid.UUID{f.store, caftan}
	st := f.sellerStatement(both, april, may)
	require.Equal(t, "Argan SARL", st.SellerName)
	require.Len(t, st.Stores, 2)
	require.Equal(t, "Argan Beauty", st.Stores[0].Name)
	a := st.Stores[0]
	require.Zero(t, a.Opening)
	require.Len(t, a.Invoices, 1)
	require.Equal(t, "FA-000001", a.Invoices[0].Number)
	require.Len(t, a.Payments, 1)
	require.Equal(t, money.Amount(100_00), a.Paid)
	require.Equal(t, nets[0]-100_00, a.Closing)
	require.Equal(t, nets[0]+nets[1], st.Invoiced)
	require.Equal(t, nets[0]+nets[1]-100_00, st.Closing)
	require.Equal(t, "FA-000002", st.Stores[1].Invoices[0].Number, "numbers run per seller across stores")

	next := f.sellerStatement(both, may, may.AddDate(0, 1, 0))
	require.Equal(t, st.Closing, next.Opening, "a period opens where the last closed")
	require.Equal(t, st.Closing-50_00, next.Closing)
	require.Empty(t, next.Stores[0].Invoices)

	only := f.sellerStatement([]uuid.UUID{caftan}, april, may)
	require.Len(t, only.Stores, 1)
	require.Equal(t, nets[1], only.Closing)

	// Another seller's store passed in is left out.
	otherOwner, otherSeller, otherStore := uuid.New(), uuid.New(), uuid.New()
	f.exec(`INSERT INTO users (id, email, full_name, password_hash) VALUES ($1, $2, 'Youssef', 'x')`, otherOwner, otherOwner.String()+"@t.test")
	f.exec(`INSERT INTO sellers (id, name, owner_user_id) VALUES ($1, 'TechSouk', $2)`, otherSeller, otherOwner)
	f.exec(`INSERT INTO stores (id, seller_id, name) VALUES ($1, $2, 'TechSouk')`, otherStore, otherSeller)
	mixed := f.sellerStatement([]uuid.UUID{caftan, otherStore}, april, may)
	require.Len(t, mixed.Stores, 1)

	// The PDF carries the labels and the closing balance.
	pdf, err := billing.RenderSellerStatement(st)
	require.NoError(t, err)
	got := pdfText(t, pdf)
	for _, l := range billing.StatementLabels() {
		require.Contains(t, got, l.FR)
		ar := norm.NFKC.String(l.AR)
		if !strings.Contains(got, ar) {
			require.Contains(t, got, reversed(ar), "Arabic label %q", l.AR)
		}
	}
	require.Contains(t, got, st.Closing.Format())
	require.Contains(t, got, "Règlement facture FA-000001 — VIR-1")
}

// pdfText reads a PDF back with pdftotext, NFKC-normalised.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatalf("pdftotext is required (Debian: poppler-utils): %v", err)
	}
	file := filepath.Join(t.TempDir(), "statement.pdf")
	require.NoError(t, os.WriteFile(file, pdf, 0o600))
	text, err := exec.Command("pdftotext", "-layout", file, "-").Output()
	require.NoError(t, err)
	return norm.NFKC.String(string(text))
}

func reversed(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
