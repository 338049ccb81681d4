package fake

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// Sender delivers webhooks in the background with the Sim's webhook faults:
// each delivery may be dropped, duplicated, delayed, or held back and sent
// after the next one. A failed delivery (connection error or non-2xx) is
// retried a few times, as carriers do.
type Sender struct {
	sim    *Sim
	client *http.Client

	mu       sync.Mutex
	held     *http.Request // a delivery held back to be reordered
	wg       sync.WaitGroup
	sent     int
	dropped  int
	failed   int
	retryFor time.Duration
	acked    []Ack
}

// Ack is a delivery the receiver acknowledged (answered 2xx).
type Ack struct {
	Method, URL, ContentType string
	Body                     []byte
	At                       time.Time
}

// RetryFor makes a failed delivery retried, with backoff capped at half a
// second, until it is acknowledged or d has passed since its first attempt
// — real carriers retry unacknowledged webhooks for hours. Zero (the
// default) gives up after four attempts; it applies to deliveries already
// retrying too.
func (s *Sender) RetryFor(d time.Duration) {
	s.mu.Lock()
	s.retryFor = d
	s.mu.Unlock()
}

func (s *Sender) retrying() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retryFor
}

// Acked returns the deliveries acknowledged so far, in acknowledgement
// order (a duplicated delivery appears once per acknowledgement).
func (s *Sender) Acked() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acked...)
}

// NewSender returns a Sender using client (http.DefaultClient if nil).
func NewSender(sim *Sim, client *http.Client) *Sender {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Sender{sim: sim, client: client}
}

// Send queues a delivery of req (its body must be re-readable: built with
// http.NewRequest over a strings.Reader or bytes.Reader).
func (s *Sender) Send(req *http.Request) {
	f := s.sim.Faults()
	if s.sim.Float() < f.WebhookDrop {
		s.mu.Lock()
		s.dropped++
		s.mu.Unlock()
		return
	}
	copies := 1
	if s.sim.Float() < f.WebhookDuplicate {
		copies = 2
	}
	s.mu.Lock()
	var batch []*http.Request
	if s.held == nil && s.sim.Float() < f.WebhookReorder {
		s.held = req
		copies--
	} else if s.held != nil {
		defer func(h *http.Request) { s.deliver(h, f.WebhookDelay) }(s.held)
		s.held = nil
	}
	for range copies {
		batch = append(batch, req)
	}
	s.mu.Unlock()
	for _, r := range batch {
		s.deliver(r, f.WebhookDelay)
	}
}

func (s *Sender) deliver(req *http.Request, maxDelay time.Duration) {
	var delay time.Duration
	if maxDelay > 0 {
		delay = time.Duration(s.sim.Float() * float64(maxDelay))
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		time.Sleep(delay)
		start := time.Now()
		for attempt := 0; attempt < 4 || time.Since(start) < s.retrying(); attempt++ {
			r := req.Clone(context.Background())
			var body []byte
			if req.GetBody != nil {
				rc, _ := req.GetBody()
				body, _ = io.ReadAll(rc)
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			resp, err := s.client.Do(r)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 300 {
					s.mu.Lock()
					s.sent++
					s.acked = append(s.acked, Ack{Method: req.Method, URL: req.URL.String(), ContentType: req.Header.Get("Content-Type"), Body: body, At: time.Now()})
					s.mu.Unlock()
					return
				}
			}
			time.Sleep(min(time.Duration(attempt+1)*20*time.Millisecond, 500*time.Millisecond))
		}
		s.mu.Lock()
		s.failed++
		s.mu.Unlock()
	}()
}

// Flush sends a held-back delivery and waits until every queued delivery
// has been attempted.
func (s *Sender) Flush() {
	s.mu.Lock()
	h := s.held
	s.held = nil
	s.mu.Unlock()
	if h != nil {
		s.deliver(h, 0)
	}
	s.wg.Wait()
}

// Stats returns how many deliveries succeeded, were dropped on purpose, and
// failed after retries.
func (s *Sender) Stats() (sent, dropped, failed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent, s.dropped, s.failed
}
