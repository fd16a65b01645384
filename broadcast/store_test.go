package broadcast

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bufpool"
)

func checkedPool(t testing.TB, frames int) *bufpool.Pool {
	t.Helper()
	p := bufpool.MustNew(bufpool.Config{FrameSize: 4096, Frames: frames, Checked: true, Name: t.Name()})
	t.Cleanup(func() {
		if err := p.CheckLeaks(); err != nil {
			t.Error(err)
		}
	})
	return p
}

type recordingObserver struct {
	mu            sync.Mutex
	held, evicted []Digest
}

func (o *recordingObserver) Held(_ NodeID, d Digest) {
	o.mu.Lock()
	o.held = append(o.held, d)
	o.mu.Unlock()
}

func (o *recordingObserver) Evicted(d Digest) {
	o.mu.Lock()
	o.evicted = append(o.evicted, d)
	o.mu.Unlock()
}

func payload(t testing.TB, p *bufpool.Pool, s string) (bufpool.Buf, Digest) {
	t.Helper()
	b, err := p.Copy([]byte(s))
	require.NoError(t, err)
	return b, DigestOfBytes([]byte(s))
}

func TestStoreHoldsOnceAndCountsDuplicates(t *testing.T) {
	pool := checkedPool(t, 8)
	obs := &recordingObserver{}
	s := NewPayloadStore(StoreConfig{Observer: obs})
	defer s.Close()

	first, d := payload(t, pool, "the payload")
	require.NoError(t, s.Put(1, d, first))
	first.Release() // Put borrowed it; the store keeps its own reference
	assert.True(t, s.Has(d))

	dup, _ := payload(t, pool, "the payload")
	require.NoError(t, s.Put(2, d, dup))
	assert.Equal(t, 1, dup.Refs(), "a duplicate is not retained")
	dup.Release()

	st := s.Stats()
	assert.EqualValues(t, 1, st.Stored)
	assert.EqualValues(t, 1, st.DupPuts)
	assert.EqualValues(t, len("the payload"), st.DupBytesAvoided)
	assert.Equal(t, 1, st.Held)
	assert.Equal(t, []Digest{d}, obs.held)

	got, ok := s.Get(d)
	require.True(t, ok)
	assert.Equal(t, "the payload", string(got.Bytes()))
	got.Release()
}

func TestStoreRejectsMismatchAndKeepsWhatItHolds(t *testing.T) {
	pool := checkedPool(t, 8)
	s := NewPayloadStore(StoreConfig{})
	defer s.Close()

	good, d := payload(t, pool, "genuine")
	require.NoError(t, s.Put(1, d, good))
	good.Release()

	forged, _ := payload(t, pool, "forgery")
	otherDigest := DigestOfBytes([]byte("unrelated"))
	// A wrong payload for a digest that is not held is refused.
	err := s.Put(3, otherDigest, forged)
	require.ErrorIs(t, err, ErrDigestMismatch)
	assert.Equal(t, ReasonDigestMismatch, ReasonOf(err))
	assert.False(t, s.Has(otherDigest))
	// A wrong payload for a held digest is dropped unhashed; the held copy stays.
	require.NoError(t, s.Put(3, d, forged))
	forged.Release()

	got, ok := s.Get(d)
	require.True(t, ok)
	assert.Equal(t, "genuine", string(got.Bytes()))
	got.Release()
	assert.EqualValues(t, 1, s.Stats().Mismatches)
}

func TestStoreEvictsAfterLastUnpin(t *testing.T) {
	pool := checkedPool(t, 8)
	obs := &recordingObserver{}
	s := NewPayloadStore(StoreConfig{Observer: obs})
	defer s.Close()

	b, d := payload(t, pool, "delivered")
	require.NoError(t, s.Put(0, d, b))
	b.Release()
	require.True(t, s.Pin(d))
	require.True(t, s.Pin(d))
	delivery, _ := s.Get(d) // the application's reference
	s.Unpin(d)
	assert.True(t, s.Has(d), "one pin left")
	s.Unpin(d)
	assert.False(t, s.Has(d), "evicted once no protocol state references it")
	assert.Equal(t, []Digest{d}, obs.evicted)
	assert.Equal(t, "delivered", string(delivery.Bytes()), "the application's reference outlives eviction")
	delivery.Release()
	assert.Equal(t, 8, pool.Free())
	assert.False(t, s.Pin(d))
	s.Unpin(d) // harmless
}

