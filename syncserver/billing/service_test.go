package billing_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/billing/smtptest"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
)

func newService(t testing.TB, f *fixture, src billing.ParcelSource) *billing.Service {
	kr, err := secrets.ParseKeyring(secrets.GenerateKey("test"))
	require.NoError(t, err)
	return &billing.Service{Pool: f.pool, Source: src, Secrets: kr, Config: billing.Config{PublicURL: "https://app.leadify.test"},
		Now: func() time.Time { return march.AddDate(0, 1, 1) }}
}

func TestInvoiceLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.saveRules(f.store, platformRule(uuid.New(), 300))
	src := parcels(f.store, f.agent, 40, 5)
	ctx := context.Background()
	_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src}).Run(ctx, f.store, march)
	require.NoError(t, err)
	svc := newService(t, f, src)
	from, to := billing.MonthOf(march)

	draft, err := svc.Draft(ctx, f.store, uuid.Nil, from, to)
	require.NoError(t, err)
	require.Len(t, draft.Lines, 40)
	require.Equal(t, "Argan Beauty SARL", draft.Party.LegalName)
	require.Equal(t, int64(2000), draft.Totals.VATRateBP)
	require.Positive(t, draft.Totals.PlatformFees)
	again, err := svc.Draft(ctx, f.store, uuid.Nil, from, to)
	require.NoError(t, err)
	require.Equal(t, draft.ID, again.ID, "a draft is rebuilt in place")

	_, err = svc.RecordPayment(ctx, f.store, draft.ID, uuid.Nil, 1_00, march, "")
	require.ErrorIs(t, err, billing.ErrNotIssued)

	rec, err := svc.Issue(ctx, f.store, draft.ID, uuid.Nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), rec.Invoice.Number)
	require.True(t, strings.HasPrefix(string(rec.PDF), "%PDF-"))
	_, err = svc.Issue(ctx, f.store, draft.ID, uuid.Nil)
	require.ErrorIs(t, err, billing.ErrIssued)
	_, err = svc.Draft(ctx, f.store, uuid.Nil, from, to)
	require.ErrorIs(t, err, billing.ErrIssued)

	net := rec.Invoice.Totals.Net
	rec, err = svc.RecordPayment(ctx, f.store, draft.ID, uuid.Nil, net-10_00, march.AddDate(0, 1, 5), "VIR-1")
	require.NoError(t, err)
	require.Equal(t, billing.InvoicePartlyPaid, rec.Status)
	_, err = svc.RecordPayment(ctx, f.store, draft.ID, uuid.Nil, 10_01, march.AddDate(0, 1, 6), "VIR-2")
	require.ErrorIs(t, err, billing.ErrOverpaid)
	rec, err = svc.RecordPayment(ctx, f.store, draft.ID, uuid.Nil, 10_00, march.AddDate(0, 1, 6), "VIR-2")
	require.NoError(t, err)
	require.Equal(t, billing.InvoicePaid, rec.Status)
	require.Equal(t, net, rec.Paid)
}

