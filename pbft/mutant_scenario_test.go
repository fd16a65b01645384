package pbft

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/internal/mutant"
)

// newMutatedScript is newScript with muts seeded in every replica.
func newMutatedScript(t *testing.T, n, f int, muts mutant.Set) *script {
	t.Helper()
	s := &script{t: t}
	var secret [32]byte
	secret[0] = 9
	for i := range n {
		exec := map[uint64]broadcast.Digest{}
		s.executed = append(s.executed, exec)
		nd, err := New(Config{Params: broadcast.Params{N: n, F: f, Self: broadcast.NodeID(i), Mode: broadcast.ModeDigest},
			Store: broadcast.NewPayloadStore(broadcast.StoreConfig{}), StateMachine: &HashChain{}, Batch: 1,
			Timeout: 100 * time.Millisecond, Signer: OracleSigner{Secret: secret, Self: broadcast.NodeID(i)},
			OnExecute: func(seq uint64, d broadcast.Digest, _ []Entry) { exec[seq] = d }, Mutations: muts})
		require.NoError(t, err)
		s.nodes = append(s.nodes, nd)
	}
	t.Cleanup(func() {
		for _, b := range s.held {
			b.Release()
		}
		for _, nd := range s.nodes {
			nd.Close()
		}
	})
	return s
}

// askFor ticks the given replicas, a second at a time, dropping the
// requests they relay, until each has sent VIEW-CHANGE(v).
func (s *script) askFor(v uint32, ids ...int) {
	for range 20 {
		done := true
		for _, i := range ids {
			if nd := s.nodes[i]; !nd.changing || nd.target < v {
				done = false
			}
		}
		if done {
			return
		}
		s.tick(s.now+time.Second, ids...)
		s.drop(func(e envelope) bool { return e.is(TypeRequest) })
	}
	s.t.Fatalf("replicas %v did not ask for view %d", ids, v)
}

// msg matches the queued envelopes of type typ for view (round) v from one
// replica to any of the given ones.
func msg(typ broadcast.MsgType, v uint32, from int, to ...int) func(e envelope) bool {
	in := among(to...)
	return func(e envelope) bool {
		return e.is(typ) && e.m.Round == v && e.from == broadcast.NodeID(from) && in(e.to)
	}
}

