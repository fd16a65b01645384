package characterize

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bench/realsys"
)

func TestSweepPointsVaryOneDimensionAtATime(t *testing.T) {
	s := OwnSweep{Protocols: []string{"bracha"}, Ns: []int{4, 7}, Payloads: []int{64, 1024, 4096}, Batches: []int{1, 4}, Loads: []int{1, 3}, Byzantine: []string{"silent"}}
	pts := s.Points()
	// 2×3 grid, batch 4 (load 4 to fill it), load 3, silent.
	require.Len(t, pts, 6+1+1+1)
	for _, p := range pts {
		assert.Equal(t, (p.N-1)/3, p.F)
		if p.Batch == 4 {
			assert.Equal(t, 4, p.PerNode, "a batch point fills its batches")
		}
	}
}

func TestReportWritesTablesAndPlots(t *testing.T) {
	opts := Options{Own: OwnSweep{Protocols: []string{"bracha", "pbft"}, Ns: []int{4}, Payloads: []int{1024}, Batches: []int{1},
		Loads: []int{1}, Byzantine: []string{"silent"}, Seed: 1}, Systems: []string{}}
	c, err := Run(context.Background(), []string{"characterize", "--test"}, opts)
	require.NoError(t, err)
	require.Len(t, c.Own, 4)
	c.Real = append(c.Real, &realsys.Result{System: "zookeeper", Skipped: "not available: java not installed"})
	dir := t.TempDir()
	files, err := c.Write(filepath.Join(dir, "CHARACTERIZATION.md"))
	require.NoError(t, err)
	md, err := os.ReadFile(files[0])
	require.NoError(t, err)
	s := string(md)
	assert.Contains(t, s, "Agreement with the simulator's exact counts: **4 of 4** runs.")
	assert.Contains(t, s, "| bracha | 4 | 1 | 1KiB | 1 | 1 | – |")
	assert.Contains(t, s, "**9.00**", "Bracha n=4 full mode: 2n+1")
	assert.Contains(t, s, "**zookeeper**: skipped — not available")
	assert.Contains(t, s, "Covered: bracha, pbft.")
	for _, f := range files[1:] {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(b, []byte("\x89PNG")), f)
	}
	assert.GreaterOrEqual(t, len(files), 3, "markdown and at least two plots")
}
