package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Cluster is a running cluster under test, whatever its kind (in process,
// processes, namespaces, remote hosts).
type Cluster interface {
	// Submit hands node id an application payload, taking the reference.
	// Safe for concurrent use.
	Submit(id broadcast.NodeID, p bufpool.Buf) error
	// Correct lists the nodes that follow the protocol; load goes to them and
	// figures are taken over them.
	Correct() []broadcast.NodeID
	// Counters returns a node's cumulative counters.
	Counters(id broadcast.NodeID) NodeCounters
	// PeakRSSMB returns the peak resident set of a node's process.
	PeakRSSMB(id broadcast.NodeID) float64
	// Close stops the cluster and releases its resources.
	Close() error
}

// NodeCounters are the cumulative counters the bench reads from a node.
type NodeCounters struct {
	Metrics broadcast.Snapshot
	// CopiedBytes counts payload bytes copied in user space on the node
	// beyond what Metrics counts (Metrics.CopiedBytes has the link's
	// receive copies, flattening and copy-outs; this adds the buffer
	// pools' copies).
	CopiedBytes uint64
	// SendCopiedBytes counts payload bytes copied in user space on the send
	// path (the conduit's SendCopiedBytes: AF_XDP's copy into TX frames).
	SendCopiedBytes uint64 `json:"send_copied_bytes,omitempty"`
	// KernelCopiedBytes counts received payload bytes the kernel copied
	// where no user-space counter sees it (AF_XDP copy mode into UMEM).
	KernelCopiedBytes uint64 `json:"kernel_copied_bytes,omitempty"`
	// SendCopyFallback says why the node's conduit copied payloads it
	// could have sent by reference (empty otherwise).
	SendCopyFallback string `json:"send_copy_fallback,omitempty"`
	Retransmissions  uint64
	// CPUNanos and Mallocs are the node process's CPU time and heap
	// allocations so far, for nodes in processes of their own; zero for an
	// in-process cluster, whose figures are the bench process's.
	CPUNanos uint64 `json:"cpu_nanos,omitempty"`
	Mallocs  uint64 `json:"mallocs,omitempty"`
	// Refusals are the node's resource-budget counters (cumulative, but
	// MinFreeFrames, the smallest since the node started).
	Refusals Refusals `json:"refusals"`
	// Health are the node's link, drop and pool counters (cumulative).
	Health Health `json:"health"`
}

// Sink is how a cluster reports deliveries to the bench.
type Sink interface {
	// Delivered says node id delivered payload p (borrowed) at time at.
	Delivered(id broadcast.NodeID, p bufpool.Buf, at time.Time)
	// Record says a node delivered bench payload seq, submitted at sent,
	// at time at (for clusters whose nodes report stamps, not buffers).
	Record(seq uint64, sent, at time.Time)
}

// ErrBackPressure is what a Cluster's Submit returns when the node did not
// take the payload because it is congested, or the point is ending: not a
// failure; the load backs off and the payload is not counted as offered.
var ErrBackPressure = errors.New("bench: node congested, payload not taken")

// stampSize is the prefix of every bench payload: the payload's number and
// its submit time, so that a delivery anywhere can be matched and timed
// without shared state.
const stampSize = 16

// stamp writes payload number seq and time t into the first bytes of b.
func stamp(b []byte, seq uint64, t time.Time) {
	binary.LittleEndian.PutUint64(b[0:], seq)
	binary.LittleEndian.PutUint64(b[8:], uint64(t.UnixNano()))
}

func readStamp(p bufpool.Buf) (seq uint64, at time.Time, ok bool) {
	if p.Len() < stampSize {
		return 0, time.Time{}, false
	}
	var hdr [stampSize]byte
	if p.Contiguous() {
		copy(hdr[:], p.Bytes()[:stampSize])
	} else {
		// Reading 16 bytes across a frame boundary is not a payload copy
		// worth counting; go through the segments.
		n := 0
		for seg := range p.Slice(0, stampSize).Segments() {
			n += copy(hdr[n:], seg)
		}
	}
	return binary.LittleEndian.Uint64(hdr[0:]), time.Unix(0, int64(binary.LittleEndian.Uint64(hdr[8:]))), true
}

// tracker follows payloads from submit to delivery at every correct node.
type tracker struct {
	correct int
	slots   []slot // ring indexed by payload number
	window  chan struct{}

	mu       sync.Mutex
	hist     *hdrhistogram.Histogram
	measure  atomic.Bool
	complete atomic.Uint64 // payloads delivered by every correct node
	measured atomic.Uint64 // deliveries counted in the window
	unknown  atomic.Uint64 // deliveries of payloads not in the ring any more
	// expired counts payloads not delivered by every correct node within
	// the expiry timeout; lateComplete those of them delivered later.
	expired, lateComplete atomic.Uint64
}

type slot struct {
	seq       atomic.Uint64
	delivered atomic.Int32
	sent      atomic.Int64 // submit time, Unix nanoseconds
	// settled is set once the payload's window token went back: on its
	// last delivery, or when it expired undelivered.
	settled atomic.Bool
}

func newTracker(correct, ring int, window int) *tracker {
	t := &tracker{correct: correct, slots: make([]slot, ring), hist: hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)}
	if window > 0 {
		t.window = make(chan struct{}, window)
		for range window {
			t.window <- struct{}{}
		}
	}
	return t
}

