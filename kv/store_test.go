package kv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bufpool"
)

// metaFlagPool lists the flags randomOp draws a meta command's from.
var metaFlagPool = map[Kind][]string{
	KindMetaGet:    {"s", "v", "t", "c", "f", "k", "h", "l", "O1", "q", "u", "T5", "N3", "R4", "T-1", "b"},
	KindMetaSet:    {"F3", "T5", "c", "k", "I", "C", "MA", "MP", "ME", "MR", "q", "T-1", "O7"},
	KindMetaDelete: {"I", "T3", "C", "q", "k", "O2"},
	KindMetaArith:  {"N0", "J5", "D3", "MD", "v", "t", "c", "T9", "q", "C", "N-1"},
	KindMetaDebug:  {},
}

// randomOp returns a random op of every replicated kind over a few keys.
func randomOp(t testing.TB, rng *rand.Rand, pool *bufpool.Pool, now int64) bufpool.Buf {
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("n"), []byte("Zm9v")}
	kinds := []Kind{KindGet, KindGets, KindSet, KindAdd, KindReplace, KindAppend, KindPrepend, KindCas,
		KindDelete, KindIncr, KindDecr, KindTouch, KindFlushAll, KindGat, KindGats,
		KindMetaGet, KindMetaSet, KindMetaDelete, KindMetaArith, KindMetaDebug}
	c := Command{Kind: kinds[rng.IntN(len(kinds))], Keys: [][]byte{keys[rng.IntN(len(keys))]}}
	var value []byte
	switch {
	case c.Kind == KindGet || c.Kind == KindGets || c.Kind == KindGat || c.Kind == KindGats:
		c.Keys = keys[:1+rng.IntN(len(keys))]
	case c.Kind == KindFlushAll:
		c.Keys = nil
		if rng.IntN(2) == 0 {
			c.Delay = int64(rng.IntN(5))
		}
	case c.Kind.IsStorage() || c.Kind == KindMetaSet:
		if rng.IntN(2) == 0 {
			value = fmt.Appendf(nil, "%d", rng.IntN(1000))
		} else {
			value = []byte("v-" + string(rune('a'+rng.IntN(26))))
		}
		c.Flags = uint32(rng.IntN(4))
		c.Cas = uint64(rng.IntN(40))
	case c.Kind == KindIncr || c.Kind == KindDecr:
		c.Delta = uint64(rng.IntN(100))
	}
	if c.Kind.IsMeta() {
		seen := map[byte]bool{}
		for _, f := range metaFlagPool[c.Kind] {
			if rng.IntN(3) == 0 && !seen[f[0]] {
				seen[f[0]] = true
				if f == "C" {
					f = fmt.Sprint("C", rng.IntN(40))
				}
				c.Meta = append(c.Meta, []byte(f))
			}
		}
	}
	if c.Kind.IsStorage() || c.Kind == KindTouch || c.Kind == KindGat || c.Kind == KindGats {
		c.Exptime = []int64{0, 0, 0, 2, 5, -1, now + 3}[rng.IntN(7)]
	}
	b, err := AppendOpHeader(nil, &c, Stamp{Now: now})
	require.NoError(t, err)
	b = append(b, value...)
	p, err := pool.Copy(b)
	require.NoError(t, err)
	return p
}

