package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/audit"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/remit"
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
		errors.Is(err, billing.ErrMalformedLink), errors.Is(err, money.ErrOverflow), errors.Is(err, billing.ErrDuplicateParcel),
		errors.Is(err, billing.ErrBadPageToken):
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
	size := int(req.Msg.PageSize)
	if size <= 0 || size > 1000 {
		size = 200
	}
	resp := &leadifyv1.ListCommissionEntriesResponse{}
	err = postgres.InSnapshot(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		entries, next, err := billing.ListEntries(ctx, tx, store, agent, req.Msg.PageToken, size)
		for _, e := range entries {
			pb := &leadifyv1.CommissionEntry{Id: e.ID.String(), RuleId: e.RuleID.String(), RuleName: e.RuleName,
				ParcelId: e.ParcelID.String(), Kind: e.Kind, Beneficiary: e.Beneficiary, Status: e.Status, Base: int64(e.Base),
				Amount: int64(e.Amount), Calculation: e.Calculation, OccurredAt: timestamppb.New(e.OccurredAt)}
			if e.Agent != uuid.Nil {
				pb.AgentId = e.Agent.String()
			}
			resp.Entries = append(resp.Entries, pb)
		}
		resp.NextPageToken = next
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

// remitErr maps remit's and payouts' domain errors, then billing's.
func (h *billingHandler) remitErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, remit.ErrInvalid):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, remit.ErrConflict), errors.Is(err, billing.ErrPayoutConflict):
		return connect.NewError(connect.CodeAlreadyExists, err)
	case errors.Is(err, billing.ErrNothingToPay):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	}
	return h.err(ctx, err)
}

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime().UTC()
}

func priceListPB(p *remit.PriceList) *leadifyv1.PriceList {
	pb := &leadifyv1.PriceList{Id: p.ID.String(), AccountId: p.Account.String(), CityId: p.City, DeliveryFee: int64(p.DeliveryFee),
		ReturnFee: int64(p.ReturnFee), CodFeeFixed: int64(p.CODFeeFixed), CodFeeBp: p.CODFeeBP, ValidFrom: timestamppb.New(p.ValidFrom)}
	if !p.ValidUntil.IsZero() {
		pb.ValidUntil = timestamppb.New(p.ValidUntil)
	}
	return pb
}

func (h *billingHandler) SavePriceList(ctx context.Context, req *connect.Request[leadifyv1.SavePriceListRequest]) (*connect.Response[leadifyv1.SavePriceListResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.BillingManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	in := req.Msg.PriceList
	if in == nil {
		return nil, toConnect(ctx, h.log, invalidf("price_list is required"))
	}
	p := remit.PriceList{City: in.CityId, DeliveryFee: money.Amount(in.DeliveryFee), ReturnFee: money.Amount(in.ReturnFee),
		CODFeeFixed: money.Amount(in.CodFeeFixed), CODFeeBP: in.CodFeeBp, ValidFrom: timeOf(in.ValidFrom), ValidUntil: timeOf(in.ValidUntil)}
	if in.Id != "" {
		if p.ID, err = parseID("price_list.id", in.Id); err != nil {
			return nil, toConnect(ctx, h.log, err)
		}
	}
	if p.Account, err = parseID("price_list.account_id", in.AccountId); err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	err = postgres.InTx(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		if err := remit.SavePriceList(ctx, tx, store, a.UserID, &p); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: store, Action: "price_list.saved", TargetType: "price_list",
			TargetID: p.ID.String(), Summary: p})
	})
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	return connect.NewResponse(&leadifyv1.SavePriceListResponse{PriceList: priceListPB(&p)}), nil
}

