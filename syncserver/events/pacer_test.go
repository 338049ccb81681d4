package events

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// One batch of a key at a time, paced ones at least their interval apart,
// and a batch that found nothing does not count against the pace.
func TestPacer(t *testing.T) {
	p := pacer{busy: map[batchKey]bool{}, last: map[batchKey]time.Time{}}
	k := batchKey{store: uuid.New(), consumer: "c"}
	other := batchKey{store: uuid.New(), consumer: "c"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	done, wait := p.start(k, time.Second, t0)
	require.NotNil(t, done)
	require.Zero(t, wait)
	_, wait = p.start(k, time.Second, t0.Add(100*time.Millisecond))
	require.Equal(t, 900*time.Millisecond, wait, "busy: wait for the pace")
	d2, _ := p.start(other, time.Second, t0.Add(100*time.Millisecond))
	require.NotNil(t, d2, "another store is not held back")
	d2(true)
	done(true)
	_, wait = p.start(k, time.Second, t0.Add(300*time.Millisecond))
	require.Equal(t, 700*time.Millisecond, wait)
	done, _ = p.start(k, time.Second, t0.Add(time.Second))
	require.NotNil(t, done)
	done(false)
	// Counted, the empty batch at 1 s would hold this one back until 2 s.
	done, _ = p.start(k, time.Second, t0.Add(1100*time.Millisecond))
	require.NotNil(t, done, "the empty batch did not count")
	done(true)
	_, wait = p.start(k, time.Second, t0.Add(1500*time.Millisecond))
	require.Equal(t, 600*time.Millisecond, wait, "a batch that found events counts")

	// Unpaced: only one at a time.
	u := batchKey{store: uuid.New(), consumer: "u"}
	done, _ = p.start(u, 0, t0)
	_, wait = p.start(u, 0, t0)
	require.Equal(t, busyWait, wait)
	done(true)
	done, _ = p.start(u, 0, t0)
	require.NotNil(t, done)
	require.NotContains(t, p.last, u, "unpaced keys leave nothing behind")
}

// Past pacerKeep keys the pacer forgets those idle a minute, walking them
// at most once a minute: not on every job.
func TestPacerSweepsOnceAMinute(t *testing.T) {
	p := pacer{busy: map[batchKey]bool{}, last: map[batchKey]time.Time{}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fill := func(after time.Duration, n int) {
		for range n {
			done, _ := p.start(batchKey{store: uuid.New(), consumer: "c"}, time.Second, t0.Add(after))
			done(true)
		}
	}
	fill(0, pacerKeep+10)
	require.Len(t, p.last, pacerKeep+10, "all recent: the sweep at the 4,096th kept them")
	fill(30*time.Second, pacerKeep+10)
	require.Len(t, p.last, 2*pacerKeep+20, "swept 30 s ago: no walk")
	fill(60*time.Second, 1)
	require.Len(t, p.last, pacerKeep+11, "a minute after the last walk, the keys idle a minute go")
	fill(90*time.Second, 1)
	require.Len(t, p.last, pacerKeep+12, "swept 30 s ago: no walk, though most are a minute idle")
	fill(120*time.Second, 1)
	require.Len(t, p.last, 2, "the next walk")
}
