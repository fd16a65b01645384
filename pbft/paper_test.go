package pbft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// The rules of Castro & Liskov, "Practical Byzantine Fault Tolerance and
// Proactive Recovery" (TOCS 2002), §4.2–4.5, one test each, named after
// the section and the rule, in the manner of etcd raft's
// raft_paper_test.go. Each drives one replica (replica 1 of four, f = 1,
// view 0 whose primary is 0) with messages the test signs for the other
// replicas.

var paperSecret = [32]byte{9}

func paperSigner(id broadcast.NodeID) OracleSigner {
	return OracleSigner{Secret: paperSecret, Self: id}
}

// paperReplica is replica self of four, in digest mode, checkpoint every 4.
func paperReplica(t *testing.T, self broadcast.NodeID) *Node {
	t.Helper()
	nd, err := New(Config{Params: broadcast.Params{N: 4, F: 1, Self: self, Mode: broadcast.ModeDigest},
		Store: broadcast.NewPayloadStore(broadcast.StoreConfig{}), Signer: paperSigner(self), CheckpointInterval: 4})
	require.NoError(t, err)
	t.Cleanup(nd.Close)
	return nd
}

// request has client send op at ts to nd, as the client itself would.
func request(t *testing.T, nd *Node, client broadcast.NodeID, ts uint64, op string) Entry {
	t.Helper()
	d := broadcast.DigestOfBytes([]byte(op))
	st := statement(stmtRequest, 0, ts, d)
	sig := paperSigner(client).Sign(&st)
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeRequest, Sender: client,
		Instance: broadcast.Instance{Seq: ts}}, Body: appendRequestBody(nil, client, 0, sig)}
	m.SetPayload(bufpool.Wrap([]byte(op)), d)
	require.NoError(t, nd.Step(client, &m))
	return Entry{Client: client, Timestamp: ts, Op: d, Len: uint32(len(op)), Sig: sig}
}

// prePrepare is view v's primary's signed PRE-PREPARE of es at seq.
func prePrepare(v uint32, seq uint64, es ...Entry) (*broadcast.Message, broadcast.Digest) {
	enc := appendEntries(nil, es)
	if len(es) == 0 {
		enc = nullBatch
	}
	d := batchDigest(enc)
	p := broadcast.NodeID(v % 4)
	st := statement(stmtPrePrepare, v, seq, d)
	return &broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypePrePrepare, Sender: p,
		Round: v, Instance: broadcast.Instance{Seq: seq}, Digest: d}, Body: appendPrePrepareBody(nil, paperSigner(p).Sign(&st), enc)}, d
}

func prepare(from broadcast.NodeID, v uint32, seq uint64, d broadcast.Digest) *broadcast.Message {
	st := statement(stmtPrepare, v, seq, d)
	return &broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypePrepare, Sender: from,
		Round: v, Instance: broadcast.Instance{Seq: seq}, Digest: d}, Body: appendSig(nil, paperSigner(from).Sign(&st))}
}

func commit(from broadcast.NodeID, v uint32, seq uint64, d broadcast.Digest) *broadcast.Message {
	return &broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeCommit, Sender: from,
		Round: v, Instance: broadcast.Instance{Seq: seq}, Digest: d}}
}

func checkpointMsg(from broadcast.NodeID, seq uint64, d broadcast.Digest) *broadcast.Message {
	st := statement(stmtCheckpoint, 0, seq, d)
	return &broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeCheckpoint, Sender: from,
		Instance: broadcast.Instance{Seq: seq}, Digest: d}, Body: appendSig(nil, paperSigner(from).Sign(&st))}
}

// sent returns the types (and digests) of what nd sends, clearing it.
func sent(nd *Node, t broadcast.MsgType) []broadcast.Digest {
	rd := nd.Ready()
	defer rd.Release()
	var out []broadcast.Digest
	for _, o := range rd.Messages {
		if o.Msg.Type == t {
			out = append(out, o.Msg.Digest)
		}
	}
	return out
}