// TestInvoiceNumbersContinuous issues many invoices of one seller's stores
// concurrently: numbers are 1..n, no gap, no repeat.
func TestInvoiceNumbersContinuous(t *testing.T) {
	t.Parallel()
	f := setup(t)
	stores := []uuid.UUID{f.store, f.newStore("Caftan Chic"), f.newStore("Souk Home")}
	var src billing.SliceSource
	for i, s := range stores {
		src = append(src, parcels(s, f.agent, 5, uint64(i))...)
	}
	svc := newService(t, f, src)
	ctx := context.Background()
	type job struct {
		store uuid.UUID
		id    uuid.UUID
	}
	var jobs []job
	for _, s := range stores {
		for m := range 4 {
			from := march.AddDate(0, m, 0)
			inv, err := svc.Draft(ctx, s, uuid.Nil, from, from.AddDate(0, 1, 0))
			require.NoError(t, err)
			jobs = append(jobs, job{s, inv.ID})
		}
	}
	var mu sync.Mutex
	var numbers []int64
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() {
			rec, err := svc.Issue(ctx, j.store, j.id, uuid.Nil)
			require.NoError(t, err)
			mu.Lock()
			numbers = append(numbers, rec.Invoice.Number)
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(numbers, func(i, j int) bool { return numbers[i] < numbers[j] })
	for i, n := range numbers {
		require.Equal(t, int64(i+1), n)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	f := setup(t)
	src := parcels(f.store, f.agent, 10, 6)
	svc := newService(t, f, src)
	ctx := context.Background()
	from, to := billing.MonthOf(march)
	inv, err := svc.Draft(ctx, f.store, uuid.Nil, from, to)
	require.NoError(t, err)
	rec, err := svc.Issue(ctx, f.store, inv.ID, uuid.Nil)
	require.NoError(t, err)
	signer, err := svc.Signer(ctx)
	require.NoError(t, err)
	claim, err := signer.Sign(&rec.Invoice)
	require.NoError(t, err)
	link := claim.URL(svc.Config.PublicURL)

	v, err := svc.Verify(ctx, link)
	require.NoError(t, err)
	require.True(t, v.Valid, v.Reason)
	require.Equal(t, "FA-000001", v.Number)

	// A second service instance (another server) verifies with the stored key.
	other := newService(t, f, src)
	other.Secrets = svc.Secrets
	v, err = other.Verify(ctx, link)
	require.NoError(t, err)
	require.True(t, v.Valid)

	// Edit the link's total: the signature no longer matches.
	forged := strings.Replace(link, "t="+strconv.FormatInt(int64(claim.Total), 10), "t="+strconv.FormatInt(int64(claim.Total)+100_00, 10), 1)
	require.NotEqual(t, link, forged)
	v, err = svc.Verify(ctx, forged)
	require.NoError(t, err)
	require.False(t, v.Valid)

	// Tamper with the invoice on record: its digest no longer matches.
	err = postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('app.sync_writer', 'on', true)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE invoices SET body = jsonb_set(body, '{totals,net}', to_jsonb((body->'totals'->>'net')::bigint + 1)), version = version + 1000`)
		return err
	})
	require.NoError(t, err)
	v, err = svc.Verify(ctx, link)
	require.NoError(t, err)
	require.False(t, v.Valid)
	require.Contains(t, v.Reason, "ne correspond plus")

	_, err = svc.Verify(ctx, "https://app.leadify.test/verify/invoice?s=nope")
	require.ErrorIs(t, err, billing.ErrMalformedLink)
}

func TestCloseEmailsOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.saveRules(f.store, platformRule(uuid.New(), 300), agentRule(uuid.New(), commission.TriggerDelivered, 5_00))
	src := parcels(f.store, f.agent, 15, 7)
	smtp := smtptest.Start(t)
	svc := newService(t, f, src)
	svc.Config.Mail = billing.MailConfig{Addr: smtp.Addr, From: "Leadify <factures@leadify.ma>"}
	ctx := context.Background()
	from, to := billing.MonthOf(march)

	smtp.SetFault(smtptest.FaultTempData)
	id, err := svc.Close(ctx, f.store, from, to)
	require.Error(t, err, "a relay failure is reported, and the job retries")
	require.Empty(t, smtp.Messages())

	smtp.SetFault(smtptest.FaultNone)
	id2, err := svc.Close(ctx, f.store, from, to)
	require.NoError(t, err)
	require.Equal(t, id, id2, "the retry does not redraft an issued invoice")
	_, err = svc.Close(ctx, f.store, from, to)
	require.NoError(t, err)
	msgs := smtp.Messages()
	require.Len(t, msgs, 1, "emailed once")
	m := msgs[0]
	require.Equal(t, "factures@leadify.ma", m.From)
	require.Len(t, m.To, 1)
	parsed, err := mail.ReadMessage(bytes.NewReader(m.Data))
	require.NoError(t, err)
	require.Contains(t, parsed.Header.Get("Subject"), "FA-000001")
	_, params, err := mime.ParseMediaType(parsed.Header.Get("Content-Type"))
	require.NoError(t, err)
	mr := multipart.NewReader(parsed.Body, params["boundary"])
	var names []string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, part))
		require.NoError(t, err)
		if part.FileName() != "" {
			names = append(names, part.FileName())
			require.True(t, bytes.HasPrefix(body, []byte("%PDF-")), "the attachment is the PDF")
		} else {
			require.Contains(t, string(body), "Net à reverser")
		}
	}
	require.Equal(t, []string{"FA-000001.pdf"}, names)
}
