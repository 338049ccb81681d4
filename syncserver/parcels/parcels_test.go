package parcels_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/carrier"
	"github.com/leadify/leadify/syncserver/carrier/ameex"
	"github.com/leadify/leadify/syncserver/carrier/ameex/ameextest"
	"github.com/leadify/leadify/syncserver/carrier/coliix"
	"github.com/leadify/leadify/syncserver/carrier/coliix/coliixtest"
	"github.com/leadify/leadify/syncserver/carrier/sendit"
	"github.com/leadify/leadify/syncserver/carrier/sendit/sendittest"
	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

type fixture struct {
	env     *servertest.Env
	store   uuid.UUID
	account uuid.UUID
	token   string
	svc     *parcels.Service
}

func newFixture(t *testing.T, name string, creds func(hookURL string) parcels.Credentials) fixture {
	t.Helper()
	env := servertest.Start(t)
	tenant := env.NewTenant(env.Admin(), "store "+name)
	f := fixture{env: env, store: tenant.StoreID, account: uuid.Must(uuid.NewV7())}
	cr := creds(strings.TrimRight(env.URL, "/"))
	env.InStore(func(tx *postgres.Tx) error {
		var err error
		_, f.token, err = parcels.InsertAccount(context.Background(), tx, env.Server.Config().Secrets, parcels.NewAccount{
			ID: f.account, Store: f.store, Carrier: name, Label: name, Credentials: cr, Concurrency: 4})
		return err
	}, f.store)
	f.svc = parcels.New(env.DB.App, env.Server.Events, env.Server.Config().Secrets, env.Server.Log(), func() *river.Client[pgx.Tx] { return env.Server.River })
	return f
}

func (f fixture) hookURL(carrierName string) string {
	return parcels.WebhookURL(f.env.URL, carrierName, f.account, f.token)
}

