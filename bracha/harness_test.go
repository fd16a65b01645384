package bracha_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/mem"
)

// harness is a cluster of n nodes on netio/mem, of which the IDs in byz are
// Byzantine (a scripted Protocol) and the rest correct bracha nodes.
type harness struct {
	t       *testing.T
	n, f    int
	pool    *bufpool.Pool
	c       *mem.Cluster
	nodes   []*bracha.Node // nil for a Byzantine node
	stores  []*broadcast.PayloadStore
	byz     map[broadcast.NodeID]*scripted
	sent    map[broadcast.Instance][]byte // what a correct origin broadcast (batch of one)
	payload map[string]bool
}

type harnessOpt struct {
	mode  broadcast.Mode
	byz   []broadcast.NodeID
	fault mem.Fault
	seed  uint64
	auth  bool
	cfg   func(*bracha.Config)
}

func newHarness(t *testing.T, n int, o harnessOpt) *harness {
	t.Helper()
	f := (n - 1) / 3
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 16 << 10, Frames: 4096, Checked: true, Name: t.Name()})
	h := &harness{t: t, n: n, f: f, pool: pool, nodes: make([]*bracha.Node, n), stores: make([]*broadcast.PayloadStore, n),
		byz: map[broadcast.NodeID]*scripted{}, sent: map[broadcast.Instance][]byte{}}
	protos := make([]broadcast.Protocol, n)
	isByz := map[broadcast.NodeID]bool{}
	for _, b := range o.byz {
		isByz[b] = true
	}
	for i := range n {
		id := broadcast.NodeID(i)
		if isByz[id] {
			s := &scripted{id: id, pool: pool}
			h.byz[id] = s
			protos[i] = s
			continue
		}
		h.stores[i] = broadcast.NewPayloadStore(broadcast.StoreConfig{})
		cfg := bracha.Config{N: n, F: f, Self: id, Mode: o.mode, Store: h.stores[i], Pool: pool}
		if o.cfg != nil {
			o.cfg(&cfg)
		}
		nd, err := bracha.New(cfg)
		require.NoError(t, err)
		h.nodes[i] = nd
		protos[i] = nd
	}
	opts := []mem.Option{mem.WithSeed(max(o.seed, 1))}
	if o.fault != nil {
		opts = append(opts, mem.WithFault(o.fault))
	}
	h.c = mem.NewCluster(mem.NewNetwork(n, opts...), protos)
	if o.auth {
		rings, err := broadcast.GenerateKeyrings(n, rand.NewChaCha8([32]byte{byte(o.seed)}))
		require.NoError(t, err)
		for i := range n {
			a, err := broadcast.NewMAC(rings[i])
			require.NoError(t, err)
			h.c.Auth = append(h.c.Auth, a)
		}
	}
	t.Cleanup(h.close)
	return h
}

func (h *harness) close() {
	for _, s := range h.byz {
		s.release()
	}
	h.c.Close()
	for i, nd := range h.nodes {
		if nd != nil {
			nd.Close()
			h.stores[i].Close()
		}
	}
	require.NoError(h.t, h.pool.CheckLeaks())
}

// buf copies p into the harness's pool.
func (h *harness) buf(p []byte) bufpool.Buf {
	b, err := h.pool.Copy(p)
	require.NoError(h.t, err)
	return b
}

// payloadFor makes a distinctive payload of size bytes.
func payloadFor(origin broadcast.NodeID, k, size int) []byte {
	p := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(origin)+1, uint64(k)+1))
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	copy(p, fmt.Sprintf("%v#%d", origin, k))
	return p
}

// broadcast has a correct node broadcast p and records it.
func (h *harness) broadcast(origin broadcast.NodeID, p []byte) {
	h.t.Helper()
	seq := h.nodes[origin].Stats().Broadcasts
	require.NoError(h.t, h.c.Submit(origin, h.buf(p)))
	h.sent[broadcast.Instance{Origin: origin, Seq: seq}] = p
}

func (h *harness) run() { h.c.Run(time.Hour, 10_000_000) }

func (h *harness) correct() []broadcast.NodeID {
	var ids []broadcast.NodeID
	for i, nd := range h.nodes {
		if nd != nil {
			ids = append(ids, broadcast.NodeID(i))
		}
	}
	return ids
}

type key struct {
	in    broadcast.Instance
	index int
}

// delivered returns what node id delivered, checking integrity: at most one
// delivery per (instance, index).
func (h *harness) delivered(id broadcast.NodeID) map[key][]byte {
	h.t.Helper()
	out := map[key][]byte{}
	for _, d := range h.c.Delivered[id] {
		k := key{d.Instance, d.Index}
		_, dup := out[k]
		require.False(h.t, dup, "node %v delivered %v[%d] twice", id, d.Instance, d.Index)
		out[k] = append([]byte(nil), d.Payload.Bytes()...)
	}
	return out
}

// scripted is a Byzantine node: it sends what the test scripts, and answers
// FETCH as the test says (not at all, or with the bytes in answer).
type scripted struct {
	id      broadcast.NodeID
	pool    *bufpool.Pool
	out     []broadcast.Outbound
	answer  func(m *broadcast.Message) []byte // FETCH answer bytes, nil for silence
	fetches int
}

// send queues a message from the Byzantine node; p (if any) is attached as
// its payload with digest d (which need not be p's).
func (s *scripted) send(to broadcast.NodeID, t broadcast.MsgType, in broadcast.Instance, d broadcast.Digest, plen int, p []byte) {
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoBracha, Type: t, Sender: s.id, Instance: in, Digest: d, PayloadLen: uint32(plen)}}
	if p != nil {
		b, err := s.pool.Copy(p)
		if err != nil {
			panic(err)
		}
		m.Payload = b
		m.Flags |= broadcast.HasPayload
	}
	s.out = append(s.out, broadcast.Outbound{To: to, Msg: m})
}

func (s *scripted) Step(from broadcast.NodeID, m *broadcast.Message) error {
	if m.Type == broadcast.TypeFetch {
		s.fetches++
		if s.answer != nil {
			if p := s.answer(m); p != nil {
				s.send(from, broadcast.TypePayload, m.Instance, m.Digest, int(m.PayloadLen), p)
			}
		}
	}
	return nil
}

func (s *scripted) Tick(time.Duration) {}

func (s *scripted) Submit(p bufpool.Buf) error { p.Release(); return nil }

func (s *scripted) Ready() broadcast.Ready {
	rd := broadcast.Ready{Messages: s.out}
	s.out = nil
	return rd
}

func (s *scripted) release() {
	rd := s.Ready()
	rd.Release()
}
