package sendit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/carrier"
	"github.com/leadify/leadify/syncserver/carrier/carriertest"
	"github.com/leadify/leadify/syncserver/carrier/sendit"
	"github.com/leadify/leadify/syncserver/carrier/sendit/sendittest"
)

type setup struct {
	fake   *sendittest.Server
	client *sendit.Client
}

func newSetup(t *testing.T, opts sendittest.Options) setup {
	t.Helper()
	f := sendittest.NewServer(t, opts)
	c, err := sendit.New(sendit.Config{BaseURL: f.BaseURL, PublicKey: "test-public", SecretKey: "test-secret", HTTP: &http.Client{Timeout: 5 * time.Second}})
	require.NoError(t, err)
	return setup{f, c}
}

func sample(ref, c string) carrier.Parcel {
	ct, err := city.Resolve(c)
	if err != nil {
		panic(err)
	}
	return carrier.Parcel{OrderRef: ref, Name: "Salma", Phone: "0700000000", City: ct, Address: "Bd Zerktouni", Goods: "Montre", Quantity: 1, COD: money.Amount(19900)}
}

func TestStatuses(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]parcel.Status{"DELIVERED": parcel.StatusDelivered, "rejected": parcel.StatusRefused, "Returned ": parcel.StatusReturned, "PENDING": parcel.StatusSent} {
		got, ok := sendit.Statuses.Lookup(raw)
		require.True(t, ok, raw)
		require.Equal(t, want, got, raw)
	}
	ev, err := sendit.ParseWebhook("application/json", []byte(`{"code":"SND1","status":"TELEPORTED"}`))
	require.NoError(t, err)
	require.False(t, ev.Known)
}

// CARRIERS.md: POST /login with {public_key, secret_key} returns
// data.token, sent as a bearer token.
func TestLoginToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, sendittest.Options{PublicKey: "other", SecretKey: "x"})
	require.ErrorIs(t, s.client.CheckCredentials(ctx), carrier.ErrAuth)

	s = newSetup(t, sendittest.Options{})
	require.NoError(t, s.client.CheckCredentials(ctx))
	_, err := s.client.Create(ctx, sample("L-1", "casa"))
	require.NoError(t, err)
	logins := s.fake.Logins()
	_, err = s.client.Create(ctx, sample("L-2", "casa"))
	require.NoError(t, err)
	require.Equal(t, logins, s.fake.Logins(), "the token is reused")
	s.fake.ExpireTokens()
	_, err = s.client.Create(ctx, sample("L-3", "casa"))
	require.NoError(t, err, "an expired token is renewed once")
	require.Equal(t, logins+1, s.fake.Logins())
}

// CARRIERS.md: GET /districts (paginated) gives city ids; POST /deliveries
// with district_id … returns data.code; GET /deliveries/{code} tracks.
func TestCreateTrackAndLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, sendittest.Options{DeliveryRate: 1, CancelRate: -1})
	list, err := s.client.Cities(ctx)
	require.NoError(t, err)
	require.Len(t, list, len(city.All()), "every page read")
	require.Greater(t, len(list), sendittest.PageSize)

	created, err := s.client.Create(ctx, sample("L-1", "essaouira"))
	require.NoError(t, err)
	p, ok := s.fake.Sim.Get(created.Tracking)
	require.True(t, ok)
	require.Equal(t, "199", p.Fields["amount"])
	id, _ := strconv.Atoi(p.Fields["district_id"])
	require.NotZero(t, id)
	require.Equal(t, "Salma", p.Fields["name"])
	require.Equal(t, "0700000000", p.Fields["phone"])
	require.Equal(t, "Bd Zerktouni", p.Fields["address"])
	require.JSONEq(t, `[{"name":"Montre","quantity":1}]`, p.Fields["products"])
	require.Equal(t, "false", p.Fields["allow_open"])

	for s.fake.Sim.Advance() > 0 {
	}
	tr, err := s.client.Track(ctx, created.Tracking)
	require.NoError(t, err)
	cur, _ := tr.Current()
	require.Equal(t, parcel.StatusDelivered, cur.Status)
	require.Equal(t, "PENDING", tr.Events[0].Raw)
	_, err = s.client.Track(ctx, "SND-NOPE")
	require.ErrorIs(t, err, carrier.ErrNotFound)

	found, err := s.client.Lookup(ctx, "L-1")
	require.NoError(t, err)
	require.Equal(t, created, found)
	_, err = s.client.Lookup(ctx, "L-404")
	require.ErrorIs(t, err, carrier.ErrNotFound)
	require.ErrorIs(t, s.client.Cancel(ctx, created.Tracking), carrier.ErrUnsupported)
}

