package broadcast

import "github.com/onecast/onecast/bufpool"

// Rehome moves held payloads out of pool's frames to the heap, longest
// held first, until about maxFrames frames are given back: for each
// payload whose frames only the store still references, it copies the
// bytes to a heap buffer (one counted copy, in pool's Stats), keeps the
// copy and releases the frames, which go back to pool. A payload that is a
// chain of frames (a reassembled message) counts each of its frames. A
// transport whose receive frames are a scarce resource (an AF_XDP UMEM)
// calls it when its free frames run low, so that long-held payloads do not
// starve its receive ring. Payloads that other holders still reference are
// left alone: copying them would free nothing.
//
// The copies run outside the store's lock: Rehome picks its payloads and
// holds a reference on each under the lock, copies without it (Put, Get
// and Pin proceed meanwhile), and swaps a copy in under the lock again only
// if the entry is unchanged and still referenced by the store alone; a
// payload taken by someone else meanwhile keeps its frames, and the copy is
// dropped. It returns the number of payloads and bytes moved.
func (s *PayloadStore) Rehome(pool *bufpool.Pool, maxFrames int) (n int, bytes int64) {
	if pool == nil || maxFrames <= 0 {
		return 0, 0
	}
	type pick struct {
		e    *entry
		buf  bufpool.Buf // the store's buffer, with one more reference, Rehome's
		heap []byte
	}
	var picks []pick
	frames := 0
	s.mu.Lock()
	for e := s.oldest; e != nil && frames < maxFrames; {
		next := e.newer
		switch {
		case e.buf.Pool() == nil:
			s.unage(e) // on the heap already: never a candidate again
		case e.buf.Pool() == pool && e.buf.Refs() == 1 && !e.rehoming:
			e.rehoming = true
			picks = append(picks, pick{e: e, buf: e.buf.Retain()})
			frames += segmentsOf(e.buf)
		}
		e = next
	}
	s.mu.Unlock()
	for i := range picks {
		p := &picks[i]
		p.heap = make([]byte, p.buf.Len())
		p.buf.CopyTo(p.heap)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range picks {
		e := p.e
		// The same entry (not evicted, not reused for another digest),
		// referenced by the store and this pick only.
		if s.entries[e.digest] == e && e.buf == p.buf {
			e.rehoming = false
			if p.buf.Refs() == 2 {
				e.buf = bufpool.Wrap(p.heap)
				p.buf.Release() // the store's reference
				s.unage(e)
				n++
				bytes += int64(len(p.heap))
			}
		}
		p.buf.Release() // Rehome's reference
	}
	return n, bytes
}

// segmentsOf counts the frames b spans.
func segmentsOf(b bufpool.Buf) int {
	n := 0
	for range b.Segments() {
		n++
	}
	return max(n, 1)
}

// RehomeBelow is the transports' watermark policy around Rehome: when
// pool has fewer than watermark free frames, it moves enough payloads out
// to lift it back over the watermark, plus slack frames (a receive batch's
// worth, so that the next batch finds frames). A negative watermark
// disables it.
func (s *PayloadStore) RehomeBelow(pool *bufpool.Pool, watermark, slack int) (n int, bytes int64) {
	if pool == nil || watermark < 0 {
		return 0, 0
	}
	free := pool.Free()
	if free >= watermark {
		return 0, 0
	}
	return s.Rehome(pool, watermark-free+slack)
}
