package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/audit"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/postgres"
)

// EnqueueFunc enqueues a commission run and returns the job id.
type EnqueueFunc func(ctx context.Context, args billing.CommissionRunArgs) (int64, error)

type billingHandler struct {
	runner  *billing.Runner
	svc     *billing.Service
	enqueue EnqueueFunc
	log     *slog.Logger
}

var _ leadifyv1connect.BillingServiceHandler = (*billingHandler)(nil)

// NewBillingHandler returns the BillingService implementation.
func NewBillingHandler(runner *billing.Runner, svc *billing.Service, enqueue EnqueueFunc, log *slog.Logger) leadifyv1connect.BillingServiceHandler {
	return &billingHandler{runner: runner, svc: svc, enqueue: enqueue, log: log}
}

// billingErr maps billing's domain errors, then the common ones.
func (h *billingHandler) err(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, commission.ErrInvalid), errors.Is(err, billing.ErrBadPeriod), errors.Is(err, billing.ErrOverpaid),
		errors.Is(err, billing.ErrMalformedLink), errors.Is(err, money.ErrOverflow), errors.Is(err, billing.ErrDuplicateParcel):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, billing.ErrIssued), errors.Is(err, billing.ErrNotIssued):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	}
	return toConnect(ctx, h.log, err)
}

func decodeRule(raw string) (commission.Rule, error) {
	return commission.Decode([]byte(raw))
}

func (h *billingHandler) SaveCommissionRule(ctx context.Context, req *connect.Request[leadifyv1.SaveCommissionRuleRequest]) (*connect.Response[leadifyv1.SaveCommissionRuleResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.CommissionsManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	rule, err := decodeRule(req.Msg.RuleJson)
	if err != nil {
		return nil, h.err(ctx, err)
	}
	err = postgres.InTx(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		if err := billing.SaveRule(ctx, tx, store, a.UserID, rule); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: store, Action: "commission_rule.saved",
			TargetType: "commission_rule", TargetID: rule.ID, Summary: rule})
	})
	if err != nil {
		return nil, h.err(ctx, err)
	}
	out, _ := json.Marshal(rule)
	return connect.NewResponse(&leadifyv1.SaveCommissionRuleResponse{RuleJson: string(out)}), nil
}

func (h *billingHandler) ListCommissionRules(ctx context.Context, req *connect.Request[leadifyv1.ListCommissionRulesRequest]) (*connect.Response[leadifyv1.ListCommissionRulesResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.BillingView)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	resp := &leadifyv1.ListCommissionRulesResponse{}
	err = postgres.InSnapshot(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		rules, err := billing.LoadRules(ctx, tx, store)
		for _, r := range rules {
			b, _ := json.Marshal(r)
			resp.RulesJson = append(resp.RulesJson, string(b))
		}
		return err
	})
	if err != nil {
		return nil, h.err(ctx, err)
	}
	return connect.NewResponse(resp), nil
}

func entryPB(e commission.Entry) *leadifyv1.CommissionEntry {
	return &leadifyv1.CommissionEntry{RuleId: e.RuleID, RuleName: e.RuleName, Beneficiary: string(e.Beneficiary),
		Kind: string(commission.KindEarn), Base: int64(e.Base), Amount: int64(e.Amount), Calculation: e.Calculation}
}

