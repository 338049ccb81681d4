package coliix_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/carrier"
	"github.com/leadify/leadify/syncserver/carrier/carriertest"
	"github.com/leadify/leadify/syncserver/carrier/coliix"
	"github.com/leadify/leadify/syncserver/carrier/coliix/coliixtest"
)

// Every status CARRIERS.md lists for Coliix, spelled as listed.
var documented = map[string]parcel.Status{
	"Nouveau Colis": parcel.StatusSent, "Attente De Ramassage": parcel.StatusSent, "Programmé": parcel.StatusSent,
	"Ramassé": parcel.StatusPickedUp, "Expédié": parcel.StatusInTransit, "Reçu": parcel.StatusInTransit,
	"En Voyage": parcel.StatusInTransit, "Mise en distribution": parcel.StatusOutForDelivery, "En cours": parcel.StatusOutForDelivery,
	"Confirmer par le livreur": parcel.StatusOutForDelivery, "Client intéressé": parcel.StatusOutForDelivery,
	"Client pas intéressé": parcel.StatusOutForDelivery, "Boite Vocal": parcel.StatusOutForDelivery,
	"Relancé nouveau client": parcel.StatusOutForDelivery,
	"Pas de réponse":         parcel.StatusPostponed, "Deuxième Appel Pas Réponse": parcel.StatusPostponed,
	"Troisième Appel Pas Réponse": parcel.StatusPostponed, "Numero_Erroné": parcel.StatusPostponed,
	"Injoignable": parcel.StatusPostponed, "Hors-zone": parcel.StatusPostponed, "Attende de relancer": parcel.StatusPostponed,
	"Reporté": parcel.StatusPostponed, "Refusé": parcel.StatusRefused, "Livré": parcel.StatusDelivered,
	"Retourné": parcel.StatusReturned, "Demande de Retour": parcel.StatusRefused, "En retour par AMANA": parcel.StatusRefused,
	"Annulé": parcel.StatusCancelled, "Annulé Par Vendeur": parcel.StatusCancelled,
}

func TestStatusesDocumented(t *testing.T) {
	t.Parallel()
	require.Len(t, coliix.Statuses.Strings(), len(documented))
	for raw, want := range documented {
		for _, variant := range []string{raw, raw + " ", " " + raw, carrier.Fold(raw)} {
			got, ok := coliix.Statuses.Lookup(variant)
			require.True(t, ok, "%q", variant)
			require.Equal(t, want, got, "%q", variant)
		}
	}
}

func TestStatusesExactNotSubstring(t *testing.T) {
	t.Parallel()
	got, ok := coliix.Statuses.Lookup("Confirmer par le livreur")
	require.True(t, ok)
	require.NotEqual(t, parcel.StatusDelivered, got, "a substring match on 'livr' would say delivered")
	for _, s := range []string{"LIVRÉ", "livre", "Livre ", "  LiVrÉ"} {
		got, ok := coliix.Statuses.Lookup(s)
		require.True(t, ok, s)
		require.Equal(t, parcel.StatusDelivered, got, s)
	}
	for _, s := range []string{"Livré au voisin", "Livreur", "", "Perdu"} {
		_, ok := coliix.Statuses.Lookup(s)
		require.False(t, ok, s)
	}
	ev := coliix.Statuses.Event("X", "Statut Inconnu ")
	require.False(t, ev.Known)
	require.Equal(t, "Statut Inconnu", ev.Raw)
}

type setup struct {
	fake   *coliixtest.Server
	client *coliix.Client
}

func newSetup(t *testing.T, opts coliixtest.Options) setup {
	t.Helper()
	f := coliixtest.NewServer(t, opts)
	c, err := coliix.New(coliix.Config{Endpoint: f.Endpoint, Token: "test-token", HTTP: &http.Client{Timeout: 5 * time.Second}})
	require.NoError(t, err)
	return setup{f, c}
}

func sample(ref string, c string) carrier.Parcel {
	ct, err := city.Resolve(c)
	if err != nil {
		panic(err)
	}
	return carrier.Parcel{OrderRef: ref, Name: "Fatima Zahra", Phone: "0612345678", City: ct, Address: "12 rue Atlas", Goods: "Huile d'argan", Quantity: 2, COD: money.Amount(24950), Note: "appeler avant"}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := coliix.New(coliix.Config{Endpoint: "my.coliix.com/casa", Token: "x"})
	require.Error(t, err)
	_, err = coliix.New(coliix.Config{Endpoint: "https://my.coliix.com/casa/seller/api-parcels", Token: " "})
	require.Error(t, err)
}

