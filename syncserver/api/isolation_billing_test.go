package api_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/server"
	"github.com/leadify/leadify/syncserver/servertest"
)

// billingB holds store B's billing canaries: its issued invoice.
var billingB sync.Map // *fixtureB → string (invoice id)

var isoMonth = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func canaryRule(id uuid.UUID, name string) string {
	b, _ := json.Marshal(commission.Rule{ID: id.String(), Name: name, Beneficiary: commission.BeneficiaryPlatform,
		Trigger: commission.TriggerDelivered, Kind: commission.KindPercentage, RateBP: 250, ValidFrom: isoMonth})
	return string(b)
}

func init() {
	addIsolationCases(billingCases)
	canarySeeders = append(canarySeeders, func(t *testing.T, b *fixtureB) {
		ctx := context.Background()
		_, err := b.Seller.Billing.SaveCommissionRule(ctx, connect.NewRequest(&leadifyv1.SaveCommissionRuleRequest{
			StoreId: b.StoreID.String(), RuleJson: canaryRule(uuid.New(), "canaryb fee")}))
		require.NoError(t, err)
		d, err := b.Seller.Billing.DraftInvoice(ctx, connect.NewRequest(&leadifyv1.DraftInvoiceRequest{StoreId: b.StoreID.String(),
			PeriodStart: timestamppb.New(isoMonth), PeriodEnd: timestamppb.New(isoMonth.AddDate(0, 1, 0))}))
		require.NoError(t, err)
		_, err = b.Seller.Billing.IssueInvoice(ctx, connect.NewRequest(&leadifyv1.IssueInvoiceRequest{StoreId: b.StoreID.String(),
			InvoiceId: d.Msg.Invoice.Id}))
		require.NoError(t, err)
		billingB.Store(b, d.Msg.Invoice.Id)
	})
}

func invoiceOfB(b *fixtureB) string {
	id, _ := billingB.Load(b)
	s, _ := id.(string)
	return s
}

var billingCases = map[string]isolationCase{
	"/leadify.v1.BillingService/SaveCommissionRule": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.SaveCommissionRule, &leadifyv1.SaveCommissionRuleRequest{StoreId: b.StoreID.String(), RuleJson: canaryRule(uuid.New(), "intruder")})
	}},
	"/leadify.v1.BillingService/ListCommissionRules": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.ListCommissionRules, &leadifyv1.ListCommissionRulesRequest{StoreId: b.StoreID.String()})
	}},
	"/leadify.v1.BillingService/PreviewCommissionRule": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.PreviewCommissionRule, &leadifyv1.PreviewCommissionRuleRequest{StoreId: b.StoreID.String(),
			RuleJson: canaryRule(uuid.New(), "probe"), Month: timestamppb.New(isoMonth)})
	}},
	"/leadify.v1.BillingService/RunCommissions": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.RunCommissions, &leadifyv1.RunCommissionsRequest{StoreId: b.StoreID.String(), Month: timestamppb.New(isoMonth)})
	}},
	"/leadify.v1.BillingService/ListCommissionEntries": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.ListCommissionEntries, &leadifyv1.ListCommissionEntriesRequest{StoreId: b.StoreID.String()})
	}},
	"/leadify.v1.BillingService/DraftInvoice": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.DraftInvoice, &leadifyv1.DraftInvoiceRequest{StoreId: b.StoreID.String(),
			PeriodStart: timestamppb.New(isoMonth.AddDate(0, 1, 0)), PeriodEnd: timestamppb.New(isoMonth.AddDate(0, 2, 0))})
	}},
	"/leadify.v1.BillingService/IssueInvoice": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.IssueInvoice, &leadifyv1.IssueInvoiceRequest{StoreId: b.StoreID.String(), InvoiceId: invoiceOfB(b)})
	}},
	"/leadify.v1.BillingService/RecordInvoicePayment": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.RecordInvoicePayment, &leadifyv1.RecordInvoicePaymentRequest{StoreId: b.StoreID.String(),
			InvoiceId: invoiceOfB(b), Amount: 1, Reference: "spy"})
	}},
	"/leadify.v1.BillingService/GetInvoice": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.GetInvoice, &leadifyv1.GetInvoiceRequest{StoreId: b.StoreID.String(), InvoiceId: invoiceOfB(b)})
	}},
	"/leadify.v1.BillingService/ListInvoices": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.ListInvoices, &leadifyv1.ListInvoicesRequest{StoreId: b.StoreID.String()})
	}},
	// A link naming B's invoice with a forged signature: answered "not
	// valid", with nothing of B in it.
	"/leadify.v1.BillingService/VerifyInvoice": {call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		_, priv, _ := ed25519.GenerateKey(nil)
		c := billing.Claim{Store: b.StoreID, Invoice: uuid.MustParse(invoiceOfB(b)), Number: 1, Total: 0, KeyID: "forged"}
		c.Signature = ed25519.Sign(priv, []byte("anything"))
		resp, err := unary(as.Billing.VerifyInvoice, &leadifyv1.VerifyInvoiceRequest{Link: c.URL("https://x.test")})
		if err == nil && resp.(*leadifyv1.VerifyInvoiceResponse).Valid {
			return resp, connect.NewError(connect.CodeInternal, nil)
		}
		return resp, err
	}},
}

