// Package fake is the engine shared by the carrier fakes (coliixtest,
// ameextest, sendittest): a store of parcels that move through realistic
// lifecycles with configurable delivery and return rates, HTTP fault modes
// (slow answers, HTML error pages) and a webhook sender that can delay,
// duplicate, reorder and drop deliveries. Each fake supplies its carrier's
// status strings and wire formats; this package knows none of them.
package fake

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Outcome is how a parcel's journey ends.
type Outcome int

// The outcomes a lifecycle may take.
const (
	Delivered Outcome = iota
	Returned          // refused at the door, then returned to the seller
	Cancelled         // cancelled before pickup
)

// Faults are the fault modes of a fake. The zero value has none.
type Faults struct {
	Latency  time.Duration // added to every API answer
	FailRate float64       // fraction of API calls answered with an HTML 502 page
	// Webhook faults, as fractions of deliveries.
	WebhookDrop      float64
	WebhookDuplicate float64
	WebhookReorder   float64       // held back and sent after the next one
	WebhookDelay     time.Duration // each delivery waits up to this long
}

// DefaultFaults are the faults tests run with unless they say otherwise:
// every kind, at rates low enough that a client with retries gets through.
var DefaultFaults = Faults{
	Latency:          time.Millisecond,
	FailRate:         0.05,
	WebhookDrop:      0.05,
	WebhookDuplicate: 0.1,
	WebhookReorder:   0.1,
	WebhookDelay:     5 * time.Millisecond,
}

// Options configure a Sim.
type Options struct {
	Seed uint64
	// DeliveryRate is the fraction of parcels delivered (CARRIERS.md:
	// 60–85%); CancelRate the fraction cancelled before pickup; the rest
	// are refused and returned.
	DeliveryRate float64
	CancelRate   float64
	Faults       Faults
	// Now is the fake's clock; nil means time.Now.
	Now func() time.Time
}

// Step is one entry of a parcel's history.
type Step struct {
	Status string
	Sub    string // a sub-status (Ameex STATUT_S), or ""
	At     time.Time
	Note   string
}

// Parcel is a parcel at the fake carrier.
type Parcel struct {
	Code     string
	OrderRef string
	Fields   map[string]string // what the client sent, as the carrier saw it
	Created  time.Time
	History  []Step
	plan     []Step // the steps still to come
	Outcome  Outcome
	Paid     bool
}

// Current returns the parcel's current step.
func (p *Parcel) Current() Step { return p.History[len(p.History)-1] }

// Lifecycle gives the steps a parcel with the given outcome goes through,
// the first being its status at creation. rng adds variety (no answer,
// postponements).
type Lifecycle func(rng *rand.Rand, o Outcome) []Step

// Sim holds a fake carrier's parcels.
type Sim struct {
	opts      Options
	lifecycle Lifecycle

	mu      sync.Mutex
	rng     *rand.Rand
	parcels map[string]*Parcel
	order   []string            // codes in creation order
	byRef   map[string][]string // order ref → codes
	seq     int
	calls   map[string]int
	active  map[string]int // calls of an op being answered now
	peak    map[string]int // the most calls of an op answered at once
	onMove  func(p Parcel, s Step)
}

