package syncer

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/auth"
)

// MaxClaim is the most leads one claim takes.
const MaxClaim = 50

// claimable are the statuses a pool lead can be claimed in.
var claimable = []string{lead.StatusNew.String(), lead.StatusNoAnswer.String(), lead.StatusCallback.String(), lead.StatusUnreachable.String()}

// Claim leases up to n leads of the store's pool to the actor, oldest first:
// leads nobody holds, or whose lease lapsed (first come, first served, on the
// server's clock). Each claimed lead and its history are re-versioned, so the
// claimer pulls them in full and a previous holder drops them.
func (s *Service) Claim(ctx context.Context, a *auth.Actor, store uuid.UUID, n int) ([]uuid.UUID, time.Time, int64, error) {
	if err := a.Require(store, auth.LeadsClaim); err != nil {
		return nil, time.Time{}, 0, err
	}
	if n <= 0 || n > MaxClaim {
		return nil, time.Time{}, 0, &InvalidError{fmt.Sprintf("count: claim 1 to %d leads at a time", MaxClaim)}
	}
	m, _ := a.Membership(store)
	now := s.now().UTC().Truncate(time.Microsecond)
	lease := now.Add(time.Duration(max(m.LeaseMinutes, 1)) * time.Minute)
	if a.PlatformAdmin && m.LeaseMinutes == 0 {
		lease = now.Add(24 * time.Hour)
	}
	var ids []uuid.UUID
	var version int64
	err := Write(ctx, s.pool, a.Scope(), func(w *Writer) error {
		ids = nil
		if err := w.Lock(store); err != nil {
			return err
		}
		rows, err := w.Tx.Query(ctx, `SELECT `+leadColumns+` FROM leads
WHERE store_id = $1 AND deleted_at IS NULL AND status = ANY($2)
  AND (assigned_to IS NULL OR lease_until < $3) AND assigned_to IS DISTINCT FROM $4
ORDER BY created_at, id LIMIT $5 FOR UPDATE`, store, claimable, now, a.UserID, n)
		if err != nil {
			return err
		}
		var leads []mutation.Lead
		for rows.Next() {
			l, err := scanLead(rows)
			if err != nil {
				rows.Close()
				return err
			}
			leads = append(leads, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(leads) == 0 {
			return err
		}
		first, err := w.Reserve(store, len(leads))
		if err != nil {
			return err
		}
		var events []mutation.LeadEvent
		for i := range leads {
			l := &leads[i]
			ev := mutation.LeadEvent{ID: uuid.Must(uuid.NewV7()), StoreID: store, LeadID: l.ID, CreatedAt: now,
				ActorID: a.UserID, Kind: mutation.EventClaim}
			if l.AssignedTo != uuid.Nil {
				ev.Data = map[string]string{"lapsed_holder": l.AssignedTo.String()}
			}
			l.AssignedTo, l.LeaseUntil, l.UpdatedAt, l.Version = a.UserID, lease, now, first+int64(i)
			ev.Version = l.Version
			events = append(events, ev)
			ids = append(ids, l.ID)
		}
		if err := w.PutLeads(leads...); err != nil {
			return err
		}
		if err := w.PutEvents(events...); err != nil {
			return err
		}
		for _, l := range leads {
			if err := w.Revision(store, l.ID); err != nil {
				return err
			}
		}
		version = w.touched[store]
		return nil
	})
	return ids, lease, version, err
}