func (h *billingHandler) ListPriceLists(ctx context.Context, req *connect.Request[leadifyv1.ListPriceListsRequest]) (*connect.Response[leadifyv1.ListPriceListsResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.BillingView)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	account := uuid.Nil
	if req.Msg.AccountId != "" {
		if account, err = parseID("account_id", req.Msg.AccountId); err != nil {
			return nil, toConnect(ctx, h.log, err)
		}
	}
	resp := &leadifyv1.ListPriceListsResponse{}
	err = postgres.InSnapshot(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		book, err := remit.LoadPriceBook(ctx, tx, store, account)
		for i := range book {
			resp.PriceLists = append(resp.PriceLists, priceListPB(&book[i]))
		}
		return err
	})
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	return connect.NewResponse(resp), nil
}

func remittancePB(r *remit.Remittance) *leadifyv1.Remittance {
	pb := &leadifyv1.Remittance{Id: r.ID.String(), AccountId: r.Account.String(), Carrier: r.Carrier, Reference: r.Reference,
		PaidAt: timestamppb.New(r.PaidAt), Source: r.Source, LineCount: int32(r.LineCount), Total: int64(r.Total),
		CreatedAt: tsOrNil(r.CreatedAt)}
	if r.Declared != nil {
		d := int64(*r.Declared)
		pb.DeclaredTotal = &d
	}
	return pb
}

func summaryPB(s remit.Summary) *leadifyv1.RemittanceSummary {
	pb := &leadifyv1.RemittanceSummary{TotalLines: int32(s.Total.Lines), TotalNet: int64(s.Total.Net), Shortfall: int64(s.Shortfall),
		FeeOvercharge: int64(s.FeeOvercharge), FeeUndercharge: int64(s.FeeUndercharge), FeeFlags: int32(s.Flags)}
	for _, m := range remit.Matches {
		b := s.ByMatch[m]
		pb.Buckets = append(pb.Buckets, &leadifyv1.MatchBucket{Match: string(m), Lines: int32(b.Lines), Net: int64(b.Net)})
	}
	return pb
}

func feeFlagPB(f remit.FeeFlag) *leadifyv1.FeeFlag {
	return &leadifyv1.FeeFlag{Kind: string(f.Kind), Direction: string(f.Direction), Expected: int64(f.Expected),
		Charged: int64(f.Charged), Difference: int64(f.Difference)}
}

// saveRemittance stores a statement and answers with its reconciliation.
func (h *billingHandler) saveRemittance(ctx context.Context, a *auth.Actor, store uuid.UUID, accountID, ref string,
	paidAt *timestamppb.Timestamp, source string, st *remit.Statement) (*remit.Remittance, bool, remit.Summary, error) {
	account, err := parseID("account_id", accountID)
	if err != nil {
		return nil, false, remit.Summary{}, err
	}
	if paidAt == nil {
		return nil, false, remit.Summary{}, invalidf("paid_at is required")
	}
	var rem remit.Remittance
	var already bool
	var sum remit.Summary
	err = postgres.InTx(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		var err error
		rem, already, err = remit.Save(ctx, tx, store, a.UserID, account, ref, paidAt.AsTime(), source, st)
		if err != nil {
			return err
		}
		if _, _, sum, err = remit.Reconcile(ctx, tx, store, rem.ID); err != nil {
			return err
		}
		if already {
			return nil
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: store, Action: "remittance.recorded", TargetType: "remittance",
			TargetID: rem.ID.String(), Summary: map[string]any{"reference": rem.Reference, "source": source, "lines": rem.LineCount,
				"total": rem.Total}})
	})
	return &rem, already, sum, err
}

