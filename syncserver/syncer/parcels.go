package syncer

import (
	"context"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
)

func optTime(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// parcelChanges adds a store's parcels and parcel events with versions in
// (from, to] to out, in the viewer's view: whoever sees the parcel's lead in
// full sees them; others get deletes (none on an initial sync).
func (s *Service) parcelChanges(ctx context.Context, tx querier, v viewer, store uuid.UUID, from, to int64, out *leadifyv1.ScopeChanges) error {
	initial := from == 0
	visible := func(assigned *uuid.UUID, leadDeleted bool) bool {
		return !leadDeleted && (v.all || (assigned != nil && *assigned == v.user))
	}
	rows, err := tx.Query(ctx, `SELECT p.id, p.version, p.lead_id, p.carrier, p.tracking, p.status, p.raw_status, p.status_known,
  p.creation, p.error, p.cod, p.city_id, p.created_at, p.updated_at, p.last_report_at, p.deleted_at IS NOT NULL,
  l.assigned_to, l.deleted_at IS NOT NULL
FROM parcels p JOIN leads l ON l.store_id = p.store_id AND l.id = p.lead_id
WHERE p.store_id = $1 AND p.version > $2 AND p.version <= $3 ORDER BY p.version`, store, from, to)
	if err != nil {
		return err
	}
	for rows.Next() {
		var (
			id, lead             uuid.UUID
			version, cod         int64
			r                    leadifyv1.ParcelRow
			created, updated     time.Time
			lastReport           *time.Time
			deleted, leadDeleted bool
			assigned             *uuid.UUID
		)
		if err := rows.Scan(&id, &version, &lead, &r.Carrier, &r.Tracking, &r.Status, &r.RawStatus, &r.StatusKnown, &r.Creation,
			&r.Error, &cod, &r.CityId, &created, &updated, &lastReport, &deleted, &assigned, &leadDeleted); err != nil {
			rows.Close()
			return err
		}
		if deleted || !visible(assigned, leadDeleted) {
			if !initial {
				out.Changes = append(out.Changes, &leadifyv1.Change{Version: version, Id: id.String(), Table: "parcels", Deleted: true})
			}
			continue
		}
		r.Id, r.StoreId, r.LeadId, r.Cod = id.String(), store.String(), lead.String(), cod
		r.CreatedAt, r.UpdatedAt, r.LastReportAt = timestamppb.New(created), timestamppb.New(updated), optTime(lastReport)
		out.Changes = append(out.Changes, &leadifyv1.Change{Version: version, Id: id.String(), Table: "parcels", Row: &leadifyv1.Change_Parcel{Parcel: &r}})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	rows, err = tx.Query(ctx, `SELECT e.id, e.version, e.parcel_id, e.created_at, e.reported_at, e.source, e.raw_status, e.status,
  e.known, e.applied, e.note, l.assigned_to, l.deleted_at IS NOT NULL OR p.deleted_at IS NOT NULL
FROM parcel_events e JOIN parcels p ON p.store_id = e.store_id AND p.id = e.parcel_id
  JOIN leads l ON l.store_id = p.store_id AND l.id = p.lead_id
WHERE e.store_id = $1 AND e.version > $2 AND e.version <= $3 ORDER BY e.version`, store, from, to)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, parcelID uuid.UUID
			version      int64
			r            leadifyv1.ParcelEventRow
			created      time.Time
			reported     *time.Time
			assigned     *uuid.UUID
			gone         bool
		)
		if err := rows.Scan(&id, &version, &parcelID, &created, &reported, &r.Source, &r.RawStatus, &r.Status, &r.Known, &r.Applied,
			&r.Note, &assigned, &gone); err != nil {
			return err
		}
		if !visible(assigned, gone) {
			if !initial {
				out.Changes = append(out.Changes, &leadifyv1.Change{Version: version, Id: id.String(), Table: "parcel_events", Deleted: true})
			}
			continue
		}
		r.Id, r.StoreId, r.ParcelId = id.String(), store.String(), parcelID.String()
		r.CreatedAt, r.ReportedAt = timestamppb.New(created), optTime(reported)
		out.Changes = append(out.Changes, &leadifyv1.Change{Version: version, Id: id.String(), Table: "parcel_events",
			Row: &leadifyv1.Change_ParcelEvent{ParcelEvent: &r}})
	}
	return rows.Err()
}
