package kv

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bufpool"
)

// node is a single-node memcached server on loopback with a settable clock.
type node struct {
	addr  string
	clock *atomic.Int64
	srv   *Server
	store *Store
	wal   *WAL
	pool  *bufpool.Pool
	done  chan error
}

func newPool(t testing.TB) *bufpool.Pool {
	return bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 64, Checked: true})
}

func startNode(t testing.TB, dir string, pool *bufpool.Pool, fast bool) *node {
	t.Helper()
	n := &node{clock: new(atomic.Int64), pool: pool, done: make(chan error, 1)}
	n.clock.Store(1_700_000_000)
	n.store = NewStore(StoreConfig{Pool: pool})
	if dir != "" {
		w, err := OpenWAL(dir, WALOptions{SnapshotEvery: 50})
		require.NoError(t, err)
		n.wal = w
	}
	exec := NewLocal(n.store, n.wal)
	require.NoError(t, exec.Recover())
	srv, err := NewServer(ServerConfig{Executor: exec, Reader: n.store, FastReads: fast, Stats: n.store.Stats,
		Pool: pool, Now: n.clock.Load})
	require.NoError(t, err)
	n.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n.addr = ln.Addr().String()
	go func() { n.done <- srv.Serve(ln) }()
	return n
}

// stop closes the server and the store; it leaves the data dir as a crash
// would (no final snapshot).
func (n *node) stop(t testing.TB) {
	require.NoError(t, n.srv.Close())
	require.NoError(t, <-n.done)
	if n.wal != nil {
		require.NoError(t, n.wal.Close())
	}
	n.store.Close()
}

func newClient(addr string) *memcache.Client {
	c := memcache.New(addr)
	c.Timeout = 5 * time.Second
	return c
}

