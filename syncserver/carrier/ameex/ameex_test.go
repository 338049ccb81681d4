package ameex_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/carrier"
	"github.com/leadify/leadify/syncserver/carrier/ameex"
	"github.com/leadify/leadify/syncserver/carrier/ameex/ameextest"
	"github.com/leadify/leadify/syncserver/carrier/carriertest"
)

// Every STATUT code CARRIERS.md lists for Ameex.
var documented = map[string]parcel.Status{
	"NEW_PARCEL": parcel.StatusSent, "WAITING_PICKUP": parcel.StatusSent, "PICKED_UP": parcel.StatusPickedUp,
	"SENT": parcel.StatusInTransit, "RECEIVED": parcel.StatusInTransit, "DISTRIBUTION": parcel.StatusOutForDelivery,
	"IN_PROGRESS": parcel.StatusOutForDelivery, "PROGRAMMED": parcel.StatusPostponed, "DELIVERED": parcel.StatusDelivered,
	"RETURNED": parcel.StatusReturned, "REFUSE": parcel.StatusRefused, "REFUSED": parcel.StatusRefused,
	"CANCELED": parcel.StatusCancelled, "CANCELLED": parcel.StatusCancelled, "OUT_OF_AREA": parcel.StatusPostponed,
}

func TestStatusesDocumented(t *testing.T) {
	t.Parallel()
	require.Len(t, ameex.Statuses.Strings(), len(documented))
	for raw, want := range documented {
		got, ok := ameex.Statuses.Lookup(" " + raw + " ")
		require.True(t, ok, raw)
		require.Equal(t, want, got, raw)
	}
	for _, sub := range []string{"POSTPONED", "NO_ANSWER", "UNREACHABLE"} {
		ev, err := ameex.ParseWebhook(url.Values{"CODE": {"MRK1"}, "STATUT": {"IN_PROGRESS"}, "STATUT_S": {sub}})
		require.NoError(t, err)
		require.Equal(t, parcel.StatusPostponed, ev.Status, sub)
		require.Equal(t, "IN_PROGRESS/"+sub, ev.Raw)
	}
	ev, err := ameex.ParseWebhook(url.Values{"CODE": {"MRK1"}, "STATUT": {"IN_PROGRESS"}, "STATUT_S": {"CLIENT_ABSENT"}})
	require.NoError(t, err)
	require.Equal(t, parcel.StatusOutForDelivery, ev.Status, "an unknown sub-status keeps the main status")
	ev, err = ameex.ParseWebhook(url.Values{"CODE": {"MRK1"}, "STATUT": {"LOST_IN_SPACE"}})
	require.NoError(t, err)
	require.False(t, ev.Known)
	require.Equal(t, "LOST_IN_SPACE", ev.Raw)
	_, err = ameex.ParseWebhook(url.Values{"STATUT": {"DELIVERED"}})
	require.Error(t, err)
}

type setup struct {
	fake   *ameextest.Server
	client *ameex.Client
}

func newSetup(t *testing.T, opts ameextest.Options, business string) setup {
	t.Helper()
	f := ameextest.NewServer(t, opts)
	c, err := ameex.New(ameex.Config{BaseURL: f.URL, APIID: "test-id", APIKey: "test-key", Business: business, HTTP: &http.Client{Timeout: 5 * time.Second}})
	require.NoError(t, err)
	return setup{f, c}
}

func sample(ref, c string) carrier.Parcel {
	ct, err := city.Resolve(c)
	if err != nil {
		panic(err)
	}
	return carrier.Parcel{OrderRef: ref, Name: "Youssef", Phone: "0661234567", City: ct, Address: "Hay Salam", Goods: "Caftan", Quantity: 1, COD: money.Amount(35000), AllowOpen: true}
}

// CARRIERS.md: headers C-Api-Id and C-Api-Key; always HTTP 200 with
// {"login":"error","api":null} for bad credentials or an unknown path.
func TestLoginLayer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, ameextest.Options{APIID: "other", APIKey: "x"}, "")
	require.ErrorIs(t, s.client.CheckCredentials(ctx), carrier.ErrAuth)
	_, err := s.client.Cities(ctx)
	require.ErrorIs(t, err, carrier.ErrAuth)

	s = newSetup(t, ameextest.Options{}, "")
	require.NoError(t, s.client.CheckCredentials(ctx))
	require.Equal(t, 1, s.fake.Sim.Calls("/Parcels/Statuts"))
	resp, err := http.Get(s.fake.URL + "/customer/Delivery/Nope")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "unknown paths answer 200 too")
}

// CARRIERS.md: a rejected operation is {"login":"success","api":{"type":"error"}};
// cod must be > 0.
func TestRejectedOperation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, ameextest.Options{Business: "B-7"}, "")
	_, err := s.client.Create(ctx, sample("L-1", "fes"))
	require.ErrorIs(t, err, carrier.ErrRejected)
	require.ErrorContains(t, err, "Veuillez choisir l'expéditeur")

	s = newSetup(t, ameextest.Options{Business: "B-7"}, "B-7")
	p := sample("L-2", "fes")
	p.COD = 0
	_, err = s.client.Create(ctx, p)
	require.ErrorIs(t, err, carrier.ErrRejected)
	require.Zero(t, s.fake.Sim.Calls("/Parcels/Action/Type/Add"), "cod 0 is refused before the call")
}