func (t *tracker) submitted(seq uint64) {
	s := &t.slots[seq%uint64(len(t.slots))]
	s.delivered.Store(0)
	s.settled.Store(false)
	s.sent.Store(time.Now().UnixNano())
	s.seq.Store(seq)
}

// forget drops payload seq, which was never submitted after all.
func (t *tracker) forget(seq uint64) {
	s := &t.slots[seq%uint64(len(t.slots))]
	if s.seq.CompareAndSwap(seq, 0) {
		s.settled.Store(true)
	}
}

// giveBack returns a window token.
func (t *tracker) giveBack() {
	if t.window != nil {
		select {
		case t.window <- struct{}{}:
		default:
		}
	}
}

// expire settles every payload submitted more than timeout ago that some
// correct node has not delivered: its window token goes back, so that a
// straggler does not shrink a closed loop, and it is counted (and
// uncounted if it is delivered everywhere later).
func (t *tracker) expire(timeout time.Duration) {
	limit := time.Now().Add(-timeout).UnixNano()
	for i := range t.slots {
		s := &t.slots[i]
		if s.seq.Load() == 0 || s.settled.Load() || s.sent.Load() > limit {
			continue
		}
		if s.settled.CompareAndSwap(false, true) {
			t.expired.Add(1)
			t.giveBack()
		}
	}
}

func (t *tracker) Delivered(_ broadcast.NodeID, p bufpool.Buf, at time.Time) {
	seq, sent, ok := readStamp(p)
	if !ok {
		return
	}
	t.Record(seq, sent, at)
}

// Record counts one delivery of payload seq, submitted at sent, at time at.
func (t *tracker) Record(seq uint64, sent, at time.Time) {
	s := &t.slots[seq%uint64(len(t.slots))]
	if s.seq.Load() != seq {
		// Not a payload of this point in flight: a Byzantine node's own
		// broadcast (held-spray), or one that expired. Neither counts.
		t.unknown.Add(1)
		return
	}
	if t.measure.Load() {
		t.measured.Add(1)
		us := at.Sub(sent).Microseconds()
		t.mu.Lock()
		_ = t.hist.RecordValue(max(us, 1))
		t.mu.Unlock()
	}
	if int(s.delivered.Add(1)) == t.correct {
		t.complete.Add(1)
		if s.settled.CompareAndSwap(false, true) {
			t.giveBack()
		} else {
			t.lateComplete.Add(1) // expired, then delivered everywhere after all
		}
	}
}

// Load is what drives a point: how payloads are made and offered.
type Load struct {
	Pool *bufpool.Pool // payload buffers; nil: heap buffers
	// PoolOf, when set, gives the pool for payloads submitted at a node
	// instead of Pool: an AF_XDP node's UMEM, from which the conduit sends
	// a payload by reference instead of copying it per recipient.
	PoolOf func(broadcast.NodeID) *bufpool.Pool
}

