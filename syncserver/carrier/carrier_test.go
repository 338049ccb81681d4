package carrier_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/syncserver/carrier"
)

func TestFold(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Livré ":                      "livre",
		"  Numero_Erroné":             "numero errone",
		"Hors-zone":                   "hors zone",
		"Deuxième  Appel Pas Réponse": "deuxieme appel pas reponse",
		"REÇU":                        "recu",
		"":                            "",
	} {
		require.Equal(t, want, carrier.Fold(in), in)
	}
}

func TestParseLocalTime(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 5, 15, 13, 17, 11, 0, carrier.Morocco)
	for _, in := range []string{"2026-05-15 13:17 :11", "2026-05-15 13:17:11", "2026-05-15 13 : 17 : 11", "2026-05-15T13:17:11", " 2026-05-15 13:17:11 "} {
		got, ok := carrier.ParseLocalTime(in)
		require.True(t, ok, in)
		require.True(t, want.Equal(got), "%q → %v", in, got)
	}
	got, ok := carrier.ParseLocalTime("1773580631")
	require.True(t, ok)
	require.Equal(t, int64(1773580631), got.Unix())
	for _, in := range []string{"", "hier", "-5", "2026-13-45 99:99"} {
		_, ok := carrier.ParseLocalTime(in)
		require.False(t, ok, in)
	}
}

func TestDoClassifies(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/html":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("<!DOCTYPE html><html><head><title>Maintenance</title></head></html>"))
		case "/empty":
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		default:
			_, _ = w.Write([]byte(`{"ok":1}`))
		}
	}))
	defer srv.Close()
	do := func(ctx context.Context, path string) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		_, err := carrier.Do(nil, "x", "op", req)
		return err
	}
	ctx := context.Background()
	require.NoError(t, do(ctx, "/json"))
	err := do(ctx, "/html")
	require.ErrorIs(t, err, carrier.ErrUnavailable)
	require.ErrorContains(t, err, `HTML page "Maintenance"`)
	require.ErrorContains(t, err, "HTTP 503")
	require.ErrorIs(t, do(ctx, "/empty"), carrier.ErrUnavailable)
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	err = do(tctx, "/slow")
	require.ErrorIs(t, err, carrier.ErrTimeout)
	require.True(t, carrier.Retryable(err))
	var ce *carrier.Error
	require.True(t, errors.As(err, &ce))
	require.Equal(t, "op", ce.Op)
}

// counting is a Carrier whose Create records the peak concurrency.
type counting struct {
	carrier.Carrier
	inflight, peak atomic.Int32
}

func (c *counting) Create(ctx context.Context, p carrier.Parcel) (carrier.Created, error) {
	n := c.inflight.Add(1)
	defer c.inflight.Add(-1)
	for {
		old := c.peak.Load()
		if n <= old || c.peak.CompareAndSwap(old, n) {
			break
		}
	}
	time.Sleep(2 * time.Millisecond)
	if p.OrderRef == "bad" {
		return carrier.Created{}, &carrier.Error{Carrier: "x", Op: "create", Kind: carrier.ErrRejected}
	}
	return carrier.Created{Tracking: "T-" + p.OrderRef}, nil
}

func TestCreateBulk(t *testing.T) {
	t.Parallel()
	c := &counting{}
	var ps []carrier.Parcel
	for _, ref := range []string{"a", "b", "bad", "c", "d", "e", "f", "g"} {
		ps = append(ps, carrier.Parcel{OrderRef: ref})
	}
	res := carrier.CreateBulk(context.Background(), c, ps, 3)
	require.Len(t, res, len(ps))
	require.LessOrEqual(t, c.peak.Load(), int32(3))
	for i, r := range res {
		if ps[i].OrderRef == "bad" {
			require.ErrorIs(t, r.Err, carrier.ErrRejected)
			continue
		}
		require.NoError(t, r.Err)
		require.Equal(t, "T-"+ps[i].OrderRef, r.Created.Tracking)
	}
}

func TestMapCities(t *testing.T) {
	t.Parallel()
	m, unmatched := carrier.MapCities([]carrier.City{{ID: "1", Name: "CASA"}, {ID: "2", Name: "Fez"}, {ID: "3", Name: "Casablanca"}, {ID: "9", Name: "Atlantis"}})
	require.Equal(t, []carrier.City{{ID: "9", Name: "Atlantis"}}, unmatched)
	casa, _ := city.Resolve("casablanca")
	got, err := m.For("x", casa)
	require.NoError(t, err)
	require.Equal(t, "1", got.ID, "first listed wins")
	rabat, _ := city.Resolve("rabat")
	_, err = m.For("x", rabat)
	var ue *carrier.UnmappedCityError
	require.ErrorAs(t, err, &ue)
	require.ErrorIs(t, err, carrier.ErrUnmappedCity)
	require.Contains(t, err.Error(), "edit the lead")
}
