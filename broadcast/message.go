package broadcast

import (
	"fmt"
	"math"

	"github.com/onecast/onecast/bufpool"
)

// Message is one protocol message: the fixed header, an authenticated
// protocol-specific body, the authenticator, and optionally the payload.
//
// Ownership: a Message that is handed to a callee is borrowed (Body, Auth and
// Payload stay valid only during the call; keep the payload with
// Payload.Retain, copy the body). A Message returned in [Ready] owns one
// reference to its Payload, which passes to the caller.
type Message struct {
	Header
	// Body is protocol data covered by the authenticator (PBFT certificates,
	// Dolev–Strong signature chains). Most messages have none.
	Body []byte
	// Auth is the authenticator: a signature, a MAC or a MAC vector.
	Auth []byte
	// Payload holds the payload bytes this frame carries, if HasPayload.
	Payload bufpool.Buf
}

// Limits bound what a decoder accepts from the network.
type Limits struct {
	// MaxPayload is the largest payload a message may announce.
	MaxPayload uint32
	// MaxAuth is the largest authenticator accepted.
	MaxAuth uint16
}

// DefaultLimits accept payloads up to 64 MiB and authenticators up to 8 KiB
// (a MAC vector for 512 nodes, or a BLS aggregate with a large bitmap).
var DefaultLimits = Limits{MaxPayload: 64 << 20, MaxAuth: 8 << 10}

// SetPayload attaches p (taking the caller's reference) as the whole payload
// of m and records its length and digest d in the header.
func (m *Message) SetPayload(p bufpool.Buf, d Digest) {
	m.Payload = p
	m.Flags |= HasPayload
	m.PayloadLen = uint32(p.Len())
	m.Digest = d
}

// PrefixLen is the size of header, body and authenticator.
func (m *Message) PrefixLen() int { return HeaderSize + len(m.Body) + len(m.Auth) }

// WireLen is the message's size as one frame, payload included.
func (m *Message) WireLen() int { return m.PrefixLen() + m.Payload.Len() }

// AppendPrefix appends header, body and authenticator to dst; the payload
// bytes are sent from m.Payload's own segments (vectored IO), never copied
// here. BodyLen and AuthLen are taken from the slices.
func AppendPrefix(dst []byte, m *Message) ([]byte, error) {
	if len(m.Body) > math.MaxUint16 {
		return dst, fmt.Errorf("broadcast: body of %d bytes exceeds %d", len(m.Body), math.MaxUint16)
	}
	if len(m.Auth) > math.MaxUint16 {
		return dst, fmt.Errorf("broadcast: authenticator of %d bytes exceeds %d", len(m.Auth), math.MaxUint16)
	}
	m.BodyLen = uint16(len(m.Body))
	m.AuthLen = uint16(len(m.Auth))
	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	m.Header.Put(dst[start:])
	dst = append(dst, m.Body...)
	dst = append(dst, m.Auth...)
	return dst, nil
}

// DecodeFrame parses one frame. It borrows frame, which must be contiguous:
// the returned message's Body, Auth and Payload are views on it, valid while
// the caller holds frame (Payload is not retained). Nothing in the frame is
// trusted: every length is checked against the frame and lim, and a bad frame
// gives a *RejectError.
func DecodeFrame(frame bufpool.Buf, lim *Limits) (Message, error) {
	b := frame.Bytes()
	m, payloadOff, err := parseFrame(b, lim)
	if err != nil {
		return Message{}, err
	}
	if m.Flags&HasPayload != 0 {
		m.Payload = frame.Slice(payloadOff, len(b)-payloadOff)
	}
	return m, nil
}

// ParseFrame is DecodeFrame over a plain byte slice; the message's Payload is
// left zero and the offset of the payload bytes in b is returned instead.
func ParseFrame(b []byte, lim *Limits) (Message, int, error) {
	return parseFrame(b, lim)
}

func parseFrame(b []byte, lim *Limits) (Message, int, error) {
	if lim == nil {
		lim = &DefaultLimits
	}
	var m Message
	h, err := ParseHeader(b)
	if err != nil {
		return m, 0, err
	}
	m.Header = h
	if h.PayloadLen > lim.MaxPayload {
		return m, 0, decodeErr(ReasonLength, "payload length %d exceeds limit %d", h.PayloadLen, lim.MaxPayload)
	}
	if h.AuthLen > lim.MaxAuth {
		return m, 0, decodeErr(ReasonLength, "authenticator length %d exceeds limit %d", h.AuthLen, lim.MaxAuth)
	}
	prefix := HeaderSize + int(h.BodyLen) + int(h.AuthLen)
	if prefix > len(b) {
		return m, 0, decodeErr(ReasonTruncated, "header announces %d bytes of body and authenticator, frame has %d", prefix-HeaderSize, len(b)-HeaderSize)
	}
	rest := len(b) - prefix
	has := h.Flags&HasPayload != 0
	switch {
	case h.Flags&Fragment != 0:
		if h.BodyLen != 0 || h.AuthLen != 0 || !has || h.Flags&Stripped != 0 {
			return m, 0, decodeErr(ReasonFlags, "fragment with body, authenticator, stripped flag or no payload")
		}
		if h.FragIndex == 0 || rest == 0 {
			return m, 0, decodeErr(ReasonLength, "fragment %d with %d payload bytes", h.FragIndex, rest)
		}
		if uint64(h.FragOffset)+uint64(rest) > uint64(h.PayloadLen) {
			return m, 0, decodeErr(ReasonLength, "fragment bytes %d+%d past payload length %d", h.FragOffset, rest, h.PayloadLen)
		}
	case h.FragIndex != 0 || h.FragOffset != 0:
		return m, 0, decodeErr(ReasonFlags, "fragment fields set on a first frame")
	case has && h.Flags&Stripped != 0:
		return m, 0, decodeErr(ReasonFlags, "payload and stripped flag together")
	case has:
		if uint64(rest) > uint64(h.PayloadLen) || (rest == 0 && h.PayloadLen != 0) {
			return m, 0, decodeErr(ReasonLength, "%d payload bytes for a payload of %d", rest, h.PayloadLen)
		}
	case rest != 0:
		return m, 0, decodeErr(ReasonLength, "%d trailing bytes without payload flag", rest)
	}
	if h.BodyLen > 0 {
		m.Body = b[HeaderSize : HeaderSize+int(h.BodyLen) : HeaderSize+int(h.BodyLen)]
	}
	if h.AuthLen > 0 {
		off := HeaderSize + int(h.BodyLen)
		m.Auth = b[off : off+int(h.AuthLen) : off+int(h.AuthLen)]
	}
	return m, prefix, nil
}

// Complete reports whether a decoded first frame carries its whole payload
// (no continuation fragments to wait for).
func (m *Message) Complete() bool {
	return m.Flags&HasPayload != 0 && m.Flags&Fragment == 0 && uint32(m.Payload.Len()) == m.PayloadLen
}