// NewSim returns an empty Sim. Zero rates default to 70% delivered and 3%
// cancelled.
func NewSim(opts Options, lc Lifecycle) *Sim {
	if opts.DeliveryRate == 0 {
		opts.DeliveryRate = 0.7
	}
	if opts.CancelRate == 0 {
		opts.CancelRate = 0.03
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Sim{
		opts: opts, lifecycle: lc,
		rng:     rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		parcels: map[string]*Parcel{}, byRef: map[string][]string{}, calls: map[string]int{},
		active: map[string]int{}, peak: map[string]int{},
	}
}

// OnMove sets the function called (without the Sim's lock) for every status
// change made by Advance, typically to send a webhook.
func (s *Sim) OnMove(f func(p Parcel, st Step)) {
	s.mu.Lock()
	s.onMove = f
	s.mu.Unlock()
}

// Create stores a new parcel whose code is prefix followed by a sequence
// number and random letters, and returns a copy.
func (s *Sim) Create(prefix, orderRef string, fields map[string]string) Parcel {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	code := fmt.Sprintf("%s%06d%04X", prefix, s.seq, s.rng.IntN(1<<16))
	o := Delivered
	switch r := s.rng.Float64(); {
	case r < s.opts.CancelRate:
		o = Cancelled
	case r < 1-s.opts.DeliveryRate:
		o = Returned
	}
	plan := s.lifecycle(s.rng, o)
	now := s.opts.Now()
	first := plan[0]
	first.At = now
	p := &Parcel{Code: code, OrderRef: orderRef, Fields: fields, Created: now, History: []Step{first}, plan: plan[1:], Outcome: o}
	s.parcels[code] = p
	s.order = append(s.order, code)
	if orderRef != "" {
		s.byRef[orderRef] = append(s.byRef[orderRef], code)
	}
	return clone(p)
}

func clone(p *Parcel) Parcel {
	c := *p
	c.History = append([]Step(nil), p.History...)
	c.plan = nil
	return c
}

// Get returns a copy of the parcel with code, and false if there is none.
func (s *Sim) Get(code string) (Parcel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.parcels[code]
	if !ok {
		return Parcel{}, false
	}
	return clone(p), true
}

// ByOrderRef returns copies of the parcels created with orderRef, in
// creation order. More than one means the client created a parcel twice.
func (s *Sim) ByOrderRef(orderRef string) []Parcel {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Parcel
	for _, code := range s.byRef[orderRef] {
		out = append(out, clone(s.parcels[code]))
	}
	return out
}

// All returns copies of every parcel, in creation order.
func (s *Sim) All() []Parcel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Parcel, 0, len(s.order))
	for _, code := range s.order {
		out = append(out, clone(s.parcels[code]))
	}
	return out
}

// Delete removes a parcel that has not been picked up; pickedUp tells
// whether a step counts as picked up. It returns false if the parcel does
// not exist or has left the seller.
func (s *Sim) Delete(code string, pickedUp func(Step) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.parcels[code]
	if !ok {
		return false
	}
	for _, st := range p.History {
		if pickedUp(st) {
			return false
		}
	}
	delete(s.parcels, code)
	return true
}

// Advance moves every parcel with steps left one step forward and returns
// how many moved. Each move is reported to the OnMove function.
func (s *Sim) Advance() int {
	s.mu.Lock()
	var moved []Parcel
	now := s.opts.Now()
	for _, code := range s.order {
		p, ok := s.parcels[code]
		if !ok || len(p.plan) == 0 {
			continue
		}
		st := p.plan[0]
		st.At = now
		p.plan = p.plan[1:]
		p.History = append(p.History, st)
		if len(p.plan) == 0 && p.Outcome == Delivered {
			p.Paid = true
		}
		moved = append(moved, clone(p))
	}
	f := s.onMove
	s.mu.Unlock()
	if f != nil {
		for _, p := range moved {
			f(p, p.Current())
		}
	}
	return len(moved)
}

// Run calls Advance every interval until ctx ends (for the demo).
func (s *Sim) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Advance()
		}
	}
}

// Calls returns how many API calls of op the fake answered (faults
// included).
func (s *Sim) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// PeakConcurrency returns the most calls of op the fake was answering at
// the same time (each call counts while its latency fault runs).
func (s *Sim) PeakConcurrency(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak[op]
}

// Intercept counts a call of op and applies the latency and failure faults.
// It returns true when it has answered the request itself (an HTML 502
// page) and the handler must stop.
func (s *Sim) Intercept(w http.ResponseWriter, r *http.Request, op string) bool {
	s.mu.Lock()
	s.calls[op]++
	s.active[op]++
	s.peak[op] = max(s.peak[op], s.active[op])
	fail := s.rng.Float64() < s.opts.Faults.FailRate
	latency := s.opts.Faults.Latency
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active[op]--
		s.mu.Unlock()
	}()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return true
		}
	}
	if fail {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n")
		return true
	}
	return false
}

// SetFaults replaces the fault modes (tests turn them off for exact checks).
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	s.opts.Faults = f
	s.mu.Unlock()
}

// Faults returns the current fault modes.
func (s *Sim) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.Faults
}

// Float returns a random number in [0, 1) from the Sim's seeded source.
func (s *Sim) Float() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64()
}