// CARRIERS.md: JSON REST under https://app.sendit.ma/api/v1 — the client's
// default base URL; every body it posts is JSON (the fake refuses others,
// as a JSON API's validation does).
func TestJSONRestAndDefaultBaseURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := sendittest.NewServer(t, sendittest.Options{})
	var types []string
	rec := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost {
			types = append(types, r.Header.Get("Content-Type"))
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := sendit.New(sendit.Config{BaseURL: f.BaseURL, PublicKey: "test-public", SecretKey: "test-secret", HTTP: rec})
	require.NoError(t, err)
	_, err = c.Create(ctx, sample("L-1", "rabat"))
	require.NoError(t, err)
	require.Equal(t, []string{"application/json", "application/json"}, types, "login and create")

	resp, err := http.Post(f.BaseURL+"/login", "application/x-www-form-urlencoded", strings.NewReader("public_key=test-public&secret_key=test-secret"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)

	var seen string
	c, err = sendit.New(sendit.Config{PublicKey: "p", SecretKey: "s", HTTP: &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		seen = r.URL.String()
		return nil, errors.New("offline")
	})}})
	require.NoError(t, err)
	require.Error(t, c.CheckCredentials(ctx))
	require.Equal(t, "https://app.sendit.ma/api/v1/login", seen)
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// CARRIERS.md documents no reference field and no list filter: Lookup
// trusts a list only when it shows the filter worked, and otherwise says
// it cannot tell (ErrUnsupported: the parcel is held for review), never
// "not found" (which would create the parcel twice).
func TestLookupTrustsOnlyAFilteredList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, opts := range map[string]sendittest.Options{
		"filter ignored":   {ListIgnoresReference: true},
		"no references":    {NoReference: true},
		"filter respected": {},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, opts)
			var codes []string
			for i := range sendittest.PageSize + 5 {
				c, err := s.client.Create(ctx, sample(fmt.Sprint("L-", i), "rabat"))
				require.NoError(t, err)
				codes = append(codes, c.Tracking)
			}
			_, err := s.client.Lookup(ctx, "L-404")
			last, errLast := s.client.Lookup(ctx, fmt.Sprint("L-", sendittest.PageSize+4)) // on the second page when unfiltered
			switch name {
			case "filter respected":
				require.ErrorIs(t, err, carrier.ErrNotFound)
				require.NoError(t, errLast)
				require.Equal(t, codes[len(codes)-1], last.Tracking)
			case "filter ignored":
				require.ErrorIs(t, err, carrier.ErrUnsupported)
				require.ErrorIs(t, errLast, carrier.ErrUnsupported)
				first, err := s.client.Lookup(ctx, "L-0") // on the page it sent: found all the same
				require.NoError(t, err)
				require.Equal(t, codes[0], first.Tracking)
			default:
				require.ErrorIs(t, err, carrier.ErrUnsupported)
				require.ErrorIs(t, errLast, carrier.ErrUnsupported)
			}
		})
	}
}

func TestRejectedAndUnmapped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, sendittest.Options{})
	p := sample("L-1", "rabat")
	p.Phone = ""
	_, err := s.client.Create(ctx, p)
	require.ErrorIs(t, err, carrier.ErrRejected)
	require.ErrorContains(t, err, "required")
	p = sample("L-2", "rabat")
	p.City = city.City{ID: "atlantis"}
	_, err = s.client.Create(ctx, p)
	require.ErrorIs(t, err, carrier.ErrUnmappedCity)
}

// Webhooks go to a URL carrying a token.
func TestWebhooks(t *testing.T) {
	t.Parallel()
	rc := carriertest.NewReceiver(t, "secret-c", func(r *http.Request, body []byte) (carrier.Event, error) {
		return sendit.ParseWebhook(r.Header.Get("Content-Type"), body)
	})
	s := newSetup(t, sendittest.Options{WebhookURL: rc.URL(), Seed: 5, Faults: sendittest.DefaultFaults})
	var codes []string
	for i := range 40 {
		c := carriertest.CreateOnce(t, context.Background(), s.client, sample(fmt.Sprint("L-", i), "tetouan"))
		codes = append(codes, c.Tracking)
	}
	for i := range 40 {
		require.Len(t, s.fake.Sim.ByOrderRef(fmt.Sprint("L-", i)), 1, "never created twice")
	}
	for s.fake.Sim.Advance() > 0 {
	}
	s.fake.Webhooks.Flush()
	statuses := map[string]parcel.Status{}
	require.Zero(t, carriertest.Fold(statuses, rc.Events()))
	tracked, err := carriertest.Retry(t, func() (map[string]carrier.Tracking, error) { return s.client.TrackMany(context.Background(), codes) })
	require.NoError(t, err)
	for _, tr := range tracked {
		carriertest.Fold(statuses, tr.Events)
	}
	for _, code := range codes {
		p, _ := s.fake.Sim.Get(code)
		want, _ := sendit.Statuses.Lookup(p.Current().Status)
		require.Equal(t, want, statuses[code], code)
	}
	require.Empty(t, rc.ParseErrors())
}
