package pbft

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/mem"
)

type harness struct {
	t      testing.TB
	pool   *bufpool.Pool
	nodes  []*Node
	stores []*broadcast.PayloadStore
	c      *mem.Cluster
	sms    []*HashChain
	byz    []*Byzantine
	// batches[i][seq] is the batch digest replica i executed at seq.
	batches []map[uint64]broadcast.Digest
}

type harnessOpt struct {
	mode    broadcast.Mode
	batch   int
	k       uint64
	signer  bool
	unsafeQ int
	fault   mem.Fault
	seed    uint64
	tweak   func(i int, c *Config)
	byz     map[int]Behavior
}

func newHarness(t testing.TB, n, f int, o harnessOpt) *harness {
	t.Helper()
	if o.mode == 0 {
		o.mode = broadcast.ModeDigest
	}
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 4096, Frames: 4096, Checked: true})
	h := &harness{t: t, pool: pool}
	var secret [32]byte
	secret[0] = 7
	protos := make([]broadcast.Protocol, n)
	for i := range n {
		st := broadcast.NewPayloadStore(broadcast.StoreConfig{})
		sm := &HashChain{}
		cfg := Config{Params: broadcast.Params{N: n, F: f, Self: broadcast.NodeID(i), Mode: o.mode},
			Store: st, StateMachine: sm, Batch: o.batch, CheckpointInterval: o.k,
			Timeout: 100 * time.Millisecond, UnsafeCommitQuorum: o.unsafeQ}
		if o.signer {
			cfg.Signer = OracleSigner{Secret: secret, Self: broadcast.NodeID(i)}
		}
		h.batches = append(h.batches, map[uint64]broadcast.Digest{})
		bm := h.batches[i]
		cfg.OnExecute = func(seq uint64, d broadcast.Digest, _ []Entry) { bm[seq] = d }
		if o.tweak != nil {
			o.tweak(i, &cfg)
		}
		if b, ok := o.byz[i]; ok {
			z, err := NewByzantine(cfg, b, o.seed)
			require.NoError(t, err)
			h.byz = append(h.byz, z)
			h.nodes, h.stores, h.sms = append(h.nodes, z.Node), append(h.stores, st), append(h.sms, sm)
			protos[i] = z
			continue
		}
		nd, err := New(cfg)
		require.NoError(t, err)
		h.nodes, h.stores, h.sms = append(h.nodes, nd), append(h.stores, st), append(h.sms, sm)
		protos[i] = nd
	}
	opts := []mem.Option{mem.WithSeed(o.seed + 1)}
	if o.fault != nil {
		opts = append(opts, mem.WithFault(o.fault))
	}
	h.c = mem.NewCluster(mem.NewNetwork(n, opts...), protos)
	return h
}

func (h *harness) submit(node int, payload string) {
	b, err := h.pool.Copy([]byte(payload))
	require.NoError(h.t, err)
	require.NoError(h.t, h.c.Submit(broadcast.NodeID(node), b))
}

func (h *harness) run(d time.Duration) {
	h.c.Run(h.c.Now+d, 10_000_000)
}

// executed returns node i's executed requests as "client/ts" strings in order.
func (h *harness) executed(i int) []string {
	var out []string
	for _, d := range h.c.Delivered[i] {
		out = append(out, fmt.Sprintf("%d:%d/%d:%s", d.Instance.Seq, d.Instance.Origin, d.Index, d.Digest))
	}
	return out
}

func (h *harness) close() {
	h.c.Close()
	for _, z := range h.byz {
		z.Close()
	}
	for _, nd := range h.nodes {
		nd.Close()
	}
	for _, s := range h.stores {
		s.Close()
	}
	require.NoError(h.t, h.pool.CheckLeaks())
}

// checkSafety asserts the SMR properties over the correct replicas: no two
// execute different requests at one (seq, index), none executes a request
// twice, and their state machines agree wherever they executed as far.
func (h *harness) checkSafety(correct []int) {
	t := h.t
	type key struct {
		seq uint64
		idx int
	}
	at := map[key]string{}
	batch := map[uint64]broadcast.Digest{}
	for _, i := range correct {
		for seq, d := range h.batches[i] {
			if old, ok := batch[seq]; ok {
				require.Equal(t, old, d, "replicas executed different batches at seq %d", seq)
			}
			batch[seq] = d
		}
		seen := map[string]bool{}
		for _, d := range h.c.Delivered[i] {
			v := fmt.Sprintf("%d:%s", d.Instance.Origin, d.Digest)
			require.False(t, seen[v], "replica %d executes %s twice", i, v)
			seen[v] = true
			k := key{d.Instance.Seq, d.Index}
			if old, ok := at[k]; ok {
				require.Equal(t, old, v, "replicas disagree at seq %d index %d", k.seq, k.idx)
			}
			at[k] = v
		}
	}
}
