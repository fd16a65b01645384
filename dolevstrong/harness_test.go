package dolevstrong

import (
	crand "crypto/rand"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/mem"
	"github.com/stretchr/testify/require"
)

const testDelta = 10 * time.Millisecond

// keys holds a test cluster's key material, generated once per size.
type keys struct {
	ed  []*broadcast.Keyring
	bls []*BLSKeyring
}

var keyCache = map[int]*keys{}

func clusterKeys(t testing.TB, n int, withBLS bool) *keys {
	k := keyCache[n]
	if k == nil {
		ed, err := broadcast.GenerateKeyrings(n, crand.Reader)
		require.NoError(t, err)
		k = &keys{ed: ed}
		keyCache[n] = k
	}
	if withBLS && k.bls == nil {
		rings, err := GenerateBLSKeyrings(n, crand.Reader)
		require.NoError(t, err)
		k.bls = rings
	}
	return k
}

// variant is one way of running the protocol.
type variant struct {
	name string
	mode broadcast.Mode
	bls  bool
}

var variants = []variant{
	{"full", broadcast.ModeFull, false},
	{"digest", broadcast.ModeDigest, false},
	{"digest+bls", broadcast.ModeDigest, true},
}

// harness runs n nodes, some of them Byzantine test doubles, over a
// mem.Cluster with a logical clock.
type harness struct {
	t      testing.TB
	n, f   int
	v      variant
	pool   *bufpool.Pool
	keys   *keys
	stores []*broadcast.PayloadStore
	nodes  []*Node // nil for Byzantine nodes
	byz    map[broadcast.NodeID]*byzNode
	c      *mem.Cluster
}

type harnessOpts struct {
	unsafeRounds int
	byz          []broadcast.NodeID
}

func newHarness(t testing.TB, n, f int, v variant, o harnessOpts) *harness {
	pool, err := bufpool.New(bufpool.Config{FrameSize: 4096, Frames: 4096, Checked: true, Name: "dolevstrong-test"})
	require.NoError(t, err)
	h := &harness{t: t, n: n, f: f, v: v, pool: pool, keys: clusterKeys(t, n, v.bls), byz: map[broadcast.NodeID]*byzNode{}}
	protos := make([]broadcast.Protocol, n)
	h.nodes = make([]*Node, n)
	h.stores = make([]*broadcast.PayloadStore, n)
	for i := range n {
		id := broadcast.NodeID(i)
		h.stores[i] = broadcast.NewPayloadStore(broadcast.StoreConfig{})
		if slices.Contains(o.byz, id) {
			b := &byzNode{h: h, id: id}
			h.byz[id] = b
			protos[i] = b
			continue
		}
		cfg := Config{Params: broadcast.Params{N: n, F: f, Self: id, Mode: v.mode}, Store: h.stores[i],
			Keys: h.keys.ed[i], RoundDuration: testDelta, UnsafeRounds: o.unsafeRounds}
		if v.bls {
			cfg.BLS = h.keys.bls[i]
		}
		node, err := New(cfg)
		require.NoError(t, err)
		h.nodes[i] = node
		protos[i] = node
	}
	h.c = mem.NewCluster(mem.NewNetwork(n), protos)
	h.c.TickAll(0)
	return h
}

func (h *harness) value(size int, seed uint64) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func (h *harness) buf(v []byte) bufpool.Buf {
	b, err := h.pool.Copy(v)
	require.NoError(h.t, err)
	return b
}

// run advances the logical clock until every instance starting by slot
// lastSlot has decided.
func (h *harness) run(lastSlot uint64) {
	until := time.Duration(lastSlot+uint64(h.f)+2) * testDelta
	h.c.TickAll(h.c.Now) // refresh every node's wake-up, scripts included
	h.c.Run(until, 10_000_000)
}

// outcome is what one node output for one instance.
type outcome struct {
	delivered bool
	digest    broadcast.Digest // zero for ⊥
}

func (h *harness) outcomes(in broadcast.Instance) map[broadcast.NodeID]outcome {
	out := map[broadcast.NodeID]outcome{}
	for i, node := range h.nodes {
		if node == nil {
			continue
		}
		id := broadcast.NodeID(i)
		var o outcome
		for _, d := range h.c.Delivered[i] {
			if d.Instance == in {
				require.False(h.t, o.delivered, "node %v delivered %v twice", id, in)
				o = outcome{delivered: true, digest: d.Digest}
				if !d.Digest.IsZero() {
					require.Equal(h.t, d.Digest, broadcast.DigestOf(d.Payload), "delivered payload does not match its digest")
				} else {
					require.True(h.t, d.Payload.IsZero(), "⊥ with a payload")
				}
			}
		}
		out[id] = o
	}
	return out
}

// agreement reports whether every correct node output the same for in.
func (h *harness) agreement(in broadcast.Instance) (outcome, bool) {
	var first *outcome
	for _, o := range h.outcomes(in) {
		if first == nil {
			first = &o
			continue
		}
		if o != *first {
			return o, false
		}
	}
	if first == nil {
		return outcome{}, true
	}
	return *first, true
}

