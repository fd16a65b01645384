package dupscope

import (
	"bytes"
	"fmt"
)

// scanner finds every occurrence of a set of byte strings in a buffer with
// one rolling hash (Rabin–Karp) over a window as long as the shortest one.
type scanner struct {
	values [][]byte
	w      int
	pow    uint64 // base^(w-1)
	heads  map[uint64][]int
}

const rkBase = 1099511628211

// maxWindow bounds the hashed prefix: longer values are verified in full.
const maxWindow = 32

func newScanner(values [][]byte) (*scanner, error) {
	w := maxWindow
	for i, v := range values {
		if len(v) == 0 {
			return nil, fmt.Errorf("dupscope: known value %d is empty", i)
		}
		w = min(w, len(v))
	}
	s := &scanner{values: values, w: w, heads: map[uint64][]int{}, pow: 1}
	for range w - 1 {
		s.pow *= rkBase
	}
	for i, v := range values {
		h := s.hash(v[:w])
		s.heads[h] = append(s.heads[h], i)
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

// scan calls fn(value, offset) for each occurrence in data, in offset order.
// Occurrences of one value may overlap.
func (s *scanner) scan(data []byte, fn func(v, off int)) {
	if len(data) < s.w {
		return
	}
	h := s.hash(data[:s.w])
	for i := 0; ; i++ {
		if cands, ok := s.heads[h]; ok {
			for _, v := range cands {
				val := s.values[v]
				if i+len(val) <= len(data) && bytes.Equal(data[i:i+len(val)], val) {
					fn(v, i)
				}
			}
		}
		if i+s.w >= len(data) {
			return
		}
		h = (h-uint64(data[i])*s.pow)*rkBase + uint64(data[i+s.w])
	}
}
