package sendit_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
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
