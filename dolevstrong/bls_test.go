package dolevstrong

import (
	crand "crypto/rand"
	"testing"

	GG "github.com/cloudflare/circl/ecc/bls12381"
	"github.com/onecast/onecast/broadcast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rogueKey builds the classic rogue-key attack on same-message aggregation:
// the attacker publishes pk_r = x·g2 − pk_victim, so that pk_victim + pk_r =
// x·g2 and a signature made with x alone passes as "victim and attacker
// both signed".
func rogueKey(t *testing.T, victim []byte) (key []byte, x *GG.Scalar) {
	x = new(GG.Scalar)
	require.NoError(t, x.Random(crand.Reader))
	var pv, r GG.G2
	require.NoError(t, pv.SetBytes(victim))
	pv.Neg()
	r.ScalarMult(x, GG.G2Generator())
	r.Add(&r, &pv)
	return r.BytesCompressed(), x
}

func signWithScalar(x *GG.Scalar, msg []byte) []byte {
	var h GG.G1
	h.Hash(msg, []byte(blsDST))
	h.ScalarMult(x, &h)
	return h.BytesCompressed()
}

func TestProofOfPossessionStopsRogueKeys(t *testing.T) {
	privs, pubs := make([]any, 2), make([]BLSPublic, 2)
	for i := range 2 {
		priv, pub, err := GenerateBLSKey(crand.Reader)
		require.NoError(t, err)
		privs[i], pubs[i] = priv, pub
	}
	rogue, x := rogueKey(t, pubs[0].Key)
	stmt := Statement(broadcast.Instance{Origin: 0, Seq: 1}, broadcast.DigestOfBytes([]byte("forged")))
	forged := signWithScalar(x, stmt)

	// Without the check, the forgery verifies as signed by both nodes.
	var pr GG.G2
	require.NoError(t, pr.SetBytes(rogue))
	var pv GG.G2
	require.NoError(t, pv.SetBytes(pubs[0].Key))
	var verifies uint64
	unchecked := &blsScheme{k: &BLSKeyring{pubs: []GG.G2{pv, pr}}, verifies: &verifies}
	var h GG.G1
	h.Hash(stmt, []byte(blsDST))
	require.True(t, unchecked.verify(&h, ids(0, 1), forged), "the attack should work without proofs of possession")

	// The attacker cannot make a proof of possession for the rogue key.
	pubs[1] = BLSPublic{Key: rogue, PoP: signWithScalar(x, popMessage(rogue))}
	_, err := NewBLSKeyring(0, privs[0].(*blsPrivateKey), pubs)
	require.ErrorContains(t, err, "proof of possession of node 1")
}

func TestBLSKeyringRefusesBadKeys(t *testing.T) {
	privs, pubs := make([]*blsPrivateKey, 3), make([]BLSPublic, 3)
	for i := range 3 {
		var err error
		privs[i], pubs[i], err = GenerateBLSKey(crand.Reader)
		require.NoError(t, err)
	}
	_, err := NewBLSKeyring(1, privs[1], pubs)
	require.NoError(t, err)

	swapped := append([]BLSPublic(nil), pubs...)
	swapped[2].PoP = pubs[0].PoP
	_, err = NewBLSKeyring(1, privs[1], swapped)
	assert.ErrorContains(t, err, "proof of possession of node 2")

	garbage := append([]BLSPublic(nil), pubs...)
	garbage[0].Key = make([]byte, 96)
	_, err = NewBLSKeyring(1, privs[1], garbage)
	assert.ErrorContains(t, err, "node 0 is invalid")

	_, err = NewBLSKeyring(1, privs[2], pubs)
	assert.ErrorContains(t, err, "does not match")
}

func TestAggregateWithInflatedBitmapIsRejected(t *testing.T) {
	rings, err := GenerateBLSKeyrings(4, crand.Reader)
	require.NoError(t, err)
	in := broadcast.Instance{Origin: 0, Seq: 3}
	stmt := Statement(in, broadcast.DigestOfBytes([]byte("v")))
	var verifies uint64
	s0 := &blsScheme{k: rings[0], verifies: &verifies}
	s1 := &blsScheme{k: rings[1], verifies: &verifies}
	agg := addG1(s0.sign(stmt), s1.sign(stmt))

	good, err := DecodeBody(AppendAggregate(nil, 4, ids(0, 1), agg), 4)
	require.NoError(t, err)
	require.NoError(t, s0.newProof(4).absorb(stmt, &good))

	inflated, err := DecodeBody(AppendAggregate(nil, 4, ids(0, 1, 2), agg), 4)
	require.NoError(t, err)
	err = s0.newProof(4).absorb(stmt, &inflated)
	assert.Equal(t, broadcast.ReasonAuth, broadcast.ReasonOf(err))
}

func TestDisjointAggregatesCombine(t *testing.T) {
	rings, err := GenerateBLSKeyrings(4, crand.Reader)
	require.NoError(t, err)
	stmt := Statement(broadcast.Instance{Origin: 0, Seq: 3}, broadcast.DigestOfBytes([]byte("v")))
	var verifies uint64
	sch := func(i int) *blsScheme { return &blsScheme{k: rings[i], verifies: &verifies} }
	a, err := DecodeBody(AppendAggregate(nil, 4, ids(0, 1), addG1(sch(0).sign(stmt), sch(1).sign(stmt))), 4)
	require.NoError(t, err)
	b, err := DecodeBody(AppendAggregate(nil, 4, ids(2), sch(2).sign(stmt)), 4)
	require.NoError(t, err)
	p := sch(3).newProof(4)
	require.NoError(t, p.absorb(stmt, &a))
	require.NoError(t, p.absorb(stmt, &b))
	assert.Equal(t, 3, p.count())
	p.addOwn(3, sch(3).sign(stmt))
	all, err := DecodeBody(p.appendRelay(nil, 4, 0, 3, 0), 4)
	require.NoError(t, err)
	assert.Equal(t, ids(0, 1, 2, 3), all.Signers)
	require.NoError(t, sch(0).newProof(4).absorb(stmt, &all), "combined aggregate must verify")
}