// CARRIERS.md: form body, action field, token in the body, status 200 and a
// tracking code on success.
func TestCreateFormBody(t *testing.T) {
	t.Parallel()
	s := newSetup(t, coliixtest.Options{})
	created, err := s.client.Create(context.Background(), sample("L-1", "casa"))
	require.NoError(t, err)
	require.Regexp(t, `^4-CSA`, created.Tracking)
	p, ok := s.fake.Sim.Get(created.Tracking)
	require.True(t, ok)
	require.Equal(t, "Casablanca", p.Fields["ville"])
	require.Equal(t, "249.50", p.Fields["price"])
	require.Equal(t, "2", p.Fields["marchandise_qty"])
	require.Equal(t, "Huile d'argan", p.Fields["marchandise"])
	require.Equal(t, "12 rue Atlas", p.Fields["adresse"])
	require.Equal(t, "appeler avant", p.Fields["note"])
}

// CARRIERS.md: errors come back with HTTP 200 and a JSON status code.
func TestErrorEnvelopes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, coliixtest.Options{Token: "other"})
	_, err := s.client.Create(ctx, sample("L-1", "rabat"))
	require.ErrorIs(t, err, carrier.ErrAuth)
	require.ErrorContains(t, err, "401")
	require.ErrorContains(t, err, "Token invalide")
	require.ErrorIs(t, s.client.CheckCredentials(ctx), carrier.ErrAuth)

	s = newSetup(t, coliixtest.Options{})
	require.NoError(t, s.client.CheckCredentials(ctx))
	s.fake.Disable()
	_, err = s.client.Create(ctx, sample("L-1", "rabat"))
	require.ErrorIs(t, err, carrier.ErrAuth)
	require.ErrorContains(t, err, "désactivé")
}

func TestUnmappedAndRejectedCity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, coliixtest.Options{})
	p := sample("L-1", "fes")
	p.City = city.City{ID: "atlantis", Name: "Atlantis"}
	_, err := s.client.Create(ctx, p)
	require.ErrorIs(t, err, carrier.ErrUnmappedCity)
	require.Zero(t, s.fake.Sim.Calls("add"), "an unmapped city is refused before any call")

	c, err := coliix.New(coliix.Config{Endpoint: s.fake.Endpoint, Token: "test-token", Cities: map[string]string{"fes": "Fez City"}})
	require.NoError(t, err)
	_, err = c.Create(ctx, sample("L-2", "fes"))
	require.ErrorIs(t, err, carrier.ErrRejected)
	require.ErrorContains(t, err, "Ville introuvable")
}

// CARRIERS.md: track history, last entry current, trailing spaces, a stray
// space in the time, etat as the payment state, status a boolean; an
// unknown code gives status true and an empty msg.
func TestTrackQuirks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.Date(2026, 3, 15, 12, 17, 11, 0, time.UTC)
	s := newSetup(t, coliixtest.Options{DeliveryRate: 1, CancelRate: -1, Now: func() time.Time { return at }})
	created, err := s.client.Create(ctx, sample("L-1", "marrakesh"))
	require.NoError(t, err)
	for s.fake.Sim.Advance() > 0 {
	}
	tr, err := s.client.Track(ctx, created.Tracking)
	require.NoError(t, err)
	require.Equal(t, created.Tracking, tr.Code)
	require.Equal(t, "Nouveau Colis", tr.Events[0].Raw, "trailing space trimmed")
	require.Equal(t, parcel.StatusSent, tr.Events[0].Status)
	require.True(t, tr.Events[0].At.Equal(at), "time %v from %q", tr.Events[0].At, "2026-03-15 13:17 :11")
	cur, _ := tr.Current()
	require.Equal(t, "Livré", cur.Raw)
	require.Equal(t, parcel.StatusDelivered, cur.Status)
	require.True(t, tr.Paid)
	for _, ev := range tr.Events {
		require.True(t, ev.Known, ev.Raw)
	}

	_, err = s.client.Track(ctx, "4-CSA-NOPE")
	require.ErrorIs(t, err, carrier.ErrNotFound)
	got, err := s.client.TrackMany(ctx, []string{created.Tracking, "4-CSA-NOPE"})
	require.NoError(t, err)
	require.Len(t, got, 1)
}

