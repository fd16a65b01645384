package kv

import (
	"strconv"
	"testing"

	"github.com/onecast/onecast/bufpool"
)

func BenchmarkParseCommand(b *testing.B) {
	line := []byte("set some:key:12345 0 0 4096 noreply")
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := ParseCommand(line, DefaultMaxItemSize); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreSet applies set ops of 4 KiB values; copies/op reports the
// value copies the store made (0: values are views of the request payload).
func BenchmarkStoreSet(b *testing.B) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 8192, Frames: 4096})
	s := NewStore(StoreConfig{Pool: pool})
	defer s.Close()
	value := make([]byte, 4096)
	ops := make([]bufpool.Buf, 1024)
	for i := range ops {
		c := Command{Kind: KindSet, Keys: [][]byte{[]byte("key" + strconv.Itoa(i))}}
		h, _ := AppendOpHeader(nil, &c, Stamp{Now: 1, Nonce: uint64(i)})
		ops[i], _ = pool.Copy(append(h, value...))
	}
	before := pool.Stats().Copies
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	reply := make([]byte, 0, 64)
	i := 0
	for b.Loop() {
		reply = s.ApplyOne(ops[i%len(ops)], reply[:0])
		i++
	}
	b.ReportMetric(float64(pool.Stats().Copies-before)/float64(b.N), "copies/op")
	for _, op := range ops {
		op.Release()
	}
}

func BenchmarkStoreGet(b *testing.B) {
	s := NewStore(StoreConfig{})
	defer s.Close()
	set := Command{Kind: KindSet, Keys: [][]byte{[]byte("k")}}
	op, _ := EncodeOp(&set, make([]byte, 4096), Stamp{Now: 1})
	s.ApplyOne(op, nil)
	op.Release()
	get, _ := EncodeOp(&Command{Kind: KindGet, Keys: [][]byte{[]byte("k")}}, nil, Stamp{Now: 1})
	defer get.Release()
	reply := make([]byte, 0, 8192)
	b.ReportAllocs()
	b.SetBytes(4096)
	for b.Loop() {
		reply = s.ApplyOne(get, reply[:0])
	}
}
