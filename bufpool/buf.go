package bufpool

import (
	"fmt"
	"io"
	"iter"
	"runtime"
	"sync/atomic"
)

// segment describes one frame (or one wrapped heap slice). The head segment
// of a chain holds the reference count of the whole chain; the others are
// owned by the head.
type segment struct {
	pool  *Pool
	mem   []byte // the frame's memory
	lo    uint32 // the bytes of this segment that belong to the buffer:
	hi    uint32 // mem[lo:hi]
	next  *segment
	refs  atomic.Int32
	gen   atomic.Uint32
	index int32 // frame number in the pool, -1 for a wrapped heap slice

	callers    []uintptr // checked mode: where the buffer was taken
	callersBuf [16]uintptr
}

func (s *segment) len() int { return int(s.hi - s.lo) }

// Buf is a handle on a reference-counted buffer and a window over it. The
// zero Buf is empty and holds nothing; Release on it is a no-op.
//
// Handles are values: copying one does not add a reference. See the package
// doc for the ownership rules.
type Buf struct {
	s   *segment
	gen uint32
	off uint32 // window start, in bytes from the start of the chain
	n   uint32 // window length
}

// ViolationKind names the misuse a [Violation] reports.
type ViolationKind string

// Violations detected by the pool.
const (
	UseAfterRelease ViolationKind = "use after release"
	DoubleRelease   ViolationKind = "double release"
	BadSlice        ViolationKind = "slice out of range"
	NotExclusive    ViolationKind = "mutation of a shared buffer"
)

// Violation is the panic value for a misuse of a Buf.
type Violation struct {
	Kind  ViolationKind
	Pool  string
	Frame int32
	Stack string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("bufpool %s: %s (frame %d)\n%s", v.Pool, v.Kind, v.Frame, v.Stack)
}

func (b Buf) violation(kind ViolationKind) {
	name := "heap"
	if b.s != nil && b.s.pool != nil {
		name = b.s.pool.name
	}
	var frame int32 = -1
	if b.s != nil {
		frame = b.s.index
	}
	stack := make([]byte, 4096)
	stack = stack[:runtime.Stack(stack, false)]
	panic(&Violation{Kind: kind, Pool: name, Frame: frame, Stack: string(stack)})
}

// alive reports whether the handle still refers to a live buffer.
func (b Buf) alive() bool {
	return b.s.gen.Load() == b.gen && b.s.refs.Load() > 0
}

// check validates a read access in checked mode.
func (b Buf) check() {
	if b.s != nil && b.s.pool != nil && b.s.pool.checked && !b.alive() {
		b.violation(UseAfterRelease)
	}
}

// IsZero reports whether b is the zero Buf.
func (b Buf) IsZero() bool { return b.s == nil }

// Len returns the length of the window in bytes.
func (b Buf) Len() int {
	b.check()
	return int(b.n)
}

// Refs returns the buffer's reference count (for tests and diagnostics).
func (b Buf) Refs() int {
	if b.s == nil {
		return 0
	}
	if b.s.gen.Load() != b.gen {
		return 0
	}
	return int(b.s.refs.Load())
}

// Retain adds a reference and returns b, so that a kept copy reads
// `kept = b.Retain()`.
func (b Buf) Retain() Buf {
	if b.s == nil {
		return b
	}
	if b.s.gen.Load() != b.gen {
		b.violation(UseAfterRelease)
	}
	if b.s.refs.Add(1) <= 1 {
		b.violation(UseAfterRelease)
	}
	return b
}

// Release drops a reference. When the last one goes, every frame of the
// buffer returns to its pool and every handle on it becomes invalid.
func (b Buf) Release() {
	if b.s == nil {
		return
	}
	if b.s.gen.Load() != b.gen {
		b.violation(DoubleRelease)
	}
	switch r := b.s.refs.Add(-1); {
	case r == 0:
		// releaseChain frees every segment to its own pool, whatever owns
		// the head (a chain may start with a wrapped, pool-less segment).
		(*Pool)(nil).releaseChain(b.s)
	case r < 0:
		b.violation(DoubleRelease)
	}
}

// Slice returns the view of n bytes at off within b's window. The view shares
// b's reference; Retain it to keep it past b's life.
func (b Buf) Slice(off, n int) Buf {
	b.check()
	if off < 0 || n < 0 || off+n > int(b.n) {
		b.violation(BadSlice)
	}
	b.off += uint32(off)
	b.n = uint32(n)
	return b
}

