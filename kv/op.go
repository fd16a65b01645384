package kv

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/onecast/onecast/bufpool"
)

// An operation travels through PBFT as one payload, laid out so that the
// value is its tail and the state machine can keep a slice of the very
// buffer the request arrived in:
//
//	off  size  field
//	  0     1  kind (Kind)
//	  1     1  via: set by the replica that submits a BFT client's op, so
//	           that the copies submitted by different replicas have
//	           different digests; ignored by the store
//	  2     2  number of keys
//	  4     4  flags (delete: dropQuietly marks the unlink that follows a
//	           value refused as too large, which stats do not count)
//	  8     8  exptime as the client sent it (or flush_all's delay)
//	 16     8  now: unix seconds, chosen by the front end that issued the op
//	 24     8  cas unique (cas) or delta (incr, decr)
//	 32     8  client: 0 for a front end's op; a BFT client's random ID
//	 40     8  nonce: unique per issuer (makes every op's digest unique);
//	           for a BFT client, its request number
//	 48     …  keys, each a length byte and the key
//	  …     …  meta commands only: the flag tokens as sent, joined by
//	           single spaces, after their length (2 bytes)
//	  …     …  value (storage commands and ms), to the end
//
// Expiry is computed from "now" inside the op, never from the replica's
// clock, so that every replica decides the same.
//
// An op with a client ID is executed at most once: the store remembers each
// such client's last nonce and reply, so that a BFT client may submit the
// same op through several replicas.
const opHeaderLen = 48

// dropQuietly in a delete op's flags marks it as the unlink memcached does
// when it refuses a value as too large: not a delete command, so not
// counted in delete_hits or delete_misses.
const dropQuietly = 1

// Stamp is what the issuer of an op adds to the command: the time and the
// identity that make the op deterministic and unique.
type Stamp struct {
	// Now is the issuer's unix time in seconds.
	Now int64
	// Client is a BFT client's ID (0 for a replica's own front end).
	Client uint64
	// Nonce is unique per issuer; a BFT client's request number.
	Nonce uint64
}

// maxOpKeys bounds the keys of one get (the wire field is 16 bits).
const maxOpKeys = 1<<16 - 1

// errBadOp is returned by decodeOp for payloads no front end produces.
var errBadOp = errors.New("kv: malformed operation")

// OpHeaderLen returns the length of the header and keys that EncodeOpHeader
// writes for c: the value, if any, follows at this offset.
func OpHeaderLen(c *Command) int {
	n := opHeaderLen
	for _, k := range c.Keys {
		n += 1 + len(k)
	}
	if c.Kind.IsMeta() {
		n += 2 + metaTextLen(c.Meta)
	}
	return n
}

// metaTextLen is the length of tokens joined by single spaces.
func metaTextLen(toks [][]byte) int {
	n := 0
	for i, t := range toks {
		if i > 0 {
			n++
		}
		n += len(t)
	}
	return n
}

// AppendOpHeader appends the header and keys of the op for command c,
// stamped with st, to dst. For a storage command the caller appends (or
// reads in place) the ValueLen value bytes after it.
func AppendOpHeader(dst []byte, c *Command, st Stamp) ([]byte, error) {
	if !c.Kind.Replicated() {
		return dst, fmt.Errorf("kv: %v is not a replicated command", c.Kind)
	}
	if len(c.Keys) > maxOpKeys {
		return dst, fmt.Errorf("kv: %d keys in one op, at most %d", len(c.Keys), maxOpKeys)
	}
	var h [opHeaderLen]byte
	h[0] = byte(c.Kind)
	binary.LittleEndian.PutUint16(h[2:], uint16(len(c.Keys)))
	binary.LittleEndian.PutUint32(h[4:], c.Flags)
	exp := c.Exptime
	if c.Kind == KindFlushAll {
		exp = c.Delay
	}
	binary.LittleEndian.PutUint64(h[8:], uint64(exp))
	binary.LittleEndian.PutUint64(h[16:], uint64(st.Now))
	binary.LittleEndian.PutUint64(h[32:], st.Client)
	binary.LittleEndian.PutUint64(h[40:], st.Nonce)
	arg := c.Cas
	if c.Kind == KindIncr || c.Kind == KindDecr {
		arg = c.Delta
	}
	binary.LittleEndian.PutUint64(h[24:], arg)
	dst = append(dst, h[:]...)
	for _, k := range c.Keys {
		if len(k) > MaxKeyLen {
			return dst, fmt.Errorf("kv: key of %d bytes", len(k))
		}
		dst = append(dst, byte(len(k)))
		dst = append(dst, k...)
	}
	if c.Kind.IsMeta() {
		n := metaTextLen(c.Meta)
		if n > 1<<16-1 {
			return dst, fmt.Errorf("kv: %d bytes of meta flags", n)
		}
		dst = binary.LittleEndian.AppendUint16(dst, uint16(n))
		for i, t := range c.Meta {
			if i > 0 {
				dst = append(dst, ' ')
			}
			dst = append(dst, t...)
		}
	}
	return dst, nil
}

