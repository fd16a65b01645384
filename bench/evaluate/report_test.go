package evaluate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bench"
	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/pbft"
)

var specs = []broadcast.Spec{bracha.Spec, pbft.Spec, dolevstrong.Spec}

// fake gives every planned point a result whose figures follow the shape
// the report explains: full mode's bytes grow with n², digest mode's with
// n; copying costs a copy per byte; the strip cuts duplicates.
func fake(pts []bench.Point) []bench.Result {
	var out []bench.Result
	for _, pt := range pts {
		n := float64(pt.N)
		r := bench.Result{Protocol: pt.Protocol, Mode: pt.Mode.String(), Transport: pt.Transport, Cluster: pt.Cluster,
			N: pt.N, F: pt.F, PayloadBytes: pt.PayloadBytes, Batch: pt.Batch, Deliveries: 100, DeliveriesPerSec: 1000 / n,
			LatencyP50Ms: 1, LatencyP99Ms: 2, CPUMicrosPerDelivery: 50 + 10*n, PeakRSSMB: 100}
		for _, b := range pt.Byzantine {
			r.Byzantine = b.String()
		}
		if pt.Mode == broadcast.ModeFull {
			r.PayloadDupFactor = 2*n - 1
			r.WireBytesPerDelivery = float64(pt.PayloadBytes) * (2*n - 1)
		} else {
			r.PayloadDupFactor = 1
			r.WireBytesPerDelivery = float64(pt.PayloadBytes) + 150*n
			r.DeliveriesPerSec *= 3
		}
		switch pt.Transport {
		case "xdp-copy", "udp":
			r.CopiesPerPayloadByte = r.PayloadDupFactor
		case "xdp":
			r.PayloadDupFactor = 1
			r.DeliveriesPerSec *= 1.5
		}
		r.WireFactor = r.WireBytesPerDelivery / float64(pt.PayloadBytes)
		out = append(out, r)
	}
	return out
}

func TestReportStatesEveryComparisonWithPlots(t *testing.T) {
	p, err := newPlan(true, true, specs)
	require.NoError(t, err)
	ev := &Evaluation{Quick: true, Netns: true, plan: p, H2HPayload: 1024,
		Matrix: fake(p.matrix.points), Byzantine: fake(p.byzantine.points), Ablation: fake(p.ablation.points),
		ScaleMem: fake(p.scaleMem.points), ScaleNet: fake(p.scaleNet.points),
		H2H: []H2HResult{{System: "onecast-digest", RequestsPerSec: 900, LatencyP99Ms: 30, WireBytesPerRequest: 6000},
			{System: "smartbft", RequestsPerSec: 300, LatencyP99Ms: 90, WireBytesPerRequest: 20000}, {System: "raft", RequestsPerSec: 5000}},
		ByzSim: runByzSim()}
	dir := t.TempDir()
	files, err := ev.Write(filepath.Join(dir, "EVALUATION.md"))
	require.NoError(t, err)
	for _, f := range files {
		st, err := os.Stat(f)
		require.NoError(t, err)
		assert.Positive(t, st.Size(), f)
	}
	for _, plot := range []string{plotMatrixTput, plotMatrixWire, plotAblation, plotScaleBytes, plotScaleTput, plotModel, plotH2H, plotH2HWire} {
		assert.FileExists(t, filepath.Join(dir, "evaluation", plot))
	}
	md, err := os.ReadFile(filepath.Join(dir, "EVALUATION.md"))
	require.NoError(t, err)
	doc := string(md)
	for _, want := range []string{
		"**Digest vs full, bracha**", "**Digest vs full, pbft**", "**Digest vs full, dolevstrong**",
		"**Reference passing vs copying**", "**In-kernel strip on vs off**", "**onecast pbft vs SmartBFT**",
		"900 vs 300 requests/s (3.00×)",
		"sudo onecast bench --protocol bracha --mode full --cluster netns --transport udp --n 4 --payload 16KiB",
		"cd bench/h2h && go run ./cmd/h2h",
		"| in-kernel strip (full mode) |", "| batching (PBFT) |",
		"| bracha | none | 9.00 | 1.00 |", "| pbft | equivocate |",
	} {
		assert.Contains(t, doc, want)
	}
	assert.NotContains(t, doc, "not measured", "every ablation step has both of its points")
	assert.NotContains(t, doc, "failed:", "every simulator run completed")
	for _, r := range ev.ByzSim {
		assert.Empty(t, r.Violations, "%s: the simulator's checkers hold under every behaviour", r.OwnPoint)
	}
	// The fits tell the modes apart: full mode's bytes are mostly the n²
	// term, digest mode's hardly.
	share := func(mode string) string {
		i := strings.Index(doc, "- "+mode+" mode: bytes per broadcast")
		require.GreaterOrEqual(t, i, 0, mode)
		line := doc[i:]
		return line[:strings.Index(line, "\n")]
	}
	assert.Contains(t, share("full"), "2.00× the payload size", "full: (2n−1)·n payloads per broadcast")
	assert.Contains(t, share("digest"), "0.04× the payload size", "digest: one payload per node, n² small headers")

	var back map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "evaluation", "results.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Len(t, back["Matrix"], len(p.matrix.points))
}

func TestPlanWithoutRootLeavesOutAFXDP(t *testing.T) {
	p, err := newPlan(true, false, specs)
	require.NoError(t, err)
	for _, pt := range p.parts() {
		for _, x := range pt.points {
			assert.NotEqual(t, "netns", x.Cluster, x.Key())
			assert.NotContains(t, x.Transport, "xdp", x.Key())
		}
	}
	q, err := newPlan(true, true, specs)
	require.NoError(t, err)
	full, err := newPlan(false, true, specs)
	require.NoError(t, err)
	count := func(p *plan) (n int) {
		for _, pt := range p.parts() {
			n += len(pt.points)
		}
		return n
	}
	assert.Equal(t, 44, count(q), "the report's Profiles section says 44")
	assert.Equal(t, 110, count(full), "the report's Profiles section says 110")
	assert.Len(t, q.matrix.points, 3*4, "3 protocols × 4 configurations")
}