func TestPaper_4_2_PrePrepareIsAcceptedOnlyFromTheViewsPrimary(t *testing.T) {
	nd := paperReplica(t, 1)
	e := request(t, nd, 3, 1, "A")
	pp, _ := prePrepare(0, 1, e)
	pp.Sender = 2
	require.Error(t, nd.Step(2, pp), "a PRE-PREPARE of view 0 from replica 2")
	assert.Empty(t, sent(nd, TypePrepare))
}

func TestPaper_4_2_OnePrePrepareAcceptedPerViewAndSequenceNumber(t *testing.T) {
	nd := paperReplica(t, 1)
	a := request(t, nd, 3, 1, "A")
	b := request(t, nd, 2, 1, "B")
	pa, da := prePrepare(0, 1, a)
	require.NoError(t, nd.Step(0, pa))
	assert.Equal(t, []broadcast.Digest{da}, sent(nd, TypePrepare))
	pb, _ := prePrepare(0, 1, b)
	require.NoError(t, nd.Step(0, pb))
	assert.Empty(t, sent(nd, TypePrepare), "a second PRE-PREPARE for (0, 1) with another digest is not accepted")
}

func TestPaper_4_2_PrePrepareOutsideTheWatermarksIsNotAccepted(t *testing.T) {
	nd := paperReplica(t, 1)
	a := request(t, nd, 3, 1, "A")
	pa, _ := prePrepare(0, nd.cfg.Window+1, a) // h = 0, H = h + L
	require.NoError(t, nd.Step(0, pa))
	assert.Empty(t, sent(nd, TypePrepare))
	assert.Empty(t, nd.future, "nor kept for later")
}

func TestPaper_4_2_PreparedNeedsTwoFPreparesFromBackupsMatchingThePrePrepare(t *testing.T) {
	nd := paperReplica(t, 1)
	a := request(t, nd, 3, 1, "A")
	pa, da := prePrepare(0, 1, a)
	require.NoError(t, nd.Step(0, pa))
	sent(nd, TypePrepare)
	// The primary's PREPARE does not count, nor one for another digest or
	// view, nor one whose signature does not verify.
	require.Error(t, nd.Step(0, prepare(0, 0, 1, da)))
	require.NoError(t, nd.Step(2, prepare(2, 0, 1, batchDigest(nullBatch))))
	bad := prepare(3, 0, 1, da)
	bad.Body[1] ^= 1
	require.NoError(t, nd.Step(3, bad))
	assert.Empty(t, sent(nd, TypeCommit), "its own PREPARE alone (2f−1) is not enough")
	require.NoError(t, nd.Step(2, prepare(2, 0, 1, da)))
	assert.Equal(t, []broadcast.Digest{da}, sent(nd, TypeCommit), "its own and replica 2's: 2f matching PREPAREs from backups")
}

func TestPaper_4_2_ExecutionNeedsTwoFPlusOneCommitsAndComesInOrder(t *testing.T) {
	nd := paperReplica(t, 1)
	a := request(t, nd, 3, 1, "A")
	b := request(t, nd, 2, 1, "B")
	p1, d1 := prePrepare(0, 1, a)
	p2, d2 := prePrepare(0, 2, b)
	for _, p := range []*broadcast.Message{p2, p1} {
		require.NoError(t, nd.Step(0, p))
	}
	for _, from := range []broadcast.NodeID{2, 3} {
		require.NoError(t, nd.Step(from, prepare(from, 0, 2, d2)))
		require.NoError(t, nd.Step(from, prepare(from, 0, 1, d1)))
	}
	require.NoError(t, nd.Step(2, commit(2, 0, 2, d2)))
	require.NoError(t, nd.Step(3, commit(3, 0, 2, d2)))
	assert.Zero(t, nd.LastExecuted(), "seq 2 is committed-local, but seq 1 is not executed yet")
	require.NoError(t, nd.Step(2, commit(2, 0, 1, d1)))
	assert.Zero(t, nd.LastExecuted(), "2f = 2 COMMITs (its own and one) do not commit")
	require.NoError(t, nd.Step(0, commit(0, 0, 1, d1)))
	assert.Equal(t, uint64(2), nd.LastExecuted(), "2f+1 COMMITs: 1 executes, then 2")
}