func TestGomemcacheEveryCommand(t *testing.T) {
	defer leaktest.AfterTest(t)()
	pool := newPool(t)
	n := startNode(t, "", pool, false)
	mc := newClient(n.addr)
	defer mc.Close()

	require.NoError(t, mc.Ping(), "version")

	t.Run("set and get keep value and flags", func(t *testing.T) {
		require.NoError(t, mc.Set(&memcache.Item{Key: "a", Value: []byte("alpha"), Flags: 0xdeadbeef}))
		it, err := mc.Get("a")
		require.NoError(t, err)
		assert.Equal(t, "alpha", string(it.Value))
		assert.Equal(t, uint32(0xdeadbeef), it.Flags)
		_, err = mc.Get("missing")
		assert.ErrorIs(t, err, memcache.ErrCacheMiss)
	})
	t.Run("empty value", func(t *testing.T) {
		require.NoError(t, mc.Set(&memcache.Item{Key: "empty", Value: []byte{}}))
		it, err := mc.Get("empty")
		require.NoError(t, err)
		assert.Empty(t, it.Value)
	})
	t.Run("add only when absent", func(t *testing.T) {
		require.NoError(t, mc.Add(&memcache.Item{Key: "b", Value: []byte("1")}))
		assert.ErrorIs(t, mc.Add(&memcache.Item{Key: "b", Value: []byte("2")}), memcache.ErrNotStored)
		it, err := mc.Get("b")
		require.NoError(t, err)
		assert.Equal(t, "1", string(it.Value))
	})
	t.Run("replace only when present", func(t *testing.T) {
		assert.ErrorIs(t, mc.Replace(&memcache.Item{Key: "nope", Value: []byte("x")}), memcache.ErrNotStored)
		require.NoError(t, mc.Replace(&memcache.Item{Key: "b", Value: []byte("3")}))
		it, err := mc.Get("b")
		require.NoError(t, err)
		assert.Equal(t, "3", string(it.Value))
	})
	t.Run("append and prepend keep flags and join values", func(t *testing.T) {
		require.NoError(t, mc.Set(&memcache.Item{Key: "c", Value: []byte("mid"), Flags: 7}))
		require.NoError(t, mc.Append(&memcache.Item{Key: "c", Value: []byte("-end"), Flags: 99}))
		require.NoError(t, mc.Prepend(&memcache.Item{Key: "c", Value: []byte("start-")}))
		assert.ErrorIs(t, mc.Append(&memcache.Item{Key: "nope", Value: []byte("x")}), memcache.ErrNotStored)
		it, err := mc.Get("c")
		require.NoError(t, err)
		assert.Equal(t, "start-mid-end", string(it.Value))
		assert.Equal(t, uint32(7), it.Flags)
		for i := range 40 { // past the rope limit: flattened, same bytes
			require.NoError(t, mc.Append(&memcache.Item{Key: "c", Value: []byte{byte('a' + i%26)}}))
		}
		it, err = mc.Get("c")
		require.NoError(t, err)
		assert.Equal(t, "start-mid-end"+strings.Repeat("abcdefghijklmnopqrstuvwxyz", 2)[:40], string(it.Value))
	})
	t.Run("cas swaps only on the current unique", func(t *testing.T) {
		require.NoError(t, mc.Set(&memcache.Item{Key: "d", Value: []byte("v1")}))
		it, err := mc.Get("d")
		require.NoError(t, err)
		stale := *it
		it.Value = []byte("v2")
		require.NoError(t, mc.CompareAndSwap(it))
		stale.Value = []byte("v3")
		assert.ErrorIs(t, mc.CompareAndSwap(&stale), memcache.ErrCASConflict)
		got, err := mc.Get("d")
		require.NoError(t, err)
		assert.Equal(t, "v2", string(got.Value))
		require.NoError(t, mc.Delete("d"))
		assert.ErrorIs(t, mc.CompareAndSwap(got), memcache.ErrCacheMiss)
	})
	t.Run("delete", func(t *testing.T) {
		require.NoError(t, mc.Set(&memcache.Item{Key: "e", Value: []byte("x")}))
		require.NoError(t, mc.Delete("e"))
		assert.ErrorIs(t, mc.Delete("e"), memcache.ErrCacheMiss)
		_, err := mc.Get("e")
		assert.ErrorIs(t, err, memcache.ErrCacheMiss)
	})
	t.Run("incr and decr", func(t *testing.T) {
		require.NoError(t, mc.Set(&memcache.Item{Key: "n", Value: []byte("10")}))
		v, err := mc.Increment("n", 5)
		require.NoError(t, err)
		assert.Equal(t, uint64(15), v)
		v, err = mc.Decrement("n", 100)
		require.NoError(t, err)
		assert.Equal(t, uint64(0), v, "decr floors at 0")
		require.NoError(t, mc.Set(&memcache.Item{Key: "n", Value: []byte("18446744073709551615")}))
		v, err = mc.Increment("n", 2)
		require.NoError(t, err)
		assert.Equal(t, uint64(1), v, "incr wraps at 2^64")
		_, err = mc.Increment("nope", 1)
		assert.ErrorIs(t, err, memcache.ErrCacheMiss)
		require.NoError(t, mc.Set(&memcache.Item{Key: "s", Value: []byte("abc")}))
		_, err = mc.Increment("s", 1)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "cannot increment or decrement non-numeric value")
	})
	t.Run("exptime relative absolute negative and touch", func(t *testing.T) {
		now := n.clock.Load()
		require.NoError(t, mc.Set(&memcache.Item{Key: "rel", Value: []byte("x"), Expiration: 10}))
		require.NoError(t, mc.Set(&memcache.Item{Key: "abs", Value: []byte("x"), Expiration: int32(now + 20)}))
		require.NoError(t, mc.Set(&memcache.Item{Key: "neg", Value: []byte("x"), Expiration: -1}))
		require.NoError(t, mc.Set(&memcache.Item{Key: "tch", Value: []byte("x"), Expiration: 10}))
		_, err := mc.Get("neg")
		assert.ErrorIs(t, err, memcache.ErrCacheMiss, "negative exptime is expired at once")
		require.NoError(t, mc.Touch("tch", 100))
		assert.ErrorIs(t, mc.Touch("nope", 100), memcache.ErrCacheMiss)
		n.clock.Add(10)
		_, err = mc.Get("rel")
		assert.ErrorIs(t, err, memcache.ErrCacheMiss, "relative exptime reached")
		_, err = mc.Get("abs")
		assert.NoError(t, err, "absolute exptime not reached")
		_, err = mc.Get("tch")
		assert.NoError(t, err, "touch extended it")
		n.clock.Add(10)
		_, err = mc.Get("abs")
		assert.ErrorIs(t, err, memcache.ErrCacheMiss, "absolute exptime reached")
	})
	t.Run("get multi", func(t *testing.T) {
		require.NoError(t, mc.Set(&memcache.Item{Key: "m1", Value: []byte("1")}))
		require.NoError(t, mc.Set(&memcache.Item{Key: "m2", Value: []byte("2")}))
		got, err := mc.GetMulti([]string{"m1", "m2", "m3"})
		require.NoError(t, err)
		require.Len(t, got, 2)
		assert.Equal(t, "2", string(got["m2"].Value))
	})
	t.Run("largest value fits and one byte more does not", func(t *testing.T) {
		key := "big"
		fit := DefaultMaxItemSize - ItemOverhead - len(key)
		require.NoError(t, mc.Set(&memcache.Item{Key: key, Value: make([]byte, fit)}))
		it, err := mc.Get(key)
		require.NoError(t, err)
		assert.Len(t, it.Value, fit)
		err = mc.Set(&memcache.Item{Key: key, Value: make([]byte, fit+1)})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "object too large for cache")
		require.NoError(t, mc.Ping(), "connection kept after an oversize value")
	})
	t.Run("flush_all", func(t *testing.T) {
		require.NoError(t, mc.Set(&memcache.Item{Key: "f", Value: []byte("x")}))
		require.NoError(t, mc.FlushAll())
		_, err := mc.Get("f")
		assert.ErrorIs(t, err, memcache.ErrCacheMiss)
		require.NoError(t, mc.Set(&memcache.Item{Key: "f", Value: []byte("y")}))
		_, err = mc.Get("f")
		assert.NoError(t, err, "items stored after a flush live")
	})
	t.Run("client refuses bad keys before sending", func(t *testing.T) {
		assert.ErrorIs(t, mc.Set(&memcache.Item{Key: strings.Repeat("k", 251), Value: []byte("x")}), memcache.ErrMalformedKey)
	})
	mc.Close()
	n.stop(t)
	require.NoError(t, pool.CheckLeaks())
}

