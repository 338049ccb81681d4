package customers

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/internal/turn"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// HistoryChunk bounds the leads one transaction rewrites with their
// customers' history: it holds the store's write lock — every other writer
// of the store, carrier webhooks included, waits — and each rewritten lead
// goes to every replica of the store. A customer has a handful of open
// leads, so a batch of outcomes nearly always fits; one with thousands (a
// phone number that orders again and again) is finished by the follow-up.
const HistoryChunk = 250

// HistoryRate bounds the leads per second a store's follow-up rewrites: the
// history of a customer with n open leads reaches the last of them about
// n/HistoryRate seconds later, and the store's writers and replicas get
// the rest of the time. (A customer due is left to the follow-up by the
// batches of outcomes meanwhile, so this bounds their rewrites too.)
const HistoryRate = 500

// historyJobTime bounds one run of a follow-up job; a store with customers
// still due after it is taken up again by the same job, snoozed.
const historyJobTime = 30 * time.Second

// history is a customer's figures, to be written on their open leads.
type history struct {
	phone               string
	delivered, refusals int32
}

// staleLeadsSQL lists, in the order they are rewritten (by phone, then
// version), up to $5 open leads of store $1 whose figures differ from their
// customer's ($2-$4).
const staleLeadsSQL = `SELECT l.id, l.phone_e164, k.delivered, k.refusals
FROM unnest($2::text[], $3::int[], $4::int[]) AS k(phone, delivered, refusals)
JOIN leads l ON l.store_id = $1 AND l.phone_e164 = k.phone
WHERE l.deleted_at IS NULL AND l.status NOT IN ('confirmed', 'cancelled', 'duplicate')
  AND (l.customer_delivered, l.customer_refusals) IS DISTINCT FROM (k.delivered, k.refusals)
ORDER BY l.phone_e164 COLLATE "C", l.version, l.id
LIMIT $5`

// rewriteHistory writes each customer's figures onto the store's open
// leads of that phone still showing others (not confirmed, cancelled or
// marked duplicate), at most limit leads, each with a new version so that
// replicas get it. It returns the customers that may have leads left to
// rewrite and how many leads it rewrote.
func rewriteHistory(ctx context.Context, w *syncer.Writer, store uuid.UUID, hs []history, limit int) (left []string, n int, err error) {
	if len(hs) == 0 {
		return nil, 0, nil
	}
	if err := w.Lock(store); err != nil {
		return nil, 0, err
	}
	phones := make([]string, len(hs))
	delivered := make([]int32, len(hs))
	refusals := make([]int32, len(hs))
	for i, h := range hs {
		phones[i], delivered[i], refusals[i] = h.phone, h.delivered, h.refusals
	}
	rows, err := w.Tx.Query(ctx, staleLeadsSQL, store, phones, delivered, refusals, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("customers' open leads: %w", err)
	}
	var (
		ids   []uuid.UUID
		ph    []string
		ds    []int32
		rs    []int32
		id    uuid.UUID
		phone string
		d, r  int32
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &phone, &d, &r}, func() error {
		ids, ph, ds, rs = append(ids, id), append(ph, phone), append(ds, d), append(rs, r)
		return nil
	}); err != nil {
		return nil, 0, fmt.Errorf("customers' open leads: %w", err)
	}
	if len(ids) > limit {
		// The leads come by phone: the customers before the first lead
		// left out are done, that one and those after may not be.
		cut := ph[limit]
		for _, h := range hs {
			if h.phone >= cut {
				left = append(left, h.phone)
			}
		}
		ids, ds, rs = ids[:limit], ds[:limit], rs[:limit]
	}
	if len(ids) == 0 {
		return left, 0, nil
	}
	first, err := w.Reserve(store, len(ids))
	if err != nil {
		return nil, 0, err
	}
	if _, err := w.Tx.Exec(ctx, `UPDATE leads l SET customer_delivered = u.delivered, customer_refusals = u.refusals, version = $2 + u.ord - 1
FROM unnest($3::uuid[], $4::int[], $5::int[]) WITH ORDINALITY AS u(id, delivered, refusals, ord)
WHERE l.store_id = $1 AND l.id = u.id`, store, first, ids, ds, rs); err != nil {
		return nil, 0, fmt.Errorf("rewrite customer history: %w", err)
	}
	return left, len(ids), nil
}

// dueSQL reads which of the phones $2 are of customers due in store $1,
// and crossOffSQL crosses them off, each row found and locked by phone,
// then deleted by its ctid: one search of the due customers' key per phone.
// By key, whatever the planner believes of the store: see
// pgtest.RequireKeyed, TestDueCustomersSearchByPhone.
const (
	dueSQL = `SELECT d.phone_e164 FROM (SELECT DISTINCT p FROM unnest($2::text[]) AS u(p)) u,
LATERAL (SELECT phone_e164 FROM customer_history_due WHERE store_id = (SELECT $1::uuid) AND phone_e164 = u.p OFFSET 0) d`
	crossOffSQL = `DELETE FROM customer_history_due d USING (SELECT DISTINCT p FROM unnest($2::text[]) AS u(p)) u,
  LATERAL (SELECT ctid FROM customer_history_due WHERE store_id = (SELECT $1::uuid) AND phone_e164 = u.p OFFSET 0 FOR UPDATE) k
WHERE d.ctid = k.ctid`
)

