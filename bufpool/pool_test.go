package bufpool

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestPool(t testing.TB, frameSize, frames int) *Pool {
	t.Helper()
	p := MustNew(Config{FrameSize: frameSize, Frames: frames, Checked: true, Name: t.Name()})
	t.Cleanup(func() {
		if err := p.CheckLeaks(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return p
}

func requireViolation(t *testing.T, kind ViolationKind, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		require.NotNil(t, r, "expected a %s violation, got none", kind)
		v, ok := r.(*Violation)
		require.True(t, ok, "panic value %T is not a *Violation: %v", r, r)
		assert.Equal(t, kind, v.Kind)
	}()
	f()
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"zero frame size":     {Frames: 4},
		"zero frames":         {FrameSize: 64},
		"region not multiple": {FrameSize: 64, Region: make([]byte, 100)},
		"empty region":        {FrameSize: 64, Region: []byte{}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(cfg)
			require.Error(t, err)
		})
	}
}

func TestGetReleaseReturnsFrame(t *testing.T) {
	p := newTestPool(t, 64, 2)
	a, err := p.Get()
	require.NoError(t, err)
	b, err := p.Get()
	require.NoError(t, err)
	assert.Equal(t, 64, a.Len())
	assert.Equal(t, 0, p.Free())
	_, err = p.Get()
	require.ErrorIs(t, err, ErrExhausted)
	assert.EqualValues(t, 1, p.Stats().Exhausted)

	a.Retain()
	a.Release()
	assert.Equal(t, 0, p.Free(), "a still has one reference")
	a.Release()
	assert.Equal(t, 1, p.Free())
	b.Release()
	assert.Equal(t, 2, p.Free())
	assert.Equal(t, 0, p.Outstanding())
}

func TestRegionBackedPoolCarvesFrames(t *testing.T) {
	region := make([]byte, 4*128)
	p := MustNew(Config{FrameSize: 128, Region: region, Checked: true})
	require.Equal(t, 4, p.Frames())
	b, err := p.Get()
	require.NoError(t, err)
	idx := b.FrameIndex()
	require.GreaterOrEqual(t, idx, 0)
	for seg := range b.WritableSegments() {
		seg[0] = 0x42
	}
	assert.Equal(t, byte(0x42), region[idx*128], "the frame is the region's memory, not a copy")
	b.Release()
	require.NoError(t, p.CheckLeaks())
}

func TestCheckedModeCatchesUseAfterRelease(t *testing.T) {
	p := newTestPool(t, 64, 2)
	b, err := p.Get()
	require.NoError(t, err)
	b.Release()
	requireViolation(t, UseAfterRelease, func() { _ = b.Bytes() })
	requireViolation(t, UseAfterRelease, func() { _ = b.Len() })
	requireViolation(t, UseAfterRelease, func() { b.Retain() })
}

func TestCheckedModeCatchesUseAfterReleaseOnceFrameIsReused(t *testing.T) {
	p := newTestPool(t, 64, 1)
	stale, err := p.Get()
	require.NoError(t, err)
	stale.Release()
	fresh, err := p.Get() // the same frame, handed out again
	require.NoError(t, err)
	require.Equal(t, stale.FrameIndex(), fresh.FrameIndex())
	requireViolation(t, UseAfterRelease, func() { _ = stale.Bytes() })
	requireViolation(t, DoubleRelease, func() { stale.Release() })
	assert.Equal(t, 1, fresh.Refs(), "the stale handle must not touch the new owner's count")
	fresh.Release()
}

func TestCheckedModeCatchesDoubleRelease(t *testing.T) {
	p := newTestPool(t, 64, 2)
	b, err := p.Get()
	require.NoError(t, err)
	b.Release()
	requireViolation(t, DoubleRelease, func() { b.Release() })
	assert.Equal(t, 2, p.Free(), "a double release must not put the frame on the free list twice")
}

func TestCheckedModePoisonsReleasedFrames(t *testing.T) {
	p := newTestPool(t, 8, 1)
	b, err := p.Get()
	require.NoError(t, err)
	raw := b.Bytes()
	copy(raw, "payload!")
	b.Release()
	assert.Equal(t, bytes.Repeat([]byte{0xDB}, 8), raw)
}

func TestCheckLeaksNamesTheLeak(t *testing.T) {
	p := MustNew(Config{FrameSize: 64, Frames: 4, Checked: true, Name: "leaky"})
	leaked := leakOne(t, p)
	w := p.Wrap([]byte("heap"))
	err := p.CheckLeaks()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "2 frames or wrapped buffers outstanding")
	assert.Contains(t, err.Error(), "leakOne", "the report names the function that took the buffer")
	leaked.Release()
	w.Release()
	require.NoError(t, p.CheckLeaks())
}

func leakOne(t *testing.T, p *Pool) Buf {
	b, err := p.Get()
	require.NoError(t, err)
	return b
}

func TestSliceSharesTheReference(t *testing.T) {
	p := newTestPool(t, 16, 1)
	b, err := p.Copy([]byte("headerPAYLOAD"))
	require.NoError(t, err)
	payload := b.Slice(6, 7).Retain()
	b.Release()
	assert.Equal(t, "PAYLOAD", string(payload.Bytes()))
	assert.Equal(t, 1, payload.Refs())
	requireViolation(t, BadSlice, func() { payload.Slice(3, 5) })
	payload.Release()
}

