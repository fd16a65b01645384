package broadcast

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bufpool"
)

func TestRehomeMovesOnlyPayloadsTheStoreAloneHolds(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 256, Frames: 8, Checked: true})
	store := NewPayloadStore(StoreConfig{})
	put := func(s string) (Digest, bufpool.Buf) {
		b, err := pool.Copy([]byte(s))
		require.NoError(t, err)
		d := DigestOfBytes([]byte(s))
		require.NoError(t, store.Put(0, d, b))
		return d, b
	}
	dAlone, b1 := put("held by the store alone")
	b1.Release()
	dShared, b2 := put("also held by the application")
	before := pool.Stats()
	require.Equal(t, 6, before.Free)

	n, bytes := store.Rehome(pool, 10)
	assert.Equal(t, 1, n, "only the payload no one else references moves")
	assert.EqualValues(t, len("held by the store alone"), bytes)
	after := pool.Stats()
	assert.Equal(t, 7, after.Free, "its frame went back to the pool")
	assert.Equal(t, before.CopiedBytes+uint64(bytes), after.CopiedBytes, "the copy is counted")

	got, ok := store.Get(dAlone)
	require.True(t, ok)
	assert.Equal(t, "held by the store alone", string(got.Bytes()))
	assert.Nil(t, got.Pool(), "the payload now lives on the heap")
	got.Release()
	got, ok = store.Get(dShared)
	require.True(t, ok)
	assert.Equal(t, pool, got.Pool(), "a shared payload stays where it is")
	got.Release()

	b2.Release()
	store.Close()
	require.NoError(t, pool.CheckLeaks())
}

// TestRehomeBelowActsOnlyUnderTheWatermark: above the watermark nothing
// moves; under it, enough payloads move to lift the pool back over it plus
// the slack; a negative watermark disables the policy.
func TestRehomeBelowActsOnlyUnderTheWatermark(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 256, Frames: 8, Checked: true})
	store := NewPayloadStore(StoreConfig{})
	for i := range 6 {
		s := []byte{'p', byte(i)}
		b, err := pool.Copy(s)
		require.NoError(t, err)
		require.NoError(t, store.Put(0, DigestOfBytes(s), b))
		b.Release()
	}
	require.Equal(t, 2, pool.Free())
	n, _ := store.RehomeBelow(pool, 2, 1)
	assert.Zero(t, n, "2 free frames are not under a watermark of 2")
	n, _ = store.RehomeBelow(pool, -1, 1)
	assert.Zero(t, n, "a negative watermark disables it")
	n, _ = store.RehomeBelow(pool, 4, 1)
	assert.Equal(t, 3, n, "4 − 2 free + 1 slack")
	assert.Equal(t, 5, pool.Free())
	store.Close()
	require.NoError(t, pool.CheckLeaks())
}

// TestRehomeMovesTheLongestHeldFirst: payloads leave the pool in the order
// they were stored, not in a map's order, and a chain of frames counts
// each of its frames against the budget.
func TestRehomeMovesTheLongestHeldFirst(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 64, Frames: 64, Checked: true})
	store := NewPayloadStore(StoreConfig{})
	var ds []Digest
	for i := range 30 {
		s := []byte{'a', byte(i)}
		b, err := pool.Copy(s)
		require.NoError(t, err)
		d := DigestOfBytes(s)
		require.NoError(t, store.Put(NodeID(i%4), d, b))
		b.Release()
		ds = append(ds, d)
	}
	inPool := func(d Digest) bool {
		b, ok := store.Get(d)
		require.True(t, ok)
		defer b.Release()
		return b.Pool() == pool
	}
	n, _ := store.Rehome(pool, 5)
	require.Equal(t, 5, n)
	for i, d := range ds {
		assert.Equal(t, i >= 5, inPool(d), "payload %d", i)
	}
	store.Close()

	// A chain of 3 frames, then a one-frame payload: a budget of 2 frames
	// is covered by the chain alone, and all its frames go back.
	store = NewPayloadStore(StoreConfig{})
	long := make([]byte, 150)
	chain, err := pool.Copy(long)
	require.NoError(t, err)
	require.NoError(t, store.Put(0, DigestOfBytes(long), chain))
	chain.Release()
	one, err := pool.Copy([]byte("one frame"))
	require.NoError(t, err)
	require.NoError(t, store.Put(0, DigestOfBytes([]byte("one frame")), one))
	one.Release()
	free := pool.Free()
	n, bytes := store.Rehome(pool, 2)
	assert.Equal(t, 1, n, "the chain alone covers a budget of 2 frames")
	assert.EqualValues(t, 150, bytes)
	assert.Equal(t, free+3, pool.Free(), "all three frames of the chain went back")
	store.Close()
	require.NoError(t, pool.CheckLeaks())
}

// TestRehomeRacesWithTheStore: Rehome copies outside the store's lock
// while payloads are taken, put and evicted; every payload keeps its bytes
// and nothing leaks (run with -race).
func TestRehomeRacesWithTheStore(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 64, Frames: 256, Checked: true})
	store := NewPayloadStore(StoreConfig{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			store.Rehome(pool, 8)
		}
	}()
	for i := range 2000 {
		s := []byte{'r', byte(i), byte(i >> 8)}
		b, err := pool.Copy(s)
		if err != nil {
			continue // the pool is momentarily full: what Rehome is for
		}
		d := DigestOfBytes(s)
		require.NoError(t, store.Put(0, d, b))
		b.Release()
		require.True(t, store.Pin(d))
		got, ok := store.Get(d)
		require.True(t, ok)
		require.Equal(t, s, got.Bytes())
		got.Release()
		if i%3 != 0 {
			store.Unpin(d)
		}
	}
	<-done
	store.Close()
	require.NoError(t, pool.CheckLeaks())
}
