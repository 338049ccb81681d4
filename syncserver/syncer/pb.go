package syncer

import (
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func idText(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

// LeadPB is the wire form of a lead whose items and custom fields are still
// the JSON the database holds.
func LeadPB(l *mutation.Lead, itemsJSON, customJSON []byte) *leadifyv1.LeadRow {
	return &leadifyv1.LeadRow{
		Id: l.ID.String(), StoreId: l.StoreID.String(), CreatedAt: ts(l.CreatedAt), UpdatedAt: ts(l.UpdatedAt),
		Status: l.Status.String(), CustomerName: l.CustomerName, PhoneRaw: l.PhoneRaw, PhoneE164: l.PhoneE164,
		CityId: l.CityID, CityRaw: l.CityRaw, Address: l.Address, ItemsJson: itemsJSON, Cod: int64(l.COD), Source: l.Source,
		ExternalRef: l.ExternalRef, CustomJson: customJSON, AssignedTo: idText(l.AssignedTo), LeaseUntil: ts(l.LeaseUntil),
		CallAttempts: l.CallAttempts, CallbackAt: ts(l.CallbackAt), CancelReason: l.CancelReason,
		DuplicateOf: idText(l.DuplicateOf), Score: l.Score,
	}
}

// EventPB is the wire form of a lead event.
func EventPB(e *mutation.LeadEvent) *leadifyv1.LeadEventRow {
	r := &leadifyv1.LeadEventRow{Id: e.ID.String(), StoreId: e.StoreID.String(), LeadId: e.LeadID.String(),
		CreatedAt: ts(e.CreatedAt), ActorId: idText(e.ActorID), Kind: string(e.Kind), Note: e.Note, Data: e.Data}
	if e.FromStatus.Valid() {
		r.FromStatus = e.FromStatus.String()
	}
	if e.ToStatus.Valid() {
		r.ToStatus = e.ToStatus.String()
	}
	return r
}