// raw is a raw protocol connection.
type raw struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *raw {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return &raw{t: t, c: c, r: bufio.NewReader(c)}
}

func (r *raw) send(s string) {
	_, err := io.WriteString(r.c, s)
	require.NoError(r.t, err)
}

func (r *raw) expect(want string) {
	got := make([]byte, len(want))
	_, err := io.ReadFull(r.r, got)
	require.NoError(r.t, err, "want %q", want)
	require.Equal(r.t, want, string(got))
}

func TestRawProtocolAnswersAsMemcached(t *testing.T) {
	defer leaktest.AfterTest(t)()
	pool := newPool(t)
	n := startNode(t, "", pool, false)
	long := strings.Repeat("k", 251)
	key250 := strings.Repeat("k", 250)
	cases := []struct {
		name, req, want string
	}{
		{"unknown command", "bogus\r\n", "ERROR\r\n"},
		{"empty line", "\r\n", "ERROR\r\n"},
		{"get without key", "get\r\n", "ERROR\r\n"},
		{"bare LF line ending", "version\n", "VERSION " + Version + "\r\n"},
		{"set with too few tokens", "set k 0 0\r\n", "ERROR\r\n"},
		{"set with non-numeric length", "set k 0 0 abc\r\n", ReplyBadFormat},
		{"set with negative length", "set k 0 0 -1\r\n", ReplyBadFormat},
		{"flags beyond 32 bits are truncated, as memcached does", "set f 4294967297 0 1\r\nx\r\nget f\r\n", "STORED\r\nVALUE f 1 1\r\nx\r\nEND\r\n"},
		{"key of 251 bytes: refused, data line read as a command", "set " + long + " 0 0 1\r\nx\r\n", ReplyBadFormat + "ERROR\r\n"},
		{"key of 250 bytes is fine", "set " + key250 + " 0 0 1\r\nx\r\nget " + key250 + "\r\n", "STORED\r\nVALUE " + key250 + " 0 1\r\nx\r\nEND\r\n"},
		{"get with 251-byte key", "get " + long + "\r\n", ReplyBadFormat},
		{"key with a control character is accepted, as by memcached", "get a\x01b\r\n", ReplyEnd},
		{"data block longer than announced", "set k 0 0 3\r\nabcde\r\n", ReplyBadChunk + "ERROR\r\n"},
		{"oversize value swallowed, connection kept", "set k 0 0 2000000\r\n" + strings.Repeat("v", 2000000) + "\r\nversion\r\n",
			ReplyTooLarge + "VERSION " + Version + "\r\n"},
		{"noreply suppresses the reply", "set q 5 0 2 noreply\r\nhi\r\ngets q\r\n", "VALUE q 5 2 "},
		{"incr with bad delta", "incr k abc\r\n", ReplyBadDelta},
		{"delete with a time", "delete k 5\r\n", ReplyDeleteUsage},
		{"delete with time 0", "set z 0 0 1\r\nz\r\ndelete z 0\r\n", "STORED\r\nDELETED\r\n"},
		{"touch with bad exptime", "touch k x\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
		{"cas with bad unique", "cas k 0 0 1 x\r\n", ReplyBadFormat},
		{"cas on missing key", "cas nokey 0 0 1 1\r\nx\r\n", ReplyNotFound},
		{"flush_all with delay and noreply", "flush_all 0 noreply\r\nversion\r\n", "VERSION " + Version + "\r\n"},
		{"verbosity", "verbosity 1\r\n", ReplyOK},
		{"stats reset", "stats reset\r\n", ReplyReset},
		{"stats of an unknown group", "stats nosuch\r\n", ReplyError},
		{"pipelined commands answered in order", "set p 0 0 1\r\n1\r\nincr p 41\r\nget p\r\n", "STORED\r\n42\r\nVALUE p 0 2\r\n42\r\nEND\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, n.addr)
			defer r.c.Close()
			r.send(tc.req)
			r.expect(tc.want)
			if strings.HasPrefix(tc.want, "VALUE q") {
				line, err := r.r.ReadString('\n')
				require.NoError(t, err)
				require.Regexp(t, `^\d+\r\n$`, line)
				r.expect("hi\r\nEND\r\n")
			}
			r.send("version\r\n")
			r.expect("VERSION " + Version + "\r\n") // the connection is kept
		})
	}
	t.Run("stats lists items", func(t *testing.T) {
		r := dialRaw(t, n.addr)
		defer r.c.Close()
		r.send("stats\r\n")
		var lines []string
		for {
			l, err := r.r.ReadString('\n')
			require.NoError(t, err)
			if l == "END\r\n" {
				break
			}
			require.True(t, strings.HasPrefix(l, "STAT "), l)
			lines = append(lines, l)
		}
		assert.Contains(t, strings.Join(lines, ""), "STAT curr_items ")
		assert.Contains(t, strings.Join(lines, ""), "STAT version "+Version+"\r\n")
	})
	t.Run("overlong non-get line closes the connection", func(t *testing.T) {
		r := dialRaw(t, n.addr)
		defer r.c.Close()
		r.send("set " + strings.Repeat("x", 20000) + "\r\n")
		_, err := r.r.ReadByte()
		assert.ErrorIs(t, err, io.EOF)
	})
	t.Run("long get line with many keys is served", func(t *testing.T) {
		r := dialRaw(t, n.addr)
		defer r.c.Close()
		var sb strings.Builder
		sb.WriteString("get")
		for i := range 500 {
			sb.WriteString(" key" + strconv.Itoa(i))
		}
		r.send(sb.String() + "\r\n")
		r.expect("END\r\n")
	})
	t.Run("quit closes", func(t *testing.T) {
		r := dialRaw(t, n.addr)
		defer r.c.Close()
		r.send("quit\r\n")
		_, err := r.r.ReadByte()
		assert.ErrorIs(t, err, io.EOF)
	})
	n.stop(t)
	require.NoError(t, pool.CheckLeaks())
}

