package bench

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// fakeCluster delivers every submitted payload to every node after a fixed
// delay, and counts each non-origin node as receiving the payload `dup`
// times plus a 100-byte header per copy.
type fakeCluster struct {
	n       int
	delay   time.Duration
	dup     int
	deliver func(broadcast.NodeID, bufpool.Buf, time.Time)
	metrics []*broadcast.Metrics
	wg      sync.WaitGroup
}

func newFake(n, dup int, delay time.Duration) *fakeCluster {
	f := &fakeCluster{n: n, delay: delay, dup: dup}
	for range n {
		f.metrics = append(f.metrics, &broadcast.Metrics{})
	}
	return f
}

func (f *fakeCluster) Submit(origin broadcast.NodeID, p bufpool.Buf) error {
	f.wg.Add(1)
	time.AfterFunc(f.delay, func() {
		defer f.wg.Done()
		defer p.Release()
		for i := range f.n {
			id := broadcast.NodeID(i)
			if id != origin {
				for range f.dup {
					m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1}, Body: make([]byte, 100-broadcast.HeaderSize), Payload: p}
					f.metrics[i].CountReceived(&m)
				}
			}
			f.metrics[i].CountDelivery(p.Len(), id != origin)
			f.deliver(id, p, time.Now())
		}
	})
	return nil
}

func (f *fakeCluster) Correct() []broadcast.NodeID {
	ids := make([]broadcast.NodeID, f.n)
	for i := range ids {
		ids[i] = broadcast.NodeID(i)
	}
	return ids
}

func (f *fakeCluster) Counters(id broadcast.NodeID) NodeCounters {
	return NodeCounters{Metrics: f.metrics[id].Snapshot()}
}
func (f *fakeCluster) PeakRSSMB(broadcast.NodeID) float64 { return peakRSSMB(0) }
func (f *fakeCluster) Close() error                       { f.wg.Wait(); return nil }

func TestMeasureClosedLoopFigures(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 4096, Frames: 256, Checked: true})
	fc := newFake(4, 3, 2*time.Millisecond)
	tr := newTracker(4, 1<<12, 8)
	fc.deliver = tr.Delivered
	pt := Point{Protocol: "fake", Mode: broadcast.ModeDigest, N: 4, F: 1, PayloadBytes: 4096, Batch: 1,
		Inflight: 8, Warmup: 50 * time.Millisecond, Duration: 400 * time.Millisecond}
	res, err := measure(context.Background(), pt, fc, tr, Load{Pool: pool})
	require.NoError(t, err)
	require.NoError(t, fc.Close())
	require.NoError(t, pool.CheckLeaks())

	assert.Greater(t, res.Deliveries, uint64(100))
	// Deliveries per second are per correct node over the window.
	assert.InDelta(t, float64(res.Deliveries)/4/res.DurationSec, res.DeliveriesPerSec, 1e-6)
	// A window of 8 payloads, each done no sooner than 2 ms after submit,
	// cannot exceed 4000 payloads/s.
	assert.LessOrEqual(t, res.DeliveriesPerSec, 4000.0*1.05)
	assert.InDelta(t, res.DeliveriesPerSec*4096/1e6, res.PayloadMBPerSec, 1e-9)
	assert.GreaterOrEqual(t, res.LatencyP50Ms, 2.0, "no delivery is faster than the fake's delay")
	assert.Less(t, res.LatencyP50Ms, 50.0)
	assert.LessOrEqual(t, res.LatencyP50Ms, res.LatencyP99Ms)
	// The counters are exact: 3 copies of the payload per remote delivery.
	assert.InDelta(t, 3.0, res.PayloadDupFactor, 0.05)
	assert.InDelta(t, 3.0*(4096+100)/4096, res.WireFactor, 0.05)
	assert.NotEmpty(t, res.LatencyCDF)
	assert.Equal(t, "digest", res.Mode)
}

func TestMeasureOpenLoopHoldsTheRate(t *testing.T) {
	fc := newFake(4, 1, time.Millisecond)
	tr := newTracker(4, 1<<12, 0)
	fc.deliver = tr.Delivered
	pt := Point{Protocol: "fake", Mode: broadcast.ModeFull, N: 4, PayloadBytes: 256, Rate: 500,
		Warmup: 50 * time.Millisecond, Duration: 500 * time.Millisecond}
	res, err := measure(context.Background(), pt, fc, tr, Load{})
	require.NoError(t, err)
	require.NoError(t, fc.Close())
	// An open loop offers the rate it was given and never more; on a starved
	// machine the fake's timers may deliver later, so the floor is loose.
	assert.LessOrEqual(t, res.DeliveriesPerSec, 500*1.2)
	assert.GreaterOrEqual(t, res.DeliveriesPerSec, 100.0)
}

