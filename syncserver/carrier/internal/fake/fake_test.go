package fake

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func simple(_ *rand.Rand, o Outcome) []Step {
	switch o {
	case Delivered:
		return []Step{{Status: "new"}, {Status: "moving"}, {Status: "delivered"}}
	case Returned:
		return []Step{{Status: "new"}, {Status: "moving"}, {Status: "refused"}, {Status: "returned"}}
	}
	return []Step{{Status: "new"}, {Status: "cancelled"}}
}

// Outcomes follow the configured rates (CARRIERS.md: delivery 60–85%).
func TestOutcomeRates(t *testing.T) {
	t.Parallel()
	s := NewSim(Options{Seed: 1, DeliveryRate: 0.7, CancelRate: 0.05}, simple)
	const n = 4000
	for range n {
		s.Create("P", "", nil)
	}
	for s.Advance() > 0 {
	}
	count := map[string]int{}
	for _, p := range s.All() {
		count[p.Current().Status]++
		require.Equal(t, p.Current().Status == "delivered", p.Paid)
	}
	require.InDelta(t, 0.70, float64(count["delivered"])/n, 0.03)
	require.InDelta(t, 0.25, float64(count["returned"])/n, 0.03)
	require.InDelta(t, 0.05, float64(count["cancelled"])/n, 0.02)
}

// Webhook faults drop, duplicate and reorder deliveries at about their rates.
func TestWebhookFaults(t *testing.T) {
	t.Parallel()
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer srv.Close()
	s := NewSim(Options{Seed: 2, Faults: Faults{WebhookDrop: 0.1, WebhookDuplicate: 0.2, WebhookReorder: 0.1}}, simple)
	sender := NewSender(s, srv.Client())
	const n = 2000
	for range n {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("x"))
		sender.Send(req)
	}
	sender.Flush()
	sent, dropped, failed := sender.Stats()
	require.Zero(t, failed)
	require.Equal(t, int64(sent), got.Load())
	require.InDelta(t, 0.1, float64(dropped)/n, 0.03)
	require.InDelta(t, 0.9*1.2, float64(sent)/n, 0.05, "kept deliveries, a fifth of them twice")
}
