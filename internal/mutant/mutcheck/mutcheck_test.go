package mutcheck

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/internal/mutant"
	"github.com/onecast/onecast/sim"
)

func TestConfigCoversEveryMutantsProtocol(t *testing.T) {
	for _, m := range mutant.All() {
		cfg, err := Config(m.Protocol, m.Set())
		require.NoError(t, err, m.Name)
		require.NotEmpty(t, cfg.Byzantine, "%s runs with Byzantine nodes", m.Name)
		assert.Equal(t, cfg.F, cfg.Byzantine[0].Count, "%s: f Byzantine nodes", m.Name)
	}
	_, err := Config("toyrb", 0)
	assert.Error(t, err)
}

func TestSearchStopsAtBudget(t *testing.T) {
	m, err := mutant.Lookup("bracha-send-from-anyone")
	require.NoError(t, err)
	o, err := Search(context.Background(), m, 1, 3, 2)
	require.NoError(t, err)
	assert.False(t, o.Caught)
	assert.Equal(t, 3, o.Runs)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Search(ctx, m, 1, 3, 2)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestSearchCatchesAndReplays(t *testing.T) {
	m, err := mutant.Lookup("pbft-prepare-quorum")
	require.NoError(t, err)
	o, err := Search(context.Background(), m, 1, 50, 2)
	require.NoError(t, err)
	require.True(t, o.Caught)
	assert.Equal(t, int(o.Seed), o.Runs)
	assert.NotEmpty(t, o.Properties, "a catch names the properties it violated")

	mutated, correct, err := Replay(m, o.Seed)
	require.NoError(t, err)
	assert.True(t, mutated.Failed())
	assert.False(t, correct.Failed())
	assert.Equal(t, o.Properties, Properties(mutated))

	path := filepath.Join(t.TempDir(), "table.json")
	require.NoError(t, WriteTable(path, []Outcome{o, {Mutant: m}}))
	recs, err := LoadTable(path)
	require.NoError(t, err)
	assert.Equal(t, []Record{RecordOf(o)}, recs, "only caught outcomes are recorded")
}

// TestCoverageCountsCorrectNodesEvents: over enough PBFT runs under the
// hostile network some correct replica changes view, and no run counts an
// event twice.
func TestCoverageCountsCorrectNodesEvents(t *testing.T) {
	m, err := mutant.Lookup("pbft-join-f")
	require.NoError(t, err)
	// Its first catch is seed 20 (sim/testdata/mutants.json).
	o, err := Search(context.Background(), m, 1, 16, 2)
	require.NoError(t, err)
	require.False(t, o.Caught)
	c := o.Coverage
	assert.Equal(t, 16, c.Runs)
	require.Equal(t, coverageEvents["pbft"], c.Events)
	for i, e := range c.Events {
		assert.LessOrEqual(t, c.Reached[i], c.Runs, e)
	}
	assert.Positive(t, c.Reached[0], "some run changes view: %v", c)
	assert.GreaterOrEqual(t, c.Reached[0], c.Reached[1], "a new view is entered only after a view change")
	assert.Contains(t, c.String(), "view change ")
}

// TestPBFTSeedsRotateOverFourConfigurations: PBFT seeds take turns over the
// default, viewchange, short-timeout and viewsplit configurations; the
// viewsplit one runs sim.ScheduleViewSplit against the behaviours that lie
// across views only.
func TestPBFTSeedsRotateOverFourConfigurations(t *testing.T) {
	want := []string{"default", "viewchange", "short-timeout", "viewsplit"}
	for seed := range uint64(8) {
		assert.Equal(t, want[seed%4], PBFTVariant(seed))
	}
	cfg, err := ConfigForSeed("pbft", 0, Options{}, 7)
	require.NoError(t, err)
	assert.Equal(t, sim.ScheduleViewSplit, cfg.Schedule)
	require.Len(t, cfg.Byzantine, 1)
	var names []string
	for _, b := range cfg.Byzantine[0].Behaviours {
		names = append(names, b.Name)
	}
	assert.ElementsMatch(t, ViewSplitBehaviours(), names)
	cfg, err = ConfigForSeed("pbft", 0, Options{}, 4)
	require.NoError(t, err)
	assert.Equal(t, sim.ScheduleNone, cfg.Schedule)
}