// confirm seeds n leads and confirms them through the versioned-write helper.
func (f fixture) confirm(t testing.TB, n int) []uuid.UUID {
	t.Helper()
	ids := f.env.SeedLeads(f.store, n, "parcel")
	err := syncer.Write(context.Background(), f.env.DB.App, postgres.StoreScope(f.store), func(w *syncer.Writer) error {
		first, err := w.Reserve(f.store, n)
		if err != nil {
			return err
		}
		for i, id := range ids {
			if _, err := w.Tx.Exec(context.Background(), `UPDATE leads SET status = 'confirmed', version = $3 WHERE store_id = $1 AND id = $2`, f.store, id, first+int64(i)); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	return ids
}

type parcelState struct {
	tracking, status, creation, errMsg string
}

func (f fixture) parcels(t *testing.T) map[uuid.UUID]parcelState {
	t.Helper()
	out := map[uuid.UUID]parcelState{}
	f.env.InStore(func(tx *postgres.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT lead_id, tracking, status, creation, error FROM parcels WHERE store_id = $1`, f.store)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id uuid.UUID
			var p parcelState
			if err := rows.Scan(&id, &p.tracking, &p.status, &p.creation, &p.errMsg); err != nil {
				return err
			}
			out[id] = p
		}
		return rows.Err()
	}, f.store)
	return out
}

func (f fixture) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	f.env.InStore(func(tx *postgres.Tx) error { return tx.QueryRow(context.Background(), query, args...).Scan(&n) }, f.store)
	return n
}

// Confirmed leads become parcels at Ameex through River jobs, exactly once
// each (the code missing from some answers is found by order number);
// webhooks with every fault on, then one poll, bring every parcel to the
// fake's final status, with one domain event per outcome.
func TestAmeexEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var fake *ameextest.Server
	f := newFixture(t, ameex.Name, func(string) parcels.Credentials {
		fake = ameextest.NewServer(t, ameextest.Options{Seed: 11})
		return parcels.Credentials{BaseURL: fake.URL, APIID: "test-id", APIKey: "test-key"}
	})
	leads := f.confirm(t, 30)
	var params []river.InsertManyParams
	for _, id := range leads {
		params = append(params, river.InsertManyParams{Args: parcels.CreateArgs{Store: f.store, Lead: id}})
	}
	_, err := f.env.Server.River.InsertMany(ctx, params)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ps := f.parcels(t)
		if len(ps) != len(leads) {
			return false
		}
		for _, p := range ps {
			if p.creation != parcels.CreationCreated {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond)
	require.Len(t, fake.Sim.All(), len(leads))
	for _, p := range fake.Sim.All() {
		require.Len(t, fake.Sim.ByOrderRef(p.OrderRef), 1, "parcel %s created once", p.OrderRef)
	}

	// A wrong token, an unknown account and garbage are refused or kept
	// dead, never applied.
	resp, err := http.PostForm(parcels.WebhookURL(f.env.URL, ameex.Name, f.account, "wrong"), url.Values{"CODE": {"x"}, "STATUT": {"DELIVERED"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, err = http.Post(f.hookURL(ameex.Name), "application/x-www-form-urlencoded", strings.NewReader("%%garbage"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "stored, then dead: never lost")

	fake.SetWebhookURL(f.hookURL(ameex.Name))
	fake.Sim.SetFaults(ameextest.DefaultFaults)
	for fake.Sim.Advance() > 0 {
	}
	fake.Webhooks.Flush()
	require.Eventually(t, func() bool {
		return f.count(t, `SELECT count(*) FROM webhook_inbox WHERE status = 'pending'`) == 0
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM webhook_inbox WHERE status = 'dead'`))

	fake.Sim.SetFaults(ameextest.Faults{})
	_, err = f.svc.Poll(ctx, 0)
	require.NoError(t, err)

	want := map[string]int{}
	ps := f.parcels(t)
	byCode := map[string]parcelState{}
	for _, p := range ps {
		byCode[p.tracking] = p
	}
	for _, fp := range fake.Sim.All() {
		s, ok := ameex.Statuses.Lookup(fp.Current().Status)
		require.True(t, ok)
		require.Equal(t, s.String(), byCode[fp.Code].status, fp.Code)
		switch s {
		case parcel.StatusDelivered:
			want["parcel.delivered"]++
		case parcel.StatusReturned:
			want["parcel.returned"]++
		case parcel.StatusCancelled:
			want["parcel.cancelled"]++
		}
	}
	got := map[string]int{}
	f.env.InStore(func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT kind, count(*) FROM domain_events WHERE store_id = $1 AND kind LIKE 'parcel.%' GROUP BY kind`, f.store)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				return err
			}
			got[k] = n
		}
		return rows.Err()
	}, f.store)
	// A returned parcel may skip refused when that webhook was dropped or
	// arrived after the return (then it is history, not a move).
	require.LessOrEqual(t, got["parcel.refused"], got["parcel.returned"])
	delete(got, "parcel.refused")
	require.Equal(t, want, got, "one domain event per outcome, whatever the duplicates")
	sent, dropped, _ := fake.Webhooks.Stats()
	t.Logf("webhooks sent %d (dropped %d), inbox %d, outcomes %v", sent, dropped,
		f.count(t, `SELECT count(*) FROM webhook_inbox`), want)
}

// A creation whose answer was lost is reconciled: Ameex finds the parcel
// by order number and it is recorded, never created twice; Coliix cannot be
// asked, so the parcel is held for review and never resent.
func TestReconcileAfterLostAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("ameex", func(t *testing.T) {
		t.Parallel()
		var fake *ameextest.Server
		f := newFixture(t, ameex.Name, func(string) parcels.Credentials {
			fake = ameextest.NewServer(t, ameextest.Options{MissingCodeRate: -1, Faults: ameextest.Faults{FailRate: 1}})
			return parcels.Credentials{BaseURL: fake.URL, APIID: "test-id", APIKey: "test-key"}
		})
		lead := f.confirm(t, 1)[0]
		args := parcels.CreateArgs{Store: f.store, Lead: lead}
		require.Error(t, f.svc.CreateParcel(ctx, args), "a 502 leaves the outcome unknown")
		require.Equal(t, parcels.CreationCalling, f.parcels(t)[lead].creation)

		// The call had in fact reached Ameex: create it there as if.
		var parcelID uuid.UUID
		f.env.InStore(func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, `SELECT id FROM parcels WHERE store_id = $1 AND lead_id = $2`, f.store, lead).Scan(&parcelID)
		}, f.store)
		fake.Sim.SetFaults(ameextest.Faults{})
		c, err := parcels.Dial(ameex.Name, parcels.Credentials{BaseURL: fake.URL, APIID: "test-id", APIKey: "test-key"}, time.Second)
		require.NoError(t, err)
		lost, err := c.Create(ctx, sampleFor(parcelID))
		require.NoError(t, err)

		require.NoError(t, f.svc.CreateParcel(ctx, args))
		p := f.parcels(t)[lead]
		require.Equal(t, parcels.CreationCreated, p.creation)
		require.Equal(t, lost.Tracking, p.tracking)
		require.Len(t, fake.Sim.ByOrderRef(parcelID.String()), 1)
		require.NoError(t, f.svc.CreateParcel(ctx, args), "a repeat changes nothing")
		require.Len(t, fake.Sim.All(), 1)
	})
	t.Run("coliix", func(t *testing.T) {
		t.Parallel()
		var fake *coliixtest.Server
		f := newFixture(t, coliix.Name, func(string) parcels.Credentials {
			fake = coliixtest.NewServer(t, coliixtest.Options{Faults: coliixtest.Faults{FailRate: 1}})
			return parcels.Credentials{BaseURL: fake.Endpoint, Token: "test-token"}
		})
		lead := f.confirm(t, 1)[0]
		args := parcels.CreateArgs{Store: f.store, Lead: lead}
		require.Error(t, f.svc.CreateParcel(ctx, args))
		fake.Sim.SetFaults(coliixtest.Faults{})
		require.NoError(t, f.svc.CreateParcel(ctx, args))
		p := f.parcels(t)[lead]
		require.Equal(t, parcels.CreationReview, p.creation)
		require.Contains(t, p.errMsg, "check its dashboard")
		require.Empty(t, fake.Sim.All(), "never resent")
		require.Equal(t, 1, fake.Sim.Calls("add"))
	})
	// A Sendit whose delivery list ignores the reference filter cannot be
	// asked either: the parcel is held for review, not created twice.
	t.Run("sendit without a reference filter", func(t *testing.T) {
		t.Parallel()
		var fake *sendittest.Server
		f := newFixture(t, sendit.Name, func(string) parcels.Credentials {
			fake = sendittest.NewServer(t, sendittest.Options{ListIgnoresReference: true})
			return parcels.Credentials{BaseURL: fake.BaseURL, PublicKey: "test-public", SecretKey: "test-secret"}
		})
		leads := f.confirm(t, 2)
		require.NoError(t, f.svc.CreateParcel(ctx, parcels.CreateArgs{Store: f.store, Lead: leads[0]}))
		fake.Sim.SetFaults(sendittest.Faults{FailRate: 1})
		args := parcels.CreateArgs{Store: f.store, Lead: leads[1]}
		require.Error(t, f.svc.CreateParcel(ctx, args))
		fake.Sim.SetFaults(sendittest.Faults{})
		require.NoError(t, f.svc.CreateParcel(ctx, args))
		p := f.parcels(t)[leads[1]]
		require.Equal(t, parcels.CreationReview, p.creation)
		require.Len(t, fake.Sim.All(), 1, "never resent")
	})
}

// An unmapped city is a clear error on the parcel, made before any call.
func TestUnmappedCityFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var fake *ameextest.Server
	f := newFixture(t, ameex.Name, func(string) parcels.Credentials {
		fake = ameextest.NewServer(t, ameextest.Options{})
		return parcels.Credentials{BaseURL: fake.URL, APIID: "test-id", APIKey: "test-key"}
	})
	lead := f.confirm(t, 1)[0]
	err := syncer.Write(ctx, f.env.DB.App, postgres.StoreScope(f.store), func(w *syncer.Writer) error {
		v, err := w.Reserve(f.store, 1)
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(ctx, `UPDATE leads SET city_id = 'atlantis', version = $3 WHERE store_id = $1 AND id = $2`, f.store, lead, v)
		return err
	})
	require.NoError(t, err)
	require.NoError(t, f.svc.CreateParcel(ctx, parcels.CreateArgs{Store: f.store, Lead: lead}))
	p := f.parcels(t)[lead]
	require.Equal(t, parcels.CreationFailed, p.creation)
	require.Contains(t, p.errMsg, "edit the lead")
	require.Zero(t, fake.Sim.Calls("/Parcels/Action/Type/Add"))
}

func sampleFor(id uuid.UUID) carrier.Parcel {
	c, _ := city.Resolve("casablanca")
	return carrier.Parcel{OrderRef: id.String(), Name: "x", Phone: "0612345678", City: c, Address: "a", Goods: "g", COD: 12000}
}

// The sweep finds leads confirmed in stores that create parcels
// automatically and creates each parcel once, however often it runs.
func TestSweepCreatesParcelsForAutoStores(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var fake *ameextest.Server
	f := newFixture(t, ameex.Name, func(string) parcels.Credentials {
		fake = ameextest.NewServer(t, ameextest.Options{MissingCodeRate: -1})
		return parcels.Credentials{BaseURL: fake.URL, APIID: "test-id", APIKey: "test-key"}
	})
	leads := f.confirm(t, 3)
	n, err := f.svc.Sweep(ctx, time.Hour)
	require.NoError(t, err)
	require.Zero(t, n, "the store does not create parcels automatically")
	f.env.InStore(func(tx *postgres.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE stores SET auto_create_parcels = true, default_carrier = 'ameex' WHERE id = $1`, f.store)
		return err
	}, f.store)
	n, err = f.svc.Sweep(ctx, time.Hour)
	require.NoError(t, err)
	require.Equal(t, len(leads), n)
	_, err = f.svc.Sweep(ctx, time.Hour)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return f.count(t, `SELECT count(*) FROM parcels WHERE creation = 'created'`) == len(leads)
	}, 20*time.Second, 20*time.Millisecond)
	n, err = f.svc.Sweep(ctx, time.Hour)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, fake.Sim.All(), len(leads))
}

