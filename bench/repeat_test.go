package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSummarizeTakesMediansAndKeepsEveryRun folds three runs: each figure is
// its own median (not all from one run), the runs' values are kept in
// order, incomplete payloads add up, and the other fields come from the
// run with the median throughput.
func TestSummarizeTakesMediansAndKeepsEveryRun(t *testing.T) {
	runs := []Result{
		{DeliveriesPerSec: 100, LatencyP50Ms: 9, Deliveries: 1, Incomplete: 1},
		{DeliveriesPerSec: 300, LatencyP50Ms: 1, Deliveries: 3},
		{DeliveriesPerSec: 200, LatencyP50Ms: 5, Deliveries: 2, Incomplete: 2},
	}
	s := Summarize(runs)
	assert.Equal(t, 3, s.Repeats)
	assert.Equal(t, 200.0, s.DeliveriesPerSec)
	assert.Equal(t, 5.0, s.LatencyP50Ms)
	assert.Equal(t, uint64(2), s.Deliveries, "from the median-throughput run")
	assert.Equal(t, uint64(3), s.Incomplete)
	assert.Equal(t, []float64{100, 300, 200}, s.RepeatValues["deliveries/s"])
	lo, hi := s.spread(figures[0])
	assert.Equal(t, [2]float64{100, 300}, [2]float64{lo, hi})

	even := Summarize(runs[:2])
	assert.Equal(t, 200.0, even.DeliveriesPerSec, "the mean of the middle two")

	runs[1].Error = "boom"
	failed := Summarize(runs)
	assert.Equal(t, "run 2 of 3: boom", failed.Error)
	assert.Equal(t, runs[0], Summarize(runs[:1]), "one run is itself")
}

// TestRatiosOfRepeatedPointsHaveASpread pairs repeated points: the ratio of
// the medians, and the min–max of the runs' own ratios.
func TestRatiosOfRepeatedPointsHaveASpread(t *testing.T) {
	res := sampleResults()[:2]
	full := Summarize([]Result{withRate(res[0], 1000), withRate(res[0], 2000), withRate(res[0], 1500)})
	digest := Summarize([]Result{withRate(res[1], 3000), withRate(res[1], 3000), withRate(res[1], 3000)})
	rs := Ratios([]Result{full, digest})
	require.Len(t, rs, 1)
	assert.InDelta(t, 2.0, rs[0].Values[0], 1e-9, "3000 ÷ the median 1500")
	require.Len(t, rs[0].Min, len(figures))
	assert.InDelta(t, 1.5, rs[0].Min[0], 1e-9, "3000 ÷ 2000")
	assert.InDelta(t, 3.0, rs[0].Max[0], 1e-9, "3000 ÷ 1000")
}

func withRate(r Result, v float64) Result {
	r.DeliveriesPerSec = v
	return r
}
