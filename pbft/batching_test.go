package pbft

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runLoad submits per requests from each of 4 clients and returns the
// primary's batch count once all executed everywhere.
func runLoad(t *testing.T, adaptive bool, per int) uint64 {
	h := newHarness(t, 4, 1, harnessOpt{batch: 16, signer: true, tweak: func(_ int, c *Config) {
		c.AdaptiveBatch, c.Pipeline = adaptive, 4
	}})
	defer h.close()
	for r := range per {
		for i := range 4 {
			h.submit(i, fmt.Sprintf("op %d of %d", r, i))
		}
	}
	h.run(2 * time.Second)
	want := h.executed(0)
	require.Len(t, want, 4*per)
	for i := range 4 {
		assert.Equal(t, want, h.executed(i), "replica %d", i)
		assert.Len(t, h.nodes[i].TakeResults(nil), per, "client %d", i)
	}
	h.checkSafety([]int{0, 1, 2, 3})
	return h.nodes[0].Stats().Batches
}

func TestAdaptiveBatchingGrowsBatchesUnderLoad(t *testing.T) {
	eager, adaptive := runLoad(t, false, 30), runLoad(t, true, 30)
	t.Logf("batches for 120 requests: eager %d, adaptive %d", eager, adaptive)
	assert.Less(t, adaptive, eager, "adaptive batching orders fewer, larger batches")
	assert.GreaterOrEqual(t, adaptive, uint64(120/16), "no batch beyond Config.Batch")
}

func TestAdaptiveBatchingOrdersALoneRequestAtOnce(t *testing.T) {
	h := newHarness(t, 4, 1, harnessOpt{batch: 16, signer: true, tweak: func(_ int, c *Config) { c.AdaptiveBatch = true }})
	defer h.close()
	h.submit(2, "alone")
	h.run(10 * time.Millisecond) // far below any timeout: no retransmission needed
	require.Len(t, h.executed(0), 1)
	assert.Equal(t, uint64(1), h.nodes[0].Stats().Batches)
	assert.Len(t, h.nodes[2].TakeResults(nil), 1)
	// batchDue's bar: with batches in flight, a full batch.
	nd := h.nodes[0]
	nd.nextSeq, nd.lastExec = 12, 10
	nd.queue = make([]reqRef, 15)
	assert.False(t, nd.batchDue(), "2 in flight: a full batch of 16 needed")
	nd.queue = make([]reqRef, 16)
	assert.True(t, nd.batchDue())
	nd.nextSeq = 10
	nd.queue = make([]reqRef, 1)
	assert.True(t, nd.batchDue(), "idle pipeline")
	nd.queue = nil
}