// Coliix webhooks arrive as GETs with the token in the path; Sendit's as
// JSON posts. Both reach the parcel through the inbox.
func TestColiixAndSenditWebhooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("coliix", func(t *testing.T) {
		t.Parallel()
		var fake *coliixtest.Server
		f := newFixture(t, coliix.Name, func(string) parcels.Credentials {
			fake = coliixtest.NewServer(t, coliixtest.Options{DeliveryRate: 1, CancelRate: -1})
			return parcels.Credentials{BaseURL: fake.Endpoint, Token: "test-token"}
		})
		lead := f.confirm(t, 1)[0]
		require.NoError(t, f.svc.CreateParcel(ctx, parcels.CreateArgs{Store: f.store, Lead: lead}))
		fake.SetWebhookURL(f.hookURL(coliix.Name))
		for fake.Sim.Advance() > 0 {
		}
		fake.Webhooks.Flush()
		require.Eventually(t, func() bool {
			return f.count(t, `SELECT count(*) FROM webhook_inbox WHERE status = 'pending'`) == 0 && f.parcels(t)[lead].status == "delivered"
		}, 20*time.Second, 20*time.Millisecond)
		// "Confirmer par le livreur" came before "Livré" and did not deliver.
		require.Equal(t, 1, f.count(t, `SELECT count(*) FROM parcel_events WHERE raw_status = 'Confirmer par le livreur' AND status = 'out_for_delivery'`))
		require.Equal(t, 1, f.count(t, `SELECT count(*) FROM domain_events WHERE kind = 'parcel.delivered'`))
	})
	t.Run("sendit", func(t *testing.T) {
		t.Parallel()
		var fake *sendittest.Server
		f := newFixture(t, sendit.Name, func(string) parcels.Credentials {
			fake = sendittest.NewServer(t, sendittest.Options{DeliveryRate: -1, CancelRate: -1})
			return parcels.Credentials{BaseURL: fake.BaseURL, PublicKey: "test-public", SecretKey: "test-secret"}
		})
		lead := f.confirm(t, 1)[0]
		require.NoError(t, f.svc.CreateParcel(ctx, parcels.CreateArgs{Store: f.store, Lead: lead}))
		fake.SetWebhookURL(f.hookURL(sendit.Name))
		for fake.Sim.Advance() > 0 {
		}
		fake.Webhooks.Flush()
		require.Eventually(t, func() bool {
			return f.count(t, `SELECT count(*) FROM webhook_inbox WHERE status = 'pending'`) == 0 && f.parcels(t)[lead].status == "returned"
		}, 20*time.Second, 20*time.Millisecond)
		require.Equal(t, 1, f.count(t, `SELECT count(*) FROM domain_events WHERE kind = 'parcel.returned'`))
		// A late "IN_TRANSIT" after the return is history, not a move.
		resp, err := http.Post(f.hookURL(sendit.Name), "application/json",
			strings.NewReader(`{"code":"`+f.parcels(t)[lead].tracking+`","status":"IN_TRANSIT","date":"2030-01-01 10:00:00"}`))
		require.NoError(t, err)
		resp.Body.Close()
		require.Eventually(t, func() bool {
			return f.count(t, `SELECT count(*) FROM parcel_events WHERE raw_status = 'IN_TRANSIT' AND NOT applied AND reported_at > '2029-01-01'`) == 1
		}, 20*time.Second, 20*time.Millisecond)
		require.Equal(t, "returned", f.parcels(t)[lead].status)
	})
}
