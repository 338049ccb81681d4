package parcels_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/servertest"
)

// The statements the plan tests' new ones replaced, to check that the
// fixtures reproduce their plans and that the new ones do what they did.
const (
	oldOwnPendingSQL = `SELECT count(*) FILTER (WHERE attempts = 0) > 0, count(*) FILTER (WHERE attempts > 0)
FROM webhook_inbox WHERE store_id = $1 AND id = ANY($2) AND status = 'pending'`
	oldMarkDoneSQL = `UPDATE webhook_inbox w SET status = 'done', last_error = '', attempts = attempts + 1, processed_at = now()
WHERE store_id = $1 AND id = ANY($2)`
	oldMarkRetrySQL = `UPDATE webhook_inbox w SET attempts = attempts + 1, last_error = u.msg FROM unnest($2::uuid[], $3::text[]) AS u(id, msg)
WHERE w.store_id = $1 AND w.id = u.id`
	oldMarkDeadSQL = `UPDATE webhook_inbox w SET status = 'dead', last_error = u.msg, attempts = attempts + 1, processed_at = now()
FROM unnest($2::uuid[], $3::text[]) AS u(id, msg) WHERE w.store_id = $1 AND w.id = u.id`
	oldUpdateParcelsSQL = `UPDATE parcels p SET version = u.version, updated_at = $2, status = u.status,
  raw_status = CASE WHEN u.set_raw THEN u.raw ELSE p.raw_status END, status_known = CASE WHEN u.set_raw THEN u.known ELSE p.status_known END,
  last_report_at = $2
FROM unnest($3::uuid[], $4::bigint[], $5::text[], $6::bool[], $7::text[], $8::bool[]) AS u(id, version, status, set_raw, raw, known)
WHERE p.store_id = $1 AND p.id = u.id`
)

// inboxFill writes, as the owner, a carrier account of the store and n+1
// stored webhooks of it: every other one done, the pending ones alternately
// not yet tried and tried. It returns the ids of the pending ones and of
// the done ones.
func inboxFill(t *testing.T, env *servertest.Env, store uuid.UUID, n int) (pending, done []uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	owner := env.DB.Owner(t)
	account, hook := uuid.New(), uuid.New()
	_, err := owner.Exec(ctx, `INSERT INTO carrier_accounts (id, store_id, carrier, credentials) VALUES ($1, $2, 'ameex', 'v1:x:y')`, account, store)
	require.NoError(t, err)
	_, err = owner.Exec(ctx, `INSERT INTO webhook_inbox (store_id, id, account_id, carrier, digest, method, body, status)
VALUES ($1, $2, $3, 'ameex', '\x00', 'POST', 'x', 'done')`, store, hook, account)
	require.NoError(t, err)
	env.DB.Fill(t, "webhook_inbox", fmt.Sprintf("id = '%s'", hook), n, map[string]string{"id": "gen_random_uuid()",
		"digest": "sha256(g::text::bytea)", "received_at": "now() + g * interval '1 ms'",
		"status": "CASE WHEN g % 2 = 0 THEN 'done' ELSE 'pending' END", "attempts": "CASE WHEN g % 4 = 1 THEN 0 ELSE 2 END"})
	ids := func(status string) []uuid.UUID {
		rows := env.DB.Rows(t, store, true, `SELECT id::text FROM webhook_inbox WHERE store_id = $1 AND status = $2`, store, status)
		out := make([]uuid.UUID, len(rows))
		for i, r := range rows {
			out[i] = uuid.MustParse(strings.Trim(r, "[]"))
		}
		return out
	}
	return ids("pending"), ids("done")
}

// badPlan says whether pgtest.RequireKeyed fails plan.
func badPlan(plan []string, table string, keys ...string) bool {
	r := &recorder{}
	pgtest.RequireKeyed(r, plan, table, keys...)
	return r.failed
}

// recorder is a testing.TB that records a failure instead of stopping.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

var errRollback = errors.New("rolled back")

