package bench

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/netns"
)

// TestNetnsClusterUDPAndXDP runs Bracha in digest mode in four network
// namespaces over kernel UDP and over AF_XDP: both deliver, the duplication
// factor is 1.00, and only the UDP receive path copies payload bytes into
// user memory.
func TestNetnsClusterUDPAndXDP(t *testing.T) {
	if ok, why := netns.Available(); !ok {
		t.Skipf("netns cluster needs root: %s", why)
	}
	opts := Options{Specs: []broadcast.Spec{bracha.Spec}, Clusters: map[string]ClusterFactory{"netns": Netns(nil)}}
	var points []Point
	for _, tr := range []string{"udp", "xdp"} {
		pt := shortPoint(broadcast.ModeDigest, tr)
		pt.Cluster = "netns"
		pt.PayloadBytes = 4 << 10
		points = append(points, pt)
	}
	results, interrupted := Run(context.Background(), points, opts)
	require.False(t, interrupted)
	require.Len(t, results, 2)
	for _, r := range results {
		require.Empty(t, r.Error, r.Transport)
		assert.Greater(t, r.Deliveries, uint64(0), r.Transport)
		assert.InDelta(t, 1.0, r.PayloadDupFactor, 0.05, r.Transport)
	}
	assert.GreaterOrEqual(t, results[0].CopiesPerPayloadByte, 1.0, "udp: the kernel copies each received byte into user memory")
	assert.Zero(t, results[1].CopiesPerPayloadByte, "xdp: payloads reach the protocol by reference in UMEM")
}