// commitsAnyViewSchedule runs, on replicas 0 (R), 1 (Q), 2 (X) and 3 (Z,
// whose messages the schedule picks as a Byzantine replica would), the
// schedule under which counting COMMITs of other views (mutant
// pbft-commits-any-view) breaks agreement. It returns the batch digests
// executed at sequence number 1 by X and by R and Q.
//
//	view 0 (primary R): only R prepares d; its COMMIT(0, d) reaches X alone.
//	view 1 (primary Q): NEW-VIEW on X, Q, Z (no certificate): Q orders e,
//	                   and only Q prepares it.
//	view 2 (primary X): NEW-VIEW on R, X, Z: R's certificate (d, 0)
//	                   re-orders d; only X prepares it, and counts its own
//	                   COMMIT(2, d), Z's COMMIT(2, d) and R's COMMIT(0, d).
//	view 3 (primary Z): NEW-VIEW on R, Q, Z: Q's certificate (e, 1) is the
//	                   highest; R and Q prepare and commit e.
//
// A correct X needs 2f+1 COMMITs of view 2 and commits nothing at 1.
func commitsAnyViewSchedule(t *testing.T, muts mutant.Set) (x, rq []broadcast.Digest) {
	s := newMutatedScript(t, 4, 1, muts)
	const R, Q, X, Z = 0, 1, 2, 3
	// Requests: D from R's client (known to R, X, Z), E from Q's (known
	// to Q, X, Z; R, view 0's primary, must not order it).
	s.submit(R, "D")
	s.deliver(func(e envelope) bool { return e.is(TypeRequest) && e.to != Q })
	s.drop(func(e envelope) bool { return e.is(TypeRequest) })
	// View 0: PRE-PREPARE(0, 1, d) to X and Z; their PREPAREs to R only;
	// R's COMMIT to X only.
	s.deliver(msg(TypePrePrepare, 0, R, X, Z))
	s.submit(Q, "E")
	s.deliver(func(e envelope) bool { return e.is(TypeRequest) && e.to != R })
	s.deliver(msg(TypePrepare, 0, X, R))
	s.deliver(msg(TypePrepare, 0, Z, R))
	s.deliver(msg(TypeCommit, 0, R, X))
	require.NotNil(t, s.nodes[R].slots[1].cert, "R prepared d in view 0")
	d := s.nodes[R].slots[1].digest
	s.drop(func(envelope) bool { return true })
	// View 1: Q, X and Z time out (relayed requests dropped) and change
	// view among themselves; R is not heard.
	s.askFor(1, Q, X, Z)
	s.deliver(func(e envelope) bool {
		return within(Q, X, Z)(e) && (e.is(TypeViewChange) || e.is(TypeNewView)) && e.m.Round == 1
	})
	require.Equal(t, uint32(1), s.nodes[Q].View())
	require.Equal(t, uint32(1), s.nodes[X].View())
	s.deliver(msg(TypePrePrepare, 1, Q, X, Z))
	s.deliver(msg(TypePrepare, 1, X, Q))
	s.deliver(msg(TypePrepare, 1, Z, Q))
	require.NotNil(t, s.nodes[Q].slots[1].cert, "Q prepared e in view 1")
	e := s.nodes[Q].slots[1].digest
	require.NotEqual(t, d, e)
	s.drop(func(envelope) bool { return true })
	// View 2: X and Z time out; R joins on their two VIEW-CHANGE(2)s; X
	// builds NEW-VIEW(2) on R, X, Z.
	s.askFor(2, X, Z)
	s.deliver(func(e envelope) bool { return e.is(TypeViewChange) && e.m.Round == 2 && e.to != Q })
	require.Equal(t, uint32(2), s.nodes[X].View(), "X entered view 2")
	s.deliver(func(e envelope) bool { return e.is(TypeNewView) && e.m.Round == 2 && e.to != Q })
	s.deliver(func(e envelope) bool {
		return (e.is(broadcast.TypeFetch) || e.is(broadcast.TypePayload)) && e.to != Q
	})
	s.deliver(msg(TypePrePrepare, 2, X, R, Z))
	s.deliver(msg(TypePrepare, 2, R, X))
	s.deliver(msg(TypePrepare, 2, Z, X))
	require.True(t, s.nodes[X].slots[1].prepared, "X prepared d in view 2")
	// Z's COMMIT(2, d) to X (COMMITs carry no signature: the link
	// authenticates them).
	s.queue = append(s.queue, envelope{from: Z, to: X, m: broadcast.Message{Header: broadcast.Header{
		Protocol: broadcast.ProtoPBFT, Type: TypeCommit, Sender: Z, Round: 2, Instance: broadcast.Instance{Seq: 1}, Digest: d}}})
	s.deliver(msg(TypeCommit, 2, Z, X))
	s.drop(func(envelope) bool { return true })
	// View 3: R and Z time out; Q joins on their VIEW-CHANGE(3)s; Z's core
	// builds NEW-VIEW(3) on R, Q, Z; X is not heard again.
	s.askFor(3, R, Z)
	s.deliver(func(e envelope) bool { return e.is(TypeViewChange) && e.m.Round == 3 && e.to != X && e.from != X })
	require.Equal(t, uint32(3), s.nodes[Z].View(), "Z entered view 3")
	for range 3 {
		s.deliver(func(e envelope) bool {
			return e.to != X && e.from != X && e.m.Round >= 3 || e.is(broadcast.TypeFetch) || e.is(broadcast.TypePayload)
		})
		s.tick(s.now+time.Second, R, Q, Z)
	}
	for _, i := range []int{R, Q} {
		rq = append(rq, s.executed[i][1])
	}
	return []broadcast.Digest{s.executed[X][1]}, rq
}

// TestMutantCommitsAnyViewBreaksAgreement shows that pbft-commits-any-view
// is not an equivalent mutant: under one schedule of a Byzantine replica
// and the network, X executes d at sequence number 1 while R and Q execute
// e; the correct protocol, under the same schedule, executes nothing at 1
// at X.
func TestMutantCommitsAnyViewBreaksAgreement(t *testing.T) {
	x, rq := commitsAnyViewSchedule(t, mutant.Of(mutant.PBFTCommitsAnyView))
	t.Logf("mutant: X executed %v, R and Q %v", x, rq)
	require.False(t, x[0].IsZero(), "X executes d")
	require.False(t, rq[0].IsZero(), "R executes e")
	require.Equal(t, rq[0], rq[1], "R and Q execute the same batch")
	require.NotEqual(t, x[0], rq[0], "agreement broken")

	x, rq = commitsAnyViewSchedule(t, 0)
	require.True(t, x[0].IsZero(), "a correct X commits nothing in view 2")
	require.False(t, rq[0].IsZero())
}
