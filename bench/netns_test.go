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
	ok, why := netns.Available()
	env.Need(t, ok, "netns cluster: "+why)
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
	// Every payload byte a node receives is copied at least once (more when
	// the store moves held payloads out of a low receive pool); a node
	// receives the payloads of the n−1 others and delivers all n.
	assert.GreaterOrEqual(t, results[0].CopiesPerPayloadByte, 0.74, "udp: the kernel copies each received byte into user memory")
	assert.Zero(t, results[1].CopiesPerPayloadByte, "xdp: payloads reach the protocol by reference in UMEM")
	// The kernel's copies: veth binds AF_XDP in copy mode, so the kernel
	// copies each received byte into UMEM; recvmmsg's copy is in the
	// receive column already.
	assert.Zero(t, results[0].KernelCopiesPerPayloadByte, "udp: recvmmsg's copy is counted as a receive copy")
	assert.GreaterOrEqual(t, results[1].KernelCopiesPerPayloadByte, 0.74, "xdp on veth: copy mode, the kernel copies into UMEM")
	// The send side: sendmmsg gathers from the payload's buffers (the
	// kernel's copy); AF_XDP sends payloads built in the origin's UMEM by
	// reference (multi-buffer TX descriptors), copying none.
	assert.Zero(t, results[0].SendCopiesPerPayloadByte, "udp: no user-space copy on send")
	assert.Empty(t, results[0].SendCopyFallback)
	assert.Zero(t, results[1].SendCopiesPerPayloadByte, "xdp: payloads sent by reference from UMEM")
	assert.Empty(t, results[1].SendCopyFallback, "xdp: no copy to explain")
}

// TestNetnsXDPAblation runs full-mode Bracha (every ECHO and READY carries
// the payload) over the three AF_XDP receive paths: copying out of UMEM
// copies every received payload byte; passing references copies none but
// still receives every duplicate; the in-kernel strip removes duplicates
// before they reach user space.
func TestNetnsXDPAblation(t *testing.T) {
	ok, why := netns.Available()
	env.Need(t, ok, "netns cluster: "+why)
	opts := Options{Specs: []broadcast.Spec{bracha.Spec}, Clusters: map[string]ClusterFactory{"netns": Netns(nil)}}
	var points []Point
	for _, tr := range []string{"xdp-copy", "xdp-ref", "xdp"} {
		pt := shortPoint(broadcast.ModeFull, tr)
		pt.Cluster = "netns"
		pt.PayloadBytes = 4 << 10
		points = append(points, pt)
	}
	results, interrupted := Run(context.Background(), points, opts)
	require.False(t, interrupted)
	require.Len(t, results, 3)
	byTr := map[string]Result{}
	for _, r := range results {
		require.Empty(t, r.Error, r.Transport)
		require.Greater(t, r.Deliveries, uint64(0), r.Transport)
		require.Zero(t, r.Incomplete, r.Transport)
		byTr[r.Transport] = r
		t.Logf("%s: dup %.2f wire %.2f copies/B %.2f tx copies/B %.2f", r.Transport, r.PayloadDupFactor, r.WireFactor,
			r.CopiesPerPayloadByte, r.SendCopiesPerPayloadByte)
	}
	cp, ref, strip := byTr["xdp-copy"], byTr["xdp-ref"], byTr["xdp"]
	// Copies count against every delivered byte, dup against remote ones:
	// a node delivers n payloads and receives the n−1 remote ones.
	assert.InDelta(t, cp.PayloadDupFactor*3/4, cp.CopiesPerPayloadByte, 0.3, "xdp-copy copies every payload byte it receives, once")
	assert.Zero(t, ref.CopiesPerPayloadByte, "xdp-ref passes references")
	// Full mode forwards received payloads (ECHO, READY): they lie in the
	// UMEM they arrived in and go out by reference too.
	assert.Zero(t, ref.SendCopiesPerPayloadByte, "xdp-ref sends by reference")
	assert.Zero(t, strip.SendCopiesPerPayloadByte, "xdp sends by reference")
	assert.Greater(t, cp.SendCopiesPerPayloadByte, 0.9, "xdp-copy: heap payloads and copied-out received ones are copied into TX frames")
	assert.Greater(t, ref.PayloadDupFactor, 3.0, "full mode without the strip: duplicates reach user space")
	assert.Less(t, strip.PayloadDupFactor, ref.PayloadDupFactor/2, "the kernel strips most duplicates")
}