func TestStoreIsDeterministic(t *testing.T) {
	pool := newPool(t)
	a, b := NewStore(StoreConfig{Pool: pool}), NewStore(StoreConfig{Pool: pool})
	rng := rand.New(rand.NewPCG(1, 2))
	now := int64(1000)
	replies := map[string]int{}
	for seq := uint64(1); seq <= 600; seq++ {
		now += int64(rng.IntN(3)) - 1 // clocks may even run backwards
		batch := make([]bufpool.Buf, 1+rng.IntN(4))
		for i := range batch {
			batch[i] = randomOp(t, rng, pool, now)
		}
		ra, rb := a.ApplyBatch(batch), b.ApplyBatch(batch)
		require.Equal(t, ra, rb, "seq %d", seq)
		for _, r := range ra {
			if f := bytes.Fields(r); len(f) > 0 {
				replies[string(f[0])]++
			}
		}
		for _, op := range batch {
			op.Release()
		}
		if seq%50 == 0 {
			sa, err := a.Snapshot()
			require.NoError(t, err)
			sb, err := b.Snapshot()
			require.NoError(t, err)
			require.Equal(t, sa, sb, "snapshots at seq %d", seq)
			// A third store restored from the snapshot continues identically.
			c := NewStore(StoreConfig{Pool: pool})
			require.NoError(t, c.Restore(sa))
			sc, err := c.Snapshot()
			require.NoError(t, err)
			require.Equal(t, sa, sc)
			c.Close()
		}
	}
	// The random ops reached every kind of answer, not just errors.
	for _, r := range []string{"VALUE", "END", "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "DELETED", "TOUCHED",
		"OK", "HD", "VA", "EN", "NS", "EX", "NF", "ME"} {
		assert.Positive(t, replies[r], "no reply %s among %v", r, replies)
	}
	a.Close()
	b.Close()
	require.NoError(t, pool.CheckLeaks())
}

func TestStoredValueIsAViewOfTheRequestPayload(t *testing.T) {
	pool := newPool(t)
	s := NewStore(StoreConfig{Pool: pool})
	c := Command{Kind: KindSet, Keys: [][]byte{[]byte("k")}}
	hdr, err := AppendOpHeader(nil, &c, Stamp{Now: 1})
	require.NoError(t, err)
	p, err := pool.Alloc(len(hdr) + 1000)
	require.NoError(t, err)
	off := 0
	for seg := range p.WritableSegments() {
		off += copy(seg, hdr[min(off, len(hdr)):])
	}
	before := pool.Stats()
	reply := s.ApplyBatch([]bufpool.Buf{p})
	assert.Equal(t, ReplyStored, string(reply[0]))
	assert.Equal(t, 2, p.Refs(), "the store holds a reference on the request payload")
	assert.Equal(t, before.Copies, pool.Stats().Copies, "no user-space copy of the value")
	p.Release()
	assert.Equal(t, 1, s.Stats().CurrItems)
	s.Close()
	require.NoError(t, pool.CheckLeaks())
}

func TestMalformedOpsGetTheSameErrorEverywhere(t *testing.T) {
	s := NewStore(StoreConfig{})
	for _, b := range [][]byte{nil, {1}, make([]byte, 31), append([]byte{99}, make([]byte, 31)...),
		append([]byte{byte(KindGet)}, make([]byte, 31)...)} {
		r := s.ApplyOne(bufpool.Wrap(b), nil)
		assert.Equal(t, ReplyBadOp, string(r))
	}
}

func TestRestoreRefusesCorruptSnapshots(t *testing.T) {
	s := NewStore(StoreConfig{})
	good, err := s.Snapshot()
	require.NoError(t, err)
	require.NoError(t, s.Restore(good))
	for _, b := range [][]byte{nil, []byte("KVS1"), append(good[:len(good):len(good)], 0), good[:39]} {
		assert.Error(t, s.Restore(b))
	}
}

func TestRestartRecoversEveryAcknowledgedWrite(t *testing.T) {
	defer leaktest.AfterTest(t)()
	dir := t.TempDir()
	pool := newPool(t)
	want := map[string]string{}
	// Three lives; each writes, some overwrite; snapshots every 50 records.
	for life := range 3 {
		n := startNode(t, dir, pool, false)
		mc := newClient(n.addr)
		for k, v := range want {
			it, err := mc.Get(k)
			require.NoError(t, err, "life %d key %s", life, k)
			require.Equal(t, v, string(it.Value))
		}
		for i := range 120 {
			k := fmt.Sprintf("k%d", (i*7+life)%90)
			v := fmt.Sprintf("life%d-%d", life, i)
			require.NoError(t, mc.Set(&memcache.Item{Key: k, Value: []byte(v)}))
			want[k] = v
		}
		require.NoError(t, mc.Append(&memcache.Item{Key: "k1", Value: []byte("+")}))
		want["k1"] += "+"
		mc.Close()
		n.stop(t) // no clean shutdown step: as after a crash
	}
	_, err := os.Stat(filepath.Join(dir, snapFile))
	require.NoError(t, err, "snapshots were taken")
	require.NoError(t, pool.CheckLeaks())
}

