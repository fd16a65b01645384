package dupscope

import (
	"bytes"
	"fmt"
)

// scanner finds every occurrence of the pieces of a set of values in a
// buffer with one rolling hash (Rabin–Karp). Each value is cut into pieces
// of w bytes (w = the shorter of 32 and the shortest value) at offsets 0, w,
// 2w, …, plus one piece ending at the value's end; counting pieces rather
// than whole values finds a value even when a transport inserted framing into
// it (HTTP chunked encoding, HTTP/2 DATA frames, TLS-less record headers).
type scanner struct {
	values [][]byte
	w      int
	pow    uint64 // base^(w-1)
	heads  map[uint64][]piece
	pieces []int // pieces per value
}

// piece is the piece at offset off of value v.
type piece struct{ v, idx, off int }

const rkBase = 1099511628211

// maxWindow is the piece length for values at least that long.
const maxWindow = 32

func newScanner(values [][]byte) (*scanner, error) {
	w := maxWindow
	for i, v := range values {
		if len(v) == 0 {
			return nil, fmt.Errorf("dupscope: known value %d is empty", i)
		}
		w = min(w, len(v))
	}
	s := &scanner{values: values, w: w, heads: map[uint64][]piece{}, pow: 1, pieces: make([]int, len(values))}
	for range w - 1 {
		s.pow *= rkBase
	}
	for i, v := range values {
		offs := []int{}
		for off := 0; off+w <= len(v); off += w {
			offs = append(offs, off)
		}
		if last := len(v) - w; offs[len(offs)-1] != last {
			offs = append(offs, last)
		}
		for j, off := range offs {
			h := s.hash(v[off : off+w])
			s.heads[h] = append(s.heads[h], piece{v: i, idx: j, off: off})
		}
		s.pieces[i] = len(offs)
	}
	return s, nil
}

func (s *scanner) hash(b []byte) uint64 {
	var h uint64
	for _, c := range b {
		h = h*rkBase + uint64(c)
	}
	return h
}

// scan calls fn for each piece found in data, in offset order, with the
// offset where the piece starts.
func (s *scanner) scan(data []byte, fn func(p piece, off int)) {
	if len(data) < s.w {
		return
	}
	h := s.hash(data[:s.w])
	for i := 0; ; i++ {
		if cands, ok := s.heads[h]; ok {
			for _, p := range cands {
				if bytes.Equal(data[i:i+s.w], s.values[p.v][p.off:p.off+s.w]) {
					fn(p, i)
				}
			}
		}
		if i+s.w >= len(data) {
			return
		}
		h = (h-uint64(data[i])*s.pow)*rkBase + uint64(data[i+s.w])
	}
}

// copies finds the copies of each value in data: for each value, the piece
// found most often; its count is the value's copies in data, and the
// offsets where that piece was found, less its offset in the value, are
// where the copies start. fn is called per copy, ordered by value then
// offset.
func (s *scanner) copies(data []byte, fn func(v, off int)) {
	type hits struct {
		counts []int
		at     [][]int
	}
	found := map[int]*hits{}
	var order []int
	s.scan(data, func(p piece, off int) {
		h := found[p.v]
		if h == nil {
			h = &hits{counts: make([]int, s.pieces[p.v]), at: make([][]int, s.pieces[p.v])}
			found[p.v] = h
			order = append(order, p.v)
		}
		h.counts[p.idx]++
		h.at[p.idx] = append(h.at[p.idx], max(0, off-p.off))
	})
	sortInts(order)
	for _, v := range order {
		h := found[v]
		best := 0
		for j, c := range h.counts {
			if c > h.counts[best] {
				best = j
			}
		}
		for _, off := range h.at[best] {
			fn(v, off)
		}
	}
}