// poolFor returns the pool for payloads submitted at node id (nil: heap).
func (l Load) poolFor(id broadcast.NodeID) *bufpool.Pool {
	if l.PoolOf != nil {
		if p := l.PoolOf(id); p != nil {
			return p
		}
	}
	return l.Pool
}

// errNoDeliveries marks a point during which nothing was delivered.
var errNoDeliveries = errors.New("no payload was delivered during the measurement window")

// measure offers pt's load to a running cluster and measures it; the
// cluster reports its deliveries to tr.
// It returns when pt's warm-up and duration have passed or ctx ends.
func measure(ctx context.Context, pt Point, c Cluster, tr *tracker, load Load) (Result, error) {
	res := resultFor(pt)
	correct := c.Correct()
	if len(correct) == 0 {
		return res, fmt.Errorf("no correct node to offer load to")
	}
	parent := ctx // ends the run; ctx below also ends the load at the window's end
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var seq, submitted, exhausted atomic.Uint64
	var submitErr atomic.Pointer[error]
	submit := func() bool {
		size := max(pt.PayloadBytes, stampSize)
		n := seq.Add(1)
		origin := correct[int(n)%len(correct)]
		var buf bufpool.Buf
		if pool := load.poolFor(origin); pool != nil {
			b, err := pool.Alloc(size)
			if err != nil {
				exhausted.Add(1)
				return false // out of frames: back-pressure, not an error
			}
			buf = b
		} else {
			buf = bufpool.Wrap(make([]byte, size))
		}
		first := true
		for seg := range buf.WritableSegments() {
			if first {
				stamp(seg, n, time.Now())
				fillPattern(seg[stampSize:], n)
				first = false
			} else {
				fillPattern(seg, n)
			}
		}
		tr.submitted(n)
		if err := c.Submit(origin, buf); err != nil {
			tr.forget(n)
			if !errors.Is(err, ErrBackPressure) {
				submitErr.CompareAndSwap(nil, &err)
			}
			return false
		}
		submitted.Add(1)
		return true
	}

	// offer submits one payload of the window; when the cluster does not
	// take it, the token goes back after a pause, so that a cluster out of
	// buffers recovers instead of stalling the load for good.
	offer := func() {
		if submit() {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Millisecond):
			tr.giveBack()
		}
	}
	// A cluster whose Submit is a round trip to another process offers the
	// window's payloads concurrently: one at a time, the round trip, not
	// the cluster, would bound the load.
	concurrent := false
	if cs, ok := c.(interface{ ConcurrentSubmit() bool }); ok {
		concurrent = cs.ConcurrentSubmit()
	}
	var offers sync.WaitGroup // the offers in flight: waited for with the load loop

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				tr.expire(pt.TokenTimeout())
			}
		}
	}()
	go func() {
		defer wg.Done()
		if pt.Rate > 0 {
			openLoop(ctx, pt.Rate, submit)
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tr.window:
				if concurrent {
					offers.Go(offer)
				} else {
					offer()
				}
			}
		}
	}()

	// A cluster whose nodes are processes says when one dies: the point
	// ends at once with that (its exit and log), not with what the dead
	// node made the load see (a connection reset).
	var died <-chan error
	if d, ok := c.(interface{ Died() <-chan error }); ok {
		died = d.Died()
	}
	var deathErr error
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case deathErr = <-died:
			return false
		case <-time.After(d):
			return true
		}
	}
	if !sleep(pt.Warmup) {
		cancel()
		wg.Wait()
		offers.Wait()
		if deathErr != nil {
			return res, deathErr
		}
		return res, context.Canceled
	}

	before := snapshotAll(c, correct)
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	start := time.Now()
	tr.measure.Store(true)

	completed := sleep(pt.Duration)

	tr.measure.Store(false)
	elapsed := time.Since(start)
	cpu1 := cpuTime()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	window := snapshotAll(c, correct).sub(before)
	cancel()
	wg.Wait()
	offers.Wait()
	if deathErr == nil && submitErr.Load() != nil && died != nil {
		// A failed submission may be a node dying: give its exit a moment
		// to be seen, and report that instead.
		select {
		case deathErr = <-died:
		case <-time.After(time.Second):
		}
	}
	if deathErr != nil {
		return res, deathErr
	}
	if errp := submitErr.Load(); errp != nil {
		return res, fmt.Errorf("submit: %w", *errp)
	}
	if !completed {
		return res, context.Canceled
	}

	deliveries := tr.measured.Load()
	res.Deliveries = deliveries
	res.DurationSec = elapsed.Seconds()
	if deliveries == 0 {
		if exhausted.Load() > 0 {
			return res, fmt.Errorf("%w: the payload pool ran out of frames %d times (%d frames; the cluster holds payloads longer than the pool allows)",
				errNoDeliveries, exhausted.Load(), load.poolFor(correct[0]).Frames())
		}
		return res, errNoDeliveries
	}
	perNode := float64(deliveries) / float64(len(correct))
	res.DeliveriesPerSec = perNode / elapsed.Seconds()
	res.PayloadMBPerSec = res.DeliveriesPerSec * float64(pt.PayloadBytes) / 1e6

	// The duplication figures are ratios of counters, exact only over whole
	// payloads: a window cuts some payloads' traffic in two. So they are
	// taken over the whole run, once every payload submitted has been
	// delivered everywhere and the last votes have arrived.
	d := drain(parent, c, correct, tr, submitted.Load(), pt.Drain())
	if parent.Err() != nil {
		return res, context.Canceled // interrupted while draining: figures not whole
	}
	select {
	case err := <-died:
		return res, err
	default:
	}
	tr.expire(0) // whatever the drain did not see delivered everywhere
	res.Incomplete = tr.expired.Load() - tr.lateComplete.Load()
	if d.remoteDelivered > 0 {
		res.PayloadDupFactor = float64(d.recvPayload) / float64(d.remoteDelivered)
		res.WireFactor = float64(d.recvPayload+d.recvHeader) / float64(d.remoteDelivered)
	}
	if d.deliveries > 0 {
		res.WireBytesPerDelivery = float64(d.recvPayload+d.recvHeader) / float64(d.deliveries)
	}
	if d.deliveredBytes > 0 {
		res.CopiesPerPayloadByte = float64(d.copied) / float64(d.deliveredBytes)
		res.KernelCopiesPerPayloadByte = float64(d.kernelCopied) / float64(d.deliveredBytes)
	}
	if d.sentPayload > 0 {
		res.SendCopiesPerPayloadByte = float64(d.sendCopied) / float64(d.sentPayload)
	}
	for _, id := range correct {
		if why := c.Counters(id).SendCopyFallback; why != "" {
			res.SendCopyFallback = why
		}
	}
	res.Retransmissions = window.retransmissions
	res.Health = window.health
	if window.cpuNanos > 0 {
		// Nodes in processes of their own report their own costs.
		res.AllocsPerDelivery = float64(window.mallocs) / float64(deliveries)
		res.CPUMicrosPerDelivery = float64(window.cpuNanos) / 1e3 / float64(deliveries)
	} else {
		res.AllocsPerDelivery = float64(ms1.Mallocs-ms0.Mallocs) / float64(deliveries)
		res.CPUMicrosPerDelivery = float64((cpu1 - cpu0).Microseconds()) / float64(deliveries)
	}
	res.Refusals = Refusals{MinFreeFrames: -1}
	for _, id := range correct {
		res.PeakRSSMB = max(res.PeakRSSMB, c.PeakRSSMB(id))
		res.Refusals.add(c.Counters(id).Refusals)
	}
	tr.mu.Lock()
	res.LatencyP50Ms = float64(tr.hist.ValueAtQuantile(50)) / 1e3
	res.LatencyP90Ms = float64(tr.hist.ValueAtQuantile(90)) / 1e3
	res.LatencyP99Ms = float64(tr.hist.ValueAtQuantile(99)) / 1e3
	res.LatencyCDF = cdfOf(tr.hist)
	tr.mu.Unlock()
	return res, nil
}