func TestStoreSenderQuotaBoundsOneSender(t *testing.T) {
	pool := checkedPool(t, 64)
	quota := int64(3 * (1000 + entryOverhead))
	s := NewPayloadStore(StoreConfig{SenderQuota: quota})
	defer s.Close()

	var digests []Digest
	for i := range 5 {
		b, d := payload(t, pool, fmt.Sprintf("%04d", i)+string(bytes.Repeat([]byte{'x'}, 996)))
		require.NoError(t, s.Put(7, d, b))
		b.Release()
		digests = append(digests, d)
	}
	st := s.Stats()
	assert.Equal(t, 3, st.Held, "the sender's oldest unpinned payloads made room")
	assert.EqualValues(t, 2, st.QuotaEvictions)
	assert.False(t, s.Has(digests[0]))
	assert.True(t, s.Has(digests[4]))

	// Another sender is unaffected, and pinned payloads are not charged.
	require.True(t, s.Pin(digests[2]))
	b, d := payload(t, pool, "from a correct peer")
	require.NoError(t, s.Put(1, d, b))
	b.Release()
	assert.True(t, s.Has(digests[2]))

	big, err := pool.Alloc(int(quota))
	require.NoError(t, err)
	err = s.Put(7, DigestOf(big), big)
	require.ErrorIs(t, err, ErrQuota)
	big.Release()
	assert.True(t, s.Has(digests[2]), "a refused Put evicts nothing pinned")
}

func TestStoreConcurrentPuts(t *testing.T) {
	pool := checkedPool(t, 64)
	s := NewPayloadStore(StoreConfig{})
	data := []byte("same payload from every peer")
	d := DigestOfBytes(data)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := pool.Copy(data)
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.Put(NodeID(i), d, b); err != nil {
				t.Error(err)
			}
			b.Release()
		}()
	}
	wg.Wait()
	st := s.Stats()
	assert.EqualValues(t, 1, st.Stored)
	assert.EqualValues(t, 7, st.DupPuts)
	s.Close()
	assert.Equal(t, 0, s.Stats().Held)
}

func BenchmarkStorePutGet4KiB(b *testing.B) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 4096, Frames: 4})
	s := NewPayloadStore(StoreConfig{})
	buf, _ := pool.Alloc(4096)
	for seg := range buf.WritableSegments() {
		for i := range seg {
			seg[i] = byte(i)
		}
	}
	d := DigestOf(buf)
	copiesBefore := pool.Stats().CopiedBytes
	b.ReportAllocs()
	b.SetBytes(4096)
	for b.Loop() {
		if err := s.Put(0, d, buf); err != nil {
			b.Fatal(err)
		}
		s.Pin(d)
		got, _ := s.Get(d)
		got.Release()
		s.Unpin(d)
	}
	b.ReportMetric(float64(pool.Stats().CopiedBytes-copiesBefore)/float64(b.N), "copiedB/op")
	buf.Release()
}

func BenchmarkStoreDuplicatePut4KiB(b *testing.B) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 4096, Frames: 4})
	s := NewPayloadStore(StoreConfig{})
	buf, _ := pool.Alloc(4096)
	d := DigestOf(buf)
	_ = s.Put(0, d, buf)
	b.ReportAllocs()
	b.SetBytes(4096)
	for b.Loop() {
		_ = s.Put(1, d, buf)
	}
	s.Close()
	buf.Release()
}

func TestStorePutOwnSkipsTheHashOnly(t *testing.T) {
	pool := checkedPool(t, 4)
	s := NewPayloadStore(StoreConfig{SenderQuota: 4096})
	defer s.Close()
	b, d := payload(t, pool, "mine")
	require.NoError(t, s.PutOwn(0, d, b))
	assert.True(t, s.Has(d))
	assert.EqualValues(t, 1, s.Stats().Stored)
	// The quota still applies.
	big, err := pool.Alloc(4096)
	require.NoError(t, err)
	require.ErrorIs(t, s.PutOwn(0, DigestOf(big), big), ErrQuota)
	big.Release()
	b.Release()
}