// CARRIERS.md: the Add form with numeric city ids, and the code sometimes
// missing — then looked up through the Json list by order_num.
func TestCreateAndMissingCode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, rate := range []float64{-1, 1} {
		t.Run(fmt.Sprint("missing=", rate), func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, ameextest.Options{MissingCodeRate: rate}, "")
			// A decoy whose order number contains ours: the lookup must
			// take the exact match.
			_, err := s.client.Create(ctx, sample("L-100", "rabat"))
			require.NoError(t, err)
			created, err := s.client.Create(ctx, sample("L-10", "fez"))
			require.NoError(t, err)
			require.Regexp(t, `^MRK`, created.Tracking)
			p, ok := s.fake.Sim.Get(created.Tracking)
			require.True(t, ok)
			require.Equal(t, "L-10", p.OrderRef)
			fes, _ := city.Resolve("fes")
			require.Equal(t, strconv.Itoa(s.fake.CityID(fes)), p.Fields["city"])
			require.Equal(t, "350", p.Fields["cod"])
			require.Equal(t, "YES", p.Fields["open"])
			require.Equal(t, "SIMPLE", p.Fields["type"])
			if rate > 0 {
				require.Equal(t, 2, s.fake.Sim.Calls("/Parcels/Json"))
			}
		})
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, ameextest.Options{MissingCodeRate: -1}, "")
	created, err := s.client.Create(ctx, sample("ORD-1", "oujda"))
	require.NoError(t, err)
	found, err := s.client.Lookup(ctx, "ORD-1")
	require.NoError(t, err)
	require.Equal(t, created, found)
	_, err = s.client.Lookup(ctx, "ORD-404")
	require.ErrorIs(t, err, carrier.ErrNotFound)
}

func TestCitiesMapVariantSpellings(t *testing.T) {
	t.Parallel()
	s := newSetup(t, ameextest.Options{}, "")
	list, err := s.client.Cities(context.Background())
	require.NoError(t, err)
	m, unmatched := carrier.MapCities(list)
	require.Empty(t, unmatched)
	for _, c := range []string{"casa", "Fès", "tangier", "الرباط"} {
		ct, err := city.Resolve(c)
		require.NoError(t, err)
		cc, err := m.For("ameex", ct)
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(s.fake.CityID(ct)), cc.ID)
	}
}

// CARRIERS.md: tracking keyed by numeric strings with unix times; more than
// 25 codes per MassTracking is refused, so the client batches.
func TestTrackAndMassTracking(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, ameextest.Options{MissingCodeRate: -1, DeliveryRate: 1, CancelRate: -1}, "")
	var codes []string
	for i := range 30 {
		c, err := s.client.Create(ctx, sample(fmt.Sprint("L-", i), "safi"))
		require.NoError(t, err)
		codes = append(codes, c.Tracking)
	}
	for range 12 { // past "0".."9" → "10", "11": numeric, not string, order
		s.fake.Sim.Advance()
	}
	tr, err := s.client.Track(ctx, codes[0])
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(tr.Events), 7)
	require.Equal(t, "NEW_PARCEL", tr.Events[0].Raw)
	cur, _ := tr.Current()
	require.Equal(t, parcel.StatusDelivered, cur.Status)
	require.NotEmpty(t, cur.Place)
	require.False(t, cur.At.IsZero())

	_, err = s.client.Track(ctx, "MRK-NOPE")
	require.ErrorIs(t, err, carrier.ErrNotFound)

	got, err := s.client.TrackMany(ctx, append(codes, "MRK-NOPE"))
	require.NoError(t, err)
	require.Len(t, got, 30)
	require.Equal(t, tr, got[codes[0]], "MassTracking and Tracking agree")
	require.Equal(t, 2, s.fake.Sim.Calls("/Parcels/MassTracking"), "31 codes in batches of 25")
	require.Equal(t, 2, s.fake.Sim.Calls("/Parcels/Tracking"), "no code tracked one by one")
}

// CARRIERS.md documents MassTracking's request (POST, codes: a comma list
// of at most 25), not its answer: one in a shape the client does not know
// is not guessed at, the batch is tracked code by code with Tracking.
func TestMassTrackingUnknownShape(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, ameextest.Options{MissingCodeRate: -1, MassTrackingByIndex: true}, "")
	var codes []string
	for i := range 27 {
		c, err := s.client.Create(ctx, sample(fmt.Sprint("L-", i), "fes"))
		require.NoError(t, err)
		codes = append(codes, c.Tracking)
	}
	s.fake.Sim.Advance()
	got, err := s.client.TrackMany(ctx, append(codes, "MRK-NOPE"))
	require.NoError(t, err)
	require.Len(t, got, 27)
	for _, code := range codes {
		tr, err := s.client.Track(ctx, code)
		require.NoError(t, err)
		require.Equal(t, tr, got[code], code)
	}
	require.Equal(t, 2, s.fake.Sim.Calls("/Parcels/MassTracking"), "28 codes in batches of 25")
	require.Equal(t, 28+27, s.fake.Sim.Calls("/Parcels/Tracking"), "each code of both batches tracked by itself, then by the test")
}