func TestPaper_4_3_CheckpointIsStableOnTwoFPlusOneMatchingCheckpoints(t *testing.T) {
	nd := paperReplica(t, 1)
	d := broadcast.DigestOfBytes([]byte("state at 4"))
	other := broadcast.DigestOfBytes([]byte("another state at 4"))
	require.NoError(t, nd.Step(0, checkpointMsg(0, 4, d)))
	require.NoError(t, nd.Step(2, checkpointMsg(2, 4, other)))
	require.NoError(t, nd.Step(3, checkpointMsg(3, 4, d)))
	assert.Zero(t, nd.StableCheckpoint(), "f+1 = 2 matching CHECKPOINTs do not make it stable")
	require.NoError(t, nd.Step(2, checkpointMsg(2, 4, d)))
	assert.Equal(t, uint64(4), nd.StableCheckpoint(), "2f+1 matching CHECKPOINTs do")
	// The low watermark moved: the replica lags, so it fetches the state
	// named by the checkpoint (state transfer), from a signer.
	fetches := sent(nd, broadcast.TypeFetch)
	assert.Equal(t, []broadcast.Digest{d}, fetches)
}

func TestPaper_4_3_MessagesAtOrBelowTheLowWatermarkAreDiscarded(t *testing.T) {
	nd := paperReplica(t, 1)
	d := broadcast.DigestOfBytes([]byte("state at 4"))
	for _, from := range []broadcast.NodeID{0, 2, 3} {
		require.NoError(t, nd.Step(from, checkpointMsg(from, 4, d)))
	}
	require.Equal(t, uint64(4), nd.StableCheckpoint())
	sent(nd, broadcast.TypeFetch)
	a := request(t, nd, 3, 1, "A")
	pa, da := prePrepare(0, 3, a)
	require.NoError(t, nd.Step(0, pa))
	require.NoError(t, nd.Step(2, prepare(2, 0, 3, da)))
	assert.Empty(t, sent(nd, TypePrepare))
	assert.Nil(t, nd.slots[3], "no state kept for a sequence number at or below h")
}

func TestPaper_4_5_ReplicaJoinsTheSmallestViewThatFPlusOneAskFor(t *testing.T) {
	s := newScript(t, 4, 1)
	s.submit(3, "A")
	s.deliver(func(e envelope) bool { return e.is(TypeRequest) })
	// Replicas 2 and 3 ask for views 3 and 2 (their timers ran out more or
	// less often); replica 1 has not timed out.
	for _, v := range []uint32{2, 3} {
		s.nodes[int(v)].startViewChange(5 - v)
		s.collect(int(v))
	}
	s.deliver(func(e envelope) bool { return e.to == 1 && e.is(TypeViewChange) })
	assert.Equal(t, uint64(1), s.nodes[1].Stats().ViewChanges, "f+1 = 2 replicas ask for views above its own")
	assert.Equal(t, uint32(2), s.nodes[1].target, "it joins the smallest of the views they ask for")
}

