package api_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
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
