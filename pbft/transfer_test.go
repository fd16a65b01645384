package pbft

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/mem"
)

func TestLaggingReplicaCatchesUpByStateTransfer(t *testing.T) {
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		t.Run(mode.String(), func(t *testing.T) {
			cut := true
			// Replica 3 hears nothing while cut.
			fault := func(from, to broadcast.NodeID, m *broadcast.Message, _ *rand.Rand) mem.Decision {
				return mem.Decision{Drop: cut && (to == 3 || from == 3)}
			}
			h := newHarness(t, 4, 1, harnessOpt{mode: mode, batch: 2, k: 4, signer: true, fault: fault})
			defer h.close()
			for r := range 30 {
				h.submit(r%3, fmt.Sprintf("op %d", r))
			}
			h.run(2 * time.Second)
			require.Equal(t, uint64(0), h.nodes[3].LastExecuted())
			lead := h.nodes[0].LastExecuted()
			require.Greater(t, lead, uint64(8))
			cut = false
			for r := range 12 {
				h.submit(r%3, fmt.Sprintf("late op %d", r))
			}
			h.run(5 * time.Second)
			h.checkSafety([]int{0, 1, 2, 3})
			assert.Equal(t, h.nodes[0].LastExecuted(), h.nodes[3].LastExecuted())
			assert.Equal(t, h.sms[0].state, h.sms[3].state, "the transferred state matches")
			assert.GreaterOrEqual(t, h.nodes[3].Stats().StateTransfers, uint64(1))
		})
	}
}
