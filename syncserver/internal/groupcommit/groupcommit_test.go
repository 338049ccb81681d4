package groupcommit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errClosed = errors.New("test group closed")

// recorder is a CommitFunc that records the batches it committed and
// answers each delivery with its double; a batch waits while gate is held.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	fail    func(batch []int) error
	gate    chan struct{} // when set, a commit waits for a receive from it
	started chan int      // when set, hears of each commit's size as it starts
}

func (r *recorder) commit(ctx context.Context, batch []int) ([]int, func(), error) {
	if r.started != nil {
		r.started <- len(batch)
	}
	if r.gate != nil {
		<-r.gate
	}
	if r.fail != nil {
		if err := r.fail(batch); err != nil {
			return nil, nil, err
		}
	}
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(batch))
	r.mu.Unlock()
	outs := make([]int, len(batch))
	for i, d := range batch {
		outs[i] = 2 * d
	}
	return outs, nil, nil
}

func (r *recorder) committed() [][]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

func newGroup(r *recorder, window time.Duration, maxBatch, batchers int) *Group[int, int] {
	return New(Config[int, int]{Window: window, MaxBatch: maxBatch, Batchers: batchers, Commit: r.commit, Closed: errClosed})
}

type answer struct {
	d, out int
	err    error
}

func submitAsync(g *Group[int, int], ctx context.Context, d int, answers chan<- answer) {
	go func() {
		out, err := g.Submit(ctx, d)
		answers <- answer{d, out, err}
	}()
}

// held returns a group of one batcher whose commits wait for r.gate, with
// delivery 0's batch being committed (held), and the channel its answers
// and those of later submitAsync calls come on.
func held(window time.Duration, maxBatch int) (*recorder, *Group[int, int], chan answer) {
	r := &recorder{gate: make(chan struct{}), started: make(chan int, 16)}
	g := newGroup(r, window, maxBatch, 1)
	answers := make(chan answer, 16)
	submitAsync(g, context.Background(), 0, answers)
	<-r.started
	return r, g, answers
}

// release lets the held commit and every later one go through.
func (r *recorder) release() {
	go func() {
		for range r.started {
			r.gate <- struct{}{}
		}
	}()
	r.gate <- struct{}{}
}

