package bench

import (
	"fmt"
	"io"
	"strings"

	"github.com/onecast/onecast/netio/node"
)

// Health are the counters that explain a slow or jittery point: how much
// the reliable link resent, where frames were lost, how close the receive
// pool came to running out, and whether AF_XDP ran in copy mode. They are
// summed over the correct nodes during the measured window (ReceiveFrames
// and CopyMode describe the nodes), and the notes under the table are
// derived from them (Notes).
type Health struct {
	// FramesSent counts the links' data frames, first transmissions only;
	// Retransmits the data frames sent again; Timeouts the retransmission
	// timeouts (each one a wait of an RTO, which shows in the p99).
	FramesSent  uint64 `json:"frames_sent"`
	Retransmits uint64 `json:"retransmits"`
	Timeouts    uint64 `json:"rto_timeouts"`
	// RxRingFull counts frames the kernel dropped because an AF_XDP RX
	// ring was full (the receive loop fell behind); FillRingEmpty the
	// frames it could not place for want of a fill-ring frame;
	// KernelRxDropped the AF_XDP sockets' other receive drops.
	RxRingFull      uint64 `json:"xdp_rx_ring_full"`
	FillRingEmpty   uint64 `json:"xdp_fill_ring_empty"`
	KernelRxDropped uint64 `json:"xdp_rx_dropped"`
	// PoolEmpty counts receives that found the user-space receive pool
	// empty (UDP: datagrams dropped, no frame; AF_XDP: fill-ring refills
	// that found no free frame).
	PoolEmpty uint64 `json:"pool_empty"`
	// TxDropped counts AF_XDP frames given up because the TX ring did not
	// drain for a second.
	TxDropped uint64 `json:"xdp_tx_dropped"`
	// Rehomed counts payloads the store copied out of the receive pool to
	// the heap because free frames ran under its watermark.
	Rehomed uint64 `json:"rehomed_payloads"`
	// ReceiveFrames is the size of a node's receive pool (the UDP pool or
	// the AF_XDP UMEM), the largest of the correct nodes'; 0 unknown.
	ReceiveFrames int `json:"receive_frames"`
	// CopyMode says an AF_XDP socket was bound in copy mode (the interface
	// has no zero-copy driver, as veth): the kernel copied every received
	// frame into the UMEM.
	CopyMode bool `json:"xdp_copy_mode,omitempty"`
}

// NodeHealth reads a node's Health counters from its metrics.
func NodeHealth(m node.Metrics) Health {
	h := Health{FramesSent: m.Link.FramesSent, Retransmits: m.Link.Retransmits, Timeouts: m.Link.Timeouts,
		RxRingFull: m.XDP.Socket.Rx_ring_full, FillRingEmpty: m.XDP.Socket.Rx_fill_ring_empty_descs,
		KernelRxDropped: m.XDP.Socket.Rx_dropped, PoolEmpty: m.UDP.NoFrame + m.XDP.FillStarved,
		TxDropped: m.XDP.TxDropped, Rehomed: m.UDP.RehomedPayloads + m.XDP.RehomedPayloads,
		ReceiveFrames: m.Pool.Frames}
	if m.UMEM.Frames > 0 {
		h.ReceiveFrames = m.UMEM.Frames
		h.CopyMode = !m.XDP.ZeroCopy
	}
	return h
}

// add sums the counters of another node.
func (h *Health) add(o Health) {
	h.FramesSent += o.FramesSent
	h.Retransmits += o.Retransmits
	h.Timeouts += o.Timeouts
	h.RxRingFull += o.RxRingFull
	h.FillRingEmpty += o.FillRingEmpty
	h.KernelRxDropped += o.KernelRxDropped
	h.PoolEmpty += o.PoolEmpty
	h.TxDropped += o.TxDropped
	h.Rehomed += o.Rehomed
	h.ReceiveFrames = max(h.ReceiveFrames, o.ReceiveFrames)
	h.CopyMode = h.CopyMode || o.CopyMode
}

// sub returns the counters of the window from before to h.
func (h Health) sub(before Health) Health {
	d := func(a, b uint64) uint64 {
		if a < b {
			return 0 // a node restarted: its counters did too
		}
		return a - b
	}
	return Health{FramesSent: d(h.FramesSent, before.FramesSent), Retransmits: d(h.Retransmits, before.Retransmits),
		Timeouts: d(h.Timeouts, before.Timeouts), RxRingFull: d(h.RxRingFull, before.RxRingFull),
		FillRingEmpty: d(h.FillRingEmpty, before.FillRingEmpty), KernelRxDropped: d(h.KernelRxDropped, before.KernelRxDropped),
		PoolEmpty: d(h.PoolEmpty, before.PoolEmpty), TxDropped: d(h.TxDropped, before.TxDropped),
		Rehomed: d(h.Rehomed, before.Rehomed), ReceiveFrames: h.ReceiveFrames, CopyMode: h.CopyMode}
}

