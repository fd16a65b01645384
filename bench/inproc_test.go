package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
)

func inprocOpts() Options {
	return Options{Specs: []broadcast.Spec{bracha.Spec}, Clusters: map[string]ClusterFactory{"inproc": Inproc(nil)}}
}

func shortPoint(mode broadcast.Mode, transport string) Point {
	return Point{Protocol: "bracha", Mode: mode, Transport: transport, Cluster: "inproc", N: 4, F: 1,
		PayloadBytes: 16 << 10, Batch: 1, Inflight: 16, Warmup: 200 * time.Millisecond, Duration: 700 * time.Millisecond,
		Auth: broadcast.SchemeMAC}
}

// TestInprocBrachaDuplicationFactors checks the figures that the counters
// make exact, whatever the machine's speed: in digest mode a correct node
// receives each payload once (factor 1.00); in full mode about 2n−1 times.
func TestInprocBrachaDuplicationFactors(t *testing.T) {
	results, interrupted := Run(context.Background(), []Point{
		shortPoint(broadcast.ModeFull, "mem"), shortPoint(broadcast.ModeDigest, "mem"),
	}, inprocOpts())
	require.False(t, interrupted)
	require.Len(t, results, 2)
	full, digest := results[0], results[1]
	require.Empty(t, full.Error)
	require.Empty(t, digest.Error)
	assert.Greater(t, full.Deliveries, uint64(0))
	assert.Greater(t, digest.Deliveries, uint64(0))

	assert.InDelta(t, 1.0, digest.PayloadDupFactor, 0.02, "digest mode: each payload received once")
	assert.Less(t, digest.WireFactor, 1.10)
	// Full mode, every node broadcasting in turn: each of the n−1 other
	// nodes receives the payload 2n−1 times (SEND, and ECHO and READY from
	// every peer), and the origin receives its own payload back 2(n−1) times,
	// over n−1 remote deliveries: 2n+1 = 9 at n = 4.
	assert.InDelta(t, 9.0, full.PayloadDupFactor, 0.05)
	assert.Zero(t, digest.CopiesPerPayloadByte, "the mem transport passes payloads by reference")
	assert.Greater(t, digest.LatencyP99Ms, 0.0)
}

func TestInprocBrachaOverUDP(t *testing.T) {
	pt := shortPoint(broadcast.ModeDigest, "udp")
	pt.PayloadBytes = 4 << 10
	results, _ := Run(context.Background(), []Point{pt}, inprocOpts())
	require.Len(t, results, 1)
	r := results[0]
	require.Empty(t, r.Error)
	assert.Greater(t, r.Deliveries, uint64(0))
	assert.InDelta(t, 1.0, r.PayloadDupFactor, 0.05)
	// Each node receives the n−1 others' payloads and delivers all n: one
	// kernel copy per received payload byte is 0.75 per delivered byte (more
	// when the store moves held payloads out of a low receive pool).
	assert.GreaterOrEqual(t, r.CopiesPerPayloadByte, 0.74, "kernel sockets copy every received byte into user memory")
}

func TestInprocSilentNode(t *testing.T) {
	pt := shortPoint(broadcast.ModeDigest, "mem")
	pt.Byzantine = []Byzantine{{Count: 1, Behaviour: "silent"}}
	results, _ := Run(context.Background(), []Point{pt}, inprocOpts())
	require.Len(t, results, 1)
	require.Empty(t, results[0].Error)
	assert.Greater(t, results[0].Deliveries, uint64(0), "three correct nodes of four still deliver")

	pt.Byzantine = []Byzantine{{Count: 1, Behaviour: "equivocate"}}
	results, _ = Run(context.Background(), []Point{pt}, inprocOpts())
	require.Len(t, results, 1)
	assert.Contains(t, results[0].Error, "simulator", "unsupported behaviours are refused with a pointer to the simulator")
}
