package bracha_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
)

// The strip-then-evict stall, on a cluster: origin 0 sends its SEND with
// the payload to node 1, and as the AF_XDP program leaves it (payload cut,
// Stripped set) to nodes 2 and 3, whose stores let the payload go before
// the SEND is processed. The origin echoes and otherwise stays silent
// (answers no FETCH). Without a payload nodes 2 and 3 could not echo: 2
// ECHOes (origin, node 1) never reach the quorum of 3 and nobody delivers.
// They fetch it instead (the origin first, then node 1, which echoed),
// echo, and every correct node delivers.
func TestStrippedAndEvictedSendsDoNotStallTheInstance(t *testing.T) {
	for _, mode := range modes {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			h := newHarness(t, 4, harnessOpt{mode: mode, byz: []broadcast.NodeID{0}})
			p := payloadFor(0, 0, 3000)
			in := broadcast.Instance{Origin: 0}
			d := broadcast.DigestOfBytes(p)
			h.byz[0].send(1, bracha.TypeSend, in, d, len(p), p)
			for _, to := range []broadcast.NodeID{2, 3} {
				h.byz[0].send(to, bracha.TypeSend, in, d, len(p), nil)
				h.byz[0].out[len(h.byz[0].out)-1].Msg.Flags = broadcast.Stripped
			}
			h.byz[0].send(broadcast.Everyone, bracha.TypeEcho, in, d, len(p), nil)
			h.flushByz()
			h.run()
			for _, id := range h.correct() {
				got := h.delivered(id)
				assert.Equal(t, p, got[key{in, 0}], "node %v delivered the payload", id)
			}
			var refetched uint64
			for _, id := range []broadcast.NodeID{2, 3} {
				refetched += h.nodes[id].Stats().SendsRefetched
			}
			assert.Equal(t, uint64(2), refetched)
		})
	}
}