func (h *billingHandler) PreviewCommissionRule(ctx context.Context, req *connect.Request[leadifyv1.PreviewCommissionRuleRequest]) (*connect.Response[leadifyv1.PreviewCommissionRuleResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.CommissionsManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	rule, err := decodeRule(req.Msg.RuleJson)
	if err != nil {
		return nil, h.err(ctx, err)
	}
	month := time.Now()
	if req.Msg.Month != nil {
		month = req.Msg.Month.AsTime()
	}
	p, err := h.runner.Preview(ctx, store, rule, month)
	if err != nil {
		return nil, h.err(ctx, err)
	}
	resp := &leadifyv1.PreviewCommissionRuleResponse{Parcels: int64(p.Parcels), Entries: int64(p.Entries), Total: int64(p.Total)}
	for _, e := range p.Sample {
		resp.Sample = append(resp.Sample, entryPB(e))
	}
	return connect.NewResponse(resp), nil
}

func (h *billingHandler) RunCommissions(ctx context.Context, req *connect.Request[leadifyv1.RunCommissionsRequest]) (*connect.Response[leadifyv1.RunCommissionsResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.CommissionsManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	if req.Msg.Month == nil {
		return nil, toConnect(ctx, h.log, invalidf("month is required"))
	}
	id, err := h.enqueue(ctx, billing.CommissionRunArgs{Store: store, Month: req.Msg.Month.AsTime()})
	if err != nil {
		return nil, h.err(ctx, err)
	}
	return connect.NewResponse(&leadifyv1.RunCommissionsResponse{JobId: id}), nil
}

func (h *billingHandler) ListCommissionEntries(ctx context.Context, req *connect.Request[leadifyv1.ListCommissionEntriesRequest]) (*connect.Response[leadifyv1.ListCommissionEntriesResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := parseID("store_id", req.Msg.StoreId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	// Everyone with commissions.view_all sees the store's ledger; an agent
	// with only commissions.view_own sees their own entries.
	agent := uuid.Nil
	if err := a.Require(store, auth.CommissionsViewAll); err != nil {
		if errors.Is(err, auth.ErrNoStore) || a.Require(store, auth.CommissionsViewOwn) != nil {
			return nil, toConnect(ctx, h.log, err)
		}
		agent = a.UserID
	}
	after := uuid.Nil
	if req.Msg.PageToken != "" {
		if after, err = parseID("page_token", req.Msg.PageToken); err != nil {
			return nil, toConnect(ctx, h.log, err)
		}
	}
	size := int(req.Msg.PageSize)
	if size <= 0 || size > 1000 {
		size = 200
	}
	resp := &leadifyv1.ListCommissionEntriesResponse{}
	err = postgres.InSnapshot(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		entries, err := billing.ListEntries(ctx, tx, store, agent, after, size)
		for _, e := range entries {
			pb := &leadifyv1.CommissionEntry{Id: e.ID.String(), RuleId: e.RuleID.String(), RuleName: e.RuleName,
				ParcelId: e.ParcelID.String(), Kind: e.Kind, Beneficiary: e.Beneficiary, Status: e.Status, Base: int64(e.Base),
				Amount: int64(e.Amount), Calculation: e.Calculation, OccurredAt: timestamppb.New(e.OccurredAt)}
			if e.Agent != uuid.Nil {
				pb.AgentId = e.Agent.String()
			}
			resp.Entries = append(resp.Entries, pb)
		}
		if len(entries) == size {
			resp.NextPageToken = entries[len(entries)-1].ID.String()
		}
		return err
	})
	if err != nil {
		return nil, h.err(ctx, err)
	}
	return connect.NewResponse(resp), nil
}

func tsOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func invoicePB(r *billing.Record, full bool) *leadifyv1.Invoice {
	inv, t := &r.Invoice, r.Invoice.Totals
	pb := &leadifyv1.Invoice{Id: inv.ID.String(), StoreId: inv.Store.String(), Status: r.Status,
		PeriodStart: timestamppb.New(inv.PeriodStart), PeriodEnd: timestamppb.New(inv.PeriodEnd), IssuedAt: tsOrNil(inv.IssuedAt),
		Cod: int64(t.COD), DeliveryFees: int64(t.DeliveryFees), CodFees: int64(t.CODFees), ReturnFees: int64(t.ReturnFees),
		PlatformFees: int64(t.PlatformFees), VatRateBp: t.VATRateBP, Vat: int64(t.VAT), Net: int64(t.Net), Paid: int64(r.Paid),
		LineCount: int32(len(inv.Lines))}
	if inv.Number != 0 {
		pb.Number = inv.NumberText()
	}
	if full {
		pb.Pdf = r.PDF
		for _, l := range inv.Lines {
			pb.Lines = append(pb.Lines, &leadifyv1.InvoiceLine{ParcelId: l.ParcelID.String(), Ref: l.Ref, Date: timestamppb.New(l.Date),
				City: l.City, Status: l.Status, Cod: int64(l.COD), CarrierFees: int64(l.CarrierFees), PlatformFee: int64(l.PlatformFee), Net: int64(l.Net)})
		}
	}
	return pb
}

func (h *billingHandler) DraftInvoice(ctx context.Context, req *connect.Request[leadifyv1.DraftInvoiceRequest]) (*connect.Response[leadifyv1.DraftInvoiceResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.BillingManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	if req.Msg.PeriodStart == nil || req.Msg.PeriodEnd == nil {
		return nil, toConnect(ctx, h.log, invalidf("period_start and period_end are required"))
	}
	inv, err := h.svc.Draft(ctx, store, a.UserID, req.Msg.PeriodStart.AsTime(), req.Msg.PeriodEnd.AsTime())
	if err != nil {
		return nil, h.err(ctx, err)
	}
	return connect.NewResponse(&leadifyv1.DraftInvoiceResponse{Invoice: invoicePB(&billing.Record{Invoice: *inv, Status: billing.InvoiceDraft}, false)}), nil
}

// invoiceFor parses the ids and checks the permission.
func invoiceFor(a *auth.Actor, storeID, invoiceID string, p auth.Permission) (uuid.UUID, uuid.UUID, error) {
	store, err := storeFor(a, storeID, p)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	id, err := parseID("invoice_id", invoiceID)
	return store, id, err
}

func (h *billingHandler) IssueInvoice(ctx context.Context, req *connect.Request[leadifyv1.IssueInvoiceRequest]) (*connect.Response[leadifyv1.IssueInvoiceResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, id, err := invoiceFor(a, req.Msg.StoreId, req.Msg.InvoiceId, auth.BillingManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	rec, err := h.svc.Issue(ctx, store, id, a.UserID)
	if err != nil {
		return nil, h.err(ctx, err)
	}
	return connect.NewResponse(&leadifyv1.IssueInvoiceResponse{Invoice: invoicePB(rec, false)}), nil
}

func (h *billingHandler) RecordInvoicePayment(ctx context.Context, req *connect.Request[leadifyv1.RecordInvoicePaymentRequest]) (*connect.Response[leadifyv1.RecordInvoicePaymentResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, id, err := invoiceFor(a, req.Msg.StoreId, req.Msg.InvoiceId, auth.BillingManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	paidAt := time.Now()
	if req.Msg.PaidAt != nil {
		paidAt = req.Msg.PaidAt.AsTime()
	}
	rec, err := h.svc.RecordPayment(ctx, store, id, a.UserID, money.Amount(req.Msg.Amount), paidAt, req.Msg.Reference)
	if err != nil {
		return nil, h.err(ctx, err)
	}
	return connect.NewResponse(&leadifyv1.RecordInvoicePaymentResponse{Invoice: invoicePB(rec, false)}), nil
}

func (h *billingHandler) GetInvoice(ctx context.Context, req *connect.Request[leadifyv1.GetInvoiceRequest]) (*connect.Response[leadifyv1.GetInvoiceResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, id, err := invoiceFor(a, req.Msg.StoreId, req.Msg.InvoiceId, auth.BillingView)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	rec, err := h.svc.Get(ctx, a.Scope(), store, id)
	if err != nil {
		return nil, h.err(ctx, err)
	}
	return connect.NewResponse(&leadifyv1.GetInvoiceResponse{Invoice: invoicePB(rec, true)}), nil
}

func (h *billingHandler) ListInvoices(ctx context.Context, req *connect.Request[leadifyv1.ListInvoicesRequest]) (*connect.Response[leadifyv1.ListInvoicesResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.BillingView)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	recs, err := h.svc.List(ctx, a.Scope(), store)
	if err != nil {
		return nil, h.err(ctx, err)
	}
	resp := &leadifyv1.ListInvoicesResponse{}
	for i := range recs {
		resp.Invoices = append(resp.Invoices, invoicePB(&recs[i], false))
	}
	return connect.NewResponse(resp), nil
}

// VerifyInvoice is public: it answers only whether the signed link matches
// the invoice on record, with the number, store name and net the link's
// holder already has on paper.
func (h *billingHandler) VerifyInvoice(ctx context.Context, req *connect.Request[leadifyv1.VerifyInvoiceRequest]) (*connect.Response[leadifyv1.VerifyInvoiceResponse], error) {
	v, err := h.svc.Verify(ctx, req.Msg.Link)
	if err != nil {
		return nil, h.err(ctx, err)
	}
	resp := &leadifyv1.VerifyInvoiceResponse{Valid: v.Valid, Reason: v.Reason}
	if v.Valid {
		resp.Number, resp.StoreName, resp.Net, resp.IssuedAt = v.Number, v.StoreName, int64(v.Net), tsOrNil(v.IssuedAt)
	}
	return connect.NewResponse(resp), nil
}