// withoutDue drops from hs the customers due in the store: the follow-up
// writes their figures as they stand when it gets to them. Call it with
// the store's write lock held, so that the follow-up cannot cross one off
// in between.
func withoutDue(ctx context.Context, tx *postgres.Tx, store uuid.UUID, hs []history) ([]history, error) {
	phones := make([]string, len(hs))
	for i, h := range hs {
		phones[i] = h.phone
	}
	rows, err := tx.Query(ctx, dueSQL, store, phones)
	if err != nil {
		return nil, fmt.Errorf("due customers: %w", err)
	}
	due, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(due) == 0 {
		return hs, err
	}
	return slices.DeleteFunc(hs, func(h history) bool { return slices.Contains(due, h.phone) }), nil
}

// markDue records that the customers' history is still to be written on
// some of the store's open leads, and enqueues the follow-up job, in tx.
func markDue(ctx context.Context, tx *postgres.Tx, store uuid.UUID, phones []string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO customer_history_due (store_id, phone_e164)
SELECT $1, phone FROM unnest($2::text[]) AS u(phone) ORDER BY phone COLLATE "C"
ON CONFLICT DO NOTHING`, store, phones); err != nil {
		return fmt.Errorf("mark customer history due: %w", err)
	}
	rc, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("enqueue customer history: %w", err)
	}
	if _, err := rc.InsertTx(ctx, tx.Tx, HistoryArgs{Store: store}, nil); err != nil {
		return fmt.Errorf("enqueue customer history: %w", err)
	}
	return nil
}

// maxDuePerChunk bounds the due customers one follow-up transaction reads.
const maxDuePerChunk = 1000

// historyChunk rewrites up to HistoryChunk leads of the store's due
// customers with their figures as they stand, in a transaction of its own,
// and crosses off the customers it finished. It returns how many leads it
// rewrote and whether customers are still due.
//
// A batch of outcomes that changes a customer's figures takes the store's
// write lock before it commits, and this transaction holds it from its
// start: so either the batch committed first and its figures are read
// here, or it commits after and writes (or marks due) its figures itself.
// Crossing a customer off can lose no update.
func historyChunk(ctx context.Context, pool *pgxpool.Pool, store uuid.UUID) (n int, more bool, err error) {
	err = syncer.Write(ctx, pool, postgres.StoreScope(store), func(w *syncer.Writer) error {
		n, more = 0, false
		if err := w.Lock(store); err != nil {
			return err
		}
		// The figures as RecordOutcomes computes them: from the outcomes.
		rows, err := w.Tx.Query(ctx, `SELECT d.phone_e164, c.delivered, c.refusals
FROM (SELECT phone_e164 FROM customer_history_due WHERE store_id = $1 ORDER BY phone_e164 COLLATE "C" LIMIT $2) d
CROSS JOIN LATERAL (SELECT `+outcomeCounts+`
  FROM customer_outcomes o WHERE o.seller_id = (SELECT seller_id FROM stores WHERE id = $1) AND o.phone_e164 = d.phone_e164) c`,
			store, maxDuePerChunk)
		if err != nil {
			return fmt.Errorf("due customers: %w", err)
		}
		var (
			hs []history
			h  history
		)
		if _, err := pgx.ForEachRow(rows, []any{&h.phone, &h.delivered, &h.refusals}, func() error {
			hs = append(hs, h)
			return nil
		}); err != nil {
			return fmt.Errorf("due customers: %w", err)
		}
		if len(hs) == 0 {
			return nil
		}
		left, rewritten, err := rewriteHistory(ctx, w, store, hs, HistoryChunk)
		if err != nil {
			return err
		}
		n = rewritten
		still := make(map[string]bool, len(left))
		for _, p := range left {
			still[p] = true
		}
		var done []string
		for _, h := range hs {
			if !still[h.phone] {
				done = append(done, h.phone)
			}
		}
		if len(done) > 0 {
			if _, err := w.Tx.Exec(ctx, crossOffSQL, store, done); err != nil {
				return fmt.Errorf("cross off due customers: %w", err)
			}
		}
		more = len(left) > 0 || len(hs) == maxDuePerChunk
		return nil
	})
	return n, more, err
}

// HistoryArgs is the follow-up job rewriting a store's due customers'
// history on their open leads.
type HistoryArgs struct {
	Store uuid.UUID `json:"store"`
}

// Kind implements river.JobArgs.
func (HistoryArgs) Kind() string { return "customer_history" }

// HistoryWorker works HistoryArgs jobs: one at a time per store in an
// instance, a chunk at a time, paced at HistoryRate.
type HistoryWorker struct {
	river.WorkerDefaults[HistoryArgs]
	Pool *pgxpool.Pool

	turns turn.Turns // the stores being worked in this instance
}

// NewHistoryWorker returns the follow-up job's worker.
func NewHistoryWorker(pool *pgxpool.Pool) *HistoryWorker {
	return &HistoryWorker{Pool: pool}
}

// Work rewrites the store's due customers' history, HistoryChunk leads a
// transaction, until none is due. A job that finds another of the store's
// running in this instance leaves its work to it.
func (w *HistoryWorker) Work(ctx context.Context, job *river.Job[HistoryArgs]) error {
	store := job.Args.Store
	u, ok := w.turns.Claim(store, nil)
	if !ok {
		return nil
	}
	held := true
	defer func() {
		if held { // an error (or a panic) ends the run
			u.Next(true)
		}
	}()
	stop := time.Now().Add(historyJobTime)
	for {
		began := time.Now()
		n, more, err := historyChunk(ctx, w.Pool, store)
		if err != nil {
			return err
		}
		if !more {
			if ended, _ := u.Next(false); ended {
				held = false
				return nil
			}
			continue
		}
		pause := time.Duration(n)*time.Second/HistoryRate - time.Since(began)
		if time.Now().Add(pause).After(stop) {
			// Taken up again later, by this job or another.
			return river.JobSnooze(max(pause, 0))
		}
		if pause > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
		}
	}
}