// TestBillingThroughTheServer drives the BillingService over the real
// transport: rules are validated, an invoice is drafted, issued and read
// back, its QR link (decoded from the rendered PDF) verifies anonymously over
// RPC and on the public page, and an edited link does not.
func TestBillingThroughTheServer(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"pdftoppm", "zbarimg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required (poppler-utils, zbar-tools)", tool)
		}
	}
	env := servertest.Start(t, func(c *server.Config) { c.Billing.PublicURL = "https://leadify.test" })
	a := env.NewTenant(env.Admin(), "argan")
	ctx := context.Background()
	store := a.StoreID.String()

	_, err := a.Seller.Billing.SaveCommissionRule(ctx, connect.NewRequest(&leadifyv1.SaveCommissionRuleRequest{StoreId: store,
		RuleJson: canaryRule(uuid.New(), "Frais plateforme")}))
	require.NoError(t, err)
	_, err = a.Seller.Billing.SaveCommissionRule(ctx, connect.NewRequest(&leadifyv1.SaveCommissionRuleRequest{StoreId: store,
		RuleJson: canaryRule(uuid.New(), "Contradiction")}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "same priority, both exclusive: %v", err)
	_, err = a.Seller.Billing.SaveCommissionRule(ctx, connect.NewRequest(&leadifyv1.SaveCommissionRuleRequest{StoreId: store, RuleJson: `{"id":1}`}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	_, err = a.Agent.Billing.SaveCommissionRule(ctx, connect.NewRequest(&leadifyv1.SaveCommissionRuleRequest{StoreId: store,
		RuleJson: canaryRule(uuid.New(), "Agent")}))
	require.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err))
	run, err := a.Seller.Billing.RunCommissions(ctx, connect.NewRequest(&leadifyv1.RunCommissionsRequest{StoreId: store, Month: timestamppb.New(isoMonth)}))
	require.NoError(t, err)
	require.Positive(t, run.Msg.JobId)
	_, err = a.Agent.Billing.ListCommissionEntries(ctx, connect.NewRequest(&leadifyv1.ListCommissionEntriesRequest{StoreId: store}))
	require.NoError(t, err, "an agent lists their own entries")

	d, err := a.Seller.Billing.DraftInvoice(ctx, connect.NewRequest(&leadifyv1.DraftInvoiceRequest{StoreId: store,
		PeriodStart: timestamppb.New(isoMonth), PeriodEnd: timestamppb.New(isoMonth.AddDate(0, 1, 0))}))
	require.NoError(t, err)
	_, err = a.Seller.Billing.DraftInvoice(ctx, connect.NewRequest(&leadifyv1.DraftInvoiceRequest{StoreId: store,
		PeriodStart: timestamppb.New(isoMonth.Add(time.Hour)), PeriodEnd: timestamppb.New(isoMonth.AddDate(0, 1, 0))}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	iss, err := a.Seller.Billing.IssueInvoice(ctx, connect.NewRequest(&leadifyv1.IssueInvoiceRequest{StoreId: store, InvoiceId: d.Msg.Invoice.Id}))
	require.NoError(t, err)
	require.Equal(t, "FA-000001", iss.Msg.Invoice.Number)
	_, err = a.Seller.Billing.IssueInvoice(ctx, connect.NewRequest(&leadifyv1.IssueInvoiceRequest{StoreId: store, InvoiceId: d.Msg.Invoice.Id}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))
	got, err := a.Seller.Billing.GetInvoice(ctx, connect.NewRequest(&leadifyv1.GetInvoiceRequest{StoreId: store, InvoiceId: d.Msg.Invoice.Id}))
	require.NoError(t, err)
	list, err := a.Seller.Billing.ListInvoices(ctx, connect.NewRequest(&leadifyv1.ListInvoicesRequest{StoreId: store}))
	require.NoError(t, err)
	require.Len(t, list.Msg.Invoices, 1)

	// Decode the QR from the rendered PDF.
	dir := t.TempDir()
	pdf := filepath.Join(dir, "f.pdf")
	require.NoError(t, os.WriteFile(pdf, got.Msg.Invoice.Pdf, 0o600))
	out, err := exec.Command("pdftoppm", "-png", "-r", "110", "-f", "1", "-l", "1", pdf, filepath.Join(dir, "p")).CombinedOutput()
	require.NoError(t, err, string(out))
	pages, _ := filepath.Glob(filepath.Join(dir, "p*.png"))
	require.Len(t, pages, 1)
	raw, err := exec.Command("zbarimg", "--quiet", "--raw", pages[0]).Output()
	require.NoError(t, err)
	link := strings.TrimSpace(string(raw))
	require.True(t, strings.HasPrefix(link, "https://leadify.test"+billing.VerifyPath+"?"), link)

	anon := env.ClientsFor("")
	v, err := anon.Billing.VerifyInvoice(ctx, connect.NewRequest(&leadifyv1.VerifyInvoiceRequest{Link: link}))
	require.NoError(t, err)
	require.True(t, v.Msg.Valid, v.Msg.Reason)
	require.Equal(t, "FA-000001", v.Msg.Number)
	edited := strings.Replace(link, "n=1", "n=2", 1)
	v, err = anon.Billing.VerifyInvoice(ctx, connect.NewRequest(&leadifyv1.VerifyInvoiceRequest{Link: edited}))
	require.NoError(t, err)
	require.False(t, v.Msg.Valid)

	page := func(l string) (int, string) {
		_, query, _ := strings.Cut(l, "?")
		resp, err := env.HTTP.Get(env.URL + billing.VerifyPath + "?" + query)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	code, body := page(link)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "Facture authentique")
	code, body = page(edited)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "non vérifiée")
	code, _ = page("?s=garbage")
	require.Equal(t, http.StatusBadRequest, code)
}