func TestFastReadsServeFromLocalState(t *testing.T) {
	defer leaktest.AfterTest(t)()
	pool := newPool(t)
	n := startNode(t, "", pool, true)
	mc := newClient(n.addr)
	require.NoError(t, mc.Set(&memcache.Item{Key: "k", Value: []byte("v"), Expiration: 5}))
	it, err := mc.Get("k")
	require.NoError(t, err)
	assert.Equal(t, "v", string(it.Value))
	r := dialRaw(t, n.addr)
	r.send("me k\r\n")
	r.expect("ME k exp=5 la=0 cas=1 fetch=no\r\n") // read-only: the fast path marks nothing fetched
	n.clock.Add(5)
	_, err = mc.Get("k")
	assert.ErrorIs(t, err, memcache.ErrCacheMiss, "a fast read honours expiry at the op's time")
	r.send("me k\r\n")
	r.expect("EN\r\n")
	r.c.Close()
	mc.Close()
	n.stop(t)
	require.NoError(t, pool.CheckLeaks())
}

// TestNewCommandsExpireOnTheOpsTime: gat, mg T/N, ms T, md I T and ma N
// compute expiry from the time written into the op (the node's settable
// clock here), never from the wall clock.
func TestNewCommandsExpireOnTheOpsTime(t *testing.T) {
	defer leaktest.AfterTest(t)()
	pool := newPool(t)
	n := startNode(t, "", pool, false)
	r := dialRaw(t, n.addr)
	r.send("set g 0 5 1\r\nx\r\ngat 100 g\r\nms m 1 T5\r\ny\r\nmg m T100 t\r\nmg v N5 t\r\nma c N5 J7 v\r\n" +
		"ms s 1 T100\r\nz\r\nmd s I T5\r\n")
	r.expect("STORED\r\nVALUE g 0 1\r\nx\r\nEND\r\nHD\r\nHD t100\r\nHD t5 W\r\nVA 1\r\n7\r\nHD\r\nHD\r\n")
	n.clock.Add(6)
	r.send("get g\r\nmg m t v\r\nmg v\r\nmg c\r\nmg s\r\nme m\r\n")
	r.expect("VALUE g 0 1\r\nx\r\nEND\r\nVA 1 t94\r\ny\r\nEN\r\nEN\r\nEN\r\nME m exp=94 la=0 cas=")
	line, err := r.r.ReadString('\n')
	require.NoError(t, err)
	assert.Regexp(t, `^\d+ fetch=yes\r\n$`, line)
	n.clock.Add(100)
	r.send("gats 1 g\r\nmg m\r\n")
	r.expect("END\r\nEN\r\n")
	r.c.Close()
	n.stop(t)
	require.NoError(t, pool.CheckLeaks())
}

