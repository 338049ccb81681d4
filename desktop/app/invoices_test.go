package app_test

import (
	"context"
	"database/sql"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadify/leadify/desktop/app"
	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/syncclient"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// TestInvoiceVerifiesOffline: an invoice issued by the real server reaches the
// seller's replica with its sealed PDF (and the ledger its entries); with the
// server gone, the desktop still verifies it; an altered row or PDF fails.
func TestInvoiceVerifiesOffline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "argan")
	march := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

	// Commission entries of March on the server (a run over two parcels).
	rule := commission.Rule{ID: uuid.NewString(), Name: "Frais plateforme", Beneficiary: commission.BeneficiaryPlatform,
		Trigger: commission.TriggerDelivered, Kind: commission.KindPercentage, RateBP: 300, ValidFrom: march.AddDate(0, -1, 0)}
	require.NoError(t, postgres.InTx(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
		return billing.SaveRule(ctx, tx, tn.StoreID, uuid.Nil, rule)
	}))
	var src billing.SliceSource
	for i := range 2 {
		at := march.Add(time.Duration(i+1) * 24 * time.Hour)
		src = append(src, billing.DeliveredParcel{ID: uuid.Must(uuid.NewV7()), Store: tn.StoreID, Carrier: "coliix",
			City: "casablanca", COD: money.Amount(199_00 + i), ConfirmedAt: at, DeliveredAt: at, Status: parcel.StatusDelivered})
	}
	_, err := (&billing.Runner{Pool: env.DB.App, Source: src}).Run(ctx, tn.StoreID, march)
	require.NoError(t, err)

	// March's invoice, drafted and issued through the API.
	draft, err := tn.Seller.Billing.DraftInvoice(ctx, connect.NewRequest(&leadifyv1.DraftInvoiceRequest{StoreId: tn.StoreID.String(),
		PeriodStart: timestamppb.New(march), PeriodEnd: timestamppb.New(march.AddDate(0, 1, 0))}))
	require.NoError(t, err)
	issued, err := tn.Seller.Billing.IssueInvoice(ctx, connect.NewRequest(&leadifyv1.IssueInvoiceRequest{StoreId: tn.StoreID.String(),
		InvoiceId: draft.Msg.Invoice.Id}))
	require.NoError(t, err)
	id := issued.Msg.Invoice.Id

	// The seller's desktop reaches the server through a link we can cut.
	target, err := url.Parse(env.URL)
	require.NoError(t, err)
	link := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer link.Close()
	dbPath := filepath.Join(t.TempDir(), "leadify.db")
	a := app.New(app.Options{DBPath: dbPath, Runtime: &events{}, Timeout: 5 * time.Second})
	defer a.Shutdown(ctx)
	_, err = a.Session.SignIn(link.URL, tn.SellerEmail, servertest.Password)
	require.NoError(t, err)
	db, err := localstore.Open(ctx, dbPath)
	require.NoError(t, err)
	defer db.Close()
	sess, err := db.Session(ctx)
	require.NoError(t, err)
	sc, err := syncclient.New(syncclient.Config{DB: db, BaseURL: link.URL, Token: sess.Token})
	require.NoError(t, err)
	require.NoError(t, sc.Sync(ctx))

	invs, err := a.Stores.Invoices(tn.StoreID.String())
	require.NoError(t, err)
	require.Len(t, invs, 1)
	require.Equal(t, id, invs[0].ID)
	require.Equal(t, "FA-000001", invs[0].Number)
	require.Equal(t, "issued", invs[0].Status)
	pdf, err := a.Stores.InvoicePDF(id)
	require.NoError(t, err)
	require.Equal(t, "%PDF-", string(pdf[:5]))
	raw, err := sql.Open("sqlite3", dbPath)
	require.NoError(t, err)
	defer raw.Close()
	var entries int
	require.NoError(t, raw.QueryRow(`SELECT count(*) FROM commission_entries WHERE store_id = ?`, tn.StoreID.String()).Scan(&entries))
	require.Equal(t, 2, entries, "the store's ledger replicates to its seller")

	// Online once: the check fetches the server's key and keeps it.
	check, err := a.Stores.VerifyInvoice(id)
	require.NoError(t, err)
	require.True(t, check.Valid, check.Reason)
	require.Equal(t, "FA-000001", check.Number)

	// Offline from now on.
	link.Close()
	check, err = a.Stores.VerifyInvoice(id)
	require.NoError(t, err)
	require.True(t, check.Valid, check.Reason)

	// A row whose total was changed on the device fails.
	_, err = raw.Exec(`UPDATE invoices SET net = net + 10000 WHERE id = ?`, id)
	require.NoError(t, err)
	check, err = a.Stores.VerifyInvoice(id)
	require.NoError(t, err)
	require.False(t, check.Valid)
	require.Contains(t, check.Reason, "montants")
	_, err = raw.Exec(`UPDATE invoices SET net = net - 10000 WHERE id = ?`, id)
	require.NoError(t, err)

	// So does a PDF with one byte changed.
	bad := append([]byte(nil), pdf...)
	bad[len(bad)/2] ^= 1
	_, err = raw.Exec(`UPDATE invoices SET pdf = ? WHERE id = ?`, bad, id)
	require.NoError(t, err)
	check, err = a.Stores.VerifyInvoice(id)
	require.NoError(t, err)
	require.False(t, check.Valid)
	require.Contains(t, check.Reason, "modifié")

	// The genuine one verifies again; an unknown invoice is an error.
	_, err = raw.Exec(`UPDATE invoices SET pdf = ? WHERE id = ?`, pdf, id)
	require.NoError(t, err)
	check, err = a.Stores.VerifyInvoice(id)
	require.NoError(t, err)
	require.True(t, check.Valid, check.Reason)
	_, err = a.Stores.VerifyInvoice(uuid.NewString())
	require.ErrorIs(t, err, localstore.ErrNoInvoice)
}
