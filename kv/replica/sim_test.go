package replica

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/kv"
	"github.com/onecast/onecast/netio/mem"
	"github.com/onecast/onecast/pbft"
)

// simCluster is four kv replicas (durable state machines on disk) driven
// deterministically over the in-process network with a logical clock.
type simCluster struct {
	t        *testing.T
	dir      string
	byz      map[int]pbft.Behavior
	nodes    []*pbft.Node
	protos   []broadcast.Protocol
	stores   []*broadcast.PayloadStore
	sms      []*durableSM
	journals []*journal
	c        *mem.Cluster
	secret   [32]byte
	hash     bool // use pbft.HashChain instead of the kv store (to tell pbft's behaviour from kv's)
}

func newSimCluster(t *testing.T, byz map[int]pbft.Behavior, seed uint64) *simCluster {
	s := &simCluster{t: t, dir: t.TempDir(), byz: byz, nodes: make([]*pbft.Node, 4), protos: make([]broadcast.Protocol, 4),
		stores: make([]*broadcast.PayloadStore, 4), sms: make([]*durableSM, 4), journals: make([]*journal, 4)}
	s.secret[0] = 42
	for i := range 4 {
		s.build(i, seed)
	}
	s.c = mem.NewCluster(mem.NewNetwork(4, mem.WithSeed(seed)), s.protos)
	return s
}

