package bracha

import (
	"encoding/binary"
	"fmt"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// A batch container is the payload of an instance that carries several
// application payloads. Little-endian:
//
//	count  u32
//	len    u32 × count   the length of each payload, in order
//	bytes                the payloads, back to back
//
// It is self-describing and its size is exact (no trailing bytes), so a
// decoded entry is a window (Buf.Slice) on the instance's buffer: delivering
// a batch copies nothing.

// batchHeaderLen returns the size of a container's header for count entries.
func batchHeaderLen(count int) int { return 4 + 4*count }

// span is one entry of a decoded batch: offset and length in the container.
type span struct{ off, n int }

// EncodeBatch builds the container of parts. It borrows parts. The result
// comes from pool (or the heap when pool is nil) and holds one reference;
// building it is one counted copy of the parts' bytes (a batch is meant for
// small payloads).
func EncodeBatch(pool *bufpool.Pool, parts []bufpool.Buf) (bufpool.Buf, error) {
	total := batchHeaderLen(len(parts))
	for _, p := range parts {
		total += p.Len()
	}
	var out bufpool.Buf
	var flat []byte
	direct := false // flat is out's own memory
	if pool != nil {
		b, err := pool.Alloc(total)
		if err != nil {
			return bufpool.Buf{}, fmt.Errorf("bracha: batch of %d bytes: %w", total, err)
		}
		out = b
		for seg := range b.WritableSegments() {
			if len(seg) == total {
				flat, direct = seg, true
			}
			break
		}
	}
	if flat == nil {
		flat = make([]byte, total)
	}
	binary.LittleEndian.PutUint32(flat, uint32(len(parts)))
	off := batchHeaderLen(len(parts))
	for i, p := range parts {
		binary.LittleEndian.PutUint32(flat[4+4*i:], uint32(p.Len()))
		off += p.CopyTo(flat[off:])
	}
	switch {
	case pool == nil:
		return bufpool.Wrap(flat), nil
	case !direct: // a chain of frames: fill it segment by segment
		n := 0
		for seg := range out.WritableSegments() {
			n += copy(seg, flat[n:])
		}
	}
	return out, nil
}

// decodeBatch parses the container in b (borrowed) into dst, checking every
// length against the buffer and maxCount. A bad container gives a
// *broadcast.RejectError (ReasonBody).
func decodeBatch(b bufpool.Buf, maxCount int, dst []span) ([]span, error) {
	total := b.Len()
	if total < 4 {
		return dst, broadcast.Reject(broadcast.ReasonBody, "batch of %d bytes has no count", total)
	}
	var head [4]byte
	peek(b, head[:])
	count := binary.LittleEndian.Uint32(head[:])
	if count == 0 || uint64(count) > uint64(maxCount) {
		return dst, broadcast.Reject(broadcast.ReasonBody, "batch count %d outside 1 … %d", count, maxCount)
	}
	hl := uint64(batchHeaderLen(int(count)))
	if hl > uint64(total) {
		return dst, broadcast.Reject(broadcast.ReasonBody, "batch of %d entries needs %d header bytes, has %d", count, hl, total)
	}
	lens := b.Slice(4, int(hl)-4)
	var table []byte
	if lens.Contiguous() {
		table = lens.Bytes()
	} else {
		table = make([]byte, lens.Len())
		peek(lens, table)
	}
	off := int(hl)
	for i := range int(count) {
		n := int(binary.LittleEndian.Uint32(table[4*i:]))
		if n > total-off {
			return dst, broadcast.Reject(broadcast.ReasonBody, "batch entry %d of %d bytes runs past the container", i, n)
		}
		dst = append(dst, span{off: off, n: n})
		off += n
	}
	if off != total {
		return dst, broadcast.Reject(broadcast.ReasonBody, "batch has %d trailing bytes", total-off)
	}
	return dst, nil
}

// DecodeBatch returns the payloads of a batch container as views on b,
// which it borrows: the views share b's reference (Retain one to keep it).
func DecodeBatch(b bufpool.Buf, maxCount int) ([]bufpool.Buf, error) {
	spans, err := decodeBatch(b, maxCount, nil)
	if err != nil {
		return nil, err
	}
	out := make([]bufpool.Buf, len(spans))
	for i, s := range spans {
		out[i] = b.Slice(s.off, s.n)
	}
	return out, nil
}

// peek reads the first len(dst) bytes of b's window into dst: header bytes
// of a container, not payload, so not counted as a payload copy.
func peek(b bufpool.Buf, dst []byte) {
	n := 0
	for seg := range b.Segments() {
		n += copy(dst[n:], seg)
		if n == len(dst) {
			return
		}
	}
}