func TestPaper_4_5_TimerRunsOnlyOnceTwoFPlusOneAskForTheView(t *testing.T) {
	nd := paperReplica(t, 1)
	request(t, nd, 3, 1, "A")
	nd.startViewChange(1)
	assert.Zero(t, nd.timer, "alone, a replica that asks for a view does not run ahead of the others")
	s := newScript(t, 4, 1)
	s.submit(3, "A")
	s.deliver(func(e envelope) bool { return e.is(TypeRequest) })
	for i := 1; i < 4; i++ {
		s.nodes[i].startViewChange(1)
		s.collect(i)
	}
	s.deliver(func(e envelope) bool { return e.to == 2 && e.from != 1 && e.is(TypeViewChange) })
	assert.Zero(t, s.nodes[2].timer, "two VIEW-CHANGE(1)s, its own included")
	s.deliver(func(e envelope) bool { return e.to == 2 && e.is(TypeViewChange) })
	assert.NotZero(t, s.nodes[2].timer, "2f+1 VIEW-CHANGE(1)s start the timer")
}

// certFor is a valid prepared certificate for es at (v, seq): the PRE-PREPARE
// signed by v's primary and 2f PREPAREs of backups.
func certFor(v uint32, seq uint64, es ...Entry) PreparedCert {
	_, d := prePrepare(v, seq, es...)
	p := broadcast.NodeID(v % 4)
	st := statement(stmtPrePrepare, v, seq, d)
	c := PreparedCert{Seq: seq, View: v, Digest: d, PPSig: paperSigner(p).Sign(&st)}
	for i := broadcast.NodeID(0); len(c.Prepares) < 2; i++ {
		if i != p {
			pst := statement(stmtPrepare, v, seq, d)
			c.Prepares = append(c.Prepares, SignedVote{Node: i, Sig: paperSigner(i).Sign(&pst)})
		}
	}
	return c
}

// viewChange is replica from's signed VIEW-CHANGE(v) carrying certs.
func viewChange(from broadcast.NodeID, v uint32, certs ...PreparedCert) *broadcast.Message {
	enc := appendViewChange(nil, &ViewChange{NewView: v, Prepared: certs})
	d := broadcast.DigestOfBytes(enc)
	st := statement(stmtViewChange, v, 0, d)
	m := &broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeViewChange, Sender: from, Round: v},
		Body: appendSig(nil, paperSigner(from).Sign(&st))}
	m.SetPayload(bufpool.Wrap(enc), d)
	return m
}

func TestPaper_4_4_NewViewOrdersTheBatchOfTheHighestViewCertificateAndNullInGaps(t *testing.T) {
	nd := paperReplica(t, 2) // view 2's primary
	a := request(t, nd, 3, 1, "A")
	b := request(t, nd, 0, 1, "B")
	low := certFor(0, 1, a)  // prepared in view 0 at seq 1
	high := certFor(1, 1, b) // prepared in view 1 at seq 1
	at3 := certFor(0, 3, a)  // seq 2 has no certificate
	require.NoError(t, nd.Step(0, viewChange(0, 2, low, at3)))
	require.NoError(t, nd.Step(3, viewChange(3, 2, high)))
	nd.startViewChange(2)
	require.NoError(t, nd.Step(1, viewChange(1, 2)))
	require.Equal(t, uint32(2), nd.View(), "the primary entered view 2 on 2f+1 VIEW-CHANGEs")
	nv := nd.newView
	require.NotNil(t, nv)
	assert.Equal(t, high.Digest, nv.o[1], "seq 1: the certificate of the highest view wins")
	assert.Equal(t, batchDigest(nullBatch), nv.o[2], "seq 2: no certificate, the null batch")
	assert.Equal(t, at3.Digest, nv.o[3])
	assert.Equal(t, uint64(3), nv.highO)
}

func TestPaper_4_4_ViewChangeWithAnUnprovableCertificateIsRejected(t *testing.T) {
	nd := paperReplica(t, 2)
	a := request(t, nd, 3, 1, "A")
	forged := certFor(0, 1, a)
	forged.Prepares = forged.Prepares[:1] // 2f−1 PREPAREs
	require.Error(t, nd.Step(0, viewChange(0, 2, forged)))
	forged = certFor(0, 1, a)
	forged.PPSig = append([]byte(nil), forged.PPSig...)
	forged.PPSig[0] ^= 1 // not the primary's signature
	require.Error(t, nd.Step(0, viewChange(0, 2, forged)))
	assert.Nil(t, nd.vcFor(0, 2))
}

