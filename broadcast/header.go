package broadcast

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"

	"github.com/onecast/onecast/bufpool"
)

// NodeID names a node of a cluster: 0 … n-1.
type NodeID uint32

// Everyone, as a destination, means every node other than the sender.
const Everyone NodeID = math.MaxUint32

func (id NodeID) String() string {
	if id == Everyone {
		return "*"
	}
	return fmt.Sprintf("n%d", uint32(id))
}

// Instance names one run of a protocol: (origin, sequence) for a broadcast,
// (0, sequence number) for PBFT, whose view travels in Header.Round.
type Instance struct {
	Origin NodeID
	Seq    uint64
}

func (i Instance) String() string { return fmt.Sprintf("%v/%d", i.Origin, i.Seq) }

// Digest is the SHA-256 of a payload: the payload's name everywhere.
type Digest [sha256.Size]byte

// DigestOf hashes b's window segment by segment, without flattening it. It
// borrows b.
func DigestOf(b bufpool.Buf) Digest {
	if b.Contiguous() {
		return sha256.Sum256(b.Bytes())
	}
	h := sha256.New()
	for seg := range b.Segments() {
		h.Write(seg)
	}
	var d Digest
	h.Sum(d[:0])
	return d
}

// DigestOfBytes hashes a byte slice.
func DigestOfBytes(p []byte) Digest { return sha256.Sum256(p) }

// IsZero reports whether d is all zeroes (no digest).
func (d Digest) IsZero() bool { return d == Digest{} }

// String returns the first 8 bytes in hex, which is enough to tell digests
// apart in logs and traces.
func (d Digest) String() string { return hex.EncodeToString(d[:8]) }

// ProtocolID says which protocol a message belongs to.
type ProtocolID uint8

// The protocols onecast implements. Link is the reliable-link layer's own
// traffic (acks), which carries no protocol message.
const (
	ProtoLink        ProtocolID = 0
	ProtoBracha      ProtocolID = 1
	ProtoPBFT        ProtocolID = 2
	ProtoDolevStrong ProtocolID = 3
	ProtoTest        ProtocolID = 15 // for tests of the codec and transports
	numProtocols                = 16
)

// String names the protocol.
func (p ProtocolID) String() string {
	switch p {
	case ProtoLink:
		return "link"
	case ProtoBracha:
		return "bracha"
	case ProtoPBFT:
		return "pbft"
	case ProtoDolevStrong:
		return "dolevstrong"
	case ProtoTest:
		return "test"
	}
	return fmt.Sprintf("proto%d", uint8(p))
}

// MsgType is a protocol's message type. Each protocol numbers its own types
// from 1; TypeFetch and TypePayload are shared by every protocol's digest
// mode.
type MsgType uint8

// Shared message types.
const (
	// TypeFetch asks a peer for the payload of Header.Digest.
	TypeFetch MsgType = 0xF0
	// TypePayload answers a fetch: it carries the payload of Header.Digest.
	TypePayload MsgType = 0xF1
)

// Flags are per-frame facts about a message. None is covered by the
// authenticator: the kernel's dedup program clears HasPayload and sets
// Stripped without invalidating the message.
type Flags uint8

const (
	// HasPayload says payload bytes follow the authenticator in this frame.
	HasPayload Flags = 1 << iota
	// Fragment marks a continuation frame: it carries payload bytes at
	// FragOffset for Digest, and no body or authenticator.
	Fragment
	// Stripped says a payload was cut from this frame on the way in, because
	// the receiver already held it.
	Stripped

	knownFlags = HasPayload | Fragment | Stripped
)

// Wire layout constants.
const (
	// Magic opens every onecast frame ("oc").
	Magic uint16 = 0x636F
	// Version is the wire format version this package speaks.
	Version uint8 = 1
	// HeaderSize is the fixed size of the header in bytes.
	HeaderSize = 72

	// DigestOffset is where the digest sits in the header, for code that reads
	// it without decoding (the XDP program).
	DigestOffset = 32
	// FlagsOffset is where the flags byte sits in the header.
	FlagsOffset = 5
)