func TestUnsupportedOperations(t *testing.T) {
	t.Parallel()
	s := newSetup(t, coliixtest.Options{})
	require.ErrorIs(t, s.client.Cancel(context.Background(), "4-CSA1"), carrier.ErrUnsupported)
	_, err := s.client.Lookup(context.Background(), "L-1")
	require.ErrorIs(t, err, carrier.ErrUnsupported)
	cities, err := s.client.Cities(context.Background())
	require.NoError(t, err)
	require.Len(t, cities, len(city.All()))
}

func TestHTMLPageAndTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, coliixtest.Options{Faults: coliixtest.Faults{FailRate: 1}})
	_, err := s.client.Create(ctx, sample("L-1", "rabat"))
	require.ErrorIs(t, err, carrier.ErrUnavailable)
	require.ErrorContains(t, err, `HTML page "502 Bad Gateway"`)
	require.True(t, carrier.Retryable(err))

	s = newSetup(t, coliixtest.Options{Faults: coliixtest.Faults{Latency: time.Second}})
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = s.client.Track(tctx, "4-CSA1")
	require.ErrorIs(t, err, carrier.ErrTimeout)
}

// CARRIERS.md: the webhook is a GET (some accounts send a form POST) with
// code, state, datereported and note, authenticated by a token in the URL.
func TestWebhooksBothMethods(t *testing.T) {
	t.Parallel()
	for _, post := range []bool{false, true} {
		t.Run(fmt.Sprint("post=", post), func(t *testing.T) {
			t.Parallel()
			rc := carriertest.NewReceiver(t, "secret-a", func(r *http.Request, body []byte) (carrier.Event, error) {
				v := r.URL.Query()
				if r.Method == http.MethodPost {
					v, _ = url.ParseQuery(string(body))
				}
				return coliix.ParseWebhook(v)
			})
			s := newSetup(t, coliixtest.Options{WebhookURL: rc.URL(), WebhookPost: post, DeliveryRate: 1, CancelRate: -1})
			created, err := s.client.Create(context.Background(), sample("L-1", "agadir"))
			require.NoError(t, err)
			for s.fake.Sim.Advance() > 0 {
			}
			s.fake.Webhooks.Flush()
			evs := rc.Events()
			require.NotEmpty(t, evs)
			want := http.MethodGet
			if post {
				want = http.MethodPost
			}
			require.Equal(t, map[string]int{want: len(evs)}, rc.Methods())
			statuses := map[string]parcel.Status{}
			require.Zero(t, carriertest.Fold(statuses, evs))
			require.Equal(t, parcel.StatusDelivered, statuses[created.Tracking])
			require.False(t, evs[0].At.IsZero())
			require.Empty(t, rc.ParseErrors())
		})
	}
}

// With every fault on, webhooks (dropped, duplicated, reordered, delayed)
// plus one round of polling bring every parcel to the fake's final status;
// a creation with an unknown outcome is held, never resent.
func TestLifecycleUnderFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rc := carriertest.NewReceiver(t, "tok", func(r *http.Request, _ []byte) (carrier.Event, error) { return coliix.ParseWebhook(r.URL.Query()) })
	s := newSetup(t, coliixtest.Options{WebhookURL: rc.URL(), Seed: 7, Faults: coliixtest.DefaultFaults})
	var codes []string
	held := 0
	for i := range 40 {
		created, err := s.client.Create(ctx, sample(fmt.Sprint("L-", i), "tanger"))
		if carrier.Retryable(err) {
			held++
			continue
		}
		require.NoError(t, err)
		codes = append(codes, created.Tracking)
	}
	for s.fake.Sim.Advance() > 0 {
	}
	s.fake.Webhooks.Flush()
	statuses := map[string]parcel.Status{}
	require.Zero(t, carriertest.Fold(statuses, rc.Events()))
	tracked, err := carriertest.Retry(t, func() (map[string]carrier.Tracking, error) { return s.client.TrackMany(ctx, codes) })
	require.NoError(t, err)
	for code, tr := range tracked {
		carriertest.Fold(statuses, tr.Events)
		_ = code
	}
	outcomes := map[parcel.Status]int{}
	for _, code := range codes {
		p, _ := s.fake.Sim.Get(code)
		want, ok := coliix.Statuses.Lookup(p.Current().Status)
		require.True(t, ok)
		require.Equal(t, want, statuses[code], code)
		outcomes[want]++
	}
	require.Len(t, s.fake.Sim.All(), len(codes), "held creations were not resent")
	require.NotZero(t, outcomes[parcel.StatusDelivered])
	t.Logf("created %d, held %d, outcomes %v", len(codes), held, outcomes)
}