// CARRIERS.md: base https://api.ameex.app — the client's default.
func TestDefaultBaseURL(t *testing.T) {
	t.Parallel()
	var seen string
	c, err := ameex.New(ameex.Config{APIID: "i", APIKey: "k", HTTP: &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		seen = r.URL.Scheme + "://" + r.URL.Host + r.URL.Path
		return nil, errors.New("offline")
	})}})
	require.NoError(t, err)
	require.Error(t, c.CheckCredentials(context.Background()))
	require.Equal(t, "https://api.ameex.app/customer/Delivery/Parcels/Statuts", seen)
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCancelOnlyBeforePickup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, ameextest.Options{MissingCodeRate: -1, DeliveryRate: 1, CancelRate: -1}, "")
	a, err := s.client.Create(ctx, sample("L-1", "nador"))
	require.NoError(t, err)
	require.NoError(t, s.client.Cancel(ctx, a.Tracking))
	_, err = s.client.Track(ctx, a.Tracking)
	require.ErrorIs(t, err, carrier.ErrNotFound)

	b, err := s.client.Create(ctx, sample("L-2", "nador"))
	require.NoError(t, err)
	for range 3 {
		s.fake.Sim.Advance()
	}
	require.ErrorIs(t, s.client.Cancel(ctx, b.Tracking), carrier.ErrRejected)
}

// CARRIERS.md: webhooks are unsigned form POSTs with CODE, STATUT, …
func TestWebhooks(t *testing.T) {
	t.Parallel()
	rc := carriertest.NewReceiver(t, "secret-b", func(r *http.Request, body []byte) (carrier.Event, error) {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return carrier.Event{}, err
		}
		return ameex.ParseWebhook(v)
	})
	s := newSetup(t, ameextest.Options{WebhookURL: rc.URL(), MissingCodeRate: -1, DeliveryRate: 1, CancelRate: -1}, "")
	created, err := s.client.Create(context.Background(), sample("L-1", "kenitra"))
	require.NoError(t, err)
	for s.fake.Sim.Advance() > 0 {
	}
	s.fake.Webhooks.Flush()
	require.Equal(t, map[string]int{http.MethodPost: len(rc.Events())}, rc.Methods())
	statuses := map[string]parcel.Status{}
	require.Zero(t, carriertest.Fold(statuses, rc.Events()))
	require.Equal(t, parcel.StatusDelivered, statuses[created.Tracking])
	require.Empty(t, rc.ParseErrors())
}

func TestHTMLPage(t *testing.T) {
	t.Parallel()
	s := newSetup(t, ameextest.Options{Faults: ameextest.Faults{FailRate: 1}}, "")
	_, err := s.client.Track(context.Background(), "MRK1")
	require.ErrorIs(t, err, carrier.ErrUnavailable)
	require.ErrorContains(t, err, "502")
}

// With every fault on, creation with lookup-before-retry never creates a
// parcel twice, and webhooks plus MassTracking polling reach the fake's
// final statuses.
func TestLifecycleUnderFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rc := carriertest.NewReceiver(t, "tok", func(r *http.Request, body []byte) (carrier.Event, error) {
		v, _ := url.ParseQuery(string(body))
		return ameex.ParseWebhook(v)
	})
	s := newSetup(t, ameextest.Options{WebhookURL: rc.URL(), Seed: 3, Faults: ameextest.DefaultFaults}, "")
	var codes []string
	for i := range 60 {
		c := carriertest.CreateOnce(t, ctx, s.client, sample(fmt.Sprint("L-", i), "meknes"))
		codes = append(codes, c.Tracking)
	}
	for i := range 60 {
		require.Len(t, s.fake.Sim.ByOrderRef(fmt.Sprint("L-", i)), 1)
	}
	for s.fake.Sim.Advance() > 0 {
	}
	s.fake.Webhooks.Flush()
	statuses := map[string]parcel.Status{}
	require.Zero(t, carriertest.Fold(statuses, rc.Events()))
	tracked, err := carriertest.Retry(t, func() (map[string]carrier.Tracking, error) { return s.client.TrackMany(ctx, codes) })
	require.NoError(t, err)
	for _, tr := range tracked {
		carriertest.Fold(statuses, tr.Events)
	}
	for _, code := range codes {
		p, _ := s.fake.Sim.Get(code)
		want, _ := ameex.Statuses.Lookup(p.Current().Status)
		require.Equal(t, want, statuses[code], code)
	}
	sent, dropped, _ := s.fake.Webhooks.Stats()
	t.Logf("webhooks sent %d, dropped %d", sent, dropped)
}
