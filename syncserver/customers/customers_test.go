package customers_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/syncclient"
	"github.com/leadify/leadify/syncserver/customers"
	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// A customer's refusals and deliveries reach the agent's replica on the leads
// still being worked, once per parcel however often the carrier repeats
// itself; a new lead arrives with the orders the customer placed before it.
func TestCustomerHistoryReachesTheReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "history")

	// Two earlier orders from this phone, as intake counts them.
	require.NoError(t, postgres.InTx(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO customers (seller_id, phone_e164, name, first_seen, last_seen, orders)
VALUES ($1, '+212612345678', 'Hassan', now(), now(), 2)`, tn.SellerID)
		return err
	}))
	leads := env.SeedLeads(tn.StoreID, 3, "History")

	db, err := localstore.Open(ctx, filepath.Join(t.TempDir(), "seller.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	sc, err := syncclient.New(syncclient.Config{BaseURL: env.URL, Token: tn.Seller.Token, DB: db, HTTP: env.HTTP, DeviceName: "t"})
	require.NoError(t, err)
	require.NoError(t, sc.Sync(ctx))
	h, ok, err := db.CustomerHistory(ctx, leads[1])
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, localstore.CustomerHistory{Orders: 2}, h, "orders before this lead, none delivered or refused yet")

	// A parcel refused (reported twice, then returned), another delivered.
	refused, delivered := uuid.New(), uuid.New()
	parcel(t, env, tn.StoreID, leads[0], refused, "refused", events.ParcelRefused, events.ParcelRefused, events.ParcelReturned)
	parcel(t, env, tn.StoreID, leads[1], delivered, "delivered", events.ParcelDelivered)

	want := localstore.CustomerHistory{Orders: 2, Delivered: 1, Refusals: 1}
	deadline := time.Now().Add(20 * time.Second)
	for {
		require.NoError(t, sc.Sync(ctx))
		h, _, err = db.CustomerHistory(ctx, leads[2])
		require.NoError(t, err)
		if h == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, want, h, "every open lead of the customer shows the history")

	var refusals, deliveredN int
	require.NoError(t, postgres.InTx(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT refusals, delivered FROM customers WHERE seller_id = $1 AND phone_e164 = '+212612345678'`,
			tn.SellerID).Scan(&refusals, &deliveredN)
	}))
	require.Equal(t, 1, refusals, "refused twice and returned: one parcel, one refusal")
	require.Equal(t, 1, deliveredN)

	// A lead arriving now counts the orders so far (intake has not counted
	// these three: the test wrote them directly), with the history as it stands.
	more := env.SeedLeads(tn.StoreID, 1, "Later")
	require.NoError(t, sc.Sync(ctx))
	h, _, err = db.CustomerHistory(ctx, more[0])
	require.NoError(t, err)
	require.Equal(t, want, h)
}

// parcel writes a parcel of lead in status, and publishes kinds about it.
func parcel(t *testing.T, env *servertest.Env, store, lead, id uuid.UUID, status string, kinds ...events.Kind) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, syncer.Write(ctx, env.DB.App, postgres.StoreScope(store), func(w *syncer.Writer) error {
		account := uuid.New()
		if _, err := w.Tx.Exec(ctx, `INSERT INTO carrier_accounts (id, store_id, carrier, credentials) VALUES ($1, $2, 'ameex', 'v1:x:y')`,
			account, store); err != nil {
			return err
		}
		v, err := w.Reserve(store, 1)
		if err != nil {
			return err
		}
		if _, err := w.Tx.Exec(ctx, `INSERT INTO parcels (store_id, id, version, created_at, updated_at, lead_id, account_id, carrier,
  tracking, status, creation, cod) VALUES ($1, $2, $3, now(), now(), $4, $5, 'ameex', $6, $7, 'created', 24900)`,
			store, id, v, lead, account, "T"+id.String()[:8], status); err != nil {
			return err
		}
		for _, k := range kinds {
			if err := env.Server.Events.Publish(ctx, w.Tx, events.Event{Store: store, Kind: k, AggregateType: "parcel",
				AggregateID: id}); err != nil {
				return err
			}
		}
		return nil
	}))
}