// EncodeOp returns the complete op for c with value (nil for non-storage
// commands) as a fresh heap buffer. It is for clients and tests; the server
// reads values in place.
func EncodeOp(c *Command, value []byte, st Stamp) (bufpool.Buf, error) {
	b, err := AppendOpHeader(make([]byte, 0, OpHeaderLen(c)+len(value)), c, st)
	if err != nil {
		return bufpool.Buf{}, err
	}
	b = append(b, value...)
	return bufpool.Wrap(b), nil
}

// OpNonce returns the nonce of an encoded op (borrowed), or false if p is
// too short to be one.
func OpNonce(p bufpool.Buf) (uint64, bool) {
	if p.Len() < opHeaderLen {
		return 0, false
	}
	var h [8]byte
	n := 0
	for seg := range p.Slice(40, 8).Segments() {
		n += copy(h[n:], seg)
	}
	return binary.LittleEndian.Uint64(h[:]), true
}

// op is a decoded operation. Keys alias scratch or the payload; value is a
// view of the payload sharing its (borrowed) reference.
type op struct {
	kind    Kind
	flags   uint32
	exptime int64
	now     int64
	arg     uint64
	client  uint64
	nonce   uint64
	keys    [][]byte
	meta    []byte // meta commands: the flag tokens, space-separated
	value   bufpool.Buf
}

// decodeOp decodes payload p (borrowed). It never panics: a payload that is
// not a well-formed op is errBadOp, answered deterministically by every
// replica.
func decodeOp(p bufpool.Buf, scratch []byte, keys [][]byte) (op, []byte, error) {
	var o op
	n := p.Len()
	if n < opHeaderLen {
		return o, scratch, errBadOp
	}
	// The header and keys are metadata: read them contiguously, copying
	// only when the payload is a chain whose first segment is shorter.
	head := min(n, opHeaderLen+maxOpKeys*(1+MaxKeyLen)+2+1<<16)
	var hb []byte
	for seg := range p.Segments() {
		if len(seg) >= head {
			hb = seg[:head]
		}
		break
	}
	if hb == nil {
		scratch = scratch[:0]
		for seg := range p.Segments() {
			take := min(len(seg), head-len(scratch))
			scratch = append(scratch, seg[:take]...)
			if len(scratch) == head {
				break
			}
		}
		hb = scratch
	}
	o.kind = Kind(hb[0])
	if !o.kind.Replicated() {
		return o, scratch, errBadOp
	}
	nk := int(binary.LittleEndian.Uint16(hb[2:]))
	o.flags = binary.LittleEndian.Uint32(hb[4:])
	o.exptime = int64(binary.LittleEndian.Uint64(hb[8:]))
	o.now = int64(binary.LittleEndian.Uint64(hb[16:]))
	o.arg = binary.LittleEndian.Uint64(hb[24:])
	o.client = binary.LittleEndian.Uint64(hb[32:])
	o.nonce = binary.LittleEndian.Uint64(hb[40:])
	off := opHeaderLen
	o.keys = keys[:0]
	for range nk {
		if off >= len(hb) {
			return o, scratch, errBadOp
		}
		kl := int(hb[off])
		off++
		if off+kl > len(hb) || !validKey(hb[off:off+kl]) {
			return o, scratch, errBadOp
		}
		o.keys = append(o.keys, hb[off:off+kl])
		off += kl
	}
	if o.kind.IsMeta() {
		if nk != 1 || off+2 > len(hb) {
			return o, scratch, errBadOp
		}
		ml := int(binary.LittleEndian.Uint16(hb[off:]))
		off += 2
		if off+ml > len(hb) {
			return o, scratch, errBadOp
		}
		o.meta = hb[off : off+ml]
		off += ml
	}
	switch {
	case o.kind.carriesValue():
		if nk != 1 {
			return o, scratch, errBadOp
		}
		o.value = p.Slice(off, n-off)
	case o.kind == KindGet || o.kind == KindGets || o.kind == KindGat || o.kind == KindGats:
		if nk == 0 || off != n {
			return o, scratch, errBadOp
		}
	case o.kind == KindFlushAll:
		if nk != 0 || off != n {
			return o, scratch, errBadOp
		}
	default:
		if nk != 1 || off != n {
			return o, scratch, errBadOp
		}
	}
	return o, scratch, nil
}
