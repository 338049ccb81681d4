package syncsim_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/syncserver/syncer"
	"github.com/leadify/leadify/syncserver/syncsim"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestSimulation runs the simulation: a short run in CI, as long as asked by
// `go tool task sim SEED=… STEPS=…` (LEADIFY_SIM_SEED, LEADIFY_SIM_STEPS).
func TestSimulation(t *testing.T) {
	t.Parallel()
	seed := uint64(envInt("LEADIFY_SIM_SEED", 1))
	rep := syncsim.Run(t, syncsim.Config{Seed: seed, Steps: envInt("LEADIFY_SIM_STEPS", 400), Logf: t.Logf,
		StopAtViolation: os.Getenv("LEADIFY_SIM_STOP") != "", TraceFrom: envInt("LEADIFY_SIM_TRACE_FROM", 0)})
	t.Log(rep)
	if len(rep.Violations) > 0 {
		t.Fatalf("%d violations (seed %d)", len(rep.Violations), seed)
	}
}

// Two runs of one seed end in the same state: the simulation owns every
// choice, the clock and the ids that decide anything.
func TestSimulationIsDeterministic(t *testing.T) {
	t.Parallel()
	steps := envInt("LEADIFY_SIM_REPLAY_STEPS", 600)
	reps := make([]syncsim.Report, 2)
	for i := range reps {
		reps[i] = syncsim.Run(t, syncsim.Config{Seed: 5, Steps: steps, QuietEvery: 150})
	}
	if reps[0].Digest != reps[1].Digest {
		t.Fatalf("two runs of seed 5 differ:\n%s\n%s", reps[0], reps[1])
	}
	if len(reps[0].Violations) > 0 {
		t.Fatalf("violations:\n%s", reps[0])
	}
	t.Log(reps[0])
}

// Each planted bug must be caught within 10,000 steps.
func TestSimulationCatchesPlantedBugs(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]syncsim.Config{
		"apply-repeats":          {Bugs: syncer.Bugs{ApplyRepeats: true}},
		"skip-visibility-delete": {Bugs: syncer.Bugs{SkipVisibilityDelete: true}},
		"skip-rebase":            {ClientBugs: localstore.Bugs{SkipRebase: true}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg.Seed, cfg.Steps, cfg.QuietEvery = 7, min(envInt("LEADIFY_SIM_BUG_STEPS", 10_000), 10_000), 100
			cfg.StopAtViolation = true
			rep := syncsim.Run(t, cfg)
			t.Log(rep)
			if len(rep.Violations) == 0 {
				t.Fatalf("planted bug %s was not caught in %d steps", name, rep.Steps)
			}
		})
	}
}
