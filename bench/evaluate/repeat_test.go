package evaluate

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bench"
	"github.com/onecast/onecast/broadcast"
)

// repeated runs each fake result three times at ×0.5, ×1 and ×2 its rate
// and folds them as bench.Run does with Options.Repeat.
func repeated(rs []bench.Result) []bench.Result {
	out := make([]bench.Result, len(rs))
	for i, r := range rs {
		var runs []bench.Result
		for _, k := range []float64{0.5, 1, 2} {
			x := r
			x.DeliveriesPerSec *= k
			runs = append(runs, x)
		}
		out[i] = bench.Summarize(runs)
	}
	return out
}

// TestRepeatedReportGivesMediansWithRanges checks what --repeat changes in
// the report: the summary says each figure is the median of the runs, each
// headline ratio carries the range of the runs' ratios, the head-to-head
// its own, the commands carry --repeat, and the load average is stated.
func TestRepeatedReportGivesMediansWithRanges(t *testing.T) {
	p, err := newPlan(true, true, specs)
	require.NoError(t, err)
	for _, pt := range p.parts() {
		pt.repeat = 3
	}
	ev := &Evaluation{Quick: true, Netns: true, plan: p, H2HPayload: 1024, Repeat: 3, LoadAverage: [2]string{"7.73 8.69 6.83", "6.90 8.27 6.81"},
		Matrix: repeated(fake(p.matrix.points)), Byzantine: repeated(fake(p.byzantine.points)), Ablation: repeated(fake(p.ablation.points)),
		ScaleMem: repeated(fake(p.scaleMem.points)), ScaleNet: repeated(fake(p.scaleNet.points)),
		H2H: medianH2H([][]H2HResult{
			{{System: "onecast-digest", RequestsPerSec: 900}, {System: "smartbft", RequestsPerSec: 300}},
			{{System: "onecast-digest", RequestsPerSec: 1800}, {System: "smartbft", RequestsPerSec: 400}},
			{{System: "onecast-digest", RequestsPerSec: 600}, {System: "smartbft", RequestsPerSec: 600}},
		}),
		ByzSim: runByzSim()}
	dir := t.TempDir()
	_, err = ev.Write(filepath.Join(dir, "EVALUATION.md"))
	require.NoError(t, err)
	md, err := os.ReadFile(filepath.Join(dir, "EVALUATION.md"))
	require.NoError(t, err)
	doc := string(md)
	for _, want := range []string{
		"Each figure is the median of 3 runs of its point (`--repeat 3`)",
		"Load average (1, 5, 15 min) at the start 7.73 8.69 6.83, at the end 6.90 8.27 6.81.",
		// The fake digest rate is 3× full's in every run: a range of 3.00–3.00×.
		"**Digest vs full, bracha** (n = 4, 16 KiB, UDP): 3.00× the throughput (runs 3.00–3.00×)",
		// Each system's median run: 900 vs 400 (2.25×); the runs' ratios
		// 3.00, 4.50, 1.00.
		"900 vs 400 requests/s (2.25×, runs 1.00–4.50×)",
		"--warmup 500ms --repeat 3",
		"Run 3 times: each figure is the median run's",
	} {
		assert.Contains(t, doc, want)
	}
}

// TestOneRunReportSaysItIsOne checks that a report of single runs says so
// and what a headline figure wants.
func TestOneRunReportSaysItIsOne(t *testing.T) {
	p, err := newPlan(true, false, specs)
	require.NoError(t, err)
	ev := &Evaluation{Quick: true, plan: p, H2HPayload: 1024, Repeat: 1,
		Matrix: fake(p.matrix.points), Byzantine: fake(p.byzantine.points), Ablation: fake(p.ablation.points),
		ScaleMem: fake(p.scaleMem.points), ScaleNet: fake(p.scaleNet.points), ByzSim: runByzSim()}
	dir := t.TempDir()
	_, err = ev.Write(filepath.Join(dir, "EVALUATION.md"))
	require.NoError(t, err)
	md, err := os.ReadFile(filepath.Join(dir, "EVALUATION.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "One run per point: a headline figure wants `--repeat 3`")
	assert.Contains(t, string(md), "Load average (1, 5, 15 min) at the start unknown")
	assert.NotContains(t, string(md), "(runs ")
	assert.NotContains(t, string(md), "--repeat 1")
}

func TestMedianH2HKeepsTheMedianRunAndEveryRate(t *testing.T) {
	got := medianH2H([][]H2HResult{
		{{System: "a", RequestsPerSec: 5, LatencyP99Ms: 50}, {System: "b", RequestsPerSec: 1}},
		{{System: "a", RequestsPerSec: 1, LatencyP99Ms: 10}, {System: "b", Error: "boom"}},
		{{System: "a", RequestsPerSec: 3, LatencyP99Ms: 30}, {System: "b", RequestsPerSec: 2}},
	})
	require.Len(t, got, 2)
	assert.Equal(t, 3.0, got[0].RequestsPerSec)
	assert.Equal(t, 30.0, got[0].LatencyP99Ms, "the median run's other figures")
	assert.Equal(t, []float64{5, 1, 3}, got[0].RunsPerSec)
	assert.Equal(t, "boom", got[1].Error, "a failed run is not hidden")
	assert.Equal(t, runsRange([]float64{2, 4}, []float64{1, 1}), " (runs 2.00–4.00×)")
	assert.Empty(t, runsRange([]float64{2}, []float64{1}))
}

// syncBuf is a bytes.Buffer safe for the progress goroutine and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunPassesProgressLinesAndRepeat runs an evaluation whose clusters fail
// at once (the first after a moment, for the first progress line): with
// ProgressLines the progress is lines, not a bar, every point runs Repeat
// times, and the report records the repeat and the load average.
func TestRunPassesProgressLinesAndRepeat(t *testing.T) {
	var once sync.Once
	var starts atomic.Int64
	failing := func(ctx context.Context, pt bench.Point, spec broadcast.Spec, sink bench.Sink) (bench.Cluster, bench.Load, error) {
		starts.Add(1)
		once.Do(func() { time.Sleep(150 * time.Millisecond) })
		return nil, bench.Load{}, errors.New("no cluster here")
	}
	var progress syncBuf
	ev, err := Run(context.Background(), []string{"evaluate"}, Options{Quick: true, Specs: specs,
		Clusters: map[string]bench.ClusterFactory{"inproc": failing}, Progress: &progress, ProgressLines: time.Hour, Repeat: 2})
	require.NoError(t, err)
	assert.Regexp(t, `bench: point 1 of \d+ \(.*run 1 of 2\)`, progress.String(), "a progress line, each point run twice")
	assert.NotContains(t, progress.String(), "\r", "no bar")
	assert.Equal(t, 2, ev.Repeat)
	assert.NotEmpty(t, ev.LoadAverage[0])
	assert.NotEmpty(t, ev.LoadAverage[1])
	assert.Positive(t, starts.Load())
}