func (h *billingHandler) ImportRemittance(ctx context.Context, req *connect.Request[leadifyv1.ImportRemittanceRequest]) (*connect.Response[leadifyv1.ImportRemittanceResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.BillingManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	if len(req.Msg.Content) == 0 {
		return nil, toConnect(ctx, h.log, invalidf("content is empty"))
	}
	st, source, err := remit.ParseFile(req.Msg.Content)
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	rem, already, sum, err := h.saveRemittance(ctx, a, store, req.Msg.AccountId, req.Msg.Reference, req.Msg.PaidAt, source, st)
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	return connect.NewResponse(&leadifyv1.ImportRemittanceResponse{Remittance: remittancePB(rem), AlreadyImported: already,
		Summary: summaryPB(sum)}), nil
}

func (h *billingHandler) RecordRemittance(ctx context.Context, req *connect.Request[leadifyv1.RecordRemittanceRequest]) (*connect.Response[leadifyv1.RecordRemittanceResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.BillingManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	st := &remit.Statement{}
	for _, l := range req.Msg.Lines {
		st.Lines = append(st.Lines, remit.Line{Tracking: l.Tracking, Outcome: remit.Outcome(l.Outcome), COD: money.Amount(l.Cod),
			Itemised: l.Itemised, DeliveryFee: money.Amount(l.DeliveryFee), ReturnFee: money.Amount(l.ReturnFee),
			CODFee: money.Amount(l.CodFee), Fees: money.Amount(l.Fees), Net: money.Amount(l.Net)})
	}
	rem, already, sum, err := h.saveRemittance(ctx, a, store, req.Msg.AccountId, req.Msg.Reference, req.Msg.PaidAt, remit.SourceManual, st)
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	return connect.NewResponse(&leadifyv1.RecordRemittanceResponse{Remittance: remittancePB(rem), AlreadyImported: already,
		Summary: summaryPB(sum)}), nil
}

func (h *billingHandler) ListRemittances(ctx context.Context, req *connect.Request[leadifyv1.ListRemittancesRequest]) (*connect.Response[leadifyv1.ListRemittancesResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.BillingView)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	resp := &leadifyv1.ListRemittancesResponse{}
	err = postgres.InSnapshot(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		rems, err := remit.List(ctx, tx, store)
		for i := range rems {
			resp.Remittances = append(resp.Remittances, remittancePB(&rems[i]))
		}
		return err
	})
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *billingHandler) GetRemittance(ctx context.Context, req *connect.Request[leadifyv1.GetRemittanceRequest]) (*connect.Response[leadifyv1.GetRemittanceResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.BillingView)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	id, err := parseID("remittance_id", req.Msg.RemittanceId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	resp := &leadifyv1.GetRemittanceResponse{}
	err = postgres.InSnapshot(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		rem, lines, sum, err := remit.Reconcile(ctx, tx, store, id)
		if err != nil {
			return err
		}
		resp.Remittance, resp.Summary = remittancePB(&rem), summaryPB(sum)
		for _, l := range lines {
			pb := &leadifyv1.ReconciledLine{LineNo: int32(l.No), Tracking: l.Tracking, Outcome: string(l.Outcome), Cod: int64(l.COD),
				Fees: int64(l.Fees), Net: int64(l.Net), Match: string(l.Match)}
			if l.Parcel != nil {
				pb.ParcelId, pb.ParcelStatus, pb.ParcelCod = l.Parcel.ID.String(), l.Parcel.Status, int64(l.Parcel.COD)
			}
			if l.Expected != nil {
				if t, err := l.Expected.Total(); err == nil {
					v := int64(t)
					pb.ExpectedFees = &v
				}
			}
			for _, f := range l.Flags {
				pb.Flags = append(pb.Flags, feeFlagPB(f))
			}
			resp.Lines = append(resp.Lines, pb)
		}
		return nil
	})
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *billingHandler) GetStillOwed(ctx context.Context, req *connect.Request[leadifyv1.GetStillOwedRequest]) (*connect.Response[leadifyv1.GetStillOwedResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.BillingView)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	since := time.Now().AddDate(0, 0, -365)
	if req.Msg.DeliveredSince != nil {
		since = req.Msg.DeliveredSince.AsTime()
	}
	resp := &leadifyv1.GetStillOwedResponse{}
	err = postgres.InSnapshot(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		owed, err := remit.StillOwed(ctx, tx, store, since)
		if err != nil {
			return err
		}
		var cod, net money.Amount
		for _, o := range owed {
			pb := &leadifyv1.StillOwed{AccountId: o.Account.String(), Carrier: o.Carrier, Label: o.Label, Parcels: int32(o.Parcels),
				Cod: int64(o.COD), ExpectedFees: int64(o.ExpectedFees), Unpriced: int32(o.Unpriced), ExpectedNet: int64(o.ExpectedNet),
				Shortfall: int64(o.Shortfall), Oldest: tsOrNil(o.Oldest)}
			for _, p := range o.Sample {
				pb.Sample = append(pb.Sample, &leadifyv1.OwedParcel{ParcelId: p.ID.String(), Tracking: p.Tracking, Cod: int64(p.COD),
					DeliveredAt: timestamppb.New(p.DeliveredAt)})
			}
			resp.Accounts = append(resp.Accounts, pb)
			if cod, err = cod.Add(o.COD); err != nil {
				return err
			}
			if net, err = net.Add(o.ExpectedNet); err != nil {
				return err
			}
		}
		resp.TotalCod, resp.TotalExpectedNet = int64(cod), int64(net)
		return nil
	})
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *billingHandler) ListFeeFlags(ctx context.Context, req *connect.Request[leadifyv1.ListFeeFlagsRequest]) (*connect.Response[leadifyv1.ListFeeFlagsResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.BillingView)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	if req.Msg.PeriodStart == nil || req.Msg.PeriodEnd == nil {
		return nil, toConnect(ctx, h.log, invalidf("period_start and period_end are required"))
	}
	resp := &leadifyv1.ListFeeFlagsResponse{}
	err = postgres.InSnapshot(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		flags, err := remit.ListFeeFlags(ctx, tx, store, timeOf(req.Msg.PeriodStart), timeOf(req.Msg.PeriodEnd))
		if err != nil {
			return err
		}
		var over, under money.Amount
		for _, f := range flags {
			pb := &leadifyv1.LineFeeFlag{RemittanceId: f.Remittance.String(), Reference: f.Reference, AccountId: f.Account.String(),
				PaidAt: timestamppb.New(f.PaidAt), LineNo: int32(f.LineNo), Tracking: f.Tracking, ParcelId: f.Parcel.String(),
				Flag: feeFlagPB(f.FeeFlag)}
			resp.Flags = append(resp.Flags, pb)
			switch f.Direction {
			case remit.Over:
				over, err = over.Add(f.Difference)
			case remit.Under:
				under, err = under.Add(-f.Difference)
			}
			if err != nil {
				return err
			}
		}
		resp.Overcharged, resp.Undercharged = int64(over), int64(under)
		return nil
	})
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	return connect.NewResponse(resp), nil
}

