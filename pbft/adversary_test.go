package pbft

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// The forging helpers build what a Byzantine replica may send: signed with
// its own key, whatever the content. These tests step them into a real
// replica: what the forger could have sent honestly is accepted, what
// claims another replica's signature is refused.

var forgeSecret = [32]byte{9}

func forgeSigner(id broadcast.NodeID) Signer { return OracleSigner{Secret: forgeSecret, Self: id} }

// forgeReplica is replica self of a cluster of 4 with simulated signatures.
func forgeReplica(t *testing.T, self broadcast.NodeID) *Node {
	t.Helper()
	st := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	nd, err := New(Config{Params: broadcast.Params{N: 4, F: 1, Self: self, Mode: broadcast.ModeDigest},
		Store: st, Signer: forgeSigner(self)})
	require.NoError(t, err)
	t.Cleanup(func() { nd.Close(); st.Close() })
	return nd
}

func isReason(err error, r broadcast.Reason) bool {
	var re *broadcast.RejectError
	return errors.As(err, &re) && re.Reason == r
}

func TestForgedPrePrepareOfThePrimaryIsAcceptedAndOfAnotherRefused(t *testing.T) {
	nd := forgeReplica(t, 1)
	pp := ForgePrePrepare(0, 1, nil, forgeSigner(0))
	pp.Sender = 0
	require.NoError(t, nd.Step(0, &pp))
	rd := nd.Ready()
	defer rd.Release()
	require.NotEmpty(t, rd.Messages)
	prep := rd.Messages[0].Msg
	assert.Equal(t, TypePrepare, prep.Type)
	assert.Equal(t, NullBatchDigest(), prep.Digest, "the null batch, prepared")

	es, err := PrePrepareEntries(&pp, 4)
	require.NoError(t, err)
	assert.Empty(t, es)

	other := ForgePrePrepare(0, 2, nil, forgeSigner(2))
	other.Sender = 2
	assert.True(t, isReason(nd.Step(2, &other), broadcast.ReasonSender), "only view 0's primary may pre-prepare")
}

func TestForgeVoteSignsAsTheForgerOnly(t *testing.T) {
	nd := forgeReplica(t, 1)
	d := broadcast.DigestOfBytes([]byte("state"))
	ck, ok := ForgeVote(TypeCheckpoint, 7, 32, d, forgeSigner(2))
	require.True(t, ok)
	assert.Zero(t, ck.Round, "a checkpoint has no view")
	ck.Sender = 2
	require.NoError(t, nd.Step(2, &ck))
	// The same vote stepped as replica 3's carries 2's signature: refused.
	ck.Sender = 3
	assert.True(t, isReason(nd.Step(3, &ck), broadcast.ReasonAuth))

	_, ok = ForgeVote(TypeRequest, 0, 1, d, forgeSigner(2))
	assert.False(t, ok)
	assert.Nil(t, SignStatement(forgeSigner(2), TypeCommit, 0, 1, d), "COMMIT carries no signature")
}

func TestForgedViewChangesAreJudgedByWhatTheyProve(t *testing.T) {
	nd := forgeReplica(t, 1)
	step := func(vc *ViewChange, from broadcast.NodeID) error {
		m, content := ForgeViewChange(vc, forgeSigner(from))
		m.Sender = from
		m.SetPayload(bufpool.Wrap(content), m.Digest)
		got, ref, err := ViewChangeOf(&m, 4, 64)
		require.NoError(t, err)
		assert.Equal(t, vc.NewView, got.NewView)
		assert.Equal(t, from, ref.Node)
		assert.Equal(t, m.Digest, ref.Digest)
		return nd.Step(from, &m)
	}
	// Nothing prepared, nothing stable: provable by anyone.
	require.NoError(t, step(&ViewChange{NewView: 1}, 2))

	// A prepared certificate made of the forger's own signatures only.
	d := broadcast.DigestOfBytes([]byte("batch"))
	own := SignedVote{Node: 3, Sig: SignStatement(forgeSigner(3), TypePrepare, 0, 1, d)}
	fake := SignedVote{Node: 2, Sig: own.Sig}
	lie := &ViewChange{NewView: 1, Prepared: []PreparedCert{{Seq: 1, View: 0, Digest: d,
		PPSig: SignStatement(forgeSigner(3), TypePrePrepare, 0, 1, d), Prepares: []SignedVote{own, fake}}}}
	assert.Error(t, step(lie, 3), "a certificate no primary signed")

	// A stable checkpoint proven by its own vote.
	ck := &ViewChange{NewView: 1, StableSeq: 32, StableDigest: d,
		StableProof: []SignedVote{{Node: 0, Sig: SignStatement(forgeSigner(0), TypeCheckpoint, 0, 32, d)}}}
	assert.True(t, isReason(step(ck, 0), broadcast.ReasonBody), "one signature is no stable checkpoint")
}

func TestForgedNewViewOnTooFewViewChangesIsRefused(t *testing.T) {
	nd := forgeReplica(t, 2)
	ref := NewViewRef{Node: 3, Digest: broadcast.DigestOfBytes([]byte("vc"))}
	ref.Sig = SignStatement(forgeSigner(3), TypeViewChange, 1, 0, ref.Digest)
	m, content := ForgeNewView(1, []NewViewRef{ref}, forgeSigner(1))
	m.Sender = 1
	m.SetPayload(bufpool.Wrap(content), m.Digest)
	defer m.Payload.Release()
	v, refs, err := NewViewRefs(&m, 4)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), v)
	assert.Equal(t, []NewViewRef{ref}, refs)

	require.NoError(t, nd.Step(3, vcMessage(t, 3, 1)))
	require.NoError(t, nd.Step(0, vcMessage(t, 0, 1))) // replica 2 now changes view too
	err = nd.Step(1, &m)
	assert.True(t, isReason(err, broadcast.ReasonBody), "%v", err)
}

// vcMessage is an honest, empty VIEW-CHANGE of from for view v.
func vcMessage(t *testing.T, from broadcast.NodeID, v uint32) *broadcast.Message {
	m, content := ForgeViewChange(&ViewChange{NewView: v}, forgeSigner(from))
	m.Sender = from
	m.SetPayload(bufpool.Wrap(content), m.Digest)
	t.Cleanup(func() { m.Payload.Release() })
	return &m
}
