package netio_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onecast/onecast/broadcast"
)

// BenchmarkBrachaUDP broadcasts b.N payloads (Bracha, digest mode, MAC
// links) on 4 nodes over kernel UDP on loopback, each origin keeping a few
// broadcasts in flight, and reports:
//   - deliveries/s: payloads delivered per second at each node;
//   - copies/B: user-space copies of payload bytes on the receive path per
//     payload byte delivered from another node (the kernel's copy into the
//     receive frame; ≥ 1 with kernel sockets, and above 1 by what arrives
//     twice: retransmissions, FETCH answers);
//   - wirecopies/B: every byte the kernel copied on receive (headers, acks,
//     votes included) per payload byte delivered from another node.
func BenchmarkBrachaUDP(b *testing.B) {
	for _, tc := range []struct {
		size, inFlight int
	}{{4 << 10, 64}, {64 << 10, 8}} {
		b.Run(fmt.Sprintf("n=4/size=%dKiB", tc.size>>10), func(b *testing.B) {
			const n = 4
			c := newBrachaClusterOpts(b, n, 0, udpNodeOpts{scheme: broadcast.SchemeMAC, frames: 65536, unchecked: true})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			progress := make([]atomic.Int64, n)
			b.ReportAllocs()
			b.SetBytes(int64(tc.size))
			b.ResetTimer()
			start := time.Now()
			wg := c.submitPaced(ctx, []broadcast.NodeID{0, 1, 2, 3}, b.N, tc.size, tc.inFlight, nil, progress)
			for i := range n {
				waitFor(b, 5*time.Minute, func() bool { return c.delivered(broadcast.NodeID(i)) >= b.N }, c.state)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			wg.Wait()
			var copied, remote, wire, retx, frames uint64
			for _, nd := range c.nodes {
				s := nd.metrics.Snapshot()
				copied += s.CopiedBytes
				remote += s.RemoteDeliveredBytes
				wire += nd.conduit.Stats().RecvCopiedBytes
				ls := nd.link.Stats()
				retx += ls.Retransmits
				frames += ls.FramesSent
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(copied)/float64(remote), "copies/B")
			b.ReportMetric(float64(wire)/float64(remote), "wirecopies/B")
			b.ReportMetric(float64(retx)/float64(frames), "retx/frame")
			c.close()
		})
	}
}
