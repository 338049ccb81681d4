package parcels_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/carrier/ameex"
	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/server"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// hookStore is a store with an Ameex account whose webhooks the test
// submits to the inbox.
type hookStore struct {
	id, account uuid.UUID
	hash        []byte
}

func newHookStore(t *testing.T, env *servertest.Env, name string) hookStore {
	t.Helper()
	hs := hookStore{id: env.NewTenant(env.Admin(), name).StoreID}
	var token string
	env.InStore(func(tx *postgres.Tx) error {
		var err error
		hs.account, token, err = parcels.InsertAccount(context.Background(), tx, env.Server.Config().Secrets, parcels.NewAccount{
			Store: hs.id, Carrier: ameex.Name, Credentials: parcels.Credentials{BaseURL: "https://api.ameex.app", APIID: "i", APIKey: "k"}})
		return err
	}, hs.id)
	h := sha256.Sum256([]byte(token))
	hs.hash = h[:]
	return hs
}

// addParcels makes a parcel out for delivery for each tracking code.
func (hs hookStore) addParcels(t *testing.T, env *servertest.Env, codes []string) {
	t.Helper()
	leads := env.SeedLeads(hs.id, len(codes), "turn")
	require.NoError(t, syncer.Write(context.Background(), env.DB.App, postgres.StoreScope(hs.id), func(w *syncer.Writer) error {
		first, err := w.Reserve(hs.id, len(codes))
		if err != nil {
			return err
		}
		for i, code := range codes {
			if _, err := w.Tx.Exec(context.Background(), `INSERT INTO parcels (store_id, id, version, created_at, updated_at, lead_id, account_id, carrier, tracking, status, creation)
VALUES ($1, $2, $3, now(), now(), $4, $5, 'ameex', $6, 'out_for_delivery', 'created')`, hs.id, uuid.Must(uuid.NewV7()), first+int64(i), leads[i], hs.account, code); err != nil {
				return err
			}
		}
		return nil
	}))
}

// submit stores one delivery report per code, each in a batch of its own
// (one processing job each).
func (hs hookStore) submit(t *testing.T, svc *parcels.Service, codes []string) {
	t.Helper()
	for _, code := range codes {
		body := fmt.Sprintf("CODE=%s&STATUT=DELIVERED&STATUT_NAME=Livr%%C3%%A9&DATE=2026-03-15+13%%3A17%%3A11", code)
		out, err := svc.Inbox.Submit(context.Background(), parcels.Delivery{AccountID: hs.account, TokenHash: hs.hash, Carrier: ameex.Name,
			Method: "POST", ContentType: "application/x-www-form-urlencoded", Body: []byte(body)})
		require.NoError(t, err)
		require.Equal(t, parcels.Stored, out)
	}
}

