package pbft

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// loneReplica builds replica self of a four-replica cluster, with tweak
// applied to its Config.
func loneReplica(t *testing.T, self broadcast.NodeID, tweak func(*Config)) *Node {
	t.Helper()
	var secret [32]byte
	cfg := Config{Params: broadcast.Params{N: 4, F: 1, Self: self, Mode: broadcast.ModeFull},
		Store: broadcast.NewPayloadStore(broadcast.StoreConfig{}), Timeout: 100 * time.Millisecond,
		Signer: OracleSigner{Secret: secret, Self: self}}
	if tweak != nil {
		tweak(&cfg)
	}
	nd, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(nd.Close)
	return nd
}

func fetchMsg(from broadcast.NodeID, d broadcast.Digest) *broadcast.Message {
	return &broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: broadcast.TypeFetch, Sender: from, Digest: d}}
}

// TestFetchAnswersStayWithinThePeersBudget: 1,000 FETCHes of a 1 MiB
// payload from one peer get at most its budget of answers (one second's
// worth, plus the answer that overdraws it), and the budget refills with
// time. Before the budget, every FETCH was answered: 1,000 MiB.
func TestFetchAnswersStayWithinThePeersBudget(t *testing.T) {
	const rate = 4 << 20
	nd := loneReplica(t, 0, func(c *Config) { c.FetchAnswerRate = rate })
	payload := bytes.Repeat([]byte{7}, 1<<20)
	d := broadcast.DigestOfBytes(payload)
	require.NoError(t, nd.store.Put(1, d, bufpool.Wrap(payload)))
	nd.Tick(time.Second)
	answered := func() (n, bytes int) {
		rd := nd.Ready()
		defer rd.Release()
		for _, o := range rd.Messages {
			if o.Msg.Type == broadcast.TypePayload {
				require.Equal(t, broadcast.NodeID(2), o.To)
				n++
				bytes += o.Msg.Payload.Len()
			}
		}
		return n, bytes
	}
	for range 1000 {
		require.NoError(t, nd.Step(2, fetchMsg(2, d)))
	}
	n, sent := answered()
	assert.LessOrEqual(t, sent, rate+len(payload), "answers beyond the budget")
	assert.Equal(t, 4, n)
	assert.Equal(t, uint64(996), nd.Stats().FetchRefused)
	// Another peer has a budget of its own.
	require.NoError(t, nd.Step(3, fetchMsg(3, d)))
	rd := nd.Ready()
	require.Len(t, rd.Messages, 1)
	rd.Release()
	// Half a second later, half the budget is back.
	nd.Tick(1500 * time.Millisecond)
	_ = nd.Ready()
	for range 1000 {
		require.NoError(t, nd.Step(2, fetchMsg(2, d)))
	}
	n, _ = answered()
	assert.Equal(t, 2, n)
}

// TestFetchAsksOneReplicaAtATime: a missing payload is asked of the
// replicas that voted for it first, one per try, moving to the next when a
// try times out, with a growing timeout — never of every replica at once.
func TestFetchAsksOneReplicaAtATime(t *testing.T) {
	nd := loneReplica(t, 0, nil)
	d := broadcast.DigestOfBytes([]byte("missing"))
	nd.fetch(d, 2)
	var asked []broadcast.NodeID
	var at []time.Duration
	collect := func() {
		rd := nd.Ready()
		defer rd.Release()
		for _, o := range rd.Messages {
			if o.Msg.Type == broadcast.TypeFetch {
				require.NotEqual(t, broadcast.Everyone, o.To, "FETCH sent to every replica")
				asked = append(asked, o.To)
				at = append(at, nd.now)
			}
		}
	}
	collect()
	for now := 10 * time.Millisecond; now <= 3*time.Second; now += 10 * time.Millisecond {
		nd.Tick(now)
		collect()
	}
	require.GreaterOrEqual(t, len(asked), 4)
	assert.Equal(t, []broadcast.NodeID{2, 1, 3, 2}, asked[:4], "the voter first, then the others in turn")
	for i := 2; i < len(at); i++ {
		gap, prev := at[i]-at[i-1], at[i-1]-at[i-2]
		if prev < 16*nd.fetchTimeout(0) {
			assert.Equal(t, 2*prev, gap, "the timeout doubles: tries at %v", at)
		} else {
			assert.Equal(t, prev, gap, "the timeout stops growing at 16×: tries at %v", at)
		}
	}
	assert.LessOrEqual(t, len(asked), 9, "tries in 3 s: %v", at)
	// Once the payload is there, nobody is asked again.
	require.NoError(t, nd.store.Put(1, d, bufpool.Wrap([]byte("missing"))))
	nd.Tick(4 * time.Second)
	collect()
	n := len(asked)
	nd.Tick(10 * time.Second)
	collect()
	assert.Equal(t, n, len(asked))
}

// futurePrePrepare is a PRE-PREPARE of view v at seq from v's primary, with
// one request of size bytes as its payload (full mode).
func futurePrePrepare(t *testing.T, v uint32, seq uint64, size int) *broadcast.Message {
	t.Helper()
	op := bytes.Repeat([]byte{byte(seq)}, size)
	od := broadcast.DigestOfBytes(op)
	enc := appendEntries(nil, []Entry{{Client: 1, Timestamp: seq, Op: od, Len: uint32(size), Sig: []byte("s")}})
	d := batchDigest(enc)
	m := &broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypePrePrepare,
		Sender: broadcast.NodeID(v % 4), Round: v, Instance: broadcast.Instance{Seq: seq}, Digest: d},
		Body: appendPrePrepareBody(nil, []byte("sig"), enc)}
	m.SetPayload(bufpool.Wrap(op), d)
	return m
}

// TestFuturePrePreparesStayWithinTheirPrimarysQuota: a Byzantine replica,
// primary of a view ahead, sends validly formed PRE-PREPAREs with large
// payloads for every sequence number of the window. The replica keeps at
// most FutureQuota of their bytes (before: 64 slots × the payload).
func TestFuturePrePreparesStayWithinTheirPrimarysQuota(t *testing.T) {
	const quota = 1 << 20
	nd := loneReplica(t, 0, func(c *Config) { c.FutureQuota = quota })
	for seq := uint64(1); seq <= 64; seq++ {
		m := futurePrePrepare(t, 5, seq, 256<<10)
		require.NoError(t, nd.Step(1, m), "seq %d", seq)
		m.Payload.Release()
	}
	require.Len(t, nd.future, 64, "every PRE-PREPARE is kept, as digests")
	held := 0
	for _, m := range nd.future {
		held += m.Payload.Len()
	}
	assert.LessOrEqual(t, held, quota)
	assert.Equal(t, held, nd.futureBytes[1])
	assert.Equal(t, uint64(60), nd.Stats().FutureStripped, fmt.Sprint(held))
	// Replaced by a newer view's PRE-PREPARE, the bytes return to the quota.
	m := futurePrePrepare(t, 9, 1, 16)
	require.NoError(t, nd.Step(1, m))
	m.Payload.Release()
	assert.Equal(t, 3*256<<10+16, nd.futureBytes[1])
}
