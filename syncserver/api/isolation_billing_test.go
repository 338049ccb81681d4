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
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/server"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
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

// remitB holds store B's remittance and payout canaries.
type remitCanaries struct {
	account, remittance, payout string
}

var remitB sync.Map // *fixtureB → remitCanaries

func remitOfB(b *fixtureB) remitCanaries {
	v, _ := remitB.Load(b)
	c, _ := v.(remitCanaries)
	return c
}

// seedParcel writes a created parcel of the account for a lead, through the
// versioned-write helper.
func seedParcel(t *testing.T, env *servertest.Env, store, lead uuid.UUID, account, tracking, status string, cod int64) uuid.UUID {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	ctx := context.Background()
	require.NoError(t, syncer.Write(ctx, env.DB.App, postgres.StoreScope(store), func(w *syncer.Writer) error {
		v, err := w.Reserve(store, 1)
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(ctx, `INSERT INTO parcels (store_id, id, version, created_at, updated_at, lead_id, account_id, carrier,
  tracking, status, creation, cod, city_id) VALUES ($1, $2, $3, now(), now(), $4, $5, 'ameex', $6, $7, 'created', $8, 'casablanca')`,
			store, id, v, lead, account, tracking, status, cod)
		return err
	}))
	return id
}

// seedEarned writes an earned agent commission entry.
func seedEarned(t *testing.T, env *servertest.Env, store, agent uuid.UUID, name string, amount int64) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, syncer.Write(ctx, env.DB.App, postgres.StoreScope(store), func(w *syncer.Writer) error {
		v, err := w.Reserve(store, 1)
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(ctx, `INSERT INTO commission_entries (store_id, id, version, rule_id, parcel_id, kind, beneficiary, agent_id,
  status, base, amount, rule_name, calculation, occurred_at)
VALUES ($1, $2, $3, $4, $5, 'earn', 'agent', $6, 'earned', 0, $7, $8, $8, $9)`,
			store, uuid.Must(uuid.NewV7()), v, uuid.New(), uuid.New(), agent, amount, name, isoMonth.AddDate(0, 0, 3))
		return err
	}))
}

func remitAccount(t *testing.T, c *servertest.Clients, store uuid.UUID, label string) string {
	t.Helper()
	resp, err := c.Carriers.CreateCarrierAccount(context.Background(), connect.NewRequest(&leadifyv1.CreateCarrierAccountRequest{
		StoreId: store.String(), Carrier: "ameex", Label: label,
		Credentials: &leadifyv1.CarrierCredentials{BaseUrl: "https://api.ameex.app", ApiId: "id", ApiKey: "key"}}))
	require.NoError(t, err)
	return resp.Msg.Account.Id
}

func priceListReq(store, account string) *leadifyv1.SavePriceListRequest {
	return &leadifyv1.SavePriceListRequest{StoreId: store, PriceList: &leadifyv1.PriceList{AccountId: account,
		DeliveryFee: 30_00, ReturnFee: 15_00, CodFeeFixed: 5_00, ValidFrom: timestamppb.New(isoMonth)}}
}

func init() {
	addIsolationCases(remitCases)
	canarySeeders = append(canarySeeders, func(t *testing.T, b *fixtureB) {
		ctx := context.Background()
		store := b.StoreID.String()
		account := remitAccount(t, b.Seller, b.StoreID, "CanaryB Coliix")
		_, err := b.Seller.Billing.SavePriceList(ctx, connect.NewRequest(priceListReq(store, account)))
		require.NoError(t, err)
		seedParcel(t, b.env, b.StoreID, b.Leads[len(b.Leads)-1], account, "CANARYB-T1", "delivered", 120_00)
		rem, err := b.Seller.Billing.RecordRemittance(ctx, connect.NewRequest(&leadifyv1.RecordRemittanceRequest{StoreId: store,
			AccountId: account, Reference: "canaryb-rel", PaidAt: timestamppb.New(isoMonth.AddDate(0, 0, 10)),
			Lines: []*leadifyv1.RemittanceLineInput{
				{Tracking: "CANARYB-T1", Outcome: "delivered", Cod: 120_00, Fees: 40_00, Net: 80_00},
				{Tracking: "CANARYB-GHOST", Outcome: "delivered", Cod: 99_00, Fees: 35_00, Net: 64_00}}}))
		require.NoError(t, err)
		seedEarned(t, b.env, b.StoreID, b.Agent.UserID, "canaryb prime", 10_00)
		pay, err := b.Seller.Billing.MarkEntriesPaid(ctx, connect.NewRequest(&leadifyv1.MarkEntriesPaidRequest{StoreId: store,
			AgentId: b.Agent.UserID.String(), PayoutId: uuid.NewString(), Cutoff: timestamppb.New(isoMonth.AddDate(0, 1, 0)),
			Reference: "canaryb-payout"}))
		require.NoError(t, err)
		remitB.Store(b, remitCanaries{account: account, remittance: rem.Msg.Remittance.Id, payout: pay.Msg.Payout.Id})
	})
}

