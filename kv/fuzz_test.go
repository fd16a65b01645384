package kv

import (
	"bytes"
	"context"
	"encoding/base64"
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
		"set " + strings.Repeat("x", 251) + " 0 0 1", "set k 0 0 2000000", "", "   ", "get \x00",
		"gat 10 a b", "gats -1 a", "gat 5", "gat x a", "bget a", "version x y", "verbosity 1 noreply", "verbosity noreply",
		"flush_all x", "flush_all 0 x", "touch k noreply", "incr k noreply", "GET / HTTP/1.1", "mn", "mx", "me k", "me Zm9v b",
		"mg k s v t c f k h l O123 q u", "mg k N30 R10 T5", "mg Zm9v b k", "mg k v v", "mg k \x80", "mg !!!! b",
		"ms k 5 F3 T10 c k O1 q I MA", "ms k 5 C7 ME", "ms k x", "ms k 5 MZ", "ms k 2000000", "ms k",
		"md k q C5 I T30 O1 k b", "ma k N0 J5 D3 MD T10 t c v q O2 k", "ma k M+ D18446744073709551615", "ma k Jx"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c, perr := ParseCommand(line, DefaultMaxItemSize)
		if perr != nil {
			if perr.Close && perr.Reply == "" {
				return // memcached closes without a word
			}
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
			if len(c.Keys) == 0 {
				return // gat with no key: answered END by the front end
			}
			// What the front end accepts, the state machine decodes to
			// the same command.
			o, _, err := decodeOp(bufpool.Wrap(b), nil, nil)
			if err != nil {
				t.Fatalf("accepted %q, its op does not decode: %v", line, err)
			}
			if o.kind != c.Kind || len(o.keys) != len(c.Keys) || !bytes.Equal(o.keys[0], c.Keys[0]) ||
				!bytes.Equal(o.meta, bytes.Join(c.Meta, []byte(" "))) {
				t.Fatalf("op of %q decodes to %v %q %q", line, o.kind, o.keys, o.meta)
			}
			if c.Kind.IsMeta() {
				// The store's parse of the carried flags agrees with the
				// front end's: no error that the front end let through,
				// except those memcached finds later (opaque length, ms
				// mode, the ma mode).
				if _, _, e := parseMetaFlags(metaTokens(o.meta), o.keys[0]); e != "" && c.Kind != KindMetaDebug {
					t.Fatalf("front end accepted %q, store refuses its flags: %s", line, e)
				}
			}
		}
	})
}

// FuzzBase64Decode: memcached's decoder reads back what the standard
// encoder writes, and never panics on anything else.
func FuzzBase64Decode(f *testing.F) {
	for _, s := range []string{"foo", "f", "fo", "\x00\xff", "a key with spaces"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		base64Decode(b)
		if len(b) == 0 {
			return
		}
		got, ok := base64Decode([]byte(base64.StdEncoding.EncodeToString(b)))
		if !ok || !bytes.Equal(got, b) {
			t.Fatalf("decode(encode(%q)) = %q, %v", b, got, ok)
		}
	})
}

// FuzzApplyOp: any payload reaching the state machine (a Byzantine client's
// op) gets a reply (empty only under a meta command's q) and never a panic,
// and two stores agree on it.
func FuzzApplyOp(f *testing.F) {
	meta := func(s string) [][]byte { return bytes.Fields([]byte(s)) }
	k := [][]byte{[]byte("k")}
	for _, c := range []Command{{Kind: KindSet, Keys: [][]byte{[]byte("k")}}, {Kind: KindGets, Keys: [][]byte{[]byte("k"), []byte("j")}},
		{Kind: KindIncr, Keys: [][]byte{[]byte("k")}, Delta: 3}, {Kind: KindFlushAll, Delay: 2},
		{Kind: KindGat, Keys: k, Exptime: 10}, {Kind: KindGats, Keys: k, Exptime: -1},
		{Kind: KindMetaGet, Keys: k, Meta: meta("s v t c f k h l O1 T10 N5 R20")}, {Kind: KindMetaSet, Keys: k, Meta: meta("F1 T5 c k I C1 MA")},
		{Kind: KindMetaDelete, Keys: k, Meta: meta("I T3 C1 q")}, {Kind: KindMetaArith, Keys: k, Meta: meta("N0 J5 D2 MD v t c T9")},
		{Kind: KindMetaDebug, Keys: k}} {
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
		if !bytes.Equal(ra, rb) {
			t.Fatalf("replies %q and %q", ra, rb)
		}
		// Only a meta command's q suppresses a reply.
		if len(ra) == 0 && !(Kind(p[0]).IsMeta() && bytes.Contains(p, []byte("q"))) {
			t.Fatalf("no reply to %q", p)
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
		"append a 0 0 2 noreply\r\nzz\r\ndelete a\r\n", "touch a 10\r\nflush_all 5\r\n",
		"gat 10 a b\r\ngats 0 a\r\n", "ms a 2 T5 c\r\nhi\r\nmg a v t c h l k O1\r\nmd a I\r\nmg a v\r\nme a\r\nmn\r\n",
		"ma n N0 J9 v\r\nma n MD D20 v\r\n", "stats detail on\r\nset a:b 0 0 1\r\nx\r\nget a:b a:c\r\nstats detail dump\r\n", "ms a 2000000\r\n", "GET / HTTP/1.1\r\n", "stats settings\r\nstats reset\r\n"} {
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