// drain waits until every submitted payload has been delivered by every
// correct node (the tracker says so) and the nodes' receive counters stop
// moving, or until limit passes or ctx ends; then it returns the run's
// totals.
func drain(ctx context.Context, c Cluster, correct []broadcast.NodeID, tr *tracker, submitted uint64, limit time.Duration) totals {
	deadline := time.Now().Add(limit)
	for tr.complete.Load() < submitted && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	last := snapshotAll(c, correct)
	stable := 0
	for stable < 3 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		now := snapshotAll(c, correct)
		if now.figures() == last.figures() {
			stable++
		} else {
			stable = 0
		}
		last = now
	}
	return last
}

// figures projects the totals the duplication figures are made of: a link
// that keeps probing or retransmitting acks when idle must not keep the
// drain waiting.
func (a totals) figures() [6]uint64 {
	return [6]uint64{a.recvPayload, a.recvHeader, a.remoteDelivered, a.deliveredBytes, a.deliveries, a.copied}
}

// openLoop calls submit at rate per second until ctx ends, catching up in
// bursts when the timer falls behind (so the offered rate holds).
func openLoop(ctx context.Context, rate float64, submit func() bool) {
	interval := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(max(interval, time.Millisecond))
	defer tick.Stop()
	start := time.Now()
	var sent float64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			due := now.Sub(start).Seconds() * rate
			for sent < due && ctx.Err() == nil {
				submit()
				sent++
			}
		}
	}
}

