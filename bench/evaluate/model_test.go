package evaluate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFitPolyRecoversAQuadraticAndALine(t *testing.T) {
	xs := []float64{4, 7, 10, 13, 16}
	quad := make([]float64, len(xs))
	line := make([]float64, len(xs))
	for i, x := range xs {
		quad[i] = 3*x*x + 2*x + 100
		line[i] = 50*x + 7
	}
	f, err := FitPoly(xs, quad, 2)
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{100, 2, 3}, f.Coef, 1e-6)
	assert.InDelta(t, 1.0, f.R2, 1e-9)
	g, err := FitPoly(xs, line, 2)
	require.NoError(t, err)
	assert.InDelta(t, 0, g.Coef[2], 1e-9, "a line has no quadratic term")
	assert.InDelta(t, 50, g.Coef[1], 1e-6)
	_, err = FitPoly(xs[:2], line[:2], 2)
	assert.Error(t, err, "too few points")
}

func TestCostModelIsBoundByCPUOrBandwidth(t *testing.T) {
	m := CostModel{CPU: Fit{Coef: []float64{100, 10}}, Bytes: Fit{Coef: []float64{1000}}, Cores: 1, Bandwidth: 1e9}
	assert.InDelta(t, 1e6/200, m.Throughput(10), 1e-9, "CPU-bound: 200 µs per delivery at n = 10")
	m.Bandwidth = 1e5
	assert.InDelta(t, 100, m.Throughput(10), 1e-9, "bandwidth-bound: 1000 B per delivery at 100 kB/s")
}
