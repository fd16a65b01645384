package bench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/netio/node"
	"github.com/onecast/onecast/netio/xdp"
)

// healthyXDP is a fault-free AF_XDP point's counters as measured on veth
// (bracha full xdp/netns n=4, 2026-12-06): 0.3% resent, the UMEM never
// low (copy mode left out).
func healthyXDP() Result {
	return Result{Protocol: "bracha", Mode: "full", Transport: "xdp", Cluster: "netns", N: 4, F: 1, PayloadBytes: 16 << 10, Batch: 1,
		DeliveriesPerSec: 722, Refusals: Refusals{MinFreeFrames: 30012},
		Health: Health{FramesSent: 410745, Retransmits: 1124, Timeouts: 604, FillRingEmpty: 436, KernelRxDropped: 436,
			ReceiveFrames: 32768}}
}

// TestNotesAppearOnlyWhenTheirConditionHolds checks each note of the table
// against its condition: it is printed for a point whose counters meet it
// (from what the counters say), and not for one whose counters do not.
func TestNotesAppearOnlyWhenTheirConditionHolds(t *testing.T) {
	notes := func(r Result) string {
		var b bytes.Buffer
		require.NoError(t, WriteTable(&b, []Result{r}))
		var out []string
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, "note: ") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	assert.Empty(t, notes(healthyXDP()), "0.3%% resent, 30012 of 32768 frames free: nothing to explain")

	// The point issue 21 saw, measured on the code before issue 19's
	// receive path (f287906): 174 deliveries/s, p99 726 ms.
	lossy := healthyXDP()
	lossy.Health = Health{FramesSent: 244337, Retransmits: 4656, Timeouts: 1283, FillRingEmpty: 3797, KernelRxDropped: 3797, ReceiveFrames: 32768}
	s := notes(lossy)
	assert.Contains(t, s, "note: bracha full xdp/netns n=4 f=1 16KiB b=1: the links resent 1.9% of their data frames (4656 of 244337; 1283 retransmission timeouts")
	assert.Contains(t, s, "frames lost: AF_XDP fill ring empty 3797, AF_XDP socket drops 3797")
	assert.NotContains(t, s, "RX ring full", "a counter at zero is not named")
	assert.NotContains(t, s, "receive pool ran low")

	// Resent without a drop counted: the note says no drop was seen.
	unseen := healthyXDP()
	unseen.Health = Health{FramesSent: 1000, Retransmits: 10, Timeouts: 10}
	assert.Contains(t, notes(unseen), "resent 1.0% of their data frames (10 of 1000; 10 retransmission timeouts")
	assert.Contains(t, notes(unseen), "no drop counted")
	unseen.Health.Retransmits = 9
	assert.Empty(t, notes(unseen), "0.9%% resent is under the threshold")

	// The receive pool: low, empty, or under its watermark.
	low := healthyXDP()
	low.Refusals.MinFreeFrames = 3000
	assert.Contains(t, notes(low), "the receive pool ran low (3000 of 32768 frames free at the fewest): found empty 0 times; 0 payloads copied out")
	low.Refusals.MinFreeFrames = 3300
	assert.Empty(t, notes(low), "10% free is not low")
	low.Health.Rehomed = 7018
	assert.Contains(t, notes(low), "7018 payloads copied out of it to the heap")
	low.Health.Rehomed, low.Health.PoolEmpty = 0, 5
	assert.Contains(t, notes(low), "found empty 5 times")

	// A failed point has no notes.
	lossy.Error = "node 2 exited"
	assert.Empty(t, notes(lossy))
}

// TestCopyModeIsOneNoteForTheTable checks the copy-mode note: from the
// sockets' binding, one line naming the points, or "every AF_XDP point"
// when all of them ran so; none when no point did.
func TestCopyModeIsOneNoteForTheTable(t *testing.T) {
	note := func(rs ...Result) string {
		var b bytes.Buffer
		require.NoError(t, WriteTable(&b, rs))
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, "note: AF_XDP") {
				return l
			}
		}
		return ""
	}
	full, digest := healthyXDP(), healthyXDP()
	digest.Mode = "digest"
	assert.Empty(t, note(full, digest), "zero-copy sockets")
	full.Health.CopyMode = true
	assert.Equal(t, "note: AF_XDP ran in copy mode in bracha full xdp/netns n=4 f=1 16KiB b=1: the interface has no zero-copy driver (veth has none), so the kernel copied every received frame into the UMEM (krn copies/B)", note(full, digest))
	digest.Health.CopyMode = true
	udp := healthyXDP()
	udp.Transport, udp.Health = "udp", Health{ReceiveFrames: 8192}
	assert.Contains(t, note(full, digest, udp), "note: AF_XDP ran in copy mode in every AF_XDP point (2): ")
}

// TestNodeHealthReadsTheNodesCounters checks where each Health counter
// comes from, and that a window's counters are the difference of two
// readings summed over the nodes.
func TestNodeHealthReadsTheNodesCounters(t *testing.T) {
	var m node.Metrics
	m.Link.FramesSent, m.Link.Retransmits, m.Link.Timeouts = 100, 7, 3
	m.XDP = xdp.Stats{ZeroCopy: false, FillStarved: 2, TxDropped: 1, RehomedPayloads: 4}
	m.XDP.Socket.Rx_ring_full, m.XDP.Socket.Rx_fill_ring_empty_descs, m.XDP.Socket.Rx_dropped = 5, 6, 8
	m.UDP.NoFrame = 9
	m.Pool.Frames, m.UMEM.Frames = 8192, 32768
	h := NodeHealth(m)
	assert.Equal(t, Health{FramesSent: 100, Retransmits: 7, Timeouts: 3, RxRingFull: 5, FillRingEmpty: 6, KernelRxDropped: 8,
		PoolEmpty: 11, TxDropped: 1, Rehomed: 4, ReceiveFrames: 32768, CopyMode: true}, h)
	m.UMEM.Frames = 0 // no AF_XDP: the node's pool, and no copy mode
	assert.Equal(t, 8192, NodeHealth(m).ReceiveFrames)
	assert.False(t, NodeHealth(m).CopyMode)

	var sum Health
	sum.add(h)
	sum.add(h)
	assert.Equal(t, uint64(200), sum.FramesSent)
	assert.Equal(t, 32768, sum.ReceiveFrames)
	w := sum.sub(h)
	assert.Equal(t, uint64(100), w.FramesSent)
	assert.Equal(t, uint64(7), w.Retransmits)
	assert.True(t, w.CopyMode)
}