// affected returns the rows sql (an update ... returning) returns with
// args, as the application role in a transaction scoped to store, as the
// versioned-write helper, each printed, sorted; and rolls its changes back.
func affected(t *testing.T, env *servertest.Env, store uuid.UUID, sql string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	var got []string
	err := postgres.InTx(ctx, env.DB.App, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('app.sync_writer', 'on', true)`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			v, err := r.Values()
			return fmt.Sprint(v), err
		})
		if err != nil {
			return err
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback, sql)
	slices.Sort(got)
	return got
}

// A processing job's webhooks are counted, and a batch's marked, by id even
// when the planner's statistics do not know the store's webhooks yet: not
// by a read of all of the store's webhooks (every one received is kept), or
// of its pending backlog, filtered. The pending read is left searching the
// backlog by store and status.
func TestInboxLookUpsSearchByID(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	var pending, done []uuid.UUID // the stale store's
	store := env.StaleStore([]string{"webhook_inbox"}, 5_000, 40_000, func(store uuid.UUID, n int) {
		pending, done = inboxFill(t, env, store, n)
	}).StoreID
	// A webhook of no store, a repeat, pending ones (fresh and tried) and
	// done ones.
	batch := append(append([]uuid.UUID{uuid.New(), pending[0]}, pending[:500]...), done[:100]...)
	msgs := make([]string, len(batch))
	for i, id := range batch {
		msgs[i] = "boom " + id.String()[:8]
	}

	for _, c := range []struct {
		name     string
		old, new string
		args     []any
	}{
		{"own pending", oldOwnPendingSQL, parcels.OwnPendingSQL, []any{store, batch}},
		{"mark done", oldMarkDoneSQL, parcels.MarkDoneSQL, []any{store, batch}},
		{"mark retry", oldMarkRetrySQL, parcels.MarkRetrySQL, []any{store, batch, msgs}},
		{"mark dead", oldMarkDeadSQL, parcels.MarkDeadSQL, []any{store, batch, msgs}},
	} {
		require.True(t, badPlan(env.DB.Explain(t, store, c.old, c.args...), "webhook_inbox", "id"),
			"%s: the statistics do not reproduce the old statement's plan", c.name)
		pgtest.RequireKeyed(t, env.DB.Explain(t, store, c.new, c.args...), "webhook_inbox", "id")
	}

	// The pending backlog is read through the pending index, by store and
	// status (see anyPendingSQL).
	for _, q := range []string{parcels.AnyPendingSQL, parcels.LoadWebhooksSQL} {
		args := []any{store, batch}
		if q == parcels.LoadWebhooksSQL {
			args = append(args, parcels.MaxProcessBatch)
		}
		plan := env.DB.Explain(t, store, q, args...)
		require.Contains(t, strings.Join(plan, "\n"), "webhook_inbox_status_idx", plan)
		pgtest.RequireKeyed(t, plan, "webhook_inbox", "status")
	}

	// The counts are the old statement's, each webhook counted once.
	for _, ids := range [][]uuid.UUID{batch, pending[1:4:4], done[:3], {uuid.New()}, nil} {
		got := env.DB.Rows(t, store, false, parcels.OwnPendingSQL, store, ids)
		require.Equal(t, env.DB.Rows(t, store, false, oldOwnPendingSQL, store, ids), got)
	}
	tried := env.DB.Rows(t, store, false, `SELECT id::text FROM webhook_inbox WHERE store_id = $1 AND status = 'pending' AND attempts > 0 LIMIT 1`, store)
	id := uuid.MustParse(strings.Trim(tried[0], "[]"))
	require.Equal(t, []string{"[false 1]"}, env.DB.Rows(t, store, false, parcels.OwnPendingSQL, store, []uuid.UUID{id, id}))

	// The updates change the rows the old ones did, as they did, each once.
	const returning = ` RETURNING w.id, w.status, w.attempts, w.last_error, w.processed_at IS NOT NULL`
	got := affected(t, env, store, parcels.MarkDoneSQL+returning, store, batch)
	require.Len(t, got, 600)
	require.Equal(t, affected(t, env, store, oldMarkDoneSQL+returning, store, batch), got)
	for _, q := range [][2]string{{oldMarkRetrySQL, parcels.MarkRetrySQL}, {oldMarkDeadSQL, parcels.MarkDeadSQL}} {
		uniq, umsgs := batch[2:], msgs[2:] // the old statements took one message of a repeat's, whichever
		got := affected(t, env, store, q[1]+returning, store, uniq, umsgs)
		require.Len(t, got, 600)
		require.Equal(t, affected(t, env, store, q[0]+returning, store, uniq, umsgs), got)
		got = affected(t, env, store, q[1]+` RETURNING w.id`, store, batch, msgs)
		require.Len(t, got, 600, "a repeated webhook is updated once")
	}
}

// A batch's parcels are updated by id even when the planner's statistics
// do not know the store's parcels yet: not by a hash of all of the store's
// parcels.
func TestParcelUpdatesSearchByID(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn, _ := env.StaleLeads(10)
	store := tn.StoreID
	rows := env.DB.Rows(t, store, true, `SELECT id::text FROM parcels WHERE store_id = $1 LIMIT 600`, store)
	ids := []uuid.UUID{uuid.New()} // a parcel of no store
	for _, r := range rows {
		ids = append(ids, uuid.MustParse(strings.Trim(r, "[]")))
	}
	n := len(ids)
	version, status, raw := make([]int64, n), make([]string, n), make([]string, n)
	setRaw, known := make([]bool, n), make([]bool, n)
	for i := range ids {
		version[i] = 1_000_000_000 + int64(i)
		status[i] = []string{"in_transit", "delivered", "returned"}[i%3]
		raw[i] = fmt.Sprintf("raw %d", i)
		setRaw[i], known[i] = i%2 == 0, i%4 == 0
	}
	args := []any{store, time.Now(), ids, version, status, setRaw, raw, known}
	require.True(t, badPlan(env.DB.Explain(t, store, oldUpdateParcelsSQL, args...), "parcels", "id"),
		"the statistics do not reproduce the old statement's plan")
	pgtest.RequireKeyed(t, env.DB.Explain(t, store, parcels.UpdateParcelsSQL, args...), "parcels", "id")

	const returning = ` RETURNING p.id, p.version, p.status, p.raw_status, p.status_known, p.updated_at = $2, p.last_report_at = $2`
	got := affected(t, env, store, parcels.UpdateParcelsSQL+returning, args...)
	require.Len(t, got, 600)
	require.Equal(t, affected(t, env, store, oldUpdateParcelsSQL+returning, args...), got)
}
