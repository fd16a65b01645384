package dolevstrong

import (
	"encoding/binary"

	"github.com/onecast/onecast/broadcast"
)

// The deliberately broken verifiers of Config.UnsafeCountChainEntries (a
// chain may name one signer several times and counts its entries, so a
// coalition of k nodes passes for a chain of any length) and
// Config.UnsafeAcceptOneShort (a proof one signature short of its round is
// enough). The simulator's tests use them to prove that the adversaries
// sending such chains (sim's ds-repeat and ds-edge) are caught by the
// checkers; nothing else may set them.

// decodeRelayBody is DecodeBody, or, under UnsafeCountChainEntries, the
// same decoder with repeated chain signers allowed.
func (p *Node) decodeRelayBody(b []byte) (Body, error) {
	if !p.unsafeEntries || len(b) < 3 || b[0] != KindChain {
		return DecodeBody(b, p.n)
	}
	cnt := int(binary.LittleEndian.Uint16(b[1:]))
	if cnt == 0 || cnt > 2*p.n || len(b) != 3+cnt*chainEntrySize {
		return DecodeBody(b, p.n) // its rejection
	}
	out := Body{Kind: KindChain, Signers: make([]broadcast.NodeID, cnt), Sigs: make([][]byte, cnt)}
	for i := range cnt {
		e := b[3+i*chainEntrySize : 3+(i+1)*chainEntrySize]
		id := int(binary.LittleEndian.Uint16(e))
		if id >= p.n {
			return out, broadcast.Reject(broadcast.ReasonBody, "signer %d outside the cluster of %d", id, p.n)
		}
		out.Signers[i] = broadcast.NodeID(id)
		out.Sigs[i] = e[2:chainEntrySize:chainEntrySize]
	}
	return out, nil
}

// noteEntries remembers the longest verified chain of v (broken variant
// only).
func (p *Node) noteEntries(v *value, b *Body) {
	if p.unsafeEntries {
		v.entries = max(v.entries, len(b.Signers))
	}
}

// proofCount is the number of signatures v's proof counts for: its
// distinct signers, or under UnsafeCountChainEntries its longest chain's
// entries, plus one under UnsafeAcceptOneShort.
func (p *Node) proofCount(v *value) int {
	n := v.proof.count()
	if p.unsafeEntries {
		n = max(n, v.entries)
	}
	if p.unsafeOneShort {
		n++
	}
	return n
}