// TestStatsCountWhatWasExecuted: every figure stats reports is counted,
// and stats reset starts the counters again.
func TestStatsCountWhatWasExecuted(t *testing.T) {
	defer leaktest.AfterTest(t)()
	pool := newPool(t)
	n := startNode(t, "", pool, false)
	r := dialRaw(t, n.addr)
	stats := func(req string) map[string]string {
		r.send(req)
		m := map[string]string{}
		for {
			l, err := r.r.ReadString('\n')
			require.NoError(t, err)
			if l == "END\r\n" {
				return m
			}
			f := strings.Fields(l)
			require.Len(t, f, 3, l)
			m[f[1]] = f[2]
		}
	}
	req := "set a 0 0 1\r\n1\r\nget a b\r\ngets a\r\nmg a v\r\nmg b\r\ntouch a 10\r\ntouch b 10\r\ngat 10 a b\r\n" +
		"incr a 2\r\nincr b 1\r\ndecr a 1\r\ndecr b 1\r\ncas a 0 0 1 1\r\nx\r\ncas b 0 0 1 1\r\nx\r\n" +
		"delete a\r\ndelete a\r\nset x 0 -1 1\r\nx\r\nget x\r\nms m 1\r\nm\r\nma m\r\nme m\r\nmd m\r\nflush_all\r\n" +
		"set big 0 0 2000000\r\n" + strings.Repeat("v", 2000000) + "\r\n"
	r.send(req)
	r.expect("STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\nVALUE a 0 1 1\r\n1\r\nEND\r\nVA 1\r\n1\r\nEN\r\nTOUCHED\r\nNOT_FOUND\r\n" +
		"VALUE a 0 1\r\n1\r\nEND\r\n3\r\nNOT_FOUND\r\n2\r\nNOT_FOUND\r\nEXISTS\r\nNOT_FOUND\r\nDELETED\r\nNOT_FOUND\r\n" +
		"STORED\r\nEND\r\nHD\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nME m exp=-1 la=0 cas=")
	_, err := r.r.ReadString('\n')
	require.NoError(t, err)
	r.expect("HD\r\nOK\r\n" + ReplyTooLarge)
	want := map[string]string{"cmd_get": "6", "cmd_set": "5", "cmd_flush": "1", "cmd_touch": "4", "cmd_meta": "6",
		"get_hits": "3", "get_misses": "3", "get_expired": "0", "get_flushed": "0", "delete_misses": "1", "delete_hits": "2",
		"incr_misses": "1", "incr_hits": "1", "decr_misses": "1", "decr_hits": "1", "cas_misses": "1", "cas_hits": "0",
		"cas_badval": "1", "touch_hits": "2", "touch_misses": "2", "store_too_large": "1", "curr_items": "0", "bytes": "0",
		"total_items": "2", "curr_connections": "1", "total_connections": "1", "bytes_read": strconv.Itoa(len(req + "stats\r\n"))}
	got := stats("stats\r\n")
	for k, v := range want {
		assert.Equal(t, v, got[k], k)
	}
	assert.NotEmpty(t, got["bytes_written"])
	assert.Regexp(t, `^\d+\.\d{6}$`, got["rusage_user"])
	r.send("verbosity 2 noreply\r\nset k 0 0 1\r\nx\r\nget k\r\n")
	r.expect("STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n")
	assert.Equal(t, "2", stats("stats settings\r\n")["verbosity"])
	r.send("stats reset\r\n")
	r.expect(ReplyReset)
	got = stats("stats\r\n")
	for _, k := range []string{"cmd_get", "cmd_set", "get_hits", "delete_hits", "store_too_large", "total_items", "total_connections"} {
		assert.Equal(t, "0", got[k], k)
	}
	assert.Equal(t, "1", got["curr_items"], "reset does not forget items")
	r.c.Close()
	n.stop(t)
	require.NoError(t, pool.CheckLeaks())
}

