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
	"github.com/onecast/onecast/netio/mem"
)

// memJournal is a Journal in memory, with the application's log beside
// it: what a replica's disk would hold.
type memJournal struct {
	records    [][]byte
	checkpoint []byte
	ckptSeq    uint64
	batches    []RecoveredBatch
	fail       bool
}

func (j *memJournal) Append(rec []byte) error {
	if j.fail {
		return fmt.Errorf("disk full")
	}
	j.records = append(j.records, bytes.Clone(rec))
	return nil
}

func (j *memJournal) Compact(rec []byte) error {
	j.records = [][]byte{bytes.Clone(rec)}
	return nil
}

func (j *memJournal) SaveCheckpoint(seq uint64, blob []byte) error {
	j.checkpoint, j.ckptSeq = bytes.Clone(blob), seq
	keep := j.batches[:0]
	for _, b := range j.batches {
		if b.Seq > seq {
			keep = append(keep, b)
		}
	}
	j.batches = keep
	return nil
}

func (j *memJournal) recovery() *Recovery {
	return &Recovery{Checkpoint: j.checkpoint, Batches: j.batches, Journal: j.records}
}

// loggedSM is a HashChain whose applied batches go to the journal's
// application log, as kv's WAL does.
type loggedSM struct {
	HashChain
	j *memJournal
}

func (s *loggedSM) Apply(seq uint64, ops []Op) [][]byte {
	if n := len(s.j.batches); seq > s.j.ckptSeq && (n == 0 || s.j.batches[n-1].Seq < seq) {
		cp := make([]Op, len(ops))
		for i, op := range ops {
			cp[i] = Op{Client: op.Client, Timestamp: op.Timestamp, Payload: bufpool.Wrap(bytes.Clone(op.Payload.Bytes()))}
		}
		s.j.batches = append(s.j.batches, RecoveredBatch{Seq: seq, Ops: cp})
	}
	return s.HashChain.Apply(seq, ops)
}

type recoveryCluster struct {
	t        *testing.T
	nodes    []*Node
	journals []*memJournal
	sms      []*loggedSM
	c        *mem.Cluster
	// executed[i][seq] is the batch replica i executed at seq, over every
	// incarnation.
	executed []map[uint64]broadcast.Digest
}

func newRecoveryCluster(t *testing.T, n int) *recoveryCluster {
	rc := &recoveryCluster{t: t}
	for range n {
		j := &memJournal{}
		rc.journals = append(rc.journals, j)
		rc.sms = append(rc.sms, &loggedSM{j: j})
		rc.executed = append(rc.executed, map[uint64]broadcast.Digest{})
	}
	rc.start(nil, 1)
	return rc
}

// start builds every replica (from its journal for those in restart) on
// a fresh network.
func (rc *recoveryCluster) start(restart []int, seed uint64) {
	n := len(rc.journals)
	var secret [32]byte
	secret[0] = 3
	protos := make([]broadcast.Protocol, n)
	old := rc.nodes
	rc.nodes = make([]*Node, n)
	for i := range n {
		exec := rc.executed[i]
		cfg := Config{Params: broadcast.Params{N: n, F: (n - 1) / 3, Self: broadcast.NodeID(i), Mode: broadcast.ModeDigest},
			Store: broadcast.NewPayloadStore(broadcast.StoreConfig{}), StateMachine: rc.sms[i], Batch: 2, CheckpointInterval: 4,
			Timeout: 100 * time.Millisecond, Signer: OracleSigner{Secret: secret, Self: broadcast.NodeID(i)}, Journal: rc.journals[i],
			OnExecute: func(seq uint64, d broadcast.Digest, _ []Entry) {
				if prev, ok := exec[seq]; ok && prev != d {
					rc.t.Errorf("replica %d executes %v at %d, it executed %v there before", i, d, seq, prev)
				}
				exec[seq] = d
			}}
		restarted := false
		for _, r := range restart {
			restarted = restarted || r == i
		}
		if old != nil && !restarted {
			rc.nodes[i] = old[i]
			protos[i] = old[i]
			continue
		}
		if restarted {
			rc.sms[i] = &loggedSM{j: rc.journals[i]} // the state in memory is gone
			cfg.StateMachine = rc.sms[i]
			cfg.Recovery = rc.journals[i].recovery()
		}
		nd, err := New(cfg)
		require.NoError(rc.t, err)
		rc.nodes[i], protos[i] = nd, nd
	}
	rc.c = mem.NewCluster(mem.NewNetwork(n, mem.WithSeed(seed)), protos)
}

func (rc *recoveryCluster) submit(i, k int) {
	require.NoError(rc.t, rc.c.Submit(broadcast.NodeID(i), bufpool.Wrap([]byte(fmt.Sprintf("op %d of %d", k, i)))))
}

