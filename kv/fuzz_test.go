package kv

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/onecast/onecast/bufpool"
)

// FuzzParseCommand: no line makes the parser panic, and what it accepts
// respects memcached's limits.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"get a b c", "gets a", "set k 1 2 3", "set k 1 2 3 noreply", "cas k 0 0 1 77",
		"append k 0 0 1", "delete k", "delete k 0 noreply", "incr k 5", "decr k 18446744073709551615",
		"touch k -1", "flush_all 10 noreply", "version", "stats", "stats reset", "verbosity 1", "quit",
		"set " + strings.Repeat("x", 251) + " 0 0 1", "set k 0 0 2000000", "", "   ", "get \x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c, perr := ParseCommand(line, DefaultMaxItemSize)
		if perr != nil {
			if perr.Reply == "" || !strings.HasSuffix(perr.Reply, "\r\n") {
				t.Fatalf("refusal without a reply line: %+v", perr)
			}
			return
		}
		for _, k := range c.Keys {
			if !validKey(k) {
				t.Fatalf("accepted bad key %q", k)
			}
		}
		if c.Kind.IsStorage() && (c.ValueLen < 0 || len(c.Key())+c.ValueLen+ItemOverhead > DefaultMaxItemSize) {
			t.Fatalf("accepted value length %d", c.ValueLen)
		}
		if c.Kind.Replicated() {
			b, err := AppendOpHeader(nil, &c, Stamp{Now: 1})
			if err != nil {
				return
			}
			if len(b) != OpHeaderLen(&c) {
				t.Fatalf("header length %d, OpHeaderLen %d", len(b), OpHeaderLen(&c))
			}
		}
	})
}

// FuzzApplyOp: any payload reaching the state machine (a Byzantine client's
// op) gets a reply and never a panic, and two stores agree on it.
func FuzzApplyOp(f *testing.F) {
	for _, c := range []Command{{Kind: KindSet, Keys: [][]byte{[]byte("k")}}, {Kind: KindGets, Keys: [][]byte{[]byte("k"), []byte("j")}},
		{Kind: KindIncr, Keys: [][]byte{[]byte("k")}, Delta: 3}, {Kind: KindFlushAll, Delay: 2}} {
		b, _ := AppendOpHeader(nil, &c, Stamp{Now: 5})
		f.Add(append(b, "12"...))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		a, b := NewStore(StoreConfig{}), NewStore(StoreConfig{})
		set := Command{Kind: KindSet, Keys: [][]byte{[]byte("k")}}
		pre, _ := EncodeOp(&set, []byte("7"), Stamp{Now: 1})
		a.ApplyOne(pre, nil)
		b.ApplyOne(pre, nil)
		ra := a.ApplyOne(bufpool.Wrap(p), nil)
		rb := b.ApplyOne(bufpool.Wrap(bytes.Clone(p)), nil)
		if !bytes.Equal(ra, rb) || len(ra) == 0 {
			t.Fatalf("replies %q and %q", ra, rb)
		}
	})
}

// FuzzRestore: a corrupt snapshot is an error, never a panic; an accepted
// one round-trips.
func FuzzRestore(f *testing.F) {
	s := NewStore(StoreConfig{})
	set := Command{Kind: KindSet, Keys: [][]byte{[]byte("k")}, Exptime: 100}
	op, _ := EncodeOp(&set, []byte("value"), Stamp{Now: 1})
	s.ApplyOne(op, nil)
	snap, _ := s.Snapshot()
	f.Add(snap)
	f.Add([]byte("KVS1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewStore(StoreConfig{})
		if err := s.Restore(b); err != nil {
			return
		}
		if _, err := s.Snapshot(); err != nil {
			t.Fatal(err)
		}
	})
}

// rwPair feeds a fixed input and collects the output.
type rwPair struct {
	in  io.Reader
	out bytes.Buffer
}

func (p *rwPair) Read(b []byte) (int, error)  { return p.in.Read(b) }
func (p *rwPair) Write(b []byte) (int, error) { return p.out.Write(b) }

// FuzzServeConn: any byte stream from a client is answered without a panic
// and without leaking a buffer.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{"set a 0 0 1\r\nx\r\nget a\r\n", "set a 0 0 3\r\nabcde\r\n", "incr a 1\r\n",
		"gets a b\r\ncas a 0 0 1 1\r\ny\r\n", "set a 0 0 2000000\r\n", "stats\r\nversion\r\nquit\r\n",
		"append a 0 0 2 noreply\r\nzz\r\ndelete a\r\n", "touch a 10\r\nflush_all 5\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		pool := bufpool.MustNew(bufpool.Config{FrameSize: 256, Frames: 4, Checked: true})
		st := NewStore(StoreConfig{Pool: pool})
		srv, err := NewServer(ServerConfig{Executor: NewLocal(st, nil), Pool: pool, Stats: st.Stats, Now: func() int64 { return 100 }})
		if err != nil {
			t.Fatal(err)
		}
		rw := &rwPair{in: bytes.NewReader(in)}
		srv.ServeConn(context.Background(), rw)
		st.Close()
		if err := pool.CheckLeaks(); err != nil {
			t.Fatal(err)
		}
	})
}