func TestRecoveryCutsATornLogTail(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWAL(dir, WALOptions{})
	require.NoError(t, err)
	require.NoError(t, w.Recover(nil, nil))
	s := NewStore(StoreConfig{})
	l := NewLocal(s, w)
	for i := range 5 {
		c := Command{Kind: KindSet, Keys: [][]byte{fmt.Appendf(nil, "k%d", i)}}
		op, err := EncodeOp(&c, []byte("v"), Stamp{Now: 1})
		require.NoError(t, err)
		_, err = l.Execute(t.Context(), op)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	// A crash in the middle of the sixth record.
	f, err := os.OpenFile(filepath.Join(dir, walFile), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{40, 0, 0, 0, 1, 2, 3})
	require.NoError(t, err)
	require.NoError(t, f.Close())

	w2, err := OpenWAL(dir, WALOptions{})
	require.NoError(t, err)
	s2 := NewStore(StoreConfig{})
	l2 := NewLocal(s2, w2)
	require.NoError(t, l2.Recover())
	assert.Equal(t, 5, s2.Stats().CurrItems)
	assert.Equal(t, uint64(5), w2.Pos())
	// The log continues after the cut.
	c := Command{Kind: KindSet, Keys: [][]byte{[]byte("k9")}}
	op, err := EncodeOp(&c, []byte("v"), Stamp{Now: 1})
	require.NoError(t, err)
	_, err = l2.Execute(t.Context(), op)
	require.NoError(t, err)
	require.NoError(t, w2.Close())
	w3, err := OpenWAL(dir, WALOptions{})
	require.NoError(t, err)
	s3 := NewStore(StoreConfig{})
	require.NoError(t, NewLocal(s3, w3).Recover())
	assert.Equal(t, 6, s3.Stats().CurrItems)
	require.NoError(t, w3.Close())
}

// TestRestoreReadsTheEarlierSnapshotLayout: a data directory written
// before items carried access times and marks (KVS2) still restores.
func TestRestoreReadsTheEarlierSnapshotLayout(t *testing.T) {
	var b []byte
	b = append(b, "KVS2"...)
	for _, v := range []uint64{1000, 7, 0, 1} { // clock, casSeq, flushAt, total
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = append(b, 1, 'k')
	b = binary.LittleEndian.AppendUint32(b, 5)   // flags
	b = binary.LittleEndian.AppendUint64(b, 0)   // exp
	b = binary.LittleEndian.AppendUint64(b, 7)   // cas
	b = binary.LittleEndian.AppendUint64(b, 990) // stored
	b = binary.LittleEndian.AppendUint32(b, 2)   // value length
	b = append(b, "hi"...)
	b = binary.LittleEndian.AppendUint32(b, 0) // clients
	s := NewStore(StoreConfig{})
	require.NoError(t, s.Restore(b))
	op, err := EncodeOp(&Command{Kind: KindMetaGet, Keys: [][]byte{[]byte("k")}, Meta: [][]byte{[]byte("v"), []byte("f"), []byte("c"), []byte("h"), []byte("l")}}, nil, Stamp{Now: 1000})
	require.NoError(t, err)
	assert.Equal(t, "VA 2 f5 c7 h0 l10\r\nhi\r\n", string(s.ApplyOne(op, nil)))
	s.Close()
}
