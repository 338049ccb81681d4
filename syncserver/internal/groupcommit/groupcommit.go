// Package groupcommit commits work handed over by concurrent callers in
// shared transactions (group commit: one fsync for many), and answers each
// caller only once its part is durable. The carrier and shop webhook
// inboxes are made of it: each gives it the function that stores one batch
// of its deliveries (its SQL, dedupe rules and outcomes) and keeps its own
// exported API.
//
// Submit hands a delivery to a queue; a few batchers each take the first
// delivery queued, collect more for a window or until a batch is full,
// commit the batch and answer its Submits. Nothing is acknowledged before
// it is committed, and nothing handed over is dropped: Close commits what
// is still queued.
package groupcommit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// CommitFunc commits one batch of deliveries, in one transaction, and
// returns the outcome of each (outcomes[i] is batch[i]'s). When committed
// is not nil it is called once the transaction committed, before any
// Submit of the batch is answered: what to hand the committed deliveries
// on to outside the transaction. An error fails the whole batch: every
// Submit of it is answered with the error (the CommitFunc wraps it as its
// callers should see it), and committed is not called.
type CommitFunc[D, O any] func(ctx context.Context, batch []D) (outcomes []O, committed func(), err error)

// Config configures a Group.
type Config[D, O any] struct {
	Window   time.Duration // how long a batcher waits for more deliveries before committing
	MaxBatch int           // the most deliveries committed together
	Batchers int           // how many batches may commit at once
	Commit   CommitFunc[D, O]
	// Closed is Submit's and StoreNow's error once the group is closed.
	Closed error
	// Batcher, when set, is what each batcher goroutine runs in place of
	// Loop: a method of the group's owner that calls Loop, so that a
	// goroutine dump names whose batcher it is.
	Batcher func(context.Context)
	// OnClose, when set, is called by the first Close once every delivery
	// handed over is committed and answered and the batchers stopped: an
	// inbox closes its own connections there, after the last commit that
	// uses them.
	OnClose func()
}

// Group commits deliveries of type D in batches, each answered with an
// outcome of type O. Make it with New.
type Group[D, O any] struct {
	cfg   Config[D, O]
	reqs  chan *pending[D, O]
	start sync.Once

	mu      sync.Mutex
	closed  bool
	stop    chan struct{}  // closed by Close
	handing sync.WaitGroup // Submits handing a delivery to the batchers
	running sync.WaitGroup // Run calls
}

type pending[D, O any] struct {
	d    D
	done chan result[O] // buffered: a batcher never waits for a Submit that gave up
}

type result[O any] struct {
	out O
	err error
}

// New returns a group; its batchers start with the first Submit (or Run)
// and live until Close (they hold no resources while idle).
func New[D, O any](cfg Config[D, O]) *Group[D, O] {
	if cfg.MaxBatch < 1 || cfg.Batchers < 1 || cfg.Commit == nil || cfg.Closed == nil {
		panic("groupcommit: MaxBatch, Batchers, Commit and Closed must be set")
	}
	return &Group[D, O]{cfg: cfg, reqs: make(chan *pending[D, O], 4*cfg.MaxBatch), stop: make(chan struct{})}
}

