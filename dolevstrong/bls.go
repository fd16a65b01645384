package dolevstrong

import (
	"fmt"
	"io"

	GG "github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/sign/bls"
	"github.com/onecast/onecast/broadcast"
)

// BLS keys live in G2 (96-byte public keys) and signatures in G1 (48
// bytes), the "minimal signature size" choice: keys are exchanged once,
// signatures travel in every relay.
type blsGroup = bls.KeyG2SigG1

// blsPrivateKey is a BLS secret key of the aggregate variant.
type blsPrivateKey = bls.PrivateKey[blsGroup]

// blsDST is the hash-to-curve domain circl's BASIC scheme signs under.
const blsDST = "BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"

// popTag prefixes the message a proof of possession signs. Statements begin
// with statementTag, so no statement is ever a proof of possession.
var popTag = []byte("onecast/dolevstrong/bls-pop/v1\x00\x00")

// BLSPublic is what a node publishes for the aggregate variant: its public
// key and a proof of possession (its signature on the key itself), which
// rules out rogue-key attacks on same-message aggregation.
type BLSPublic struct {
	Key []byte // compressed G2 point, 96 bytes
	PoP []byte // compressed G1 point, 48 bytes
}

// BLSKeyring is one node's BLS keys for the aggregate variant: its secret
// key and every node's public key, each checked against its proof of
// possession when the keyring was built.
type BLSKeyring struct {
	Self broadcast.NodeID
	priv *bls.PrivateKey[blsGroup]
	pubs []GG.G2
}

func popMessage(key []byte) []byte { return append(append([]byte(nil), popTag...), key...) }

// GenerateBLSKey makes a BLS secret key from rand and its public half with
// a proof of possession.
func GenerateBLSKey(rand io.Reader) (*bls.PrivateKey[blsGroup], BLSPublic, error) {
	var ikm [32]byte
	if _, err := io.ReadFull(rand, ikm[:]); err != nil {
		return nil, BLSPublic{}, fmt.Errorf("dolevstrong: read BLS key material: %w", err)
	}
	priv, err := bls.KeyGen[blsGroup](ikm[:], nil, []byte("onecast/dolevstrong/bls-key/v1"))
	if err != nil {
		return nil, BLSPublic{}, fmt.Errorf("dolevstrong: BLS key generation: %w", err)
	}
	key, err := priv.PublicKey().MarshalBinary()
	if err != nil {
		return nil, BLSPublic{}, fmt.Errorf("dolevstrong: encode BLS public key: %w", err)
	}
	return priv, BLSPublic{Key: key, PoP: bls.Sign(priv, popMessage(key))}, nil
}

// NewBLSKeyring builds node self's keyring from its secret key and every
// node's published key. It checks each key's proof of possession and
// refuses the keyring if any fails.
func NewBLSKeyring(self broadcast.NodeID, priv *bls.PrivateKey[blsGroup], pubs []BLSPublic) (*BLSKeyring, error) {
	if int(self) >= len(pubs) {
		return nil, fmt.Errorf("dolevstrong: node %v outside a cluster of %d", self, len(pubs))
	}
	k := &BLSKeyring{Self: self, priv: priv, pubs: make([]GG.G2, len(pubs))}
	for i, p := range pubs {
		var pk bls.PublicKey[blsGroup]
		if err := pk.UnmarshalBinary(p.Key); err != nil || !pk.Validate() {
			return nil, fmt.Errorf("dolevstrong: BLS public key of node %d is invalid", i)
		}
		if !bls.Verify(&pk, popMessage(p.Key), p.PoP) {
			return nil, fmt.Errorf("dolevstrong: BLS proof of possession of node %d does not verify", i)
		}
		if err := k.pubs[i].SetBytes(p.Key); err != nil {
			return nil, fmt.Errorf("dolevstrong: decode BLS public key of node %d: %w", i, err)
		}
	}
	own, err := priv.PublicKey().MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("dolevstrong: encode own BLS key: %w", err)
	}
	if string(own) != string(pubs[self].Key) {
		return nil, fmt.Errorf("dolevstrong: node %v's secret key does not match its published key", self)
	}
	return k, nil
}

// GenerateBLSKeyrings makes BLS keyrings for a whole cluster of n nodes in
// one process (tests, simulator, in-process benchmarks).
func GenerateBLSKeyrings(n int, rand io.Reader) ([]*BLSKeyring, error) {
	privs := make([]*bls.PrivateKey[blsGroup], n)
	pubs := make([]BLSPublic, n)
	for i := range n {
		var err error
		if privs[i], pubs[i], err = GenerateBLSKey(rand); err != nil {
			return nil, err
		}
	}
	rings := make([]*BLSKeyring, n)
	for i := range n {
		var err error
		if rings[i], err = NewBLSKeyring(broadcast.NodeID(i), privs[i], pubs); err != nil {
			return nil, err
		}
	}
	return rings, nil
}