func TestPaper_4_4_PrePrepareContradictingTheNewViewIsRejected(t *testing.T) {
	nd := paperReplica(t, 3) // a backup of view 2
	a := request(t, nd, 1, 1, "A")
	b := request(t, nd, 0, 1, "B")
	vcs := []*broadcast.Message{viewChange(0, 2, certFor(0, 1, a)), viewChange(1, 2), viewChange(2, 2)}
	for _, m := range vcs {
		require.NoError(t, nd.Step(m.Sender, m))
	}
	refs := make([]NewViewRef, 0, 3)
	for _, m := range vcs {
		st := statement(stmtViewChange, 2, 0, m.Digest)
		refs = append(refs, NewViewRef{Node: m.Sender, Digest: m.Digest, Sig: paperSigner(m.Sender).Sign(&st)})
	}
	enc := appendNewView(nil, 2, refs)
	d := broadcast.DigestOfBytes(enc)
	st := statement(stmtNewView, 2, 0, d)
	nvm := &broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeNewView, Sender: 2, Round: 2},
		Body: appendSig(nil, paperSigner(2).Sign(&st))}
	nvm.SetPayload(bufpool.Wrap(enc), d)
	require.NoError(t, nd.Step(2, nvm))
	require.Equal(t, uint32(2), nd.View())
	sent(nd, TypePrepare)
	pb, _ := prePrepare(2, 1, b) // O says A at seq 1
	require.Error(t, nd.Step(2, pb))
	assert.Empty(t, sent(nd, TypePrepare))
	pa, da := prePrepare(2, 1, a)
	require.NoError(t, nd.Step(2, pa))
	assert.Equal(t, []broadcast.Digest{da}, sent(nd, TypePrepare))
}

func TestPaper_4_3_StateTransferredOnFPlusOneCheckpointsBecomesStableWithTheReplicasOwnVote(t *testing.T) {
	nd := paperReplica(t, 1)
	src := paperReplica(t, 0)
	const seq = 12 // beyond the window (h = 0, L = 8)
	blob, err := src.encodeState(seq)
	require.NoError(t, err)
	d := broadcast.DigestOfBytes(blob)
	require.NoError(t, nd.Step(0, checkpointMsg(0, seq, d)))
	require.NoError(t, nd.Step(2, checkpointMsg(2, seq, d)))
	require.Zero(t, nd.StableCheckpoint(), "f+1 CHECKPOINTs: the replica fetches the state, without calling it stable")
	require.Equal(t, []broadcast.Digest{d}, sent(nd, broadcast.TypeFetch))
	m := &broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: broadcast.TypePayload, Sender: 0, Digest: d}}
	m.SetPayload(bufpool.Wrap(blob), d)
	require.NoError(t, nd.Step(0, m))
	assert.Equal(t, uint64(seq), nd.LastExecuted())
	assert.Equal(t, []broadcast.Digest{d}, sent(nd, TypeCheckpoint), "it vouches for the state it now holds")
	assert.Equal(t, uint64(seq), nd.StableCheckpoint(), "f+1 others and its own vote: 2f+1, stable; its window opens above it")
}

func TestPaper_4_2_PrePrepareWhoseBatchIsNotItsDigestIsRejected(t *testing.T) {
	nd := paperReplica(t, 1)
	a := request(t, nd, 3, 1, "A")
	b := request(t, nd, 2, 1, "B")
	pa, _ := prePrepare(0, 1, a)
	swapped, ok := SwapPrePrepareBody(pa, []Entry{b})
	require.True(t, ok)
	require.Error(t, nd.Step(0, &swapped), "the primary's signed digest over another batch")
	assert.Empty(t, sent(nd, TypePrepare))
}
