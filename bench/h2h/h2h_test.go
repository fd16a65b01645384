package h2h

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bft "github.com/hyperledger-labs/SmartBFT/pkg/types"

	"github.com/onecast/onecast/bench/h2h/memnet"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// commitLog records what each node committed.
type commitLog struct {
	mu    sync.Mutex
	nodes [][][]byte
}

func (l *commitLog) observe(node int, req []byte) {
	l.mu.Lock()
	l.nodes[node] = append(l.nodes[node], bytes.Clone(req))
	l.mu.Unlock()
}

// TestEverySystemCommitsTheSubmittedRequestsInOneOrder runs each system
// briefly and checks, at every node, that each committed request is
// byte-for-byte one the load generator submitted, committed once, and that
// all nodes commit the same sequence (one a prefix of another); and that
// the run's figures are positive.
func TestEverySystemCommitsTheSubmittedRequestsInOneOrder(t *testing.T) {
	for _, name := range AllSystems {
		t.Run(name, func(t *testing.T) {
			defer leaktest.AfterTest(t)()
			log := &commitLog{nodes: make([][][]byte, 4)}
			cfg := Config{N: 4, Payload: 256, Inflight: 16, Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond,
				Observe: log.observe}
			res := RunNamed(name, cfg)
			require.Empty(t, res.Error)
			assert.Positive(t, res.Requests)
			assert.Positive(t, res.RequestsPerSec)
			assert.Positive(t, res.LatencyP50Ms)
			assert.GreaterOrEqual(t, res.LatencyP99Ms, res.LatencyP50Ms)
			// Every request crosses the wire to at least the n-1 others.
			assert.Greater(t, res.WireBytesPerRequest, float64(3*256))
			assert.Positive(t, res.MessagesPerRequest)

			require.NoError(t, cfg.setDefaults())
			gen := newLoadGen(cfg, []int{0})
			var longest [][]byte
			for node, reqs := range log.nodes {
				require.NotEmpty(t, reqs, "node %d committed nothing", node)
				seen := map[ReqID]bool{}
				for _, r := range reqs {
					id, ok := ParseID(r)
					require.True(t, ok)
					require.False(t, seen[id], "node %d committed %v twice", node, id)
					seen[id] = true
					require.Equal(t, gen.request(id.Node, id.Seq), r, "node %d committed %v with other bytes", node, id)
				}
				if len(reqs) > len(longest) {
					longest = reqs
				}
			}
			for node, reqs := range log.nodes {
				for i := range reqs {
					require.Equal(t, longest[i], reqs[i], "node %d's commit %d differs", node, i)
				}
			}
		})
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{{N: 3}, {Payload: 8}, {Inflight: -1}} {
		res := RunNamed("raft", cfg)
		require.NotEmpty(t, res.Error, "%+v", cfg)
	}
	require.NotEmpty(t, RunNamed("nope", Config{}).Error)
}

func TestRequestsCarryTheirIDAndTheSameBytesForEverySystem(t *testing.T) {
	cfg := Config{Payload: 64}
	require.NoError(t, cfg.setDefaults())
	a, b := newLoadGen(cfg, []int{0, 1}), newLoadGen(cfg, []int{2})
	r := a.request(3, 77)
	require.Len(t, r, 64)
	id, ok := ParseID(r)
	require.True(t, ok)
	require.Equal(t, ReqID{Node: 3, Seq: 77}, id)
	require.Equal(t, r, b.request(3, 77))
	require.NotEqual(t, r[IDSize:], a.request(3, 78)[IDSize:])
	_, ok = ParseID(r[:IDSize-1])
	require.False(t, ok)
}

func TestTransportFramesRoundTripAndRejectsGarbage(t *testing.T) {
	defer leaktest.AfterTest(t)()
	net := memnet.New(2)
	defer net.Close()
	a, b := NewTransport(net, 0), NewTransport(net, 1)
	payload := []byte("the payload bytes")
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: 3, Sender: 0},
		Body: []byte{1, 2, 3}, Auth: []byte{9, 9}}
	m.SetPayload(bufpool.Wrap(payload), broadcast.DigestOfBytes(payload))
	require.NoError(t, a.Send(1, &m))
	require.Equal(t, uint64(m.WireLen()), net.Stats().Bytes)
	require.NoError(t, net.Send(0, 1, []byte{0xff, 1, 2})) // a frame that does not decode
	in, err := b.Recv(context.Background())
	require.NoError(t, err)
	require.Equal(t, broadcast.NodeID(0), in.From)
	require.Equal(t, []byte{1, 2, 3}, in.Msg.Body)
	require.Equal(t, []byte{9, 9}, in.Msg.Auth)
	require.Equal(t, payload, in.Msg.Payload.Bytes())
	in.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = b.Recv(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, uint64(1), b.Rejects.Load())
}