func TestMeasureStopsOnCancel(t *testing.T) {
	fc := newFake(4, 1, time.Millisecond)
	tr := newTracker(4, 1<<12, 4)
	fc.deliver = tr.Delivered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := measure(ctx, Point{PayloadBytes: 64, Inflight: 4, Warmup: 10 * time.Millisecond, Duration: time.Hour}, fc, tr, Load{})
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 5*time.Second)
	require.NoError(t, fc.Close())
}

func TestStampRoundTripsAcrossSegments(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 8, Frames: 4, Checked: true})
	b, err := pool.Alloc(20)
	require.NoError(t, err)
	tm := time.Unix(1700000000, 123456789)
	var flat [20]byte
	stamp(flat[:], 42, tm)
	off := 0
	for seg := range b.WritableSegments() {
		off += copy(seg, flat[off:])
	}
	seq, at, ok := readStamp(b)
	require.True(t, ok)
	assert.EqualValues(t, 42, seq)
	assert.True(t, tm.Equal(at))
	b.Release()
	require.NoError(t, pool.CheckLeaks())
}

// refusingCluster turns away every third payload with back-pressure.
type refusingCluster struct {
	*fakeCluster
	calls int
	mu    sync.Mutex
}

func (r *refusingCluster) Submit(origin broadcast.NodeID, p bufpool.Buf) error {
	r.mu.Lock()
	r.calls++
	refuse := r.calls%3 == 0
	r.mu.Unlock()
	if refuse {
		p.Release()
		return ErrBackPressure
	}
	return r.fakeCluster.Submit(origin, p)
}

func TestBackPressureIsNeitherAFailureNorALoss(t *testing.T) {
	fc := newFake(4, 1, time.Millisecond)
	rc := &refusingCluster{fakeCluster: fc}
	tr := newTracker(4, 1<<12, 4)
	fc.deliver = tr.Delivered
	res, err := measure(context.Background(), Point{PayloadBytes: 64, Inflight: 4, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond}, rc, tr, Load{})
	require.NoError(t, err)
	require.NoError(t, fc.Close())
	assert.Greater(t, res.Deliveries, uint64(0))
	assert.Zero(t, res.Incomplete, "refused payloads were never offered, so they are not lost")
}

// roundTripCluster is a fakeCluster whose Submit first waits a round trip,
// as a remote cluster's HTTP submission does, and which says whether the
// load may offer concurrently.
type roundTripCluster struct {
	*fakeCluster
	rtt        time.Duration
	concurrent bool
}

func (c *roundTripCluster) Submit(origin broadcast.NodeID, p bufpool.Buf) error {
	time.Sleep(c.rtt)
	return c.fakeCluster.Submit(origin, p)
}

func (c *roundTripCluster) ConcurrentSubmit() bool { return c.concurrent }

// TestMeasureOffersConcurrentlyWhereSubmitIsARoundTrip checks that the
// closed loop keeps its window full against a cluster whose Submit is a
// round trip (a remote cluster): one offer at a time, 10 ms each, cannot
// exceed 100 payloads/s whatever the window; offered concurrently, a
// window of 16 goes well past that.
func TestMeasureOffersConcurrentlyWhereSubmitIsARoundTrip(t *testing.T) {
	rates := map[bool]float64{}
	for _, concurrent := range []bool{false, true} {
		fc := &roundTripCluster{fakeCluster: newFake(4, 1, time.Millisecond), rtt: 10 * time.Millisecond, concurrent: concurrent}
		tr := newTracker(4, 1<<12, 16)
		fc.deliver = tr.Delivered
		pt := Point{Protocol: "fake", Mode: broadcast.ModeDigest, N: 4, F: 1, PayloadBytes: 256, Batch: 1,
			Inflight: 16, Warmup: 50 * time.Millisecond, Duration: 500 * time.Millisecond}
		res, err := measure(context.Background(), pt, fc, tr, Load{})
		require.NoError(t, err)
		require.NoError(t, fc.Close())
		rates[concurrent] = res.DeliveriesPerSec
	}
	t.Logf("payloads/s: one offer at a time %.0f, concurrent %.0f", rates[false], rates[true])
	assert.LessOrEqual(t, rates[false], 100*1.1, "one 10 ms round trip at a time")
	assert.Greater(t, rates[true], 300.0, "16 round trips in flight")
}