// submitAll submits 0..n-1 at once and returns their answers as they come.
func submitAll(g *Group[int, int], n int) <-chan answer {
	answers := make(chan answer, n)
	for d := range n {
		submitAsync(g, context.Background(), d, answers)
	}
	return answers
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Deliveries submitted within a batcher's window are committed together,
// and each Submit is answered with its own outcome after the commit.
func TestBatchesWithinWindow(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	g := newGroup(r, 300*time.Millisecond, 100, 1)
	defer g.Close()
	const n = 5
	answers := submitAll(g, n)
	for range n {
		a := <-answers
		if a.err != nil || a.out != 2*a.d {
			t.Fatalf("Submit(%d) = %d, %v", a.d, a.out, a.err)
		}
	}
	batches := r.committed()
	if len(batches) != 1 || len(batches[0]) != n {
		t.Fatalf("committed %v, want one batch of %d", batches, n)
	}
}

// A batch holds at most MaxBatch deliveries: those queued behind are split
// into further batches, committed in the order they were submitted (one
// batcher), and a full batch does not wait for the window.
func TestMaxBatchSplits(t *testing.T) {
	t.Parallel()
	r, g, answers := held(50*time.Millisecond, 4)
	defer g.Close()
	// Queue ten more behind the batch being committed, in order.
	const queued = 10
	for d := 1; d <= queued; d++ {
		submitAsync(g, context.Background(), d, answers)
		waitFor(t, "the delivery to be queued", func() bool { return g.Queued() == d })
	}
	r.release()
	for range queued + 1 {
		if a := <-answers; a.err != nil || a.out != 2*a.d {
			t.Fatalf("Submit(%d) = %d, %v", a.d, a.out, a.err)
		}
	}
	var sizes []int
	var all []int
	for _, b := range r.committed() {
		sizes = append(sizes, len(b))
		all = append(all, b...)
	}
	if !slices.Equal(sizes, []int{1, 4, 4, 2}) {
		t.Fatalf("batch sizes %v, want [1 4 4 2]", sizes)
	}
	for i, d := range all {
		if d != i {
			t.Fatalf("committed out of order: %v", all)
		}
	}
}

// A failed commit answers every Submit of its batch with the error, and
// does not hand the batch on; the next batch commits as usual.
func TestFailedCommitAnswersTheBatch(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	var fail atomic.Bool
	fail.Store(true)
	r := &recorder{fail: func([]int) error {
		if fail.Load() {
			return boom
		}
		return nil
	}}
	var handed atomic.Int32
	g := New(Config[int, int]{Window: 200 * time.Millisecond, MaxBatch: 100, Batchers: 1, Closed: errClosed,
		Commit: func(ctx context.Context, batch []int) ([]int, func(), error) {
			outs, _, err := r.commit(ctx, batch)
			return outs, func() { handed.Add(1) }, err
		}})
	defer g.Close()
	const n = 6
	answers := submitAll(g, n)
	for range n {
		if a := <-answers; !errors.Is(a.err, boom) {
			t.Fatalf("Submit(%d) = %d, %v; want %v", a.d, a.out, a.err, boom)
		}
	}
	if h := handed.Load(); h != 0 {
		t.Fatalf("a failed batch was handed on (%d)", h)
	}
	fail.Store(false)
	if out, err := g.Submit(context.Background(), 7); err != nil || out != 14 {
		t.Fatalf("Submit after a failed batch = %d, %v", out, err)
	}
	if h := handed.Load(); h != 1 {
		t.Fatalf("handed on %d times, want 1", h)
	}
	fail.Store(true)
	if _, err := g.StoreNow(context.Background(), 8); !errors.Is(err, boom) {
		t.Fatalf("StoreNow of a failed commit: %v", err)
	}
}

// The hand-on of a committed batch runs after the commit and before any of
// its Submits is answered.
func TestCommittedRunsBeforeAnswers(t *testing.T) {
	t.Parallel()
	var handed atomic.Bool
	g := New(Config[int, int]{Window: time.Millisecond, MaxBatch: 10, Batchers: 2, Closed: errClosed,
		Commit: func(ctx context.Context, batch []int) ([]int, func(), error) {
			return make([]int, len(batch)), func() { handed.Store(true) }, nil
		}})
	defer g.Close()
	if _, err := g.Submit(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if !handed.Load() {
		t.Fatal("Submit was answered before the batch was handed on")
	}
}

// Close commits the batches in flight and those still queued, answering
// their Submits before it returns; Submit and StoreNow fail with the Closed
// error from the moment Close is called, and closing again does nothing.
func TestCloseCommitsQueuedAndRefuses(t *testing.T) {
	t.Parallel()
	r, g, answers := held(time.Millisecond, 3)
	const queued = 7
	for d := 1; d <= queued; d++ {
		submitAsync(g, context.Background(), d, answers)
	}
	waitFor(t, "the deliveries to be queued", func() bool { return g.Queued() == queued })

	closed := make(chan struct{})
	go func() {
		g.Close()
		close(closed)
	}()
	<-g.Closing()
	if _, err := g.Submit(context.Background(), 100); !errors.Is(err, errClosed) {
		t.Fatalf("Submit while closing: %v", err)
	}
	if _, err := g.StoreNow(context.Background(), 101); !errors.Is(err, errClosed) {
		t.Fatalf("StoreNow while closing: %v", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a batch was being committed")
	case a := <-answers:
		t.Fatalf("Submit(%d) answered before its batch committed: %d, %v", a.d, a.out, a.err)
	case <-time.After(100 * time.Millisecond):
	}
	r.release()
	<-closed
	for range queued + 1 {
		select {
		case a := <-answers:
			if a.err != nil || a.out != 2*a.d {
				t.Fatalf("Submit(%d) = %d, %v", a.d, a.out, a.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close returned before a delivery it was handed was answered")
		}
	}
	var all []int
	for _, b := range r.committed() {
		if len(b) > 3 {
			t.Fatalf("batch of %d over MaxBatch", len(b))
		}
		all = append(all, b...)
	}
	slices.Sort(all)
	if !slices.Equal(all, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("committed %v", all)
	}
	g.Close() // again: nothing
	if _, err := g.Submit(context.Background(), 102); !errors.Is(err, errClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
	close(r.started) // nothing commits after Close
}

// A Submit whose ctx ends while its delivery is queued returns ctx's error
// at once; the delivery handed over is committed all the same.
func TestSubmitContextEndsWhileQueued(t *testing.T) {
	t.Parallel()
	r, g, answers := held(time.Millisecond, 10)
	ctx, cancel := context.WithCancel(context.Background())
	submitAsync(g, ctx, 1, answers)
	waitFor(t, "the delivery to be queued", func() bool { return g.Queued() == 1 })
	cancel()
	if a := <-answers; a.d != 1 || !errors.Is(a.err, context.Canceled) {
		t.Fatalf("Submit(%d) = %d, %v; want context.Canceled", a.d, a.out, a.err)
	}
	r.release()
	if a := <-answers; a.err != nil {
		t.Fatalf("Submit(%d): %v", a.d, a.err)
	}
	g.Close()
	close(r.started) // nothing commits after Close
	var all []int
	for _, b := range r.committed() {
		all = append(all, b...)
	}
	if !slices.Equal(all, []int{0, 1}) {
		t.Fatalf("committed %v, want [0 1]", all)
	}
}

// Run's batchers stop when its ctx ends; a later Run starts them again.
func TestRunBoundedByContext(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	g := newGroup(r, time.Millisecond, 10, 2)
	defer g.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		g.Run(ctx)
		close(ran)
	}()
	if out, err := g.Submit(context.Background(), 3); err != nil || out != 6 {
		t.Fatalf("Submit = %d, %v", out, err)
	}
	cancel()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return once its ctx ended")
	}
	go g.Run(context.Background())
	if out, err := g.Submit(context.Background(), 4); err != nil || out != 8 {
		t.Fatalf("Submit = %d, %v", out, err)
	}
}

// Many Submits from many goroutines, with several batchers: each is
// answered with its own outcome, each delivery committed once, no batch
// over MaxBatch. Run it with -race.
func TestConcurrentSubmits(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	g := newGroup(r, 100*time.Microsecond, 16, 4)
	const senders, each = 32, 100
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				d := s*each + i
				var (
					out int
					err error
				)
				if i%10 == 0 {
					out, err = g.StoreNow(context.Background(), d)
				} else {
					out, err = g.Submit(context.Background(), d)
				}
				if err != nil || out != 2*d {
					errs <- errors.New("a Submit got another's outcome or an error")
					return
				}
			}
		})
	}
	wg.Wait()
	g.Close()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := make(map[int]bool)
	for _, b := range r.committed() {
		if len(b) > 16 {
			t.Fatalf("batch of %d over MaxBatch", len(b))
		}
		for _, d := range b {
			if seen[d] {
				t.Fatalf("%d committed twice", d)
			}
			seen[d] = true
		}
	}
	if len(seen) != senders*each {
		t.Fatalf("%d committed, want %d", len(seen), senders*each)
	}
}

// A commit that returns fewer outcomes than deliveries fails the batch
// rather than answering a Submit with another's outcome.
func TestOutcomeCountMismatchFails(t *testing.T) {
	t.Parallel()
	g := New(Config[int, int]{Window: time.Millisecond, MaxBatch: 10, Batchers: 1, Closed: errClosed,
		Commit: func(ctx context.Context, batch []int) ([]int, func(), error) { return nil, nil, nil }})
	defer g.Close()
	if _, err := g.StoreNow(context.Background(), 1); err == nil {
		t.Fatal("StoreNow succeeded without an outcome")
	}
}