func fillPattern(b []byte, seed uint64) {
	x := seed*0x9e3779b97f4a7c15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
}

type totals struct {
	recvPayload, recvHeader, remoteDelivered, deliveredBytes, deliveries uint64
	copied, retransmissions, cpuNanos, mallocs                           uint64
	sentPayload, sendCopied, kernelCopied                                uint64
	health                                                               Health
}

func (a totals) sub(b totals) totals {
	return totals{a.recvPayload - b.recvPayload, a.recvHeader - b.recvHeader, a.remoteDelivered - b.remoteDelivered,
		a.deliveredBytes - b.deliveredBytes, a.deliveries - b.deliveries, a.copied - b.copied, a.retransmissions - b.retransmissions,
		a.cpuNanos - b.cpuNanos, a.mallocs - b.mallocs,
		a.sentPayload - b.sentPayload, a.sendCopied - b.sendCopied, a.kernelCopied - b.kernelCopied, a.health.sub(b.health)}
}

func snapshotAll(c Cluster, ids []broadcast.NodeID) totals {
	var t totals
	for _, id := range ids {
		nc := c.Counters(id)
		tt := nc.Metrics.Totals()
		t.recvPayload += tt.RecvPayload
		t.recvHeader += tt.RecvHeaderBytes
		t.remoteDelivered += nc.Metrics.RemoteDeliveredBytes
		t.deliveredBytes += nc.Metrics.DeliveredBytes
		t.deliveries += nc.Metrics.Deliveries
		t.copied += nc.CopiedBytes + nc.Metrics.CopiedBytes
		t.sentPayload += tt.SentPayload
		t.sendCopied += nc.SendCopiedBytes
		t.kernelCopied += nc.KernelCopiedBytes
		t.retransmissions += nc.Retransmissions
		t.cpuNanos += nc.CPUNanos
		t.mallocs += nc.Mallocs
		t.health.add(nc.Health)
	}
	return t
}

// cdfOf samples a histogram's cumulative distribution, in milliseconds.
func cdfOf(h *hdrhistogram.Histogram) [][2]float64 {
	if h.TotalCount() == 0 {
		return nil
	}
	var out [][2]float64
	for _, q := range []float64{0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.9, 100} {
		out = append(out, [2]float64{float64(h.ValueAtQuantile(q)) / 1e3, q / 100})
	}
	return out
}

func resultFor(pt Point) Result {
	r := Result{Protocol: pt.Protocol, Mode: pt.Mode.String(), Transport: pt.Transport, Cluster: pt.Cluster,
		N: pt.N, F: pt.F, PayloadBytes: pt.PayloadBytes, Batch: pt.Batch, Auth: pt.Auth.String()}
	for i, b := range pt.Byzantine {
		if i > 0 {
			r.Byzantine += ","
		}
		r.Byzantine += b.String()
	}
	return r
}
