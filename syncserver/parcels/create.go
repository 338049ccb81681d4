package parcels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/carrier"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// Creation states of a parcel (parcels.creation).
const (
	CreationCalling = "calling"
	CreationCreated = "created"
	CreationReview  = "review"
	CreationFailed  = "failed"
)

// CreateArgs is the job creating the parcel of a confirmed lead. Account
// zero means the store's default carrier account.
type CreateArgs struct {
	Store   uuid.UUID `json:"store"`
	Lead    uuid.UUID `json:"lead"`
	Account uuid.UUID `json:"account,omitempty"`
}

// Kind implements river.JobArgs.
func (CreateArgs) Kind() string { return "parcel_create" }

// InsertOpts makes at most one unfinished creation job per lead (a
// finished one does not stop a later request, e.g. after fixing a city).
func (CreateArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled,
	}}}
}

// EnqueueCreate enqueues the creation of lead's parcel in tx.
func (s *Service) EnqueueCreate(ctx context.Context, tx *postgres.Tx, args CreateArgs) error {
	_, err := s.River().InsertTx(ctx, tx.Tx, args, nil)
	return err
}

type createWorker struct {
	river.WorkerDefaults[CreateArgs]
	s *Service
}

func (w *createWorker) Work(ctx context.Context, job *river.Job[CreateArgs]) error {
	return w.s.CreateParcel(ctx, job.Args)
}

// pendingCreation is a parcel recorded before its creation call.
type pendingCreation struct {
	parcelID  uuid.UUID
	account   Account
	request   carrier.Parcel
	reconcile bool // an earlier attempt may have made the call
}

// CreateParcel creates the parcel of a confirmed lead at its carrier. The
// parcel row is committed (creation "calling") before the call; the answer
// is recorded after it. When a row in "calling" is found — an earlier
// attempt crashed or timed out between the call and its record — the carrier
// is asked first (Lookup by the parcel's id, sent as the order reference):
// a found parcel is recorded, a missing one is created; a carrier that
// cannot be asked (Coliix) gets the parcel held for review, never resent.
// A refused parcel (bad city, bad data, bad credentials) is marked failed
// with the carrier's message. An unknown outcome returns an error, so River
// retries with backoff and the retry reconciles.
func (s *Service) CreateParcel(ctx context.Context, args CreateArgs) error {
	pc, err := s.recordAttempt(ctx, args)
	if err != nil || pc == nil {
		return err
	}
	crash(CrashCreateRecorded)
	c, err := s.Client(pc.account)
	if err != nil {
		return s.finish(ctx, args.Store, pc.parcelID, CreationFailed, "", err.Error())
	}
	if pc.reconcile {
		found, lerr := c.Lookup(ctx, pc.request.OrderRef)
		switch {
		case lerr == nil:
			return s.finish(ctx, args.Store, pc.parcelID, CreationCreated, found.Tracking, "")
		case errors.Is(lerr, carrier.ErrUnsupported):
			return s.finish(ctx, args.Store, pc.parcelID, CreationReview, "",
				"an earlier creation call may have reached "+pc.account.Carrier+"; check its dashboard before creating again")
		case !errors.Is(lerr, carrier.ErrNotFound):
			return fmt.Errorf("reconcile parcel %v: %w", pc.parcelID, lerr)
		}
	}
	release, err := s.acquire(ctx, pc.account)
	if err != nil {
		return err
	}
	created, cerr := c.Create(ctx, pc.request)
	release()
	crash(CrashCreateAnswered)
	switch {
	case cerr == nil:
		return s.finish(ctx, args.Store, pc.parcelID, CreationCreated, created.Tracking, "")
	case carrier.Retryable(cerr):
		return fmt.Errorf("create parcel %v (outcome unknown, will reconcile): %w", pc.parcelID, cerr)
	}
	return s.finish(ctx, args.Store, pc.parcelID, CreationFailed, "", cerr.Error())
}