func (h *harness) close() {
	h.c.Close()
	for _, node := range h.nodes {
		if node != nil {
			node.Close()
		}
	}
	for _, b := range h.byz {
		b.close()
	}
	for _, s := range h.stores {
		s.Close()
	}
	require.NoError(h.t, h.pool.CheckLeaks())
}

// ---- Byzantine test doubles ----

// action is something a Byzantine node does at a time.
type action struct {
	at time.Duration
	do func(b *byzNode)
}

// byzNode is a scripted Byzantine node: it knows every key of the
// coalition it belongs to (every Byzantine node's), runs its script at the
// given times, and reacts to messages through onStep (by default: ignores
// them, and never answers fetches).
type byzNode struct {
	h       *harness
	id      broadcast.NodeID
	now     time.Duration
	script  []action
	onStep  func(b *byzNode, from broadcast.NodeID, m *broadcast.Message)
	out     []broadcast.Outbound
	spare   []broadcast.Outbound
	holding []bufpool.Buf
}

func (b *byzNode) Step(from broadcast.NodeID, m *broadcast.Message) error {
	if b.onStep != nil {
		b.onStep(b, from, m)
	}
	return nil
}

func (b *byzNode) Tick(now time.Duration) {
	b.now = now
	for len(b.script) > 0 && b.script[0].at <= now {
		a := b.script[0]
		b.script = b.script[1:]
		a.do(b)
	}
}

func (b *byzNode) Submit(p bufpool.Buf) error { p.Release(); return nil }

func (b *byzNode) Ready() broadcast.Ready {
	rd := broadcast.Ready{Messages: b.out}
	if len(b.script) > 0 {
		rd.NextWake = b.script[0].at
	}
	b.out, b.spare = b.spare[:0], b.out
	return rd
}

func (b *byzNode) close() {
	for _, p := range b.holding {
		p.Release()
	}
}

// at schedules do at time t.
func (b *byzNode) at(t time.Duration, do func(b *byzNode)) {
	b.script = append(b.script, action{at: t, do: do})
	slices.SortStableFunc(b.script, func(x, y action) int { return int(x.at - y.at) })
}

// roundTime is the middle of round r of the instance starting in slot s.
func roundTime(s uint64, r int) time.Duration {
	return time.Duration(s+uint64(r)-1)*testDelta + testDelta/2
}

// proofBody signs (in, d) with every listed signer's key and encodes the
// proof in the harness's scheme.
func (h *harness) proofBody(in broadcast.Instance, d broadcast.Digest, signers []broadcast.NodeID) []byte {
	stmt := Statement(in, d)
	if h.v.bls {
		var verifies uint64
		p := (&blsScheme{k: h.keys.bls[0], verifies: &verifies}).newProof(h.n)
		for _, id := range signers {
			s := &blsScheme{k: h.keys.bls[id], verifies: &verifies}
			p.addOwn(id, s.sign(stmt))
		}
		return p.appendRelay(nil, h.n, in.Origin, signers[0], len(signers))
	}
	sigs := make([][]byte, len(signers))
	for i, id := range signers {
		var verifies uint64
		s, err := newEdScheme(h.keys.ed[id], h.n, &verifies)
		require.NoError(h.t, err)
		sigs[i] = s.sign(stmt)
	}
	return AppendChain(nil, signers, sigs)
}

// sendRelay sends a relay of value (its payload attached if withPayload)
// signed by signers to each of `to`.
func (b *byzNode) sendRelay(in broadcast.Instance, value []byte, signers []broadcast.NodeID, withPayload bool, to ...broadcast.NodeID) {
	d := broadcast.DigestOfBytes(value)
	body := b.h.proofBody(in, d, signers)
	for _, dst := range to {
		m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoDolevStrong, Type: TypeRelay,
			Instance: in, Round: uint32(len(signers)), Digest: d, PayloadLen: uint32(len(value))}, Body: body}
		if withPayload {
			m.SetPayload(b.h.buf(value), d)
		}
		b.out = append(b.out, broadcast.Outbound{To: dst, Msg: m})
	}
}

// serveFetches makes b answer fetches for value's digest.
func serveFetches(value []byte) func(b *byzNode, from broadcast.NodeID, m *broadcast.Message) {
	d := broadcast.DigestOfBytes(value)
	return func(b *byzNode, from broadcast.NodeID, m *broadcast.Message) {
		if m.Type != broadcast.TypeFetch || m.Digest != d {
			return
		}
		out := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoDolevStrong, Type: broadcast.TypePayload, Instance: m.Instance}}
		out.SetPayload(b.h.buf(value), d)
		b.out = append(b.out, broadcast.Outbound{To: from, Msg: out})
	}
}

func ids(xs ...int) []broadcast.NodeID {
	out := make([]broadcast.NodeID, len(xs))
	for i, x := range xs {
		out[i] = broadcast.NodeID(x)
	}
	return out
}

func rangeIDs(lo, hi int) []broadcast.NodeID {
	var out []broadcast.NodeID
	for i := lo; i < hi; i++ {
		out = append(out, broadcast.NodeID(i))
	}
	return out
}
