package demo_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/invoiceseal"
	"github.com/leadify/leadify/syncserver/demo"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
	"github.com/leadify/leadify/syncserver/servertest"
)

// TestRunInvoices: the demo stores get last month's invoices, numbered per
// seller, sealed, written as PDFs, the first emailed once; a second run
// changes nothing.
func TestRunInvoices(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	ctx := context.Background()
	_, err := demo.Seed(ctx, env.Server, demo.DefaultPassword)
	require.NoError(t, err)
	kr, err := secrets.ParseKeyring(secrets.GenerateKey("demo"))
	require.NoError(t, err)
	dir := t.TempDir()
	opts := demo.InvoiceOptions{PublicURL: "http://127.0.0.1:8080", Dir: dir, Now: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)}
	var out bytes.Buffer
	require.NoError(t, demo.RunInvoices(ctx, env.DB.App, kr, opts, &out))
	t.Log(out.String())

	pdfs, err := filepath.Glob(filepath.Join(dir, "FA-*.pdf"))
	require.NoError(t, err)
	require.Len(t, pdfs, 3, "one invoice per demo store")
	for _, want := range []string{"FA-000001-argan-beauty.pdf", "FA-000002-caftan-chic.pdf", "FA-000001-techsouk.pdf"} {
		pdf, err := os.ReadFile(filepath.Join(dir, want))
		require.NoError(t, err, want)
		_, seal, err := invoiceseal.Split(pdf)
		require.NoError(t, err, "issued PDFs are sealed")
		require.Positive(t, seal.Lines)
		require.Equal(t, time.October, seal.PeriodStart.Month(), "last month's invoice")
	}
	mails, err := filepath.Glob(filepath.Join(dir, "email-*.eml"))
	require.NoError(t, err)
	require.Len(t, mails, 1)
	mail, err := os.ReadFile(mails[0])
	require.NoError(t, err)
	require.Contains(t, string(mail), "salma@arganbeauty.ma")
	require.Contains(t, string(mail), "application/pdf")

	// The invoices are rows of the stores, with the platform's fees from the ledger.
	var invoices, fees int
	require.NoError(t, postgres.InTx(ctx, env.DB.App, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM invoices WHERE status = 'issued' AND emailed_at IS NOT NULL`).Scan(&invoices); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM commission_entries WHERE beneficiary = 'platform'`).Scan(&fees)
	}))
	require.Equal(t, 1, invoices)
	require.Positive(t, fees)

	// Their parcels are charged by the carriers' demo price lists.
	for _, name := range []string{"Argan Beauty", "Caftan Chic", "TechSouk"} {
		var delivery, cod, returns int64
		require.NoError(t, postgres.InTx(ctx, env.DB.App, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, `SELECT (i.body->'totals'->>'deliveryFees')::bigint, (i.body->'totals'->>'codFees')::bigint,
  (i.body->'totals'->>'returnFees')::bigint FROM invoices i JOIN stores s ON s.id = i.store_id WHERE s.name = $1`, name).Scan(&delivery, &cod, &returns)
		}), name)
		require.Positive(t, delivery, "%s: delivery fees", name)
		require.Positive(t, cod, "%s: COD fees", name)
		require.Positive(t, returns, "%s: return fees", name)
	}

	out.Reset()
	require.NoError(t, demo.RunInvoices(ctx, env.DB.App, kr, opts, &out))
	again, err := filepath.Glob(filepath.Join(dir, "FA-*.pdf"))
	require.NoError(t, err)
	require.Equal(t, pdfs, again, "a second run issues nothing new")
	require.False(t, strings.Contains(out.String(), "Emailed"), "nor sends the email again")
}
