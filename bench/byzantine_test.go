package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/pbft"
)

// TestInprocWireByzantineOverUDP runs a wire-level Byzantine node in an
// in-process UDP cluster (no root needed): the garbage it sends is refused
// by the correct nodes' links, and they deliver every payload; the
// held-spray node's own broadcasts, delivered too, are not counted as the
// point's.
func TestInprocWireByzantineOverUDP(t *testing.T) {
	var points []Point
	for _, beh := range []string{"garbage", "held-spray"} {
		pt := shortPoint(broadcast.ModeDigest, "udp")
		pt.PayloadBytes = 4 << 10
		pt.Byzantine = []Byzantine{{Count: 1, Behaviour: beh}}
		points = append(points, pt)
	}
	results, _ := Run(context.Background(), points, inprocOpts())
	require.Len(t, results, 2)
	for _, r := range results {
		require.Empty(t, r.Error, r.Byzantine)
		assert.Positive(t, r.Deliveries, r.Byzantine)
		assert.Zero(t, r.Incomplete, r.Byzantine)
		assert.GreaterOrEqual(t, r.Refusals.MinFreeFrames, 0, "the receive pools were sampled")
	}
	assert.Positive(t, results[0].Refusals.LinkRejected, "garbage is refused as malformed")
}

func TestParseWirePacing(t *testing.T) {
	b, n, err := parseWire("fetch-flood@4")
	require.NoError(t, err)
	assert.Equal(t, "fetch-flood", string(b))
	assert.Equal(t, 4, n)
	_, n, err = parseWire("garbage")
	require.NoError(t, err)
	assert.Zero(t, n, "the behaviour's default load")
	for _, bad := range []string{"garbage@0", "garbage@x", "loud@2", "silent"} {
		_, _, err := parseWire(bad)
		assert.Error(t, err, bad)
	}
}

func TestWireBehavioursNeedARealTransport(t *testing.T) {
	pt := shortPoint(broadcast.ModeDigest, "mem")
	pt.Byzantine = []Byzantine{{Count: 1, Behaviour: "garbage"}}
	results, _ := Run(context.Background(), []Point{pt}, inprocOpts())
	require.Len(t, results, 1)
	assert.Contains(t, results[0].Error, "needs --transport udp or xdp")
}

func TestSweepByzantineVariants(t *testing.T) {
	s := Sweep{Protocols: []string{"bracha"}, Modes: []broadcast.Mode{broadcast.ModeDigest}, Transports: []string{"udp"},
		Clusters: []string{"netns"}, Ns: []int{4}, Payloads: []int{1024}, Batches: []int{1}, Rates: []float64{0}, Inflight: []int{8},
		Byzantine:         []Byzantine{{Count: 1, Behaviour: "silent"}},
		ByzantineVariants: [][]Byzantine{nil, {{Count: 1, Behaviour: "garbage"}}}}
	pts, err := s.Points([]broadcast.Spec{bracha.Spec})
	require.NoError(t, err)
	require.Len(t, pts, 2)
	assert.Equal(t, []Byzantine{{1, "silent"}}, pts[0].Byzantine)
	assert.Equal(t, []Byzantine{{1, "silent"}, {1, "garbage"}}, pts[1].Byzantine)
}