var remitCases = map[string]isolationCase{
	"/leadify.v1.BillingService/SavePriceList": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.SavePriceList, priceListReq(b.StoreID.String(), remitOfB(b).account))
	}},
	"/leadify.v1.BillingService/ListPriceLists": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.ListPriceLists, &leadifyv1.ListPriceListsRequest{StoreId: b.StoreID.String(), AccountId: remitOfB(b).account})
	}},
	"/leadify.v1.BillingService/ImportRemittance": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.ImportRemittance, &leadifyv1.ImportRemittanceRequest{StoreId: b.StoreID.String(), AccountId: remitOfB(b).account,
			PaidAt: timestamppb.New(isoMonth), Content: []byte("Code;CRBT\nCANARYB-T1;120\n")})
	}},
	"/leadify.v1.BillingService/RecordRemittance": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.RecordRemittance, &leadifyv1.RecordRemittanceRequest{StoreId: b.StoreID.String(), AccountId: remitOfB(b).account,
			PaidAt: timestamppb.New(isoMonth), Lines: []*leadifyv1.RemittanceLineInput{{Tracking: "X", Outcome: "delivered", Cod: 1, Net: 1}}})
	}},
	"/leadify.v1.BillingService/ListRemittances": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.ListRemittances, &leadifyv1.ListRemittancesRequest{StoreId: b.StoreID.String()})
	}},
	"/leadify.v1.BillingService/GetRemittance": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.GetRemittance, &leadifyv1.GetRemittanceRequest{StoreId: b.StoreID.String(), RemittanceId: remitOfB(b).remittance})
	}},
	"/leadify.v1.BillingService/GetStillOwed": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.GetStillOwed, &leadifyv1.GetStillOwedRequest{StoreId: b.StoreID.String()})
	}},
	"/leadify.v1.BillingService/ListFeeFlags": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.ListFeeFlags, &leadifyv1.ListFeeFlagsRequest{StoreId: b.StoreID.String(),
			PeriodStart: timestamppb.New(isoMonth), PeriodEnd: timestamppb.New(isoMonth.AddDate(0, 1, 0))})
	}},
	"/leadify.v1.BillingService/GetSellerStatement": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.GetSellerStatement, &leadifyv1.GetSellerStatementRequest{SellerId: b.SellerID.String(),
			PeriodStart: timestamppb.New(isoMonth), PeriodEnd: timestamppb.New(isoMonth.AddDate(0, 2, 0))})
	}},
	"/leadify.v1.BillingService/GetAgentPayoutStatement": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.GetAgentPayoutStatement, &leadifyv1.GetAgentPayoutStatementRequest{StoreId: b.StoreID.String(),
			AgentId: b.Agent.UserID.String(), PeriodStart: timestamppb.New(isoMonth), PeriodEnd: timestamppb.New(isoMonth.AddDate(0, 1, 0))})
	}},
	"/leadify.v1.BillingService/MarkEntriesPaid": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.MarkEntriesPaid, &leadifyv1.MarkEntriesPaidRequest{StoreId: b.StoreID.String(), AgentId: b.Agent.UserID.String(),
			PayoutId: remitOfB(b).payout, Cutoff: timestamppb.New(isoMonth.AddDate(0, 1, 0))})
	}},
	"/leadify.v1.BillingService/ListPayouts": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Billing.ListPayouts, &leadifyv1.ListPayoutsRequest{StoreId: b.StoreID.String()})
	}},
}

