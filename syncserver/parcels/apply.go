package parcels

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/carrier"
	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/syncer"
)

// Event sources, as stored in parcel_events.source.
const (
	SourceCreate  = "create"
	SourceWebhook = "webhook"
	SourcePoll    = "poll"
)

// ErrUnknownParcel is returned by applyReports when no parcel of the account
// has the tracking code (the webhook may have beaten the creation record).
var ErrUnknownParcel = errors.New("no parcel with this tracking code")

type parcelRow struct {
	ID     uuid.UUID
	Status parcel.Status
	LeadID uuid.UUID
}

var eventKinds = map[parcel.Event]events.Kind{
	parcel.EventDelivered: events.ParcelDelivered,
	parcel.EventRefused:   events.ParcelRefused,
	parcel.EventReturned:  events.ParcelReturned,
	parcel.EventCancelled: events.ParcelCancelled,
}

// applyReports records a carrier's reports about the parcel with tracking
// code at account, in order, inside w's transaction: each new report becomes
// a parcel event (a repeat of a recorded one is skipped), and the parcel
// moves by parcel.Apply, publishing a domain event when it reaches
// delivered, refused, returned or cancelled. It returns how many reports
// were new, and ErrUnknownParcel when the parcel does not exist.
func (s *Service) applyReports(ctx context.Context, w *syncer.Writer, store, account uuid.UUID, code string, reports []carrier.Event, source string) (int, error) {
	return s.applyReportsWith(ctx, w, reserveOne(w, store), store, account, code, reports, source)
}

// versions hands out versions of a store scope reserved in the writer's
// transaction.
type versions func() (int64, error)

// reserveOne reserves each version as it is needed.
func reserveOne(w *syncer.Writer, store uuid.UUID) versions {
	return func() (int64, error) { return w.Reserve(store, 1) }
}

// reserveBlock reserves n versions at once and hands them out in order,
// reserving one at a time once they are used up.
func reserveBlock(w *syncer.Writer, store uuid.UUID, n int) (versions, error) {
	next, err := w.Reserve(store, n)
	if err != nil {
		return nil, err
	}
	last := next + int64(n) - 1
	return func() (int64, error) {
		if next > last {
			return w.Reserve(store, 1)
		}
		next++
		return next - 1, nil
	}, nil
}

func (s *Service) applyReportsWith(ctx context.Context, w *syncer.Writer, next versions, store, account uuid.UUID, code string, reports []carrier.Event, source string) (int, error) {
	if err := w.Lock(store); err != nil {
		return 0, err
	}
	var (
		p      parcelRow
		status string
	)
	err := w.Tx.QueryRow(ctx, `SELECT id, status, lead_id FROM parcels
WHERE store_id = $1 AND account_id = $2 AND tracking = $3 AND deleted_at IS NULL FOR UPDATE`, store, account, code).Scan(&p.ID, &status, &p.LeadID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrUnknownParcel
	}
	if err != nil {
		return 0, fmt.Errorf("load parcel %q: %w", code, err)
	}
	if p.Status, err = parcel.ParseStatus(status); err != nil {
		return 0, err
	}
	return s.applyToParcel(ctx, w, next, store, p, reports, source)
}

func (s *Service) applyToParcel(ctx context.Context, w *syncer.Writer, next versions, store uuid.UUID, p parcelRow, reports []carrier.Event, source string) (int, error) {
	now := s.now()
	fresh := 0
	changed := false
	var last carrier.Event
	for _, r := range reports {
		to, moved := p.Status, false
		if r.Known {
			to, moved = parcel.Apply(p.Status, r.Status)
		}
		version, err := next()
		if err != nil {
			return 0, err
		}
		statusText := ""
		if r.Known {
			statusText = r.Status.String()
		}
		tag, err := w.Tx.Exec(ctx, `INSERT INTO parcel_events (store_id, id, parcel_id, version, created_at, reported_at, source, raw_status, status, known, applied, note)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING`,
			store, uuid.Must(uuid.NewV7()), p.ID, version, now, nullTime(r.At), source, r.Raw, statusText, r.Known, moved, r.Note)
		if err != nil {
			return 0, fmt.Errorf("record parcel event: %w", err)
		}
		if tag.RowsAffected() == 0 {
			continue // reported before: a duplicate webhook or a poll repeating one
		}
		fresh++
		last = r
		if !moved {
			if !r.Known {
				s.Log.Warn("unknown carrier status kept raw", "store", store, "parcel", p.ID, "raw", r.Raw)
			}
			continue
		}
		if ev, ok := parcel.TransitionEvent(p.Status, to); ok {
			if err := s.Events.Publish(ctx, w.Tx, events.Event{Store: store, Kind: eventKinds[ev], AggregateType: "parcel", AggregateID: p.ID,
				Payload: map[string]any{"parcel_id": p.ID, "lead_id": p.LeadID, "from": p.Status.String(), "to": to.String(), "raw_status": r.Raw}}); err != nil {
				return 0, fmt.Errorf("publish %s: %w", ev, err)
			}
		}
		p.Status = to
		changed = true
	}
	if fresh == 0 {
		return 0, nil
	}
	version, err := next()
	if err != nil {
		return 0, err
	}
	_, err = w.Tx.Exec(ctx, `UPDATE parcels SET version = $3, updated_at = $4, status = $5,
  raw_status = CASE WHEN $6 THEN $7 ELSE raw_status END, status_known = CASE WHEN $6 THEN $8 ELSE status_known END,
  last_report_at = $4 WHERE store_id = $1 AND id = $2`,
		store, p.ID, version, now, p.Status.String(), changed || !last.Known, last.Raw, last.Known)
	if err != nil {
		return 0, fmt.Errorf("update parcel: %w", err)
	}
	return fresh, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
