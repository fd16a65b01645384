package broadcast

import "github.com/onecast/onecast/bufpool"

// Rehome moves up to max held payloads out of pool's frames to the heap:
// for each payload whose frames only the store still references, it copies
// the bytes to a heap buffer (one counted copy, in pool's Stats), keeps the
// copy and releases the frame, which goes back to pool. A transport whose
// receive frames are a scarce resource (an AF_XDP UMEM) calls it when its
// free frames run low, so that long-held payloads do not starve its receive
// ring. Payloads that other holders still reference are left alone: copying
// them would free nothing. It returns the number of payloads and bytes
// moved.
func (s *PayloadStore) Rehome(pool *bufpool.Pool, max int) (n int, bytes int64) {
	if pool == nil || max <= 0 {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if n >= max {
			break
		}
		if e.buf.Pool() != pool || e.buf.Refs() != 1 {
			continue
		}
		heap := make([]byte, e.buf.Len())
		e.buf.CopyTo(heap)
		e.buf.Release()
		e.buf = bufpool.Wrap(heap)
		n++
		bytes += int64(len(heap))
	}
	return n, bytes
}

// RehomeBelow is the transports' watermark policy around Rehome: when
// pool has fewer than watermark free frames, it moves enough payloads out
// to lift it back over the watermark, plus slack (a receive batch's worth,
// so that the next batch finds frames). A negative watermark disables it.
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