// build makes replica i from its data directory.
func (s *simCluster) build(i int, seed uint64) {
	sm, j, rec, err := openDurable(filepath.Join(s.dir, fmt.Sprint(i)), kv.WALOptions{NoSync: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(s.t, err)
	defer rec.Release()
	st := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	cfg := pbft.Config{Params: broadcast.Params{N: 4, F: 1, Self: broadcast.NodeID(i), Mode: broadcast.ModeDigest},
		Store: st, StateMachine: pbft.StateMachine(sm), Signer: pbft.OracleSigner{Secret: s.secret, Self: broadcast.NodeID(i)},
		CheckpointInterval: 4, Timeout: 100 * time.Millisecond, Logger: sm.log, Journal: j, Recovery: rec}
	s.journals[i] = j
	if s.hash {
		cfg.StateMachine = &pbft.HashChain{}
	}
	if b, ok := s.byz[i]; ok {
		z, err := pbft.NewByzantine(cfg, b, seed)
		require.NoError(s.t, err)
		s.nodes[i], s.protos[i] = z.Node, z
	} else {
		nd, err := pbft.New(cfg)
		require.NoError(s.t, err)
		s.nodes[i], s.protos[i] = nd, nd
	}
	sm.recovering = false
	s.stores[i], s.sms[i] = st, sm
	s.protos[i] = &syncedProto{Protocol: s.protos[i], j: j}
}

// syncedProto syncs the replica's journal before its messages leave, as
// the replica's runner does (tapped).
type syncedProto struct {
	broadcast.Protocol
	j *journal
}

func (p *syncedProto) Ready() broadcast.Ready {
	rd := p.Protocol.Ready()
	if err := p.j.sync(); err != nil {
		panic(err)
	}
	return rd
}

func (s *simCluster) crash(i int) {
	s.c.Crash(broadcast.NodeID(i))
	s.nodes[i].Close()
	s.stores[i].Close()
	require.NoError(s.t, s.journals[i].close())
	require.NoError(s.t, s.sms[i].wal.Close())
	s.sms[i].store.Close()
}

func (s *simCluster) restart(i int, seed uint64) {
	s.build(i, seed)
	s.c.Nodes[i] = s.protos[i]
	s.c.TickAll(s.c.Now)
}

func (s *simCluster) close() {
	s.c.Close()
	for i := range s.nodes {
		s.nodes[i].Close()
		s.stores[i].Close()
		s.journals[i].close()
		s.sms[i].wal.Close()
		s.sms[i].store.Close()
	}
}

func (s *simCluster) set(client int, key, value string, nonce uint64) {
	op, err := kv.EncodeOp(&kv.Command{Kind: kv.KindSet, Keys: [][]byte{[]byte(key)}}, []byte(value),
		kv.Stamp{Now: 1000, Nonce: nonce})
	require.NoError(s.t, err)
	require.NoError(s.t, s.c.Submit(broadcast.NodeID(client), op))
}

func (s *simCluster) get(i int, key string) []byte {
	op, err := kv.EncodeOp(&kv.Command{Kind: kv.KindGet, Keys: [][]byte{[]byte(key)}}, nil, kv.Stamp{Now: 1000})
	require.NoError(s.t, err)
	defer op.Release()
	return s.sms[i].store.Read(op, nil)
}

// TestSimByzantineReplicaAndRestartKeepAcknowledgedWrites: with one
// Byzantine replica (each PBFT attack in turn, the primary among them), a
// correct replica crashes mid-workload and restarts from its disk. Every
// write a client saw acknowledged (f+1 matching replies) is in the state of
// every correct replica, and the restarted replica converges with the
// others.
func TestSimByzantineReplicaAndRestartKeepAcknowledgedWrites(t *testing.T) {
	cases := []struct {
		byz     int
		b       pbft.Behavior
		crashed int
	}{
		{0, pbft.Equivocate, 2},
		{3, pbft.WrongDigest, 1},
		{1, pbft.Replay, 3},
		{0, pbft.Silent, 3},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%v-at-%d-crash-%d", tc.b, tc.byz, tc.crashed), func(t *testing.T) {
			seed := uint64(tc.byz*10 + tc.crashed)
			s := newSimCluster(t, map[int]pbft.Behavior{tc.byz: tc.b}, seed)
			defer s.close()
			var correct []int
			for i := range 4 {
				if i != tc.byz {
					correct = append(correct, i)
				}
			}
			want := map[string]string{}
			nonce := uint64(0)
			acked := map[uint64]bool{}
			collect := func() {
				for _, i := range correct {
					if s.c.Nodes[i] == nil {
						continue
					}
					for _, r := range s.nodes[i].TakeResults(nil) {
						acked[uint64(i)<<32|r.Timestamp] = len(r.Value) > 8 && string(r.Value[8:]) == kv.ReplyStored
					}
				}
			}
			round := func(from, to int) {
				for k := from; k < to; k++ {
					client := correct[k%len(correct)]
					if s.c.Nodes[client] == nil {
						continue
					}
					nonce++
					key, val := fmt.Sprintf("k%d", k%20), fmt.Sprintf("v%d", k)
					s.set(client, key, val, nonce)
					if k%5 == 4 {
						s.c.Run(s.c.Now+200*time.Millisecond, 1_000_000)
					}
					want[key] = val // the latest write to a key is what must be read
				}
				s.c.Run(s.c.Now+5*time.Second, 5_000_000)
				collect()
			}
			round(0, 30)
			s.crash(tc.crashed)
			round(30, 60) // f+1 faults now: progress may stall, safety may not
			s.restart(tc.crashed, seed+1)
			round(60, 90)
			round(90, 150) // more checkpoints: the restarted replica catches up by state transfer
			// Settle. A replica restarted into an old view catches up by
			// state transfer, i.e. to stable checkpoints: pad the log to a
			// checkpoint boundary (K = 4) so that everyone ends on one.
			padder := correct[0]
			if padder == tc.crashed {
				padder = correct[1]
			}
			for range 40 {
				s.c.Run(s.c.Now+time.Second, 5_000_000)
				same := true
				for _, i := range correct {
					same = same && s.sms[i].last.Load() == s.sms[padder].last.Load()
				}
				if same {
					break
				}
				if s.sms[padder].last.Load()%4 != 0 {
					nonce++
					s.set(padder, "pad", "x", nonce)
				}
			}
			collect()
			// Every request submitted by a correct, live client was
			// answered by f+1 replicas.
			assert.NotEmpty(t, acked)
			for id, ok := range acked {
				assert.True(t, ok, "request %x acknowledged with an error", id)
			}
			// Every correct replica holds the latest value of every key
			// (all submissions of the last rounds completed).
			for _, i := range correct {
				for k, v := range want {
					r := s.get(i, k)
					require.Contains(t, string(r), "\r\n"+v+"\r\n", "replica %d key %s: %q", i, k, r)
				}
			}
			ref := s.sms[correct[0]]
			for _, i := range correct[1:] {
				require.Equal(t, ref.last.Load(), s.sms[i].last.Load(), "replica %d executed as far as %d", i, correct[0])
				a, err := ref.store.Snapshot()
				require.NoError(t, err)
				b, err := s.sms[i].store.Snapshot()
				require.NoError(t, err)
				require.True(t, bytes.Equal(a, b), "replica %d state differs", i)
			}
		})
	}
}
