package sim_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/internal/mutant"
	"github.com/onecast/onecast/internal/mutant/mutcheck"
	"github.com/onecast/onecast/sim"
)

// mutantTable is the committed table of catches, written by
// `onecast mutate --record sim/testdata/mutants.json`.
const mutantTable = "testdata/mutants.json"

// TestMutantsCaughtOnRecordedSeeds replays every mutant's recorded catching
// seed: with the mutant the run must violate the recorded properties, and
// the correct protocol must pass the same seed. The full search (every
// mutant, thousands of seeds) is `onecast mutate`.
func TestMutantsCaughtOnRecordedSeeds(t *testing.T) {
	recs, err := mutcheck.LoadTable(mutantTable)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(recs), 15, "the mutation check catches at least 15 seeded bugs")
	seen := map[string]bool{}
	for _, rec := range recs {
		t.Run(rec.Mutant, func(t *testing.T) {
			require.False(t, seen[rec.Mutant], "mutant listed twice")
			seen[rec.Mutant] = true
			m, err := mutant.Lookup(rec.Mutant)
			require.NoError(t, err)
			mutated, correct, err := mutcheck.Replay(m, rec.Seed)
			require.NoError(t, err)
			require.True(t, mutated.Failed(), "seed %d no longer catches %s; if the simulator's defaults or behaviours changed, "+
				"re-record the table: go run ./cmd/onecast mutate --record sim/testdata/%s", rec.Seed, m.Name, filepath.Base(mutantTable))
			assert.Equal(t, rec.Properties, strings.Join(mutcheck.Properties(mutated), ","))
			assert.False(t, correct.Failed(), "the correct %s fails seed %d: %v", m.Protocol, rec.Seed, correct.Violations)
		})
	}
}

// TestMutantSearchFindsCheapCatches runs the search itself, with a small
// budget, for the mutants caught within a few seeds: it must stop at the
// recorded seed, whatever the number of workers.
func TestMutantSearchFindsCheapCatches(t *testing.T) {
	recs, err := mutcheck.LoadTable(mutantTable)
	require.NoError(t, err)
	const cheap = 8
	searched := 0
	for _, rec := range recs {
		if rec.Seed > cheap {
			continue
		}
		m, err := mutant.Lookup(rec.Mutant)
		require.NoError(t, err)
		for _, workers := range []int{1, 3} {
			o, err := mutcheck.Search(context.Background(), m, 1, cheap, workers)
			require.NoError(t, err)
			require.True(t, o.Caught, "%s not caught in %d seeds", m.Name, cheap)
			assert.Equal(t, rec.Seed, o.Seed, "%s with %d workers", m.Name, workers)
			assert.Equal(t, int(rec.Seed), o.Runs)
			assert.Empty(t, o.BaselineFailures)
		}
		searched++
	}
	assert.GreaterOrEqual(t, searched, 5)
}

// TestUnmutatedProtocolsPassTheMutationSeeds: the correct protocols pass
// every seed the catching searches ran through (1 … the largest catching
// seed), under the same configurations.
func TestUnmutatedProtocolsPassTheMutationSeeds(t *testing.T) {
	recs, err := mutcheck.LoadTable(mutantTable)
	require.NoError(t, err)
	upTo := map[string]uint64{}
	for _, rec := range recs {
		m, err := mutant.Lookup(rec.Mutant)
		require.NoError(t, err)
		upTo[m.Protocol] = max(upTo[m.Protocol], min(rec.Seed, 200))
	}
	for _, proto := range []string{"bracha", "pbft", "dolevstrong"} {
		cfg, err := mutcheck.Config(proto, 0)
		require.NoError(t, err)
		sum, err := sim.Sweep(context.Background(), cfg, 1, upTo[proto], 2)
		require.NoError(t, err)
		assert.Zero(t, sum.Failed, "%s: %v first failing seed %v", proto, sum.ByProperty, sum.FirstFailure)
	}
}
