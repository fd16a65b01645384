package dolevstrong

import (
	"encoding/binary"
	"math/bits"

	"github.com/cloudflare/circl/sign/ed25519"
	"github.com/onecast/onecast/broadcast"
)

// Body kinds: the first byte of every relay body says which proof follows.
const (
	// KindChain is a chain of Ed25519 signatures, one per signer.
	KindChain byte = 1
	// KindAggregate is one BLS aggregate signature and a signer bitmap.
	KindAggregate byte = 2
)

// BLSSignatureSize is the size of a compressed BLS signature (a G1 point:
// keys live in G2, signatures in G1, so that what travels is small).
const BLSSignatureSize = 48

// chainEntrySize is one Ed25519 chain entry: signer (u16) and signature.
const chainEntrySize = 2 + ed25519.SignatureSize

// Body is a decoded relay body: the proof that a set of nodes signed the
// statement (instance, digest). Decoding checks shape only (lengths, ranges,
// distinct signers); signatures are checked by the protocol.
//
// Wire layout, little-endian:
//
//	KindChain:     kind u8 | count u16 | count × (signer u16 | Ed25519 signature 64)
//	KindAggregate: kind u8 | bitmap length u16 | bitmap | BLS signature 48
//
// Bitmap bit i (byte i/8, bit i%8) says node i signed.
type Body struct {
	Kind byte
	// Signers lists the signers, in wire order (KindChain) or in node order
	// (KindAggregate, from the bitmap).
	Signers []broadcast.NodeID
	// Sigs[i] is Signers[i]'s Ed25519 signature (KindChain only). It aliases
	// the decoded bytes.
	Sigs [][]byte
	// Aggregate is the BLS aggregate signature (KindAggregate only). It
	// aliases the decoded bytes.
	Aggregate []byte
}

// BitmapLen is the bitmap size in bytes for a cluster of n nodes.
func BitmapLen(n int) int { return (n + 7) / 8 }

// DecodeBody parses a relay body for a cluster of n nodes. It borrows b; the
// returned Body aliases it. Nothing is trusted: a bad body gives a
// *broadcast.RejectError with ReasonBody.
func DecodeBody(b []byte, n int) (Body, error) {
	var out Body
	if len(b) < 3 {
		return out, broadcast.Reject(broadcast.ReasonBody, "relay body of %d bytes", len(b))
	}
	if n <= 0 || n > 1<<16 {
		return out, broadcast.Reject(broadcast.ReasonBody, "cluster of %d nodes", n)
	}
	out.Kind = b[0]
	cnt := int(binary.LittleEndian.Uint16(b[1:]))
	switch out.Kind {
	case KindChain:
		if cnt == 0 || cnt > n {
			return out, broadcast.Reject(broadcast.ReasonBody, "chain of %d signatures in a cluster of %d", cnt, n)
		}
		if len(b) != 3+cnt*chainEntrySize {
			return out, broadcast.Reject(broadcast.ReasonBody, "chain of %d signatures in %d bytes", cnt, len(b))
		}
		seen := make([]uint64, (n+63)/64)
		out.Signers = make([]broadcast.NodeID, cnt)
		out.Sigs = make([][]byte, cnt)
		for i := range cnt {
			e := b[3+i*chainEntrySize : 3+(i+1)*chainEntrySize]
			id := int(binary.LittleEndian.Uint16(e))
			if id >= n {
				return out, broadcast.Reject(broadcast.ReasonBody, "signer %d outside the cluster of %d", id, n)
			}
			if seen[id/64]&(1<<(id%64)) != 0 {
				return out, broadcast.Reject(broadcast.ReasonBody, "signer %d twice in a chain", id)
			}
			seen[id/64] |= 1 << (id % 64)
			out.Signers[i] = broadcast.NodeID(id)
			out.Sigs[i] = e[2:chainEntrySize:chainEntrySize]
		}
		return out, nil
	case KindAggregate:
		if cnt != BitmapLen(n) {
			return out, broadcast.Reject(broadcast.ReasonBody, "bitmap of %d bytes for %d nodes", cnt, n)
		}
		if len(b) != 3+cnt+BLSSignatureSize {
			return out, broadcast.Reject(broadcast.ReasonBody, "aggregate body of %d bytes, want %d", len(b), 3+cnt+BLSSignatureSize)
		}
		bm := b[3 : 3+cnt]
		if n%8 != 0 && bm[cnt-1]>>(n%8) != 0 {
			return out, broadcast.Reject(broadcast.ReasonBody, "bitmap names nodes beyond %d", n)
		}
		pop := 0
		for _, x := range bm {
			pop += bits.OnesCount8(x)
		}
		if pop == 0 {
			return out, broadcast.Reject(broadcast.ReasonBody, "aggregate with no signer")
		}
		out.Signers = make([]broadcast.NodeID, 0, pop)
		for i := range n {
			if bm[i/8]&(1<<(i%8)) != 0 {
				out.Signers = append(out.Signers, broadcast.NodeID(i))
			}
		}
		out.Aggregate = b[3+cnt : 3+cnt+BLSSignatureSize : 3+cnt+BLSSignatureSize]
		return out, nil
	}
	return out, broadcast.Reject(broadcast.ReasonBody, "unknown body kind %d", out.Kind)
}

// AppendChain appends a KindChain body of the given signers and signatures.
func AppendChain(dst []byte, signers []broadcast.NodeID, sigs [][]byte) []byte {
	dst = append(dst, KindChain, 0, 0)
	binary.LittleEndian.PutUint16(dst[len(dst)-2:], uint16(len(signers)))
	for i, id := range signers {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(id))
		dst = append(dst, sigs[i]...)
	}
	return dst
}

// AppendAggregate appends a KindAggregate body for a cluster of n nodes.
func AppendAggregate(dst []byte, n int, signers []broadcast.NodeID, agg []byte) []byte {
	bl := BitmapLen(n)
	dst = append(dst, KindAggregate, 0, 0)
	binary.LittleEndian.PutUint16(dst[len(dst)-2:], uint16(bl))
	start := len(dst)
	dst = append(dst, make([]byte, bl)...)
	for _, id := range signers {
		dst[start+int(id)/8] |= 1 << (id % 8)
	}
	return append(dst, agg...)
}

// AppendBody re-encodes b (the inverse of DecodeBody) for a cluster of n.
func (b *Body) AppendBody(dst []byte, n int) []byte {
	if b.Kind == KindAggregate {
		return AppendAggregate(dst, n, b.Signers, b.Aggregate)
	}
	return AppendChain(dst, b.Signers, b.Sigs)
}