func TestChainAcrossFrames(t *testing.T) {
	p := newTestPool(t, 8, 8)
	data := []byte("0123456789abcdefghijklmnopq") // 27 bytes: 4 frames
	b, err := p.Copy(data)
	require.NoError(t, err)
	assert.Equal(t, 4, p.Frames()-p.Free())
	assert.Equal(t, len(data), b.Len())
	assert.False(t, b.Contiguous())

	var segs [][]byte
	segs = b.AppendSegments(segs)
	require.Len(t, segs, 4)
	assert.Equal(t, data, bytes.Join(segs, nil))

	copiesBefore := p.Stats().Copies
	assert.Equal(t, data, b.Bytes())
	assert.Equal(t, copiesBefore+1, p.Stats().Copies, "flattening a chain is a counted copy")

	mid := b.Slice(5, 10) // spans frames 0 and 1
	assert.Equal(t, data[5:15], mid.Bytes())
	inOne := b.Slice(9, 6) // within frame 1
	assert.True(t, inOne.Contiguous())
	assert.Equal(t, data[9:15], inOne.Bytes())

	got, err := io.ReadAll(b.Reader())
	require.NoError(t, err)
	assert.Equal(t, data, got)

	var w bytes.Buffer
	_, err = b.WriteTo(&w)
	require.NoError(t, err)
	assert.Equal(t, data, w.Bytes())

	b.Release()
	assert.Equal(t, 8, p.Free(), "releasing the head returns every frame of the chain")
}

func TestLinkReassemblesWithoutCopy(t *testing.T) {
	p := newTestPool(t, 16, 4)
	var parts []Buf
	for _, s := range []string{"HDRaaaa", "HDRbbbb", "HDRcc"} {
		f, err := p.Copy([]byte(s))
		require.NoError(t, err)
		parts = append(parts, f.Slice(3, len(s)-3)) // drop a 3-byte header
	}
	copies := p.Stats().Copies
	whole := Link(parts...)
	assert.Equal(t, copies, p.Stats().Copies)
	assert.Equal(t, "aaaabbbbcc", string(whole.Bytes()))
	requireViolation(t, UseAfterRelease, func() { _ = parts[1].Bytes() }) // its reference moved into the chain
	whole.Release()
	assert.Equal(t, 4, p.Free())
}

// TestLinkWithAWrappedHeadReleasesPooledParts links a wrapped (pool-less)
// buffer in front of pooled frames: releasing the chain must return the
// pooled frames to their pool.
func TestLinkWithAWrappedHeadReleasesPooledParts(t *testing.T) {
	p := newTestPool(t, 16, 4)
	f, err := p.Copy([]byte("tail"))
	require.NoError(t, err)
	whole := Link(Wrap([]byte("head-")), f)
	assert.Equal(t, "head-tail", string(whole.Bytes()))
	assert.Equal(t, 3, p.Free())
	whole.Release()
	assert.Equal(t, 4, p.Free(), "the pooled frame behind a wrapped head went back to its pool")
	require.NoError(t, p.CheckLeaks())
}

func TestLinkRefusesSharedParts(t *testing.T) {
	p := newTestPool(t, 16, 2)
	a, err := p.Get()
	require.NoError(t, err)
	a.Retain()
	requireViolation(t, NotExclusive, func() { Link(a) })
	a.Release()
	a.Release()
}

func TestWritableSegmentsRefusesSharedBuffer(t *testing.T) {
	p := newTestPool(t, 16, 1)
	a, err := p.Get()
	require.NoError(t, err)
	a.Retain()
	requireViolation(t, NotExclusive, func() { a.WritableSegments() })
	a.Release()
	a.Release()
}

func TestWrapIsTrackedAndNotCopied(t *testing.T) {
	p := newTestPool(t, 16, 1)
	data := []byte("heap bytes")
	b := p.Wrap(data)
	assert.Equal(t, 1, p.Outstanding())
	assert.Same(t, &data[0], &b.Bytes()[0])
	b.Release()
	assert.Equal(t, 0, p.Outstanding())

	u := Wrap(data)
	u.Release()
	assert.Panics(t, func() { u.Release() })
}

func TestZeroBufIsHarmless(t *testing.T) {
	var b Buf
	assert.True(t, b.IsZero())
	assert.Equal(t, 0, b.Len())
	assert.Nil(t, b.Bytes())
	b.Release()
	assert.Equal(t, b, b.Retain())
}

func TestAllocRefusesBadSizes(t *testing.T) {
	p := newTestPool(t, 16, 2)
	_, err := p.Alloc(0)
	require.Error(t, err)
	_, err = p.Alloc(33)
	require.ErrorIs(t, err, ErrExhausted)
	assert.Equal(t, 2, p.Free(), "a refused Alloc takes nothing")
}

func TestConcurrentRetainRelease(t *testing.T) {
	p := newTestPool(t, 64, 4)
	b, err := p.Get()
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		r := b.Retain()
		go func() {
			defer wg.Done()
			for range 1000 {
				r.Retain().Release()
			}
			r.Release()
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, b.Refs())
	b.Release()
}

func BenchmarkRetainRelease(b *testing.B) {
	p := MustNew(Config{FrameSize: 4096, Frames: 1})
	buf, _ := p.Get()
	b.ReportAllocs()
	for b.Loop() {
		buf.Retain().Release()
	}
	buf.Release()
}

func BenchmarkGetRelease(b *testing.B) {
	p := MustNew(Config{FrameSize: 4096, Frames: 64})
	b.ReportAllocs()
	for b.Loop() {
		buf, err := p.Get()
		if err != nil {
			b.Fatal(err)
		}
		buf.Release()
	}
}

func BenchmarkAllocChainRelease64KiB(b *testing.B) {
	p := MustNew(Config{FrameSize: 4096, Frames: 64})
	b.ReportAllocs()
	for b.Loop() {
		buf, err := p.Alloc(64 << 10)
		if err != nil {
			b.Fatal(err)
		}
		buf.Release()
	}
}