func TestBatchEncodingRoundTrips(t *testing.T) {
	reqs := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte{7}, 300)}
	got, err := decodeBatch(encodeBatch(reqs))
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i := range reqs {
		require.Equal(t, len(reqs[i]), len(got[i]))
		require.True(t, bytes.Equal(reqs[i], got[i]))
	}
	_, err = decodeBatch([]byte{5, 1})
	require.Error(t, err)
}

// FuzzDecodeBatch: a proposal payload from the network never panics the
// decoder, and what decodes re-encodes to the same bytes.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch([][]byte{[]byte("req"), make([]byte, 200)}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{3, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		reqs, err := decodeBatch(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeBatch(reqs), b) {
			// Non-minimal varints decode but re-encode shorter.
			if _, err := decodeBatch(encodeBatch(reqs)); err != nil {
				t.Fatalf("re-encoding failed: %v", err)
			}
		}
	})
}

func TestLedgerKeepsRecentDecisionsInOrderOnceWithinItsBudget(t *testing.T) {
	var l ledger
	const size = ledgerBudget / (4 * ledgerMin) // so that the budget, not ledgerMin, trims
	dec := func(i int) bft.Decision {
		p := make([]byte, size)
		binary.LittleEndian.PutUint64(p, uint64(i))
		return bft.Decision{Proposal: bft.Proposal{Payload: p}}
	}
	seqOf := func(d bft.Decision) uint64 { return binary.LittleEndian.Uint64(d.Proposal.Payload) }
	total := 3 * ledgerBudget / size
	for i := 1; i <= total; i++ {
		require.True(t, l.record(uint64(i), dec(i)))
		require.LessOrEqual(t, l.bytes, ledgerBudget+size)
	}
	require.False(t, l.record(5, dec(5)), "a decision delivered before is not new")
	last, d := l.latest()
	require.Equal(t, uint64(total), last)
	require.Equal(t, last, seqOf(d))
	from, decs := l.since(last - 3)
	require.Equal(t, last-2, from)
	require.Len(t, decs, 3)
	for k, dd := range decs {
		require.Equal(t, from+uint64(k), seqOf(dd))
	}
	from, decs = l.since(0) // older than what is kept: starts at the oldest kept
	require.Greater(t, from, uint64(1))
	require.Equal(t, last, from+uint64(len(decs))-1)
	_, decs = l.since(last)
	require.Empty(t, decs)
}

func TestMedianTakesEachFigureOverTheRunsThatWorked(t *testing.T) {
	runs := []Result{
		{System: "x", Requests: 10, RequestsPerSec: 100, LatencyP99Ms: 9, WireBytesPerRequest: 5},
		{System: "x", Error: "boom"},
		{System: "x", Requests: 30, RequestsPerSec: 300, LatencyP99Ms: 1, WireBytesPerRequest: 7},
		{System: "x", Requests: 20, RequestsPerSec: 200, LatencyP99Ms: 5, WireBytesPerRequest: 6},
	}
	m := Median(runs)
	require.Equal(t, "x", m.System)
	require.Equal(t, uint64(20), m.Requests)
	require.Equal(t, 200.0, m.RequestsPerSec)
	require.Equal(t, 5.0, m.LatencyP99Ms)
	require.Equal(t, 6.0, m.WireBytesPerRequest)
	require.Equal(t, "1 of 4 runs failed", m.Error)
	require.Equal(t, "boom", Median(runs[1:2]).Error)
	require.Equal(t, Result{}, Median(nil))
}