// Header is the fixed part of every message. Its layout, little-endian:
//
//	off len field
//	  0   2 Magic
//	  2   1 Version
//	  3   1 Protocol
//	  4   1 Type
//	  5   1 Flags          (not authenticated)
//	  6   2 BodyLen
//	  8   4 Sender
//	 12   4 Instance.Origin
//	 16   8 Instance.Seq
//	 24   4 Round
//	 28   4 PayloadLen     (length of the payload Digest names)
//	 32  32 Digest
//	 64   2 AuthLen        (not authenticated: the authenticator's own length)
//	 66   2 FragIndex      (not authenticated)
//	 68   4 FragOffset     (not authenticated)
//
// A frame is Header | Body | Authenticator | payload bytes. The payload comes
// last so that it can be cut off the tail of a frame in the kernel.
type Header struct {
	Protocol   ProtocolID
	Type       MsgType
	Flags      Flags
	BodyLen    uint16
	Sender     NodeID
	Instance   Instance
	Round      uint32
	PayloadLen uint32
	Digest     Digest
	AuthLen    uint16
	FragIndex  uint16
	FragOffset uint32
}

// Put writes h into b, which must hold HeaderSize bytes.
func (h *Header) Put(b []byte) {
	_ = b[HeaderSize-1]
	binary.LittleEndian.PutUint16(b[0:], Magic)
	b[2] = Version
	b[3] = byte(h.Protocol)
	b[4] = byte(h.Type)
	b[5] = byte(h.Flags)
	binary.LittleEndian.PutUint16(b[6:], h.BodyLen)
	binary.LittleEndian.PutUint32(b[8:], uint32(h.Sender))
	binary.LittleEndian.PutUint32(b[12:], uint32(h.Instance.Origin))
	binary.LittleEndian.PutUint64(b[16:], h.Instance.Seq)
	binary.LittleEndian.PutUint32(b[24:], h.Round)
	binary.LittleEndian.PutUint32(b[28:], h.PayloadLen)
	copy(b[32:64], h.Digest[:])
	binary.LittleEndian.PutUint16(b[64:], h.AuthLen)
	binary.LittleEndian.PutUint16(b[66:], h.FragIndex)
	binary.LittleEndian.PutUint32(b[68:], h.FragOffset)
}

// ParseHeader decodes the fixed header at the start of b. It checks magic,
// version and flags; it does not look past HeaderSize.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, decodeErr(ReasonTruncated, "frame of %d bytes is shorter than the %d-byte header", len(b), HeaderSize)
	}
	if m := binary.LittleEndian.Uint16(b[0:]); m != Magic {
		return h, decodeErr(ReasonMagic, "magic %#04x", m)
	}
	if b[2] != Version {
		return h, decodeErr(ReasonVersion, "version %d, want %d", b[2], Version)
	}
	h.Protocol = ProtocolID(b[3])
	if h.Protocol >= numProtocols {
		return h, decodeErr(ReasonProtocol, "protocol %d", b[3])
	}
	h.Type = MsgType(b[4])
	h.Flags = Flags(b[5])
	if h.Flags&^knownFlags != 0 {
		return h, decodeErr(ReasonFlags, "unknown flags %#02x", uint8(h.Flags))
	}
	h.BodyLen = binary.LittleEndian.Uint16(b[6:])
	h.Sender = NodeID(binary.LittleEndian.Uint32(b[8:]))
	h.Instance.Origin = NodeID(binary.LittleEndian.Uint32(b[12:]))
	h.Instance.Seq = binary.LittleEndian.Uint64(b[16:])
	h.Round = binary.LittleEndian.Uint32(b[24:])
	h.PayloadLen = binary.LittleEndian.Uint32(b[28:])
	copy(h.Digest[:], b[32:64])
	h.AuthLen = binary.LittleEndian.Uint16(b[64:])
	h.FragIndex = binary.LittleEndian.Uint16(b[66:])
	h.FragOffset = binary.LittleEndian.Uint32(b[68:])
	return h, nil
}

// signingDomain separates onecast's signatures from any other use of a key.
var signingDomain = [16]byte{'o', 'n', 'e', 'c', 'a', 's', 't', '/', 'm', 's', 'g', '/', 'v', '1', 0, 0}

// SigningDigest is what an authenticator covers: SHA-256 over a domain tag,
// the header with its unauthenticated fields (flags, AuthLen, FragIndex,
// FragOffset) zeroed, and the body. The digest of the payload is inside the
// header, so the payload is covered through it and never hashed here.
func SigningDigest(h *Header, body []byte) Digest {
	var buf [len(signingDomain) + HeaderSize]byte
	copy(buf[:], signingDomain[:])
	canon := *h
	canon.Flags, canon.AuthLen, canon.FragIndex, canon.FragOffset = 0, 0, 0, 0
	canon.Put(buf[len(signingDomain):])
	if len(body) == 0 {
		return sha256.Sum256(buf[:])
	}
	s := sha256.New()
	s.Write(buf[:])
	s.Write(body)
	var d Digest
	s.Sum(d[:0])
	return d
}
