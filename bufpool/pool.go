package bufpool

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrExhausted is returned when a pool has no free frame left.
var ErrExhausted = errors.New("bufpool: no free frame")

// Config describes a pool.
type Config struct {
	// FrameSize is the size of one frame in bytes. Required.
	FrameSize int
	// Frames is the number of frames. Ignored when Region is set.
	Frames int
	// Region, when set, is the memory frames are carved from (an AF_XDP UMEM,
	// for example); its length must be a multiple of FrameSize. When nil the
	// pool allocates one heap slab of FrameSize*Frames bytes.
	Region []byte
	// Checked turns on use-after-release detection on every access, poisoning
	// of released frames and recording where outstanding buffers were taken.
	// Tests run with it on.
	Checked bool
	// Name appears in violation and leak reports.
	Name string
}

// Stats are a pool's counters. Copies and CopiedBytes count user-space
// copies of payload bytes made through this pool's buffers.
type Stats struct {
	Frames      int    // frames in the pool
	Free        int    // frames free now
	Gets        uint64 // frames handed out, total
	Exhausted   uint64 // Get or Alloc calls refused for want of frames
	Copies      uint64 // flattening or copy-out operations
	CopiedBytes uint64 // bytes those copies moved
	Wrapped     int64  // heap buffers made by Wrap that are still referenced
}

// Pool hands out fixed-size frames carved from one region and takes them
// back when their last reference is released. It is safe for concurrent use.
type Pool struct {
	name      string
	frameSize int
	region    []byte
	checked   bool

	segs []segment // one descriptor per frame, index = frame number

	mu   sync.Mutex
	free []*segment // stack of free frames

	gets        atomic.Uint64
	exhausted   atomic.Uint64
	copies      atomic.Uint64
	copiedBytes atomic.Uint64
	wrapped     atomic.Int64

	wrapMu  sync.Mutex
	wrapSet map[*segment]struct{} // checked mode: outstanding Wrap buffers
}

// New builds a pool from cfg.
func New(cfg Config) (*Pool, error) {
	if cfg.FrameSize <= 0 {
		return nil, fmt.Errorf("bufpool: FrameSize must be positive, got %d", cfg.FrameSize)
	}
	region := cfg.Region
	if region == nil {
		if cfg.Frames <= 0 {
			return nil, fmt.Errorf("bufpool: Frames must be positive, got %d", cfg.Frames)
		}
		region = make([]byte, cfg.FrameSize*cfg.Frames)
	} else if len(region)%cfg.FrameSize != 0 || len(region) == 0 {
		return nil, fmt.Errorf("bufpool: Region length %d is not a positive multiple of FrameSize %d", len(region), cfg.FrameSize)
	}
	n := len(region) / cfg.FrameSize
	if n > 1<<31-1 {
		return nil, fmt.Errorf("bufpool: %d frames is too many", n)
	}
	p := &Pool{
		name:      cfg.Name,
		frameSize: cfg.FrameSize,
		region:    region,
		checked:   cfg.Checked,
		segs:      make([]segment, n),
		free:      make([]*segment, 0, n),
	}
	if p.name == "" {
		p.name = "pool"
	}
	if p.checked {
		p.wrapSet = make(map[*segment]struct{})
	}
	for i := n - 1; i >= 0; i-- {
		s := &p.segs[i]
		s.pool = p
		s.index = int32(i)
		s.mem = region[i*cfg.FrameSize : (i+1)*cfg.FrameSize : (i+1)*cfg.FrameSize]
		s.gen.Store(1)
		p.free = append(p.free, s)
	}
	return p, nil
}

// MustNew is New for tests and fixed configurations; it panics on a bad cfg.
func MustNew(cfg Config) *Pool {
	p, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return p
}

// FrameSize returns the size of one frame.
func (p *Pool) FrameSize() int { return p.frameSize }

// Frames returns the number of frames in the pool.
func (p *Pool) Frames() int { return len(p.segs) }

// Checked reports whether the pool runs in checked mode.
func (p *Pool) Checked() bool { return p.checked }

// Free returns the number of free frames now.
func (p *Pool) Free() int {
	p.mu.Lock()
	n := len(p.free)
	p.mu.Unlock()
	return n
}

// Outstanding returns the number of frames in use plus the number of live
// Wrap buffers made by this pool. A test ends with Outstanding() == 0.
func (p *Pool) Outstanding() int {
	return len(p.segs) - p.Free() + int(p.wrapped.Load())
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{
		Frames:      len(p.segs),
		Free:        p.Free(),
		Gets:        p.gets.Load(),
		Exhausted:   p.exhausted.Load(),
		Copies:      p.copies.Load(),
		CopiedBytes: p.copiedBytes.Load(),
		Wrapped:     p.wrapped.Load(),
	}
}

// Get takes one free frame, with one reference held by the caller and a
// window covering the whole frame.
func (p *Pool) Get() (Buf, error) {
	p.mu.Lock()
	if len(p.free) == 0 {
		p.mu.Unlock()
		p.exhausted.Add(1)
		return Buf{}, ErrExhausted
	}
	s := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	p.mu.Unlock()
	p.gets.Add(1)
	return p.takeSeg(s, 2), nil
}