// Close stops the batchers. Every delivery already handed to them is
// committed first — those of the batches being committed, and those still
// queued — and its Submit answered, so nothing acknowledged is lost;
// Submit and StoreNow fail with the Closed error from the moment Close is
// called. It waits for the commits. Closing it again does nothing (and
// returns at once).
func (g *Group[D, O]) Close() {
	g.start.Do(func() {}) // no batcher starts after Close
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	close(g.stop)
	g.mu.Unlock()
	// No delivery is handed over from now on; the batchers finish the
	// batches they hold and stop.
	g.handing.Wait()
	g.running.Wait()
	// What is still queued (all batchers were busy, or none ran) is
	// committed here.
	for {
		var batch []*pending[D, O]
	drain:
		for len(batch) < g.cfg.MaxBatch {
			select {
			case p := <-g.reqs:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		if len(batch) == 0 {
			break
		}
		g.commit(context.Background(), batch)
	}
	if g.cfg.OnClose != nil {
		g.cfg.OnClose()
	}
}

// Submit hands d to the batchers and returns its outcome once its batch
// committed, or the batch's error. When ctx ends first it returns ctx's
// error and the delivery may or may not be committed (a delivery already
// handed over is committed all the same): the sender retries, and the
// CommitFunc's dedupe makes the retry a duplicate. It fails with the
// Closed error once the group is closed; a delivery handed over before is
// committed by Close.
func (g *Group[D, O]) Submit(ctx context.Context, d D) (O, error) {
	g.start.Do(func() { go g.Run(context.Background()) })
	var zero O
	p := &pending[D, O]{d: d, done: make(chan result[O], 1)}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return zero, g.cfg.Closed
	}
	g.handing.Add(1)
	g.mu.Unlock()
	select {
	case g.reqs <- p:
		g.handing.Done()
	case <-ctx.Done():
		g.handing.Done()
		return zero, ctx.Err()
	case <-g.stop: // the queue is full and the group closing
		g.handing.Done()
		return zero, g.cfg.Closed
	}
	// Handed over: a batcher, or Close, commits it and answers.
	select {
	case r := <-p.done:
		return r.out, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// StoreNow commits d in a transaction of its own, without group commit
// (the baseline group commit is measured against). It fails with the
// Closed error once the group is closed.
func (g *Group[D, O]) StoreNow(ctx context.Context, d D) (O, error) {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		var zero O
		return zero, g.cfg.Closed
	}
	p := &pending[D, O]{d: d, done: make(chan result[O], 1)}
	g.commit(ctx, []*pending[D, O]{p})
	r := <-p.done
	return r.out, r.err
}

// Run commits batches with Batchers batchers (each running Config.Batcher,
// or Loop) until ctx ends or the group is closed (the batches being
// committed are finished first). Submit starts it once by itself; call it
// to bound the batchers by a context instead.
func (g *Group[D, O]) Run(ctx context.Context) {
	g.start.Do(func() {})
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.running.Add(1)
	g.mu.Unlock()
	defer g.running.Done()
	batcher := g.cfg.Batcher
	if batcher == nil {
		batcher = g.Loop
	}
	var wg sync.WaitGroup
	for range g.cfg.Batchers {
		wg.Go(func() { batcher(ctx) })
	}
	wg.Wait()
}

// Loop is one batcher: it collects and commits batches until ctx ends or
// the group is closed, finishing the batch it holds first. A batch is
// committed without ctx's cancellation: its Submits wait for it.
func (g *Group[D, O]) Loop(ctx context.Context) {
	for {
		select {
		case <-g.stop:
			return // Close commits what is still queued
		default:
		}
		var first *pending[D, O]
		select {
		case <-ctx.Done():
			return
		case <-g.stop:
			return
		case first = <-g.reqs:
		}
		batch := []*pending[D, O]{first}
		timer := time.NewTimer(g.cfg.Window)
	collect:
		for len(batch) < g.cfg.MaxBatch {
			select {
			case p := <-g.reqs:
				batch = append(batch, p)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		g.commit(context.WithoutCancel(ctx), batch)
	}
}

// Queued is how many deliveries wait for a batcher.
func (g *Group[D, O]) Queued() int { return len(g.reqs) }

// Closing is closed once Close is called.
func (g *Group[D, O]) Closing() <-chan struct{} { return g.stop }

// commit commits batch and answers each of its Submits.
func (g *Group[D, O]) commit(ctx context.Context, batch []*pending[D, O]) {
	ds := make([]D, len(batch))
	for i, p := range batch {
		ds[i] = p.d
	}
	outs, committed, err := g.cfg.Commit(ctx, ds)
	if err == nil && len(outs) != len(batch) {
		err = fmt.Errorf("groupcommit: %d outcomes for a batch of %d", len(outs), len(batch))
	}
	if err == nil && committed != nil {
		committed()
	}
	for i, p := range batch {
		if err != nil {
			p.done <- result[O]{err: err}
			continue
		}
		p.done <- result[O]{out: outs[i]}
	}
}