// Remittances, price lists and payouts through the server, with store A's
// own ids mixed with store B's: B's account, remittance and agent are not
// found from A; agents see only their own payouts and need permissions for
// the rest; a seller's statement covers only their stores.
func TestRemittancesAndPayoutsThroughTheServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := servertest.Start(t)
	admin := env.Admin()
	a, b := env.NewTenant(admin, "remita"), env.NewTenant(admin, "remitb")
	storeA, storeB := a.StoreID.String(), b.StoreID.String()
	accA, accB := remitAccount(t, a.Seller, a.StoreID, "A"), remitAccount(t, b.Seller, b.StoreID, "B")
	leads := env.SeedLeads(a.StoreID, 3, "Remit")
	for i, tr := range []string{"MRK1", "MRK2", "MRK3"} {
		seedParcel(t, env, a.StoreID, leads[i], accA, tr, "delivered", 200_00)
	}
	call := func(err error) connect.Code { return connect.CodeOf(err) }

	_, err := a.Seller.Billing.SavePriceList(ctx, connect.NewRequest(priceListReq(storeA, accA)))
	require.NoError(t, err)
	_, err = a.Seller.Billing.SavePriceList(ctx, connect.NewRequest(priceListReq(storeA, accA)))
	require.Equal(t, connect.CodeInvalidArgument, call(err), "overlapping list: %v", err)
	_, err = a.Seller.Billing.SavePriceList(ctx, connect.NewRequest(priceListReq(storeA, accB)))
	require.Equal(t, connect.CodeNotFound, call(err), "B's account in A's store")
	_, err = a.Agent.Billing.SavePriceList(ctx, connect.NewRequest(priceListReq(storeA, accA)))
	require.Equal(t, connect.CodePermissionDenied, call(err))

	csv := []byte("Code colis;Statut;Montant;Frais;Net\nMRK1;Livré;200;35;165\nMRK2;Livré;180;40;140\nGHOST;Livré;50;35;15\n")
	imp := &leadifyv1.ImportRemittanceRequest{StoreId: storeA, AccountId: accA, Reference: "RV-7", PaidAt: timestamppb.New(isoMonth.AddDate(0, 0, 9)),
		Content: csv}
	first, err := a.Seller.Billing.ImportRemittance(ctx, connect.NewRequest(imp))
	require.NoError(t, err)
	require.False(t, first.Msg.AlreadyImported)
	require.EqualValues(t, 320_00, first.Msg.Summary.TotalNet)
	again, err := a.Seller.Billing.ImportRemittance(ctx, connect.NewRequest(imp))
	require.NoError(t, err)
	require.True(t, again.Msg.AlreadyImported)
	require.Equal(t, first.Msg.Remittance.Id, again.Msg.Remittance.Id)
	bad := proto.Clone(imp).(*leadifyv1.ImportRemittanceRequest)
	bad.Content = []byte("Code;CRBT\nX;douze\n")
	_, err = a.Seller.Billing.ImportRemittance(ctx, connect.NewRequest(bad))
	require.Equal(t, connect.CodeInvalidArgument, call(err))
	require.Contains(t, err.Error(), "row 2")
	other := proto.Clone(imp).(*leadifyv1.ImportRemittanceRequest)
	other.AccountId = accB
	_, err = a.Seller.Billing.ImportRemittance(ctx, connect.NewRequest(other))
	require.Equal(t, connect.CodeNotFound, call(err), "B's account from A's store")
	_, err = a.Agent.Billing.ImportRemittance(ctx, connect.NewRequest(imp))
	require.Equal(t, connect.CodePermissionDenied, call(err))

	got, err := a.Seller.Billing.GetRemittance(ctx, connect.NewRequest(&leadifyv1.GetRemittanceRequest{StoreId: storeA, RemittanceId: first.Msg.Remittance.Id}))
	require.NoError(t, err)
	require.Len(t, got.Msg.Lines, 3)
	require.Equal(t, []string{"matched", "amount_mismatch", "unknown_parcel"},
		[]string{got.Msg.Lines[0].Match, got.Msg.Lines[1].Match, got.Msg.Lines[2].Match})
	require.Equal(t, "over", got.Msg.Lines[1].Flags[0].Direction)
	remB, err := b.Seller.Billing.RecordRemittance(ctx, connect.NewRequest(&leadifyv1.RecordRemittanceRequest{StoreId: storeB, AccountId: accB,
		PaidAt: timestamppb.New(isoMonth), Lines: []*leadifyv1.RemittanceLineInput{{Tracking: "B1", Outcome: "delivered", Cod: 100, Net: 100}}}))
	require.NoError(t, err)
	_, err = a.Seller.Billing.GetRemittance(ctx, connect.NewRequest(&leadifyv1.GetRemittanceRequest{StoreId: storeA, RemittanceId: remB.Msg.Remittance.Id}))
	require.Equal(t, connect.CodeNotFound, call(err), "B's remittance under A's store id")

	owed, err := a.Seller.Billing.GetStillOwed(ctx, connect.NewRequest(&leadifyv1.GetStillOwedRequest{StoreId: storeA}))
	require.NoError(t, err)
	require.Len(t, owed.Msg.Accounts, 1)
	require.EqualValues(t, 1, owed.Msg.Accounts[0].Parcels, "MRK3")
	require.EqualValues(t, 20_00, owed.Msg.Accounts[0].Shortfall, "MRK2 paid 180 of 200")
	flags, err := a.Seller.Billing.ListFeeFlags(ctx, connect.NewRequest(&leadifyv1.ListFeeFlagsRequest{StoreId: storeA,
		PeriodStart: timestamppb.New(isoMonth), PeriodEnd: timestamppb.New(isoMonth.AddDate(0, 1, 0))}))
	require.NoError(t, err)
	require.Len(t, flags.Msg.Flags, 1)
	require.EqualValues(t, 5_00, flags.Msg.Overcharged)
	_, err = a.Agent.Billing.GetStillOwed(ctx, connect.NewRequest(&leadifyv1.GetStillOwedRequest{StoreId: storeA}))
	require.Equal(t, connect.CodePermissionDenied, call(err))

	// The month's invoice carries the carrier fees: charged on the statement
	// for MRK1 and MRK2, the price list's for MRK3.
	month := time.Now().UTC()
	month = time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
	inv, err := a.Seller.Billing.DraftInvoice(ctx, connect.NewRequest(&leadifyv1.DraftInvoiceRequest{StoreId: storeA,
		PeriodStart: timestamppb.New(month), PeriodEnd: timestamppb.New(month.AddDate(0, 1, 0))}))
	require.NoError(t, err)
	require.EqualValues(t, 3, inv.Msg.Invoice.LineCount)
	require.EqualValues(t, 35_00+40_00+30_00, inv.Msg.Invoice.DeliveryFees)
	require.EqualValues(t, 5_00, inv.Msg.Invoice.CodFees)

	// Payouts: the agent sees only their own.
	other2 := uuid.New()
	seedEarned(t, env, a.StoreID, a.Agent.UserID, "Prime livraison", 10_00)
	seedEarned(t, env, a.StoreID, other2, "Prime autre", 7_00)
	cutoff := timestamppb.New(isoMonth.AddDate(0, 1, 0))
	for _, agent := range []string{a.Agent.UserID.String(), other2.String()} {
		_, err = a.Seller.Billing.MarkEntriesPaid(ctx, connect.NewRequest(&leadifyv1.MarkEntriesPaidRequest{StoreId: storeA, AgentId: agent,
			PayoutId: uuid.NewString(), Cutoff: cutoff, Reference: "VIR"}))
		require.NoError(t, err)
	}
	_, err = a.Agent.Billing.MarkEntriesPaid(ctx, connect.NewRequest(&leadifyv1.MarkEntriesPaidRequest{StoreId: storeA,
		AgentId: a.Agent.UserID.String(), PayoutId: uuid.NewString(), Cutoff: cutoff}))
	require.Equal(t, connect.CodePermissionDenied, call(err))
	_, err = a.Seller.Billing.MarkEntriesPaid(ctx, connect.NewRequest(&leadifyv1.MarkEntriesPaidRequest{StoreId: storeA,
		AgentId: b.Agent.UserID.String(), PayoutId: uuid.NewString(), Cutoff: cutoff}))
	require.Equal(t, connect.CodeFailedPrecondition, call(err), "B's agent has nothing in A")
	mine, err := a.Agent.Billing.ListPayouts(ctx, connect.NewRequest(&leadifyv1.ListPayoutsRequest{StoreId: storeA}))
	require.NoError(t, err)
	require.Len(t, mine.Msg.Payouts, 1)
	require.Equal(t, a.Agent.UserID.String(), mine.Msg.Payouts[0].AgentId)
	all, err := a.Seller.Billing.ListPayouts(ctx, connect.NewRequest(&leadifyv1.ListPayoutsRequest{StoreId: storeA}))
	require.NoError(t, err)
	require.Len(t, all.Msg.Payouts, 2)
	_, err = a.Agent.Billing.ListPayouts(ctx, connect.NewRequest(&leadifyv1.ListPayoutsRequest{StoreId: storeA, AgentId: other2.String()}))
	require.Equal(t, connect.CodePermissionDenied, call(err))
	period := func(agent string) *leadifyv1.GetAgentPayoutStatementRequest {
		return &leadifyv1.GetAgentPayoutStatementRequest{StoreId: storeA, AgentId: agent, PeriodStart: timestamppb.New(isoMonth), PeriodEnd: cutoff}
	}
	own, err := a.Agent.Billing.GetAgentPayoutStatement(ctx, connect.NewRequest(period("")))
	require.NoError(t, err)
	require.Len(t, own.Msg.Statement.Entries, 1)
	require.EqualValues(t, 10_00, own.Msg.Statement.Net)
	require.Equal(t, "paid", own.Msg.Statement.Entries[0].Entry.Status)
	require.NotEmpty(t, own.Msg.Statement.Entries[0].PayoutId)
	_, err = a.Agent.Billing.GetAgentPayoutStatement(ctx, connect.NewRequest(period(other2.String())))
	require.Equal(t, connect.CodePermissionDenied, call(err))
	theirs, err := a.Seller.Billing.GetAgentPayoutStatement(ctx, connect.NewRequest(period(other2.String())))
	require.NoError(t, err)
	require.EqualValues(t, 7_00, theirs.Msg.Statement.Net)

	// Seller statements: a seller's own stores only; agents lack billing.view.
	st, err := a.Seller.Billing.GetSellerStatement(ctx, connect.NewRequest(&leadifyv1.GetSellerStatementRequest{SellerId: a.SellerID.String(),
		PeriodStart: timestamppb.New(isoMonth), PeriodEnd: cutoff}))
	require.NoError(t, err)
	require.Len(t, st.Msg.Statement.Stores, 1)
	require.Equal(t, storeA, st.Msg.Statement.Stores[0].StoreId)
	require.True(t, strings.HasPrefix(string(st.Msg.Pdf), "%PDF"))
	_, err = a.Agent.Billing.GetSellerStatement(ctx, connect.NewRequest(&leadifyv1.GetSellerStatementRequest{SellerId: a.SellerID.String(),
		PeriodStart: timestamppb.New(isoMonth), PeriodEnd: cutoff}))
	require.Equal(t, connect.CodePermissionDenied, call(err))
	_, err = a.Seller.Billing.GetSellerStatement(ctx, connect.NewRequest(&leadifyv1.GetSellerStatementRequest{SellerId: b.SellerID.String(),
		PeriodStart: timestamppb.New(isoMonth), PeriodEnd: cutoff}))
	require.Equal(t, connect.CodeNotFound, call(err))
}
