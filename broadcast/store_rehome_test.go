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