// recordAttempt commits the parcel row in "calling" and returns what to
// send, or nil when there is nothing to do (lead not confirmed, parcel
// already created or held).
func (s *Service) recordAttempt(ctx context.Context, args CreateArgs) (*pendingCreation, error) {
	var pc *pendingCreation
	err := s.storeWrite(ctx, args.Store, func(w *syncer.Writer) error {
		pc = nil
		if err := w.Lock(args.Store); err != nil {
			return err
		}
		var (
			l     mutation.Lead
			items []byte
			cod   int64
			stat  string
		)
		err := w.Tx.QueryRow(ctx, `SELECT status, customer_name, phone_raw, phone_e164, city_id, address, items, cod FROM leads
WHERE store_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE`, args.Store, args.Lead).Scan(&stat, &l.CustomerName, &l.PhoneRaw, &l.PhoneE164, &l.CityID, &l.Address, &items, &cod)
		if err != nil {
			return fmt.Errorf("lead %v: %w", args.Lead, postgres.Translate(err))
		}
		if stat != "confirmed" {
			s.Log.Info("parcel not created: lead not confirmed", "store", args.Store, "lead", args.Lead, "status", stat)
			return nil
		}
		_ = json.Unmarshal(items, &l.Items)

		var (
			id        uuid.UUID
			creation  string
			accountID uuid.UUID
		)
		err = w.Tx.QueryRow(ctx, `SELECT id, creation, account_id FROM parcels WHERE store_id = $1 AND lead_id = $2 AND deleted_at IS NULL FOR UPDATE`,
			args.Store, args.Lead).Scan(&id, &creation, &accountID)
		fresh := errors.Is(err, pgx.ErrNoRows)
		if err != nil && !fresh {
			return err
		}
		if !fresh && creation != CreationCalling && creation != CreationFailed {
			return nil // created, or held for review
		}
		if fresh || creation == CreationFailed {
			if args.Account != uuid.Nil {
				accountID = args.Account
			} else if accountID, err = chooseAccount(ctx, w.Tx, args.Store, l.CityID); err != nil {
				return err
			}
		}
		account, err := LoadAccount(ctx, w.Tx, accountID)
		if err != nil {
			return err
		}
		if account.StoreID != args.Store {
			return fmt.Errorf("carrier account %v: %w", accountID, postgres.ErrNotFound)
		}
		version, err := w.Reserve(args.Store, 1)
		if err != nil {
			return err
		}
		now := s.now()
		if fresh {
			id = uuid.Must(uuid.NewV7())
			_, err = w.Tx.Exec(ctx, `INSERT INTO parcels (store_id, id, version, created_at, updated_at, lead_id, account_id, carrier, status, creation, attempts, cod, city_id)
VALUES ($1, $2, $3, $4, $4, $5, $6, $7, 'created', 'calling', 1, $8, $9)`, args.Store, id, version, now, args.Lead, account.ID, account.Carrier, cod, l.CityID)
		} else {
			_, err = w.Tx.Exec(ctx, `UPDATE parcels SET version = $3, updated_at = $4, account_id = $5, carrier = $6, creation = 'calling',
  attempts = attempts + 1, error = '' WHERE store_id = $1 AND id = $2`, args.Store, id, version, now, account.ID, account.Carrier)
		}
		if err != nil {
			return fmt.Errorf("record parcel attempt: %w", err)
		}
		c, _ := city.ByID(l.CityID)
		phone := l.PhoneE164
		if phone == "" {
			phone = l.PhoneRaw
		}
		pc = &pendingCreation{parcelID: id, account: account, reconcile: !fresh && creation == CreationCalling, request: carrier.Parcel{
			OrderRef: id.String(), Name: l.CustomerName, Phone: nationalPhone(phone), City: c, Address: l.Address,
			Goods: goods(l.Items), Quantity: quantity(l.Items), COD: money.Amount(cod),
		}}
		if c.ID == "" {
			pc.request.City = city.City{ID: l.CityID}
		}
		return nil
	})
	return pc, err
}

// chooseAccount picks the account the store's rules give for the city: a
// per-city override, else the account of the store's default carrier, else
// its first account.
func chooseAccount(ctx context.Context, tx *postgres.Tx, store uuid.UUID, cityID string) (uuid.UUID, error) {
	var override uuid.UUID
	err := tx.QueryRow(ctx, `SELECT r.account_id FROM carrier_city_rules r JOIN carrier_accounts a ON a.id = r.account_id AND a.deleted_at IS NULL
WHERE r.store_id = $1 AND r.city_id = $2`, store, cityID).Scan(&override)
	if err == nil {
		return override, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, err
	}
	rows, err := tx.Query(ctx, `SELECT a.id FROM carrier_accounts a JOIN stores s ON s.id = a.store_id
WHERE a.store_id = $1 AND a.deleted_at IS NULL ORDER BY (a.carrier = s.default_carrier) DESC, a.created_at, a.id LIMIT 2`, store)
	if err != nil {
		return uuid.Nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return uuid.Nil, err
	}
	if len(ids) == 0 {
		return uuid.Nil, fmt.Errorf("store %v has no carrier account: %w", store, postgres.ErrNotFound)
	}
	return ids[0], nil
}

func nationalPhone(e164 string) string {
	if rest, ok := strings.CutPrefix(e164, "+212"); ok {
		return "0" + rest
	}
	return e164
}

func goods(items []mutation.Item) string {
	names := make([]string, 0, len(items))
	for _, it := range items {
		names = append(names, it.Name)
	}
	return strings.Join(names, ", ")
}

func quantity(items []mutation.Item) int {
	n := 0
	for _, it := range items {
		n += int(it.Qty)
	}
	return max(n, 1)
}

// finish records the outcome of a creation.
func (s *Service) finish(ctx context.Context, store, id uuid.UUID, creation, tracking, msg string) error {
	return s.storeWrite(ctx, store, func(w *syncer.Writer) error {
		if err := w.Lock(store); err != nil {
			return err
		}
		version, err := w.Reserve(store, 1)
		if err != nil {
			return err
		}
		var leadID uuid.UUID
		if err := w.Tx.QueryRow(ctx, `UPDATE parcels SET version = $3, updated_at = $4, creation = $5, tracking = $6, error = $7
WHERE store_id = $1 AND id = $2 RETURNING lead_id`, store, id, version, s.now(), creation, tracking, msg).Scan(&leadID); err != nil {
			return fmt.Errorf("record parcel outcome: %w", err)
		}
		if creation != CreationCreated {
			s.Log.Warn("parcel not created", "store", store, "parcel", id, "creation", creation, "error", msg)
			return nil
		}
		_, err = s.applyToParcel(ctx, w, reserveOne(w, store), store, parcelRow{ID: id, Status: parcel.StatusCreated, LeadID: leadID},
			[]carrier.Event{{Code: tracking, Raw: "accepted by the carrier", Status: parcel.StatusSent, Known: true, At: s.now()}}, SourceCreate)
		return err
	})
}