// The thresholds of the notes.
const (
	// noteResentPercent: a point whose links resent this share of their
	// data frames or more lost enough frames to show in its rate and p99:
	// measured on veth (bracha n=4, 16 KiB), the fault-free points of
	// udp and xdp resend 0.1–0.3%, the xdp full point of issue 21 (before
	// issue 19's receive path: 174 deliveries/s, p99 726 ms) 1.9%.
	noteResentPercent = 1.0
	// noteFreeFraction: a receive pool whose free frames fell under this
	// share of its frames ran low.
	noteFreeFraction = 0.1
)

// Notes explains, from its counters, why a point may be slower or have a
// longer tail than its neighbours: one line per condition met, nothing when
// none is.
//   - the links resent noteResentPercent of their data frames or more:
//     how many, the retransmission timeouts, and the receive drops counted
//     (or that none was);
//   - the receive pool ran low (under noteFreeFraction of its frames free),
//     empty, or under its watermark (payloads copied out to the heap).
//
// Whether AF_XDP ran in copy mode is one note for the whole table (see
// writeNotes).
func (r *Result) Notes() []string {
	if r.Error != "" {
		return nil
	}
	h := r.Health
	var out []string
	if h.FramesSent > 0 && 100*float64(h.Retransmits) >= noteResentPercent*float64(h.FramesSent) {
		s := fmt.Sprintf("the links resent %.1f%% of their data frames (%d of %d; %d retransmission timeouts, each an RTO's wait that shows in p99 ms): ",
			100*float64(h.Retransmits)/float64(h.FramesSent), h.Retransmits, h.FramesSent, h.Timeouts)
		var drops []string
		for _, c := range []struct {
			n    uint64
			what string
		}{
			{h.RxRingFull, "AF_XDP RX ring full (the receive loop fell behind)"},
			{h.FillRingEmpty, "AF_XDP fill ring empty"},
			{h.KernelRxDropped, "AF_XDP socket drops"},
			{h.PoolEmpty, "receive pool empty"},
			{h.TxDropped, "AF_XDP TX ring stuck"},
			{r.Refusals.LinkQuotaDrops, "link quota drops"},
		} {
			if c.n > 0 {
				drops = append(drops, fmt.Sprintf("%s %d", c.what, c.n))
			}
		}
		if len(drops) > 0 {
			s += "frames lost: " + strings.Join(drops, ", ")
		} else {
			s += "no drop counted where onecast can see one (a socket buffer overflow in the kernel, a veth queue, or an ack later than the RTO)"
		}
		out = append(out, s)
	}
	low := h.ReceiveFrames > 0 && r.Refusals.MinFreeFrames >= 0 && float64(r.Refusals.MinFreeFrames) < noteFreeFraction*float64(h.ReceiveFrames)
	if low || h.PoolEmpty > 0 || h.Rehomed > 0 {
		s := "the receive pool ran low"
		if r.Refusals.MinFreeFrames >= 0 && h.ReceiveFrames > 0 {
			s += fmt.Sprintf(" (%d of %d frames free at the fewest)", r.Refusals.MinFreeFrames, h.ReceiveFrames)
		}
		s += fmt.Sprintf(": found empty %d times; %d payloads copied out of it to the heap under its watermark (in copies/B)", h.PoolEmpty, h.Rehomed)
		out = append(out, s)
	}
	return out
}

// copyModeNote says which points ran AF_XDP in copy mode (one line for
// all of them: on veth, every AF_XDP point does); empty when none did.
func copyModeNote(results []Result) string {
	var copyMode []string
	xdpPoints := 0
	for i := range results {
		r := &results[i]
		if r.Error != "" || !strings.HasPrefix(r.Transport, "xdp") {
			continue
		}
		xdpPoints++
		if r.Health.CopyMode {
			copyMode = append(copyMode, r.label())
		}
	}
	if len(copyMode) == 0 {
		return ""
	}
	which := "in " + strings.Join(copyMode, "; ")
	if len(copyMode) == xdpPoints && xdpPoints > 1 {
		which = fmt.Sprintf("in every AF_XDP point (%d)", xdpPoints)
	}
	return "AF_XDP ran in copy mode " + which + ": the interface has no zero-copy driver (veth has none), so the kernel copied every received frame into the UMEM (krn copies/B)"
}

// tableNotes returns the notes of a table: each result's, "<point>:
// <note>", then the copy-mode note.
func tableNotes(results []Result) []string {
	var out []string
	for i := range results {
		r := &results[i]
		for _, n := range r.Notes() {
			out = append(out, r.label()+": "+n)
		}
	}
	if n := copyModeNote(results); n != "" {
		out = append(out, n)
	}
	return out
}

// writeNotes prints the notes of a table, one "note: " line each.
func writeNotes(w io.Writer, results []Result) error {
	for _, n := range tableNotes(results) {
		if _, err := fmt.Fprintf(w, "note: %s\n", n); err != nil {
			return err
		}
	}
	return nil
}