func codes(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

// A store whose webhooks keep failing sends a stream of retries, and every
// one of them would wait for the store's write lock (here held by the
// test, as by a slow writer) on a processing connection: retries take the
// store's turn like first attempts, so they hold one connection and one
// worker, and the other stores' webhooks are processed meanwhile. Once
// the store can be written and its parcels exist, every webhook is
// processed exactly once.
func TestRetriesTakeTheStoreTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := servertest.Start(t, func(c *server.Config) { c.JobWorkers = 10 })
	svc := parcels.New(env.DB.App, env.Server.Events, env.Server.Config().Secrets, env.Server.Log(), func() *river.Client[pgx.Tx] { return env.Server.River })
	t.Cleanup(svc.Close)
	all := func(query string, args ...any) int {
		var n int
		require.NoError(t, postgres.InTx(ctx, env.DB.App, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, query, args...).Scan(&n)
		}))
		return n
	}

	failing := newHookStore(t, env, "failing")
	others := make([]hookStore, 4)
	for i := range others {
		others[i] = newHookStore(t, env, fmt.Sprintf("other %d", i))
	}
	const perStore = 24
	failingCodes := codes("UNK", perStore)
	failing.submit(t, svc, failingCodes)
	require.Eventually(t, func() bool {
		return all(`SELECT count(*) FROM webhook_inbox WHERE store_id = $1 AND attempts = 0`, failing.id) == 0
	}, 20*time.Second, 20*time.Millisecond, "the failing store's webhooks were not tried")

	// The failing store's write lock is held; its retries come back at once.
	release, locked := make(chan struct{}), make(chan error, 1)
	go func() {
		locked <- syncer.Write(ctx, env.DB.App, postgres.StoreScope(failing.id), func(w *syncer.Writer) error {
			if err := w.Lock(failing.id); err != nil {
				return err
			}
			locked <- nil
			<-release
			return nil
		})
	}()
	require.NoError(t, <-locked)
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			close(release)
			require.NoError(t, <-locked)
		}
	}
	defer unlock()
	hurry := func() {
		if _, err := env.DB.App.Exec(ctx, `UPDATE river_job SET state = 'available', scheduled_at = now()
WHERE kind = 'carrier_webhooks' AND state = 'retryable'`); err != nil {
			t.Errorf("hurry retries: %v", err)
		}
	}
	stopHurry := make(chan struct{})
	var hurrying sync.WaitGroup
	hurrying.Go(func() {
		for {
			select {
			case <-stopHurry:
				return
			case <-time.After(100 * time.Millisecond):
				hurry()
			}
		}
	})
	stopHurrying := func() {
		select {
		case <-stopHurry:
		default:
			close(stopHurry)
			hurrying.Wait()
		}
	}
	defer stopHurrying()
	require.Eventually(t, func() bool {
		return all(`SELECT count(*) FROM river_job WHERE kind = 'carrier_webhooks' AND args->>'store' = $1 AND attempt > 1
AND state IN ('running', 'available', 'scheduled')`, failing.id.String()) > 0
	}, 20*time.Second, 20*time.Millisecond, "no retries of the failing store")

	otherCodes := map[uuid.UUID][]string{}
	for i, o := range others {
		otherCodes[o.id] = codes(fmt.Sprintf("OK%d-", i), perStore)
		o.addParcels(t, env, otherCodes[o.id])
	}
	for _, o := range others {
		o.submit(t, svc, otherCodes[o.id])
	}
	for _, o := range others {
		require.Eventually(t, func() bool {
			return all(`SELECT count(*) FROM webhook_inbox WHERE store_id = $1 AND status = 'done'`, o.id) == perStore
		}, 20*time.Second, 20*time.Millisecond, "store %v starved by the failing store's retries", o.id)
	}
	require.Zero(t, all(`SELECT count(*) FROM webhook_inbox WHERE store_id = $1 AND status <> 'pending'`, failing.id),
		"the failing store was written under its lock")

	// The failing store's parcels now exist: its retries succeed.
	unlock()
	failing.addParcels(t, env, failingCodes)
	require.Eventually(t, func() bool {
		return all(`SELECT count(*) FROM webhook_inbox WHERE status = 'pending'`) == 0 &&
			all(`SELECT count(*) FROM river_job WHERE kind = 'carrier_webhooks' AND state NOT IN ('completed')`) == 0
	}, 60*time.Second, 50*time.Millisecond, "webhooks left pending")
	stopHurrying()

	total := (len(others) + 1) * perStore
	require.Equal(t, total, all(`SELECT count(*) FROM webhook_inbox WHERE status = 'done'`), "every webhook processed")
	require.Zero(t, all(`SELECT count(*) FROM webhook_inbox WHERE status = 'done' AND attempts >= $1`, parcels.MaxWebhookAttempts),
		"a webhook tried past its attempts")
	for _, o := range others {
		require.Zero(t, all(`SELECT count(*) FROM webhook_inbox WHERE store_id = $1 AND attempts <> 1`, o.id), "a webhook tried twice")
	}
	// One report, one move and one domain event per parcel: no webhook
	// processed twice, none lost.
	require.Equal(t, total, all(`SELECT count(*) FROM parcels WHERE status = 'delivered'`))
	require.Zero(t, all(`SELECT count(*) FROM (SELECT parcel_id FROM parcel_events WHERE source = 'webhook' GROUP BY parcel_id HAVING count(*) <> 1) x`))
	require.Equal(t, total, all(`SELECT count(*) FROM parcel_events WHERE source = 'webhook'`))
	require.Equal(t, total, all(`SELECT count(*) FROM domain_events WHERE kind = 'parcel.delivered'`))
}