// Contiguous reports whether the window lies within one segment, so that
// Bytes returns it without copying.
func (b Buf) Contiguous() bool {
	b.check()
	if b.s == nil || b.n == 0 {
		return true
	}
	s, off := b.seek()
	return off+int(b.n) <= s.len()
}

// seek returns the segment holding the window's first byte and the offset of
// that byte within the segment's part.
func (b Buf) seek() (*segment, int) {
	off := int(b.off)
	s := b.s
	for s.next != nil && off >= s.len() {
		off -= s.len()
		s = s.next
	}
	return s, off
}

// Bytes returns the window's bytes. The slice is read-only and valid while a
// reference is held. A window within one segment costs nothing; a window
// across segments is flattened into a new slice, which counts as one copy.
func (b Buf) Bytes() []byte {
	b.check()
	if b.s == nil {
		return nil
	}
	s, off := b.seek()
	start := int(s.lo) + off
	if off+int(b.n) <= s.len() {
		return s.mem[start : start+int(b.n) : start+int(b.n)]
	}
	out := make([]byte, b.n)
	b.copyOut(out)
	b.s.pool.countCopy(len(out))
	return out
}

// CopyTo copies the window into dst, returns the number of bytes copied, and
// counts one copy.
func (b Buf) CopyTo(dst []byte) int {
	b.check()
	if b.s == nil {
		return 0
	}
	n := b.copyOut(dst)
	b.s.pool.countCopy(n)
	return n
}

func (b Buf) copyOut(dst []byte) int {
	n := 0
	for seg := range b.Segments() {
		c := copy(dst[n:], seg)
		n += c
		if c < len(seg) {
			break
		}
	}
	return n
}

// Segments yields the window as one read-only slice per segment, without
// copying.
func (b Buf) Segments() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		b.check()
		if b.s == nil || b.n == 0 {
			return
		}
		s, off := b.seek()
		left := int(b.n)
		for ; s != nil && left > 0; s = s.next {
			start := int(s.lo) + off
			end := min(int(s.hi), start+left)
			off = 0
			left -= end - start
			if !yield(s.mem[start:end:end]) {
				return
			}
		}
	}
}

// AppendSegments appends the window's segments to dst, without copying
// bytes, for vectored IO.
func (b Buf) AppendSegments(dst [][]byte) [][]byte {
	for seg := range b.Segments() {
		dst = append(dst, seg)
	}
	return dst
}

// WritableSegments yields the window's segments for writing. The caller must
// hold the only reference (a freshly allocated buffer); anything else is a
// NotExclusive violation.
func (b Buf) WritableSegments() iter.Seq[[]byte] {
	if b.s != nil && b.Refs() != 1 {
		b.violation(NotExclusive)
	}
	return b.Segments()
}

// WriteTo writes the window to w, segment by segment.
func (b Buf) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for seg := range b.Segments() {
		n, err := w.Write(seg)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Reader returns an io.Reader over the window. It borrows b.
func (b Buf) Reader() *Reader { return &Reader{b: b} }

// Reader reads a Buf's window without copying it into an intermediate slice.
type Reader struct {
	b   Buf
	pos int
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.b.Len() {
		return 0, io.EOF
	}
	n := r.b.Slice(r.pos, r.b.Len()-r.pos).copyOut(p)
	r.pos += n
	return n, nil
}

// FrameIndex returns the pool frame number of the buffer's first segment, or
// -1 for a heap buffer. Transports that map frames to descriptor addresses
// (AF_XDP) use it.
func (b Buf) FrameIndex() int {
	if b.s == nil {
		return -1
	}
	return int(b.s.index)
}

// Pool returns the pool the buffer's first segment came from, or nil.
func (b Buf) Pool() *Pool {
	if b.s == nil {
		return nil
	}
	return b.s.pool
}

// Link chains parts into one buffer, in order, without copying. It takes
// every part's reference: each must be the only reference to a single-segment
// buffer. The result holds one reference; releasing it releases all parts.
func Link(parts ...Buf) Buf {
	if len(parts) == 0 {
		return Buf{}
	}
	var head, tail *segment
	total := uint32(0)
	for _, p := range parts {
		if p.s == nil {
			continue
		}
		if p.Refs() != 1 || p.s.next != nil {
			p.violation(NotExclusive)
		}
		s := p.s
		// Narrow the segment to the part's window.
		s.lo += p.off
		s.hi = s.lo + p.n
		total += p.n
		if head == nil {
			head = s
		} else {
			tail.next = s
			// A linked segment's reference now belongs to the head.
			s.refs.Store(0)
		}
		tail = s
	}
	if head == nil {
		return Buf{}
	}
	return Buf{s: head, gen: head.gen.Load(), n: total}
}
