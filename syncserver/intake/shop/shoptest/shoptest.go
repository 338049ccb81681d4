// Package shoptest holds what the fake shops (shopifytest,
// woocommercetest, youcantest) share: fault injection on their APIs and a
// webhook sender that retries and duplicates deliveries like the real
// platforms do.
package shoptest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Faults make a fake misbehave like a loaded real service.
type Faults struct {
	// Latency delays every API answer.
	Latency time.Duration
	// RateLimitEvery answers every Nth API call with 429 and Retry-After: 1
	// (0: never).
	RateLimitEvery int
	// DuplicateRate is the share of webhook deliveries sent twice with the
	// same delivery id (the platforms deliver at least once).
	DuplicateRate float64
	// Seed seeds the fault dice (0: 1).
	Seed uint64
}

// API wraps a fake's API handler with the faults.
type API struct {
	Faults Faults
	calls  atomic.Int64
	// Limited counts the 429s answered.
	Limited atomic.Int64
}

// Wrap returns h behind the faults.
func (a *API) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := a.calls.Add(1)
		if a.Faults.Latency > 0 {
			select {
			case <-time.After(a.Faults.Latency):
			case <-r.Context().Done():
				return
			}
		}
		if e := a.Faults.RateLimitEvery; e > 0 && n%int64(e) == 0 {
			a.Limited.Add(1)
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"errors":"Exceeded API rate limit"}`, http.StatusTooManyRequests)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Calls is how many API calls were made.
func (a *API) Calls() int64 { return a.calls.Load() }

// Attempt is one webhook delivery attempt as sent.
type Attempt struct {
	URL        string
	DeliveryID string
	Status     int // 0 when the request failed
	Duplicate  bool
}

// Sender posts signed webhooks, retrying failed attempts like the
// platforms (at least once delivery) and, per Faults.DuplicateRate, sending
// some twice.
type Sender struct {
	HTTP *http.Client
	// Retries is how many more attempts follow a failed one (default 3);
	// Backoff is the wait between them (default 10 ms: the real platforms
	// wait minutes to hours).
	Retries int
	Backoff time.Duration

	mu       sync.Mutex
	rng      *rand.Rand
	attempts []Attempt
}

// NewSender returns a sender rolling its duplicate dice from seed.
func NewSender(seed uint64) *Sender {
	if seed == 0 {
		seed = 1
	}
	return &Sender{HTTP: &http.Client{Timeout: 30 * time.Second}, Retries: 3, Backoff: 10 * time.Millisecond,
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Send posts body with headers h to url until a 2xx answer or the retries
// run out, then, with probability dupRate, once more. It returns the last
// status of the first delivery.
func (s *Sender) Send(ctx context.Context, url string, h http.Header, body []byte, deliveryID string, dupRate float64) (int, error) {
	status, err := s.deliver(ctx, url, h, body, deliveryID, false)
	s.mu.Lock()
	dup := dupRate > 0 && s.rng.Float64() < dupRate
	s.mu.Unlock()
	if dup && err == nil {
		_, _ = s.deliver(ctx, url, h, body, deliveryID, true)
	}
	return status, err
}

func (s *Sender) deliver(ctx context.Context, url string, h http.Header, body []byte, deliveryID string, dup bool) (int, error) {
	var lastErr error
	status := 0
	for attempt := 0; attempt <= s.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(s.Backoff):
			case <-ctx.Done():
				return status, ctx.Err()
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header = h.Clone()
		resp, err := s.HTTP.Do(req)
		status = 0
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
		}
		s.mu.Lock()
		s.attempts = append(s.attempts, Attempt{URL: url, DeliveryID: deliveryID, Status: status, Duplicate: dup})
		s.mu.Unlock()
		if err == nil && status/100 == 2 {
			return status, nil
		}
		lastErr = err
		if err == nil {
			lastErr = fmt.Errorf("webhook answered %d", status)
		}
	}
	return status, lastErr
}

// Attempts lists every attempt so far.
func (s *Sender) Attempts() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Attempt(nil), s.attempts...)
}
