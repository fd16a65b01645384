package sim

import (
	"context"
	"testing"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/sim/toyrb"
)

// TestSweepIsIndependentOfWorkers: running seeds in parallel changes
// nothing but the wall time.
func TestSweepIsIndependentOfWorkers(t *testing.T) {
	defer leaktest.AfterTest(t)()
	cfg := toyConfig(t, 7, HostileNetwork(), "2:any")
	one, err := Sweep(context.Background(), cfg, 1, 60, 1)
	require.NoError(t, err)
	two, err := Sweep(context.Background(), cfg, 1, 60, 3)
	require.NoError(t, err)
	assert.Equal(t, 60, one.Runs)
	assert.Equal(t, one.Runs, two.Runs)
	assert.Equal(t, one.Events, two.Events)
	assert.Equal(t, one.Messages, two.Messages)
	assert.Equal(t, one.ByBehaviour, two.ByBehaviour)
	assert.Equal(t, one.Correct.Totals(), two.Correct.Totals())
	assert.Zero(t, one.Failed)
}

func TestSweepReportsTheLowestFailingSeed(t *testing.T) {
	defer leaktest.AfterTest(t)()
	cfg := toyConfig(t, 4, HostileNetwork(), "1:equivocate")
	cfg.Spec = toyrb.Spec(2)
	want, _ := firstFailure(t, cfg, 200)
	require.NotZero(t, want)
	sum, err := Sweep(context.Background(), cfg, 1, 200, 4)
	require.NoError(t, err)
	require.NotNil(t, sum.FirstFailure)
	assert.Equal(t, want, sum.FirstFailure.Seed)
	assert.Positive(t, sum.Failed)
	assert.NotEmpty(t, sum.Properties())
}

func TestSweepStopsWhenCancelled(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sum, err := Sweep(ctx, toyConfig(t, 4, DefaultNetwork(), ""), 1, 1_000_000, 2)
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, sum.Runs)
}
