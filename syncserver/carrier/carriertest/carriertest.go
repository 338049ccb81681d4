// Package carriertest holds test helpers shared by the carrier packages'
// conformance tests: a webhook receiver that records what a fake sends, and
// a lifecycle check that drives a fake to the end with faults on and proves
// that webhooks plus polling bring every parcel to the fake's final status.
package carriertest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/carrier"
)

// Receiver is an httptest server recording webhook deliveries parsed by a
// carrier's webhook parser. Requests whose path lacks the token are refused
// with 404, as the real endpoint does.
type Receiver struct {
	*httptest.Server
	Token string

	mu       sync.Mutex
	events   []carrier.Event
	methods  map[string]int
	refused  int
	bodies   []string
	parseErr []error
}

// NewReceiver starts a receiver at /webhooks/<token>; parse reads one
// delivery.
func NewReceiver(t *testing.T, token string, parse func(r *http.Request, body []byte) (carrier.Event, error)) *Receiver {
	rc := &Receiver{Token: token, methods: map[string]int{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/webhooks/"+token {
			rc.mu.Lock()
			rc.refused++
			rc.mu.Unlock()
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		ev, err := parse(r, body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.methods[r.Method]++
		rc.bodies = append(rc.bodies, string(body))
		if err != nil {
			rc.parseErr = append(rc.parseErr, err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.events = append(rc.events, ev)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// URL returns the webhook URL carrying the token.
func (rc *Receiver) URL() string { return rc.Server.URL + "/webhooks/" + rc.Token }

// Events returns the parsed deliveries in arrival order.
func (rc *Receiver) Events() []carrier.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]carrier.Event(nil), rc.events...)
}

// Methods returns how many deliveries arrived per HTTP method.
func (rc *Receiver) Methods() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]int{}
	for k, v := range rc.methods {
		out[k] = v
	}
	return out
}

// ParseErrors returns the parse failures.
func (rc *Receiver) ParseErrors() []error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]error(nil), rc.parseErr...)
}

// Retry calls f until it succeeds, fails with an error that is not
// retryable, or 20 attempts have failed.
func Retry[T any](t *testing.T, f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 20 {
		v, err = f()
		if err == nil || !carrier.Retryable(err) {
			return v, err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return v, err
}

// CreateOnce creates p without ever creating it twice: after an unknown
// outcome it asks Lookup before trying again. It fails the test for a
// carrier whose Lookup is unsupported when an outcome is unknown.
func CreateOnce(t *testing.T, ctx context.Context, c carrier.Carrier, p carrier.Parcel) carrier.Created {
	t.Helper()
	for range 20 {
		created, err := c.Create(ctx, p)
		if err == nil {
			return created
		}
		require.True(t, carrier.Retryable(err), "create %s: %v", p.OrderRef, err)
		found, lerr := Retry(t, func() (carrier.Created, error) { return c.Lookup(ctx, p.OrderRef) })
		if lerr == nil {
			return found
		}
		require.ErrorIs(t, lerr, carrier.ErrNotFound, "lookup %s", p.OrderRef)
	}
	t.Fatalf("create %s: still failing after 20 attempts", p.OrderRef)
	return carrier.Created{}
}

// Fold applies events to statuses with parcel.Apply, as the server does:
// duplicates and late reports change nothing. Unknown statuses are counted.
func Fold(statuses map[string]parcel.Status, events []carrier.Event) (unknown int) {
	for _, ev := range events {
		if !ev.Known {
			unknown++
			continue
		}
		cur, ok := statuses[ev.Code]
		if !ok {
			cur = parcel.StatusCreated
		}
		statuses[ev.Code], _ = parcel.Apply(cur, ev.Status)
	}
	return unknown
}

// IsNotFound reports whether err wraps carrier.ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, carrier.ErrNotFound) }