// TestBudgetTableComparesWithTheFaultFreePoint checks the resource-budget
// table: printed only with Byzantine points, each row's deliveries/s over
// the fault-free point's, the counters, and a legend line per column.
func TestBudgetTableComparesWithTheFaultFreePoint(t *testing.T) {
	base := Result{Protocol: "bracha", Mode: "digest", Transport: "udp", Cluster: "netns", N: 4, F: 1, PayloadBytes: 16384, Batch: 1,
		DeliveriesPerSec: 1000, Refusals: Refusals{MinFreeFrames: 900}}
	var tbl bytes.Buffer
	require.NoError(t, WriteTable(&tbl, []Result{base}))
	assert.NotContains(t, tbl.String(), "resource budgets", "no Byzantine point, no budget table")

	byz := base
	byz.Byzantine = "1:garbage"
	byz.DeliveriesPerSec = 600
	byz.Refusals = Refusals{LinkRejected: 1234, MinFreeFrames: -1}
	tbl.Reset()
	require.NoError(t, WriteTable(&tbl, []Result{base, byz}))
	out := tbl.String()
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "byz=1:garbage") && strings.Contains(l, "1234") {
			row = l
		}
	}
	require.NotEmpty(t, row, out)
	assert.Contains(t, row, " 0.60 ", "deliveries/s over the fault-free point's")
	assert.Contains(t, row, " – ", "an unknown free-frame minimum")
	for _, c := range budgetColumns {
		if c.legend != "" {
			assert.Contains(t, out, c.legend, c.name)
		}
	}
}

func TestRefusalsAddKeepsTheSmallestFreeFrames(t *testing.T) {
	r := Refusals{MinFreeFrames: -1}
	r.add(Refusals{LinkQuotaDrops: 1, FetchRefused: 2, MinFreeFrames: 50})
	r.add(Refusals{LinkQuotaDrops: 3, MinFreeFrames: -1})
	r.add(Refusals{FutureStripped: 4, MinFreeFrames: 20})
	assert.Equal(t, Refusals{LinkQuotaDrops: 4, FetchRefused: 2, FutureStripped: 4, MinFreeFrames: 20}, r)
}

func TestFreeSamplerKeepsTheMinimum(t *testing.T) {
	pool, err := bufpool.New(bufpool.Config{FrameSize: 64, Frames: 8})
	require.NoError(t, err)
	s := NewFreeSampler(func() int { return pool.Stats().Free })
	defer s.Stop()
	b, err := pool.Get()
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return s.Min() == 7 }, 2*sampleEvery*10, sampleEvery)
	b.Release()
	assert.Never(t, func() bool { return s.Min() != 7 }, 3*sampleEvery, sampleEvery, "the minimum stays")
}

// TestCorrectPeersStayWithinTheirReceiveRate: in fault-free runs over
// the reliable link (an in-process UDP cluster, the nodes' default link
// configuration), no correct peer ever has a frame held for its receive
// rate (netio/link Config.RecvRate) or dropped for its frame quota: the
// budgets that hold a flooding peer back cost correct peers nothing,
// whether their traffic is payload-heavy (Bracha full mode, 16 KiB) or
// message-heavy (1 KiB payloads, PBFT's three phases).
func TestCorrectPeersStayWithinTheirReceiveRate(t *testing.T) {
	var points []Point
	for _, c := range []struct {
		protocol string
		mode     broadcast.Mode
		size     int
	}{
		{"bracha", broadcast.ModeDigest, 16 << 10},
		{"bracha", broadcast.ModeFull, 16 << 10},
		{"bracha", broadcast.ModeDigest, 1 << 10},
		{"pbft", broadcast.ModeDigest, 16 << 10},
		{"pbft", broadcast.ModeDigest, 1 << 10},
	} {
		pt := shortPoint(c.mode, "udp")
		pt.Protocol, pt.PayloadBytes, pt.Inflight = c.protocol, c.size, 32
		points = append(points, pt)
	}
	opts := inprocOpts()
	opts.Specs = append(opts.Specs, pbft.Spec)
	results, interrupted := Run(context.Background(), points, opts)
	require.False(t, interrupted)
	require.Len(t, results, len(points))
	for _, r := range results {
		name := r.Protocol + "/" + r.Mode + "/" + FormatSize(r.PayloadBytes)
		require.Empty(t, r.Error, name)
		assert.Positive(t, r.Deliveries, name)
		assert.Zero(t, r.Refusals.RateDeferred, "%s: a correct peer held for its receive rate", name)
		assert.Zero(t, r.Refusals.LinkQuotaDrops, name)
		t.Logf("%s: %.0f deliveries/s, %+v", name, r.DeliveriesPerSec, r.Refusals)
	}
}
