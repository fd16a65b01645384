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

func TestClientRetransmitsWhenRepliesAreLost(t *testing.T) {
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		t.Run(mode.String(), func(t *testing.T) {
			lost := 0
			// Every reply to client 1 is lost until three were.
			fault := func(from, to broadcast.NodeID, m *broadcast.Message, _ *rand.Rand) mem.Decision {
				if m.Type == TypeReply && to == 1 && lost < 3 {
					lost++
					return mem.Decision{Drop: true}
				}
				return mem.Decision{}
			}
			h := newHarness(t, 4, 1, harnessOpt{mode: mode, signer: true, fault: fault})
			defer h.close()
			h.submit(1, "lonely request")
			h.run(5 * time.Second)
			require.Equal(t, 3, lost)
			res := h.nodes[1].TakeResults(nil)
			require.Len(t, res, 1, "the retransmission got the result")
			for i := range 4 {
				assert.Len(t, h.c.Delivered[i], 1, "replica %d executed the request once", i)
			}
		})
	}
}

func TestRestartedReplicaRecoversByStateTransfer(t *testing.T) {
	h := newHarness(t, 4, 1, harnessOpt{batch: 2, k: 4, signer: true})
	defer h.close()
	for r := range 20 {
		h.submit(r%3, fmt.Sprintf("before %d", r))
	}
	h.run(2 * time.Second)
	require.Len(t, h.c.Delivered[2], 20)
	require.GreaterOrEqual(t, h.nodes[2].StableCheckpoint(), uint64(4))
	// Replica 2 restarts with empty state and a fresh store.
	old := h.nodes[2]
	st := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	sm := &HashChain{}
	fresh, err := New(Config{Params: broadcast.Params{N: 4, F: 1, Self: 2, Mode: broadcast.ModeDigest}, Store: st,
		StateMachine: sm, Batch: 2, CheckpointInterval: 4, Timeout: 100 * time.Millisecond,
		Signer: OracleSigner{Secret: [32]byte{7}, Self: 2}})
	require.NoError(t, err)
	h.c.Nodes[2] = fresh
	for r := range 12 {
		h.submit(r%2, fmt.Sprintf("after %d", r))
	}
	h.run(5 * time.Second)
	assert.Equal(t, h.nodes[0].LastExecuted(), fresh.LastExecuted())
	assert.Equal(t, h.sms[0].state, sm.state)
	assert.GreaterOrEqual(t, fresh.Stats().StateTransfers, uint64(1))
	fresh.Close()
	st.Close()
	h.nodes[2] = old // closed by the harness
}

func TestVotesOutsideTheWatermarksAreNotKept(t *testing.T) {
	h := newHarness(t, 4, 1, harnessOpt{k: 4, signer: true})
	defer h.close()
	nd := h.nodes[1]
	for seq := uint64(1); seq < 10_000; seq += 7 {
		for _, typ := range []broadcast.MsgType{TypePrepare, TypeCommit} {
			m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: typ, Sender: 3,
				Instance: broadcast.Instance{Seq: seq}, Round: uint32(seq % 3)}}
			require.NoError(t, nd.Step(3, &m))
		}
		m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeCheckpoint, Sender: 3,
			Instance: broadcast.Instance{Seq: seq * 4}}}
		_ = nd.Step(3, &m)
	}
	assert.LessOrEqual(t, uint64(len(nd.slots)), nd.cfg.Window, "one slot per sequence number in the window")
	assert.LessOrEqual(t, uint64(len(nd.ckpts)), nd.cfg.Window/nd.cfg.CheckpointInterval)
	rd := nd.Ready()
	rd.Release()
}

func TestDigestModeFetchesRequestsTheClientDidNotSend(t *testing.T) {
	// Client 3 reaches only the primary: the backups see its request first
	// in a PRE-PREPARE that names it by digest, accept it on the client's
	// signature and fetch its bytes.
	fault := func(from, to broadcast.NodeID, m *broadcast.Message, _ *rand.Rand) mem.Decision {
		return mem.Decision{Drop: m.Type == TypeRequest && from == 3 && to != 0}
	}
	h := newHarness(t, 4, 1, harnessOpt{signer: true, fault: fault})
	defer h.close()
	h.submit(3, "only the primary hears this")
	h.run(5 * time.Second)
	h.checkSafety([]int{0, 1, 2, 3})
	for i := range 4 {
		require.Len(t, h.c.Delivered[i], 1, "replica %d", i)
	}
	require.Len(t, h.nodes[3].TakeResults(nil), 1)
	got := uint64(0)
	for _, r := range h.c.Metrics[1].Snapshot().Types {
		if r.Type == broadcast.TypePayload {
			got += r.RecvMessages
		}
	}
	assert.Positive(t, got, "backup 1 fetched the request")
	assert.Equal(t, uint32(0), h.nodes[1].View(), "no view change was needed")
}

func TestCheckpointDigestDoesNotDependOnRequestArrival(t *testing.T) {
	// A request window caches the replies of old requests until newer
	// requests of the same client overwrite them, which happens at
	// different times at different replicas; the state digest must not
	// see it, or checkpoints never become stable and the watermarks stop
	// the primary (found on the real node runner).
	h := newHarness(t, 4, 1, harnessOpt{batch: 4, signer: true, tweak: func(_ int, c *Config) { c.ClientWindow = 4 }})
	defer h.close()
	for r := range 8 {
		h.submit(2, fmt.Sprintf("op %d", r))
	}
	h.run(5 * time.Second)
	nd := h.nodes[1]
	before, err := nd.encodeState(nd.LastExecuted())
	require.NoError(t, err)
	rec := &nd.clients[2]
	require.Equal(t, uint64(8), rec.base)
	// The next request of client 2 (ts 9) takes the ring slot of ts 5,
	// whose reply replica 1 cached, and reaches replica 1 only.
	b, err := h.pool.Copy([]byte("op 8"))
	require.NoError(t, err)
	defer b.Release()
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeRequest, Sender: 2, Instance: broadcast.Instance{Seq: 9}}}
	m.Body = appendRequestBody(nil, 2, 0, nil)
	m.SetPayload(b.Retain(), broadcast.DigestOf(b))
	require.NoError(t, nd.Step(2, &m))
	m.Payload.Release()
	after, err := nd.encodeState(nd.LastExecuted())
	require.NoError(t, err)
	require.Equal(t, before, after, "a pending request changed the state digest")
	rd := nd.Ready()
	rd.Release()
}
