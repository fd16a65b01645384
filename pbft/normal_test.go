package pbft

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
)

func TestNormalCaseEveryReplicaExecutesTheSameOrder(t *testing.T) {
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		for _, n := range []int{4, 7} {
			t.Run(fmt.Sprintf("%v/n=%d", mode, n), func(t *testing.T) {
				f := (n - 1) / 3
				h := newHarness(t, n, f, harnessOpt{mode: mode, batch: 8, signer: true})
				defer h.close()
				const per = 20
				for r := range per {
					for i := range n {
						h.submit(i, fmt.Sprintf("op %d from %d", r, i))
					}
				}
				h.run(time.Second)
				want := h.executed(0)
				require.Len(t, want, per*n)
				for i := 1; i < n; i++ {
					assert.Equal(t, want, h.executed(i), "replica %d", i)
					assert.Equal(t, h.sms[0].state, h.sms[i].state)
				}
				for i := range n {
					res := h.nodes[i].TakeResults(nil)
					require.Len(t, res, per, "client %d results", i)
					assert.Equal(t, 0, h.nodes[i].Client().Outstanding())
				}
				assert.Equal(t, uint32(0), h.nodes[0].View())
				assert.Greater(t, h.nodes[0].Stats().Batches, uint64(0))
				assert.Less(t, h.nodes[0].Stats().Batches, uint64(per*n), "requests were batched")
			})
		}
	}
}

func TestClientResultsAreTheStateMachineResults(t *testing.T) {
	h := newHarness(t, 4, 1, harnessOpt{batch: 4, signer: true})
	defer h.close()
	for r := range 10 {
		h.submit(2, fmt.Sprintf("x%d", r))
	}
	h.run(time.Second)
	res := h.nodes[2].TakeResults(nil)
	require.Len(t, res, 10)
	// Replay the executed order on a fresh state machine: each result must
	// be the chain head right after its op.
	ref := &HashChain{}
	byTS := map[uint64][]byte{}
	for _, d := range h.c.Delivered[0] {
		out := ref.Apply(d.Instance.Seq, []Op{{Client: d.Instance.Origin, Timestamp: tsOf(t, h, d), Payload: d.Payload}})
		if d.Instance.Origin == 2 {
			byTS[tsOf(t, h, d)] = out[0]
		}
	}
	for _, r := range res {
		assert.Equal(t, byTS[r.Timestamp], r.Value, "result of ts %d", r.Timestamp)
	}
}

// tsOf finds the timestamp of a delivered op from the executing slot.
func tsOf(t *testing.T, h *harness, d broadcast.Delivery) uint64 {
	t.Helper()
	rec := &h.nodes[0].clients[d.Instance.Origin]
	for _, s := range rec.slots {
		if s.state == reqDone && s.op == d.Digest {
			return s.ts
		}
	}
	t.Fatalf("no timestamp for %v", d.Digest)
	return 0
}

func TestCheckpointsBecomeStableAndCollectGarbage(t *testing.T) {
	h := newHarness(t, 4, 1, harnessOpt{batch: 1, k: 4, signer: true})
	defer h.close()
	for r := range 40 {
		h.submit(r%4, fmt.Sprintf("op %d", r))
	}
	h.run(2 * time.Second)
	for i, nd := range h.nodes {
		require.Equal(t, uint64(40), nd.LastExecuted(), "replica %d", i)
		assert.Equal(t, uint64(40), nd.StableCheckpoint(), "replica %d", i)
		assert.Empty(t, nd.slots, "slots at or below the stable checkpoint are collected")
		assert.Empty(t, nd.ckpts)
		// Only the stable checkpoint's state blob stays pinned.
		assert.Equal(t, 1, h.stores[i].Pins(nd.stable.digest))
	}
}

func TestDuplicationFullModeReceivesEachRequestTwice(t *testing.T) {
	dup := map[broadcast.Mode]float64{}
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		h := newHarness(t, 4, 1, harnessOpt{mode: mode, batch: 8, signer: true})
		for r := range 32 {
			h.submit(r%4, fmt.Sprintf("%0128d", r))
		}
		h.run(time.Second)
		s := h.c.Metrics[1].Snapshot()
		dup[mode] = s.PayloadDupFactor()
		h.close()
	}
	assert.InDelta(t, 1.0, dup[broadcast.ModeDigest], 0.1, "digest mode receives each request once")
	assert.Greater(t, dup[broadcast.ModeFull], 1.7, "full mode receives requests again in PRE-PREPARE")
}

func TestWindowBoundsAClientsRequests(t *testing.T) {
	h := newHarness(t, 4, 1, harnessOpt{signer: true, tweak: func(_ int, c *Config) { c.ClientWindow = 4 }})
	defer h.close()
	nd := h.nodes[1]
	// Client 3 floods replica 1 with requests far beyond its window.
	for ts := uint64(1); ts <= 100; ts++ {
		b, err := h.pool.Copy([]byte(fmt.Sprint("flood", ts)))
		require.NoError(t, err)
		m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeRequest, Sender: 3, Instance: broadcast.Instance{Seq: ts}}}
		m.Body = appendRequestBody(nil, 3, 0, nil)
		m.SetPayload(b, broadcast.DigestOf(b))
		err = nd.Step(3, &m)
		if ts > 4 {
			require.ErrorIs(t, err, broadcast.ErrQuota)
		}
		b.Release()
	}
	assert.Equal(t, 4, nd.clients[3].pending)
	assert.LessOrEqual(t, h.stores[1].Stats().Held, 4)
	rd := nd.Ready()
	rd.Release()
}

func TestRelayedRequestWithoutClientSignatureIsRejected(t *testing.T) {
	h := newHarness(t, 4, 1, harnessOpt{signer: true})
	defer h.close()
	b, err := h.pool.Copy([]byte("forged"))
	require.NoError(t, err)
	defer b.Release()
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeRequest, Sender: 2, Instance: broadcast.Instance{Seq: 1}}}
	m.Body = appendRequestBody(nil, 3, 0, nil)
	m.SetPayload(b, broadcast.DigestOf(b))
	require.ErrorIs(t, h.nodes[1].Step(2, &m), broadcast.ErrAuth, "a relayed request needs its client's signature")
}