// Alloc takes a chain of ceil(n/FrameSize) frames with a window of n bytes.
// The frames are not zeroed. Fill them through [Buf.WritableSegments].
func (p *Pool) Alloc(n int) (Buf, error) {
	if n <= 0 {
		return Buf{}, fmt.Errorf("bufpool: Alloc(%d): size must be positive", n)
	}
	frames := (n + p.frameSize - 1) / p.frameSize
	p.mu.Lock()
	if len(p.free) < frames {
		p.mu.Unlock()
		p.exhausted.Add(1)
		return Buf{}, ErrExhausted
	}
	segs := p.free[len(p.free)-frames:]
	p.free = p.free[:len(p.free)-frames]
	// segs aliases p.free's backing array: link them before unlocking.
	head := segs[len(segs)-1]
	prev := head
	for i := len(segs) - 2; i >= 0; i-- {
		prev.next = segs[i]
		prev = segs[i]
	}
	prev.next = nil
	p.mu.Unlock()
	p.gets.Add(uint64(frames))
	b := p.takeSeg(head, 2)
	remaining := n
	for s := head; s != nil; s = s.next {
		s.lo = 0
		s.hi = uint32(min(remaining, p.frameSize))
		remaining -= int(s.hi)
	}
	b.n = uint32(n)
	return b, nil
}

// Copy copies data into a chain of frames. It counts as one user-space copy.
func (p *Pool) Copy(data []byte) (Buf, error) {
	b, err := p.Alloc(len(data))
	if err != nil {
		return Buf{}, err
	}
	off := 0
	for s := b.s; s != nil; s = s.next {
		off += copy(s.mem[s.lo:s.hi], data[off:])
	}
	p.copies.Add(1)
	p.copiedBytes.Add(uint64(len(data)))
	return b, nil
}

// Wrap makes a buffer of a heap slice, without copying it. The pool counts it
// as outstanding until its last release, so leak checks cover it; the slice
// itself is left to the garbage collector.
func (p *Pool) Wrap(data []byte) Buf {
	s := &segment{pool: p, index: -1, mem: data, lo: 0, hi: uint32(len(data))}
	s.gen.Store(1)
	p.wrapped.Add(1)
	if p.checked {
		p.wrapMu.Lock()
		p.wrapSet[s] = struct{}{}
		p.wrapMu.Unlock()
	}
	return p.takeSeg(s, 2)
}

// Wrap makes an untracked buffer of a heap slice, without copying it. Use
// Pool.Wrap where leak checks should cover the buffer.
func Wrap(data []byte) Buf {
	s := &segment{index: -1, mem: data, lo: 0, hi: uint32(len(data))}
	s.gen.Store(1)
	s.refs.Store(1)
	return Buf{s: s, gen: 1, n: uint32(len(data))}
}

// takeSeg makes s the head of a fresh single-segment buffer with one ref.
func (p *Pool) takeSeg(s *segment, skip int) Buf {
	if s.index >= 0 {
		s.lo, s.hi = 0, uint32(len(s.mem))
	}
	s.refs.Store(1)
	if p.checked {
		s.callers = s.callersBuf[:runtime.Callers(skip+1, s.callersBuf[:])]
	}
	return Buf{s: s, gen: s.gen.Load(), n: s.hi - s.lo}
}

// release returns every segment of the chain starting at head.
func (p *Pool) releaseChain(head *segment) {
	for s := head; s != nil; {
		next := s.next
		s.next = nil
		s.gen.Add(1)
		owner := s.pool
		if owner == nil {
			s = next
			continue
		}
		if s.index < 0 {
			owner.wrapped.Add(-1)
			if owner.checked {
				owner.wrapMu.Lock()
				delete(owner.wrapSet, s)
				owner.wrapMu.Unlock()
			}
			s = next
			continue
		}
		if owner.checked {
			poison(s.mem)
			s.callers = nil
		}
		owner.mu.Lock()
		owner.free = append(owner.free, s)
		owner.mu.Unlock()
		s = next
	}
}

func poison(b []byte) {
	for i := range b {
		b[i] = 0xDB
	}
}

// CheckLeaks returns nil when no buffer of this pool is outstanding, and
// otherwise an error that names each outstanding buffer and, in checked mode,
// the call stack that took it.
func (p *Pool) CheckLeaks() error {
	n := p.Outstanding()
	if n == 0 {
		return nil
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "bufpool %s: %d frames or wrapped buffers outstanding", p.name, n)
	if !p.checked {
		sb.WriteString(" (enable Config.Checked to see where they were taken)")
		return errors.New(sb.String())
	}
	listed := 0
	report := func(s *segment) {
		if listed >= 10 {
			return
		}
		listed++
		fmt.Fprintf(&sb, "\n  frame %d, %d refs, taken at:", s.index, s.refs.Load())
		frames := runtime.CallersFrames(s.callers)
		for {
			f, more := frames.Next()
			fmt.Fprintf(&sb, "\n    %s\n      %s:%d", f.Function, f.File, f.Line)
			if !more {
				break
			}
		}
	}
	p.mu.Lock()
	inFree := make(map[*segment]bool, len(p.free))
	for _, s := range p.free {
		inFree[s] = true
	}
	p.mu.Unlock()
	for i := range p.segs {
		s := &p.segs[i]
		if !inFree[s] && s.refs.Load() > 0 {
			report(s)
		}
	}
	p.wrapMu.Lock()
	for s := range p.wrapSet {
		report(s)
	}
	p.wrapMu.Unlock()
	return errors.New(sb.String())
}

func (p *Pool) countCopy(n int) {
	if p == nil {
		return
	}
	p.copies.Add(1)
	p.copiedBytes.Add(uint64(n))
}
