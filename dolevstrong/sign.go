package dolevstrong

import (
	"encoding/binary"
	"fmt"

	"github.com/cloudflare/circl/sign/ed25519"
	"github.com/onecast/onecast/broadcast"
)

// statementTag separates Dolev–Strong statements from every other use of a
// node's keys (message authenticators, BLS proofs of possession).
var statementTag = [24]byte{'o', 'n', 'e', 'c', 'a', 's', 't', '/', 'd', 'o', 'l', 'e', 'v', 's', 't', 'r', 'o', 'n', 'g', '/', 'v', '1', 0, 0}

// StatementSize is the length of a signed statement.
const StatementSize = len(statementTag) + 4 + 8 + 32

// Statement is what every signer of a relay signs: the domain tag, the
// instance and the value's digest. It is the same message for every signer
// — which is what lets BLS signatures on it aggregate into one.
func Statement(in broadcast.Instance, d broadcast.Digest) []byte {
	b := make([]byte, 0, StatementSize)
	b = append(b, statementTag[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(in.Origin))
	b = binary.LittleEndian.AppendUint64(b, in.Seq)
	return append(b, d[:]...)
}

// scheme signs statements and makes empty proofs: Ed25519 chains or BLS
// aggregates.
type scheme interface {
	sign(stmt []byte) []byte
	newProof(n int) proof
}

// proof is everything a node knows of the signatures on one statement.
type proof interface {
	// count is the number of distinct signers known.
	count() int
	// has reports whether id's signature is known.
	has(id broadcast.NodeID) bool
	// absorb checks the body's signatures that add something and merges
	// them. A body that does not verify changes nothing and returns a
	// *broadcast.RejectError.
	absorb(stmt []byte, b *Body) error
	// addOwn adds this node's own signature (made by scheme.sign).
	addOwn(self broadcast.NodeID, sig []byte)
	// appendRelay encodes a relay body: at most want signatures, always
	// including origin's and self's (a chain may be trimmed; an aggregate
	// cannot and carries everything).
	appendRelay(dst []byte, n int, origin, self broadcast.NodeID, want int) []byte
}

// edScheme is Ed25519 chains: each signer's signature travels on its own.
type edScheme struct {
	priv ed25519.PrivateKey
	pubs []ed25519.PublicKey
	// verifies counts signature verifications, for the CPU figures.
	verifies *uint64
}

func newEdScheme(k *broadcast.Keyring, n int, verifies *uint64) (*edScheme, error) {
	if k == nil {
		return nil, fmt.Errorf("dolevstrong: no keyring (Env.Keys) for Ed25519 chains")
	}
	if len(k.SignKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("dolevstrong: keyring of node %v has no Ed25519 signing key", k.Self)
	}
	if len(k.VerifyKeys) != n {
		return nil, fmt.Errorf("dolevstrong: keyring has %d verify keys for %d nodes", len(k.VerifyKeys), n)
	}
	return &edScheme{priv: k.SignKey, pubs: k.VerifyKeys, verifies: verifies}, nil
}

func (s *edScheme) sign(stmt []byte) []byte { return ed25519.Sign(s.priv, stmt) }

func (s *edScheme) newProof(n int) proof { return &edProof{s: s, sigs: make([][]byte, n)} }

// edProof holds every verified signature on one statement, by signer. A
// relay is built from verified signatures only, so a garbage signature that
// a Byzantine relayer attached never travels on.
type edProof struct {
	s    *edScheme
	sigs [][]byte
	cnt  int
}

func (p *edProof) count() int                   { return p.cnt }
func (p *edProof) has(id broadcast.NodeID) bool { return int(id) < len(p.sigs) && p.sigs[id] != nil }

func (p *edProof) absorb(stmt []byte, b *Body) error {
	if b.Kind != KindChain {
		return broadcast.Reject(broadcast.ReasonBody, "body kind %d, this cluster uses Ed25519 chains", b.Kind)
	}
	for i, id := range b.Signers {
		if p.sigs[id] != nil {
			continue // known: verified once already
		}
		*p.s.verifies++
		if !ed25519.Verify(p.s.pubs[id], stmt, b.Sigs[i]) {
			return broadcast.Reject(broadcast.ReasonAuth, "chain signature of %v does not verify", id)
		}
	}
	for i, id := range b.Signers {
		if p.sigs[id] == nil {
			p.sigs[id] = append([]byte(nil), b.Sigs[i]...)
			p.cnt++
		}
	}
	return nil
}

func (p *edProof) addOwn(self broadcast.NodeID, sig []byte) {
	if p.sigs[self] == nil {
		p.cnt++
	}
	p.sigs[self] = sig
}

func (p *edProof) appendRelay(dst []byte, _ int, origin, self broadcast.NodeID, want int) []byte {
	signers := make([]broadcast.NodeID, 0, want)
	sigs := make([][]byte, 0, want)
	add := func(id broadcast.NodeID) {
		signers = append(signers, id)
		sigs = append(sigs, p.sigs[id])
	}
	add(origin)
	if self != origin {
		add(self)
	}
	for id := range p.sigs {
		if len(signers) >= want {
			break
		}
		nid := broadcast.NodeID(id)
		if p.sigs[id] != nil && nid != origin && nid != self {
			add(nid)
		}
	}
	return AppendChain(dst, signers, sigs)
}
