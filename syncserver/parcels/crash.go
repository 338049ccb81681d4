package parcels

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// CrashEnv names the environment variable of the crash points, for the
// SIGKILL tests only: "point=N,point=N" makes the process kill itself
// (SIGKILL, no deferred work, no graceful shutdown) the Nth time it
// reaches the point. Unset — always, outside those tests — it costs one
// map lookup per point reached.
const CrashEnv = "LEADIFY_TEST_CRASH"

// The crash points.
const (
	// CrashCreateRecorded: the creation attempt is committed, the carrier
	// not yet called.
	CrashCreateRecorded = "create-recorded"
	// CrashCreateAnswered: the carrier has answered a creation, the answer
	// is not recorded.
	CrashCreateAnswered = "create-answered"
	// CrashWebhookStored: a webhook is committed to the inbox, the carrier
	// not yet acknowledged.
	CrashWebhookStored = "webhook-stored"
	// CrashWebhooksApplied: a processing batch is committed, its job not
	// yet marked completed.
	CrashWebhooksApplied = "webhooks-applied"
)

var crashes = sync.OnceValue(func() map[string]*crashPoint {
	spec := os.Getenv(CrashEnv)
	if spec == "" {
		return nil
	}
	out := map[string]*crashPoint{}
	for part := range strings.SplitSeq(spec, ",") {
		name, nth, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.ParseInt(nth, 10, 64)
		if !ok || err != nil || n < 1 {
			continue
		}
		out[name] = &crashPoint{at: n}
	}
	return out
})

type crashPoint struct {
	at   int64
	seen atomic.Int64
}

// crash kills the process the Nth time point is reached, when CrashEnv
// asks for it.
func crash(point string) {
	cp := crashes()[point]
	if cp == nil || cp.seen.Add(1) != cp.at {
		return
	}
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		_ = p.Kill() // SIGKILL on Unix: nothing after this line runs
	}
	os.Exit(137)
}
