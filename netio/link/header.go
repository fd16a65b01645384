package link

import (
	"encoding/binary"

	"github.com/onecast/onecast/broadcast"
)

// HeaderSize is the fixed size of the link header that precedes every
// onecast frame on a Conduit. It never changes: the kernel's XDP program
// finds the onecast header at Ethernet 14 + IPv4 20 + UDP 8 + HeaderSize.
const HeaderSize = 48

// Magic opens every link header.
const Magic byte = 'L'

// Version is the link wire format version.
const Version byte = 1

// Kind says what a link frame carries.
type Kind uint8

// Link frame kinds.
const (
	// KindData carries one onecast frame (a message or a fragment of one)
	// after the link header, under sequence number Seq.
	KindData Kind = 1
	// KindAck carries only acknowledgement state (and the sender's epoch):
	// acks, probes and answers to probes.
	KindAck Kind = 2
	// KindPrefix is a data frame (numbered in the same stream as KindData)
	// that carries one piece of a onecast prefix too large for one frame:
	// a piece header (PieceHeaderSize bytes: the byte PieceMarker, three
	// zero bytes, the piece's offset in the prefix, u32) and the piece.
	// The payload of such a message follows in continuation frames.
	KindPrefix Kind = 3
)

// PieceHeaderSize is the size of the piece header of a KindPrefix frame.
const PieceHeaderSize = 8

// PieceMarker opens a piece header. It is not the low byte of the onecast
// magic, so the XDP program, which looks for a onecast header right after
// the link header, leaves prefix pieces alone.
const PieceMarker byte = 'P'

// SACKBits is the number of sequence numbers beyond the cumulative ack that
// one selective-ack bitmap covers.
const SACKBits = 64

// Header is the link header. Its layout, little-endian:
//
//	off len field
//	  0   1 Magic 'L'
//	  1   1 Version
//	  2   1 Kind
//	  3   1 reserved (zero)
//	  4   4 Window    (credit: frames the sender of this frame accepts in flight from the receiver)
//	  8   8 SrcEpoch  (incarnation of the frame's sender)
//	 16   8 DstEpoch  (incarnation of the receiver, as the sender knows it)
//	 24   8 Seq       (KindData: this frame's sequence number, from 1)
//	 32   8 Ack       (every Seq ≤ Ack of the reverse stream was received)
//	 40   8 SACK      (bit i: Seq Ack+2+i of the reverse stream was received)
//
// An epoch names one incarnation of a node's link (its start time): a
// restarted node has a larger one, and the streams between it and its peers
// start over.
type Header struct {
	Kind     Kind
	Window   uint32
	SrcEpoch uint64
	DstEpoch uint64
	Seq      uint64
	Ack      uint64
	SACK     uint64
}

// Put writes h into b, which must hold HeaderSize bytes.
func (h *Header) Put(b []byte) {
	_ = b[HeaderSize-1]
	b[0] = Magic
	b[1] = Version
	b[2] = byte(h.Kind)
	b[3] = 0
	binary.LittleEndian.PutUint32(b[4:], h.Window)
	binary.LittleEndian.PutUint64(b[8:], h.SrcEpoch)
	binary.LittleEndian.PutUint64(b[16:], h.DstEpoch)
	binary.LittleEndian.PutUint64(b[24:], h.Seq)
	binary.LittleEndian.PutUint64(b[32:], h.Ack)
	binary.LittleEndian.PutUint64(b[40:], h.SACK)
}

// ParseHeader decodes the link header at the start of b. Nothing is
// trusted: a short frame, a bad magic, version or kind, or a data frame
// without a sequence number gives a *broadcast.RejectError.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, broadcast.Reject(broadcast.ReasonTruncated, "link frame of %d bytes is shorter than the %d-byte link header", len(b), HeaderSize)
	}
	if b[0] != Magic {
		return h, broadcast.Reject(broadcast.ReasonMagic, "link magic %#02x", b[0])
	}
	if b[1] != Version {
		return h, broadcast.Reject(broadcast.ReasonVersion, "link version %d, want %d", b[1], Version)
	}
	h.Kind = Kind(b[2])
	h.Window = binary.LittleEndian.Uint32(b[4:])
	h.SrcEpoch = binary.LittleEndian.Uint64(b[8:])
	h.DstEpoch = binary.LittleEndian.Uint64(b[16:])
	h.Seq = binary.LittleEndian.Uint64(b[24:])
	h.Ack = binary.LittleEndian.Uint64(b[32:])
	h.SACK = binary.LittleEndian.Uint64(b[40:])
	switch h.Kind {
	case KindData, KindPrefix:
		if h.Seq == 0 {
			return h, broadcast.Reject(broadcast.ReasonLength, "link data frame with sequence number 0")
		}
		if len(b) == HeaderSize {
			return h, broadcast.Reject(broadcast.ReasonTruncated, "link data frame without a onecast frame")
		}
	case KindAck:
		if h.Seq != 0 || len(b) != HeaderSize {
			return h, broadcast.Reject(broadcast.ReasonLength, "link ack frame with a sequence number or %d trailing bytes", len(b)-HeaderSize)
		}
	default:
		return h, broadcast.Reject(broadcast.ReasonType, "link frame kind %d", b[2])
	}
	if h.SrcEpoch == 0 {
		return h, broadcast.Reject(broadcast.ReasonSender, "link frame without a sender epoch")
	}
	return h, nil
}