// sellerStores returns the seller's stores the actor may view billing of.
// ErrNoStore when the actor is in none of the seller's stores (the seller's
// existence does not leak), ErrForbidden when in some without billing.view.
func (h *billingHandler) sellerStores(ctx context.Context, a *auth.Actor, seller uuid.UUID) ([]uuid.UUID, error) {
	if a.PlatformAdmin {
		var ids []uuid.UUID
		err := postgres.InSnapshot(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
			rows, err := tx.Query(ctx, `SELECT id FROM stores WHERE seller_id = $1 AND deleted_at IS NULL`, seller)
			if err != nil {
				return err
			}
			ids, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			return err
		})
		if err == nil && len(ids) == 0 {
			err = auth.ErrNoStore
		}
		return ids, err
	}
	var ids []uuid.UUID
	member := false
	for _, m := range a.Memberships {
		if m.SellerID != seller {
			continue
		}
		member = true
		if a.Can(m.StoreID, auth.BillingView) {
			ids = append(ids, m.StoreID)
		}
	}
	switch {
	case !member:
		return nil, auth.ErrNoStore
	case len(ids) == 0:
		return nil, auth.ErrForbidden
	}
	return ids, nil
}

func (h *billingHandler) GetSellerStatement(ctx context.Context, req *connect.Request[leadifyv1.GetSellerStatementRequest]) (*connect.Response[leadifyv1.GetSellerStatementResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	seller, err := parseID("seller_id", req.Msg.SellerId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	stores, err := h.sellerStores(ctx, a, seller)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	if req.Msg.PeriodStart == nil || req.Msg.PeriodEnd == nil {
		return nil, toConnect(ctx, h.log, invalidf("period_start and period_end are required"))
	}
	var st *billing.SellerStatement
	err = postgres.InSnapshot(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		st, err = billing.SellerStatementOf(ctx, tx, seller, stores, timeOf(req.Msg.PeriodStart), timeOf(req.Msg.PeriodEnd))
		return err
	})
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	pdf, err := billing.RenderSellerStatement(st)
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	pb := &leadifyv1.SellerStatement{SellerId: st.Seller.String(), SellerName: st.SellerName, PeriodStart: timestamppb.New(st.From),
		PeriodEnd: timestamppb.New(st.To), Opening: int64(st.Opening), Invoiced: int64(st.Invoiced), Paid: int64(st.Paid),
		Closing: int64(st.Closing)}
	for _, s := range st.Stores {
		spb := &leadifyv1.StoreStatement{StoreId: s.Store.String(), Name: s.Name, Opening: int64(s.Opening), Invoiced: int64(s.Invoiced),
			Paid: int64(s.Paid), Closing: int64(s.Closing)}
		for _, inv := range s.Invoices {
			spb.Invoices = append(spb.Invoices, &leadifyv1.StatementInvoice{InvoiceId: inv.ID.String(), Number: inv.Number,
				PeriodStart: timestamppb.New(inv.PeriodStart), PeriodEnd: timestamppb.New(inv.PeriodEnd), IssuedAt: timestamppb.New(inv.IssuedAt),
				Status: inv.Status, Net: int64(inv.Net), Paid: int64(inv.Paid)})
		}
		for _, p := range s.Payments {
			spb.Payments = append(spb.Payments, &leadifyv1.StatementPayment{InvoiceId: p.Invoice.String(), Number: p.Number,
				PaidAt: timestamppb.New(p.PaidAt), Reference: p.Reference, Amount: int64(p.Amount)})
		}
		pb.Stores = append(pb.Stores, spb)
	}
	return connect.NewResponse(&leadifyv1.GetSellerStatementResponse{Statement: pb, Pdf: pdf}), nil
}

// agentFor resolves whose commissions the actor may read in the store: any
// agent's with commissions.view_all, their own with commissions.view_own.
// An empty id means the caller (or, for ListPayouts with view_all, every agent).
func agentFor(a *auth.Actor, store uuid.UUID, id string, emptyIsAll bool) (uuid.UUID, error) {
	agent := uuid.Nil
	if id != "" {
		var err error
		if agent, err = parseID("agent_id", id); err != nil {
			return uuid.Nil, err
		}
	}
	if err := a.Require(store, auth.CommissionsViewAll); err == nil {
		if agent == uuid.Nil && !emptyIsAll {
			agent = a.UserID
		}
		return agent, nil
	} else if errors.Is(err, auth.ErrNoStore) {
		return uuid.Nil, err
	}
	if err := a.Require(store, auth.CommissionsViewOwn); err != nil {
		return uuid.Nil, err
	}
	if agent != uuid.Nil && agent != a.UserID {
		return uuid.Nil, auth.ErrForbidden
	}
	return a.UserID, nil
}

func payoutPB(p *billing.Payout) *leadifyv1.Payout {
	return &leadifyv1.Payout{Id: p.ID.String(), StoreId: p.Store.String(), AgentId: p.Agent.String(), Cutoff: timestamppb.New(p.Cutoff),
		Total: int64(p.Total), Entries: int32(p.Entries), Reference: p.Reference, PaidAt: timestamppb.New(p.PaidAt)}
}

func (h *billingHandler) GetAgentPayoutStatement(ctx context.Context, req *connect.Request[leadifyv1.GetAgentPayoutStatementRequest]) (*connect.Response[leadifyv1.GetAgentPayoutStatementResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := parseID("store_id", req.Msg.StoreId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	agent, err := agentFor(a, store, req.Msg.AgentId, false)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	if req.Msg.PeriodStart == nil || req.Msg.PeriodEnd == nil {
		return nil, toConnect(ctx, h.log, invalidf("period_start and period_end are required"))
	}
	var st *billing.PayoutStatement
	err = postgres.InSnapshot(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		st, err = billing.AgentStatement(ctx, tx, store, agent, timeOf(req.Msg.PeriodStart), timeOf(req.Msg.PeriodEnd))
		return err
	})
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	pb := &leadifyv1.PayoutStatement{StoreId: store.String(), AgentId: agent.String(), AgentName: st.AgentName,
		PeriodStart: timestamppb.New(st.From), PeriodEnd: timestamppb.New(st.To), Earned: int64(st.Earned), Reversed: int64(st.Reversed),
		Net: int64(st.Net), Pending: int64(st.Pending), Payable: int64(st.Payable)}
	for _, e := range st.Entries {
		epb := &leadifyv1.CommissionEntry{Id: e.ID.String(), RuleId: e.RuleID.String(), RuleName: e.RuleName, ParcelId: e.ParcelID.String(),
			Kind: e.Kind, Beneficiary: e.Beneficiary, AgentId: e.Agent.String(), Status: e.Status, Base: int64(e.Base), Amount: int64(e.Amount),
			Calculation: e.Calculation, OccurredAt: timestamppb.New(e.OccurredAt)}
		pe := &leadifyv1.PayoutStatementEntry{Entry: epb}
		if e.Payout != uuid.Nil {
			pe.PayoutId = e.Payout.String()
		}
		pb.Entries = append(pb.Entries, pe)
	}
	for i := range st.Payouts {
		pb.Payouts = append(pb.Payouts, payoutPB(&st.Payouts[i]))
	}
	pdf, err := billing.RenderPayoutStatement(st)
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	return connect.NewResponse(&leadifyv1.GetAgentPayoutStatementResponse{Statement: pb, Pdf: pdf}), nil
}

func (h *billingHandler) MarkEntriesPaid(ctx context.Context, req *connect.Request[leadifyv1.MarkEntriesPaidRequest]) (*connect.Response[leadifyv1.MarkEntriesPaidResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.CommissionsManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	agent, err := parseID("agent_id", req.Msg.AgentId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	id, err := parseID("payout_id", req.Msg.PayoutId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	if req.Msg.Cutoff == nil {
		return nil, toConnect(ctx, h.log, invalidf("cutoff is required"))
	}
	paidAt := time.Now()
	if req.Msg.PaidAt != nil {
		paidAt = req.Msg.PaidAt.AsTime()
	}
	p, already, err := billing.MarkPaid(ctx, h.svc.Pool, store, agent, a.UserID, id, timeOf(req.Msg.Cutoff), paidAt, req.Msg.Reference)
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	return connect.NewResponse(&leadifyv1.MarkEntriesPaidResponse{Payout: payoutPB(&p), AlreadyRecorded: already}), nil
}

func (h *billingHandler) ListPayouts(ctx context.Context, req *connect.Request[leadifyv1.ListPayoutsRequest]) (*connect.Response[leadifyv1.ListPayoutsResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := parseID("store_id", req.Msg.StoreId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	agent, err := agentFor(a, store, req.Msg.AgentId, true)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	resp := &leadifyv1.ListPayoutsResponse{}
	err = postgres.InSnapshot(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		ps, err := billing.ListPayouts(ctx, tx, store, agent, time.Time{}, time.Time{})
		for i := range ps {
			resp.Payouts = append(resp.Payouts, payoutPB(&ps[i]))
		}
		return err
	})
	if err != nil {
		return nil, h.remitErr(ctx, err)
	}
	return connect.NewResponse(resp), nil
}
