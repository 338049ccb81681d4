package syncer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
)

// billingChanges adds the store's commission entries and invoices written in
// (from, to]. Those who see the whole store get every entry and every invoice
// with its PDF; an agent gets their own entries only, and a delete for the
// others when not pulling from scratch.
func billingChanges(ctx context.Context, tx querier, v viewer, store uuid.UUID, from, to int64, out *leadifyv1.ScopeChanges) error {
	initial := from == 0
	rows, err := tx.Query(ctx, `SELECT id, version, rule_id, rule_name, parcel_id, kind, beneficiary, agent_id, status, base, amount,
  calculation, occurred_at FROM commission_entries WHERE store_id = $1 AND version > $2 AND version <= $3 ORDER BY version`, store, from, to)
	if err != nil {
		return fmt.Errorf("pull commission entries: %w", err)
	}
	for rows.Next() {
		var (
			e          leadifyv1.CommissionEntry
			id, rule   uuid.UUID
			parcel     uuid.UUID
			agent      *uuid.UUID
			version    int64
			occurredAt time.Time
		)
		if err := rows.Scan(&id, &version, &rule, &e.RuleName, &parcel, &e.Kind, &e.Beneficiary, &agent, &e.Status, &e.Base,
			&e.Amount, &e.Calculation, &occurredAt); err != nil {
			rows.Close()
			return fmt.Errorf("pull commission entries: %w", err)
		}
		e.Id, e.RuleId, e.ParcelId, e.OccurredAt = id.String(), rule.String(), parcel.String(), timestamppb.New(occurredAt)
		if agent != nil {
			e.AgentId = agent.String()
		}
		switch {
		case v.all || (agent != nil && *agent == v.user):
			out.Changes = append(out.Changes, &leadifyv1.Change{Version: version, Id: e.Id, Table: "commission_entries",
				Row: &leadifyv1.Change_CommissionEntry{CommissionEntry: &e}})
		case !initial:
			out.Changes = append(out.Changes, &leadifyv1.Change{Version: version, Id: e.Id, Table: "commission_entries", Deleted: true})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pull commission entries: %w", err)
	}
	if !v.all {
		return nil
	}
	rows, err = tx.Query(ctx, `SELECT id, version, status, body, paid, coalesce(pdf, ''::bytea) FROM invoices
WHERE store_id = $1 AND version > $2 AND version <= $3 ORDER BY version`, store, from, to)
	if err != nil {
		return fmt.Errorf("pull invoices: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id      uuid.UUID
			version int64
			inv     leadifyv1.Invoice
			body    []byte
		)
		if err := rows.Scan(&id, &version, &inv.Status, &body, &inv.Paid, &inv.Pdf); err != nil {
			return fmt.Errorf("pull invoices: %w", err)
		}
		if err := invoiceFromBody(body, &inv); err != nil {
			return fmt.Errorf("pull invoice %v: %w", id, err)
		}
		inv.Id, inv.StoreId = id.String(), store.String()
		out.Changes = append(out.Changes, &leadifyv1.Change{Version: version, Id: inv.Id, Table: "invoices",
			Row: &leadifyv1.Change_Invoice{Invoice: &inv}})
	}
	return rows.Err()
}

// invoiceFromBody fills the invoice's summary from its stored body (the
// billing package's canonical JSON; its lines are in the PDF).
func invoiceFromBody(body []byte, inv *leadifyv1.Invoice) error {
	var b struct {
		Number      int64      `json:"number"`
		PeriodStart time.Time  `json:"periodStart"`
		PeriodEnd   time.Time  `json:"periodEnd"`
		IssuedAt    time.Time  `json:"issuedAt"`
		Lines       []struct{} `json:"lines"`
		Totals      struct {
			COD          int64 `json:"cod"`
			DeliveryFees int64 `json:"deliveryFees"`
			CODFees      int64 `json:"codFees"`
			ReturnFees   int64 `json:"returnFees"`
			PlatformFees int64 `json:"platformFees"`
			VATRateBP    int64 `json:"vatRateBp"`
			VAT          int64 `json:"vat"`
			Net          int64 `json:"net"`
		} `json:"totals"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return err
	}
	if b.Number != 0 {
		inv.Number = fmt.Sprintf("FA-%06d", b.Number)
	}
	inv.PeriodStart, inv.PeriodEnd = timestamppb.New(b.PeriodStart), timestamppb.New(b.PeriodEnd)
	if !b.IssuedAt.IsZero() {
		inv.IssuedAt = timestamppb.New(b.IssuedAt)
	}
	t := b.Totals
	inv.Cod, inv.DeliveryFees, inv.CodFees, inv.ReturnFees = t.COD, t.DeliveryFees, t.CODFees, t.ReturnFees
	inv.PlatformFees, inv.VatRateBp, inv.Vat, inv.Net = t.PlatformFees, t.VATRateBP, t.VAT, t.Net
	inv.LineCount = int32(len(b.Lines))
	return nil
}