// TestClientRunsEveryNewCommand: the BFT client's op path carries gat and
// the meta commands (flag tokens included) to the state machine, and a
// reply that q suppresses comes back empty.
func TestClientRunsEveryNewCommand(t *testing.T) {
	defer leaktest.AfterTest(t)()
	pool := newPool(t)
	n := startNode(t, "", pool, false)
	c, err := NewClient(ClientConfig{Addrs: []string{n.addr}, F: 0})
	require.NoError(t, err)
	ctx := context.Background()
	key := [][]byte{[]byte("k")}
	flags := func(s string) [][]byte { return bytes.Fields([]byte(s)) }
	steps := []struct {
		cmd   Command
		value string
		want  string
	}{
		{Command{Kind: KindMetaSet, Keys: key, Meta: flags("T100 F7 k")}, "hi", "HD kk\r\n"},
		{Command{Kind: KindMetaSet, Keys: key, Meta: flags("q MA")}, "!", ""},
		{Command{Kind: KindMetaGet, Keys: key, Meta: flags("v f t O5")}, "", "VA 3 f7 t100 O5\r\nhi!\r\n"},
		{Command{Kind: KindGat, Keys: key, Exptime: 50}, "", "VALUE k 7 3\r\nhi!\r\nEND\r\n"},
		{Command{Kind: KindMetaArith, Keys: [][]byte{[]byte("n")}, Meta: flags("N0 J41 v")}, "", "VA 2\r\n41\r\n"},
		{Command{Kind: KindMetaArith, Keys: [][]byte{[]byte("n")}, Meta: flags("v")}, "", "VA 2\r\n42\r\n"},
		{Command{Kind: KindMetaDelete, Keys: key, Meta: flags("q")}, "", ""},
		{Command{Kind: KindMetaGet, Keys: key, Meta: flags("v")}, "", "EN\r\n"},
	}
	for _, st := range steps {
		got, err := c.Do(ctx, &st.cmd, []byte(st.value))
		require.NoError(t, err)
		assert.Equal(t, st.want, string(got), "%v %q", st.cmd.Kind, st.cmd.Meta)
	}
	require.NoError(t, c.Close())
	n.stop(t)
	require.NoError(t, pool.CheckLeaks())
}

