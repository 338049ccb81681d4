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