// blsScheme is the aggregate variant: one signature per relay whatever the
// number of signers.
type blsScheme struct {
	k        *BLSKeyring
	verifies *uint64
}

func (s *blsScheme) sign(stmt []byte) []byte { return bls.Sign(s.k.priv, stmt) }

func (s *blsScheme) newProof(n int) proof { return &blsProof{s: s, signers: make([]bool, n)} }

// verify checks agg as an aggregate by signers of stmt: e(agg, g2) =
// e(H(stmt), Σ pk). Same-message aggregation is sound because every key's
// proof of possession was checked when the keyring was built.
func (s *blsScheme) verify(h *GG.G1, signers []broadcast.NodeID, agg []byte) bool {
	var sig GG.G1
	if err := sig.SetBytes(agg); err != nil || sig.IsIdentity() {
		return false
	}
	var apk GG.G2
	apk.SetIdentity()
	for _, id := range signers {
		apk.Add(&apk, &s.k.pubs[id])
	}
	*s.verifies++
	res := GG.ProdPairFrac([]*GG.G1{h, &sig}, []*GG.G2{&apk, GG.G2Generator()}, []int{1, -1})
	return res.IsIdentity()
}

// blsProof keeps the best aggregate seen for one statement: the one with
// the most signers. Two aggregates with disjoint signers combine into one.
type blsProof struct {
	s       *blsScheme
	h       *GG.G1 // hash of the statement, computed once
	agg     []byte
	signers []bool
	cnt     int
}

func (p *blsProof) count() int                   { return p.cnt }
func (p *blsProof) has(id broadcast.NodeID) bool { return int(id) < len(p.signers) && p.signers[id] }

func (p *blsProof) hash(stmt []byte) *GG.G1 {
	if p.h == nil {
		p.h = new(GG.G1)
		p.h.Hash(stmt, []byte(blsDST))
	}
	return p.h
}

func (p *blsProof) absorb(stmt []byte, b *Body) error {
	if b.Kind != KindAggregate {
		return broadcast.Reject(broadcast.ReasonBody, "body kind %d, this cluster uses BLS aggregates", b.Kind)
	}
	news, overlap := 0, 0
	for _, id := range b.Signers {
		if p.signers[id] {
			overlap++
		} else {
			news++
		}
	}
	if news == 0 {
		return nil // adds no signer: nothing to verify
	}
	if !p.s.verify(p.hash(stmt), b.Signers, b.Aggregate) {
		return broadcast.Reject(broadcast.ReasonAuth, "BLS aggregate of %d signers does not verify", len(b.Signers))
	}
	switch {
	case p.cnt == 0 || (overlap > 0 && len(b.Signers) > p.cnt):
		p.agg = append(p.agg[:0], b.Aggregate...)
		clear(p.signers)
		p.cnt = 0
		for _, id := range b.Signers {
			p.signers[id] = true
		}
		p.cnt = len(b.Signers)
	case overlap == 0:
		p.agg = addG1(p.agg, b.Aggregate)
		for _, id := range b.Signers {
			p.signers[id] = true
		}
		p.cnt += len(b.Signers)
	}
	return nil
}

// addG1 returns the sum of two valid compressed G1 points.
func addG1(a, b []byte) []byte {
	var x, y GG.G1
	if x.SetBytes(a) != nil || y.SetBytes(b) != nil {
		panic("dolevstrong: adding unverified BLS signatures") // both were verified before
	}
	x.Add(&x, &y)
	return x.BytesCompressed()
}

func (p *blsProof) addOwn(self broadcast.NodeID, sig []byte) {
	if p.signers[self] {
		return
	}
	if p.cnt == 0 {
		p.agg = append(p.agg[:0], sig...)
	} else {
		p.agg = addG1(p.agg, sig)
	}
	p.signers[self] = true
	p.cnt++
}

func (p *blsProof) appendRelay(dst []byte, n int, _, _ broadcast.NodeID, _ int) []byte {
	signers := make([]broadcast.NodeID, 0, p.cnt)
	for id, ok := range p.signers {
		if ok {
			signers = append(signers, broadcast.NodeID(id))
		}
	}
	return AppendAggregate(dst, n, signers, p.agg)
}