// TestStatsDetailCountsPerPrefix: stats detail counts the classic
// commands per key prefix while it is on, and stats reset forgets them.
func TestStatsDetailCountsPerPrefix(t *testing.T) {
	defer leaktest.AfterTest(t)()
	pool := newPool(t)
	n := startNode(t, "", pool, true) // hits are counted on the fast read path too
	r := dialRaw(t, n.addr)
	r.send("set u:1 0 0 1\r\nx\r\nstats detail on\r\nset u:1 0 0 1\r\ny\r\nget u:1 u:2 plain u:1\r\ndelete u:2\r\n" +
		"set v:1 0 0 3000000\r\n" + strings.Repeat("v", 3000000) + "\r\nmg u:1\r\nstats detail dump\r\n")
	r.expect("STORED\r\nOK\r\nSTORED\r\nVALUE u:1 0 1\r\ny\r\nVALUE u:1 0 1\r\ny\r\nEND\r\nNOT_FOUND\r\n" + ReplyTooLarge +
		"HD\r\nPREFIX u get 3 hit 2 set 1 del 1\r\nPREFIX v get 0 hit 0 set 1 del 0\r\nEND\r\n")
	r.send("stats detail off\r\nget u:1\r\nstats detail dump\r\nstats reset\r\nstats detail dump\r\nstats detail\r\n")
	r.expect("OK\r\nVALUE u:1 0 1\r\ny\r\nEND\r\nPREFIX u get 3 hit 2 set 1 del 1\r\nPREFIX v get 0 hit 0 set 1 del 0\r\nEND\r\n" +
		"RESET\r\nEND\r\n" + replyDetailUsage)
	r.c.Close()
	n.stop(t)
	require.NoError(t, pool.CheckLeaks())
}

// TestDelayedFlushAllFollowsMemcached: flush_all <delay> takes effect, as
// memcached's oldest_live does, one second before the delay ends, on every
// item written until then; items written later stay.
func TestDelayedFlushAllFollowsMemcached(t *testing.T) {
	defer leaktest.AfterTest(t)()
	pool := newPool(t)
	n := startNode(t, "", pool, false)
	r := dialRaw(t, n.addr)
	r.send("set a 0 0 1\r\nx\r\nflush_all 10\r\nset b 0 0 1\r\ny\r\n")
	r.expect("STORED\r\nOK\r\nSTORED\r\n")
	n.clock.Add(8)
	r.send("get a b\r\n")
	r.expect("VALUE a 0 1\r\nx\r\nVALUE b 0 1\r\ny\r\nEND\r\n")
	n.clock.Add(1)
	r.send("get a b\r\n")
	r.expect("END\r\n")
	n.clock.Add(1)
	r.send("set c 0 0 1\r\nz\r\nget c\r\nflush_all 0 noreply\r\nget c\r\n")
	r.expect("STORED\r\nVALUE c 0 1\r\nz\r\nEND\r\nEND\r\n")
	r.c.Close()
	n.stop(t)
	require.NoError(t, pool.CheckLeaks())
}