func (rc *recoveryCluster) results(i int) int { return len(rc.nodes[i].TakeResults(nil)) }

// TestRecoveryOfEveryReplicaKeepsTheLogAndServes restarts the whole
// cluster (then three of four) on what its journals and logs kept: every
// replica comes back with the state it had, the cluster orders new
// requests after the old ones, and no sequence number is reused for a
// different batch.
func TestRecoveryOfEveryReplicaKeepsTheLogAndServes(t *testing.T) {
	for _, restart := range [][]int{{0, 1, 2, 3}, {1, 2, 3}, {0, 2, 3}} {
		t.Run(fmt.Sprint(restart), func(t *testing.T) {
			rc := newRecoveryCluster(t, 4)
			for k := range 9 {
				for i := range 4 {
					rc.submit(i, k)
				}
			}
			rc.c.Run(10*time.Second, 1_000_000)
			for i := range 4 {
				require.Equal(t, 9, rc.results(i), "replica %d's client before the restart", i)
			}
			before := make([][32]byte, 4)
			execBefore := rc.nodes[0].LastExecuted()
			require.GreaterOrEqual(t, execBefore, uint64(8), "several checkpoints before the restart")
			for i := range 4 {
				before[i] = rc.sms[i].state
			}
			rc.c.Close()
			rc.start(restart, 2)
			for _, i := range restart {
				assert.Equal(t, before[i], rc.sms[i].state, "replica %d's state after recovery", i)
				assert.Equal(t, uint64(1), rc.nodes[i].Stats().Recoveries)
			}
			for k := 9; k < 14; k++ {
				for i := range 4 {
					rc.submit(i, k)
				}
			}
			rc.c.Run(rc.c.Now+30*time.Second, 2_000_000)
			for i := range 4 {
				assert.Equal(t, 5, rc.results(i), "replica %d's client after the restart", i)
				assert.Greater(t, rc.nodes[i].LastExecuted(), execBefore, "replica %d", i)
				assert.Equal(t, rc.sms[0].state, rc.sms[i].state, "replica %d diverged", i)
			}
			for i := range 4 {
				for seq, d := range rc.executed[i] {
					if d0, ok := rc.executed[0][seq]; ok {
						assert.Equal(t, d0, d, "replicas 0 and %d at %d", i, seq)
					}
				}
			}
			rc.c.Close()
			for _, nd := range rc.nodes {
				nd.Close()
			}
		})
	}
}

// TestRecoveredReplicaNeverActsInARecordedView: a replica restarted from a
// journal that recorded view 3 asks for view 4 and accepts nothing of view
// 3 or below.
func TestRecoveredReplicaNeverActsInARecordedView(t *testing.T) {
	j := &memJournal{}
	require.NoError(t, j.Append([]byte{recView, 3, 0, 0, 0}))
	var secret [32]byte
	nd, err := New(Config{Params: broadcast.Params{N: 4, F: 1, Self: 1, Mode: broadcast.ModeDigest},
		Store: broadcast.NewPayloadStore(broadcast.StoreConfig{}), Signer: OracleSigner{Secret: secret, Self: 1},
		Journal: j, Recovery: &Recovery{Journal: j.records}})
	require.NoError(t, err)
	defer nd.Close()
	rd := nd.Ready()
	defer rd.Release()
	var vc []uint32
	for _, o := range rd.Messages {
		if o.Msg.Type == TypeViewChange {
			vc = append(vc, o.Msg.Round)
		}
	}
	assert.Equal(t, []uint32{4}, vc)
	assert.Equal(t, uint32(3), nd.View())
	assert.False(t, nd.acceptsNewView(3))
	// The view it asked for is on the journal before the VIEW-CHANGE left.
	assert.Equal(t, []byte{recView, 4, 0, 0, 0}, j.records[len(j.records)-1])
}

// TestJournalFailureHaltsTheReplica: a replica whose journal fails sends
// nothing more.
func TestJournalFailureHaltsTheReplica(t *testing.T) {
	j := &memJournal{}
	var secret [32]byte
	nd, err := New(Config{Params: broadcast.Params{N: 4, F: 1, Self: 1, Mode: broadcast.ModeDigest},
		Store: broadcast.NewPayloadStore(broadcast.StoreConfig{}), Signer: OracleSigner{Secret: secret, Self: 1}, Journal: j})
	require.NoError(t, err)
	defer nd.Close()
	j.fail = true
	nd.startViewChange(1)
	rd := nd.Ready()
	assert.Empty(t, rd.Messages)
	assert.Equal(t, uint64(1), nd.Stats().JournalErrors)
}