// Outcomes published together (a webhook batch's, which the bus delivers
// as batches: events.TestBatchConsumerGetsPublishManyOnce): each parcel
// counts once with its last word (delivered then returned is a failure),
// and the customer's open leads carry the totals.
func TestOutcomesPublishedTogether(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "batch history")
	leads := env.SeedLeads(tn.StoreID, 4, "Batch")
	refused, delivered, changed := uuid.New(), uuid.New(), uuid.New()
	parcel(t, env, tn.StoreID, leads[0], refused, "returned")
	parcel(t, env, tn.StoreID, leads[1], delivered, "delivered")
	parcel(t, env, tn.StoreID, leads[2], changed, "returned")
	// Published in one transaction, as a webhook batch does; a parcel of no
	// lead of this store is ignored.
	var evs []events.Event
	for _, e := range []struct {
		parcel uuid.UUID
		kind   events.Kind
	}{{refused, events.ParcelRefused}, {delivered, events.ParcelDelivered}, {changed, events.ParcelDelivered},
		{refused, events.ParcelReturned}, {changed, events.ParcelReturned}, {uuid.New(), events.ParcelDelivered}} {
		evs = append(evs, events.Event{ID: uuid.Must(uuid.NewV7()), Store: tn.StoreID, Kind: e.kind, AggregateType: "parcel", AggregateID: e.parcel})
	}
	require.NoError(t, syncer.Write(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(w *syncer.Writer) error {
		return env.Server.Events.PublishMany(ctx, w.Tx, evs)
	}))

	figures := func() (out []string) {
		require.NoError(t, postgres.InTx(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
			rows, err := tx.Query(ctx, `SELECT customer_delivered || '/' || customer_refusals FROM leads WHERE store_id = $1 ORDER BY id`, tn.StoreID)
			if err != nil {
				return err
			}
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					return err
				}
				out = append(out, s)
			}
			return rows.Err()
		}))
		return out
	}
	deadline := time.Now().Add(20 * time.Second)
	var outcomes int
	for {
		require.NoError(t, postgres.InTx(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM event_consumptions WHERE consumer = $1`, customers.Consumer).Scan(&outcomes)
		}))
		if outcomes == len(evs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, len(evs), outcomes, "every event consumed")
	var byOutcome map[string]int
	require.NoError(t, postgres.InTx(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(tx *postgres.Tx) error {
		byOutcome = map[string]int{}
		rows, err := tx.Query(ctx, `SELECT outcome FROM customer_outcomes WHERE store_id = $1`, tn.StoreID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var o string
			if err := rows.Scan(&o); err != nil {
				return err
			}
			byOutcome[o]++
		}
		return rows.Err()
	}))
	require.Equal(t, map[string]int{"delivered": 1, "failed": 2}, byOutcome)
	require.Equal(t, []string{"1/2", "1/2", "1/2", "1/2"}, figures(), "every open lead of the customer shows delivered/refusals")
}

// A customer with more open leads than one transaction rewrites gets the
// history on all of them: the batch rewrites HistoryChunk, the follow-up
// job the rest, in transactions of their own; a customer of the same batch
// after them in the order is finished too, and nothing is left due.
func TestHistoryOfManyLeadsIsFinishedByTheFollowUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "many leads")
	many := env.SeedLeads(tn.StoreID, customers.HistoryChunk*2+200, "Many") // +212612345678
	few := env.SeedLeads(tn.StoreID, 2, "Few")
	const other = "+212699999999" // after the first in the order leads are rewritten in
	require.NoError(t, syncer.Write(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(w *syncer.Writer) error {
		v, err := w.Reserve(tn.StoreID, len(few))
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(ctx, `UPDATE leads SET phone_e164 = $2, version = $3 + u.ord - 1
FROM unnest($4::uuid[]) WITH ORDINALITY AS u(id, ord) WHERE store_id = $1 AND leads.id = u.id`, tn.StoreID, other, v, few)
		return err
	}))
	delivered, refused := uuid.New(), uuid.New()
	parcel(t, env, tn.StoreID, many[0], delivered, "delivered")
	parcel(t, env, tn.StoreID, few[0], refused, "refused")
	require.NoError(t, syncer.Write(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(w *syncer.Writer) error {
		return env.Server.Events.PublishMany(ctx, w.Tx, []events.Event{
			{Store: tn.StoreID, Kind: events.ParcelDelivered, AggregateType: "parcel", AggregateID: delivered},
			{Store: tn.StoreID, Kind: events.ParcelRefused, AggregateType: "parcel", AggregateID: refused}})
	}))

	var stale, due int
	deadline := time.Now().Add(60 * time.Second)
	for {
		env.InStore(func(tx *postgres.Tx) error {
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM leads WHERE store_id = $1 AND (phone_e164, customer_delivered, customer_refusals) NOT IN
  (('+212612345678', 1, 0), ($2, 0, 1))`, tn.StoreID, other).Scan(&stale); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `SELECT count(*) FROM customer_history_due WHERE store_id = $1`, tn.StoreID).Scan(&due)
		}, tn.StoreID)
		if stale == 0 && due == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Zero(t, stale, "every open lead shows its customer's history")
	require.Zero(t, due, "no customer left due")

	// Every lead has a version of its own: each chunk reserved its own.
	var leads, versions int
	env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM leads WHERE store_id = $1`, tn.StoreID).Scan(&leads, &versions)
	}, tn.StoreID)
	require.Equal(t, len(many)+len(few), leads)
	require.Equal(t, leads, versions)
}
