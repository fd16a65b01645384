package link

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// countingConduit counts the ack-only and data frames the link sends and
// keeps the last one.
type countingConduit struct {
	poolConduit
	acks, data int
	last       []byte
}

func (c *countingConduit) Send(_ broadcast.NodeID, hdr []byte, body bufpool.Buf) error {
	if Kind(hdr[2]) == KindAck {
		c.acks++
	} else {
		c.data++
	}
	c.last = append(append(c.last[:0], hdr...), body.Bytes()...)
	return nil
}

// receiveAt hands one datagram from peer `from` to the link at time now.
func (w *wire) receiveAt(from broadcast.NodeID, b []byte, now time.Time) {
	f, err := w.pool.Get()
	require.NoError(w.t, err)
	copy(f.Bytes(), b)
	w.l.peers[from].receive(f.Slice(0, len(b)), now)
}

// TestPeerOverItsRateIsHeldBeforeDecoding: a peer that sends faster than
// its receive rate has its frames held in its reorder window, before
// anything decodes them (a held malformed frame is not even rejected),
// counted once each, until its budget refills; the other peer's messages
// pass meanwhile, and the ack after the refill tells the flooder its
// window opened.
func TestPeerOverItsRateIsHeldBeforeDecoding(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 1024, Checked: true})
	cd := &countingConduit{poolConduit: poolConduit{nullConduit{done: make(chan struct{})}, pool}}
	// 3 nodes: 2 peers, each a fair share of 50 messages per second:
	// a burst of 64 (rateBurstMsgs, more than a second's 50).
	l, err := New(Config{Self: 0, N: 3, Conduit: cd, Epoch: fuzzEpoch, Tick: time.Hour,
		RecvRate: 100, RecvByteRate: 1 << 30})
	require.NoError(t, err)
	w := newWire(t, l, pool)
	now := time.Now()
	// The flood: 100 messages, then a malformed one, all in order.
	for s := range 100 {
		_, fr := onecastFrames(1, uint64(s), 100, 100)
		w.receiveAt(1, linkFrame(KindData, fuzzEpoch, w.seq[1], fr[0]), now)
		w.seq[1]++
	}
	w.receiveAt(1, linkFrame(KindData, fuzzEpoch, w.seq[1], []byte("not a onecast frame")), now)
	w.seq[1]++
	got := w.drain()
	assert.Len(t, got, rateBurstMsgs, "the flooder's burst, no more")
	st := l.Stats()
	assert.Equal(t, uint64(1), st.RateDeferred, "the first frame held, once; the ones behind it wait unseen")
	assert.Zero(t, st.Rejected, "the malformed frame waits undecoded")
	assert.Equal(t, 101-rateBurstMsgs, l.PeerStats(1).HeldFrames)
	for _, in := range got {
		in.Release()
	}
	// The correct peer is not held back by the flooder's budget.
	_, fr := onecastFrames(2, 0, 100, 100)
	w.receiveAt(2, linkFrame(KindData, fuzzEpoch, 1, fr[0]), now)
	got = w.drain()
	require.Len(t, got, 1)
	assert.Equal(t, broadcast.NodeID(2), got[0].From)
	got[0].Release()

	// 400 ms later the bucket holds 20 more messages: the tick hands them
	// up and acknowledges them at once.
	p := l.peers[1]
	acks := cd.acks
	p.mu.Lock()
	p.tick(now.Add(400 * time.Millisecond))
	p.mu.Unlock()
	got = w.drain()
	assert.Len(t, got, 20)
	for _, in := range got {
		in.Release()
	}
	assert.Greater(t, cd.acks, acks, "an ack tells the flooder its window opened")
	h, err := ParseHeader(cd.last)
	require.NoError(t, err)
	assert.Equal(t, uint64(rateBurstMsgs+20), h.Ack)
	// A second later everything is through; the malformed frame is
	// rejected only now that it is decoded.
	p.mu.Lock()
	p.tick(now.Add(1400 * time.Millisecond))
	p.mu.Unlock()
	got = w.drain()
	assert.Len(t, got, 100-rateBurstMsgs-20)
	for _, in := range got {
		in.Release()
	}
	assert.Equal(t, uint64(1), l.Stats().Rejected)
	assert.Equal(t, uint64(2), l.PeerStats(1).RateDeferred, "held twice: at the first frame, and 20 frames later")
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// TestRateFollowsTheMedianPeer: each peer may send RateFactor times what
// the median peer offered in the last interval, never less than its fair
// share of RecvRate; a flooder does not raise the limit.
func TestRateFollowsTheMedianPeer(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 4096, Checked: true})
	l, err := New(Config{Self: 0, N: 4, Conduit: &poolConduit{nullConduit{done: make(chan struct{})}, pool},
		Epoch: fuzzEpoch, Tick: time.Hour, RecvRate: 300, RecvByteRate: 1 << 30, Window: 2048, PeerFrames: 4096,
		RecvQueue: 1 << 14})
	require.NoError(t, err)
	w := newWire(t, l, pool)
	assert.Equal(t, 100.0, l.PeerStats(1).RateMsgs, "before any traffic: the fair share, 300/3")
	now := time.Now()
	offer := func(from broadcast.NodeID, n int) {
		for s := range n {
			_, fr := onecastFrames(from, uint64(s), 10, 10)
			w.receiveAt(from, linkFrame(KindData, fuzzEpoch, w.seq[from], fr[0]), now)
			w.seq[from]++
		}
	}
	// Over 100 ms: peers 1 and 2 offer 30 and 40 messages (300 and 400
	// per second), peer 3 floods 1000.
	offer(1, 30)
	offer(2, 40)
	offer(3, 1000)
	l.setRates(RateInterval)
	for id := range 3 {
		assert.InDelta(t, 800.0, l.PeerStats(broadcast.NodeID(id+1)).RateMsgs, 1e-6, "2 × the median (peer 2's 400/s)")
	}
	// An idle interval: back to the fair share.
	l.setRates(RateInterval)
	assert.Equal(t, 100.0, l.PeerStats(3).RateMsgs)
	for _, in := range w.drain() {
		in.Release()
	}
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// TestFrameCostCountsMessagesNotFragments: a continuation frame and a
// later piece of a spilt prefix cost bytes only; a whole message, a first
// fragment and a first piece cost one message.
func TestFrameCostCountsMessagesNotFragments(t *testing.T) {
	_, frs := onecastFrames(1, 0, 5000, 5000)
	require.Greater(t, len(frs), 2)
	first := linkFrame(KindData, fuzzEpoch, 1, frs[0])
	cont := linkFrame(KindData, fuzzEpoch, 2, frs[1])
	piece := func(off uint32) []byte {
		b := []byte{PieceMarker, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3}
		binary.LittleEndian.PutUint32(b[4:], off)
		return linkFrame(KindPrefix, fuzzEpoch, 3, b)
	}
	for _, c := range []struct {
		name  string
		frame []byte
		msgs  float64
	}{{"first fragment", first, 1}, {"continuation", cont, 0}, {"first piece", piece(0), 1}, {"later piece", piece(1200), 0}} {
		msgs, bytes := frameCost(c.frame)
		assert.Equal(t, c.msgs, msgs, c.name)
		assert.Equal(t, float64(len(c.frame)), bytes, c.name)
	}
}

// TestReplayedFramesCostAtMostOneAckPerTick: a flood of duplicates of
// frames already received (a replay) and of frames for another
// incarnation makes the node send one ack at once, and the rest with the
// next tick, instead of one ack per datagram.
func TestReplayedFramesCostAtMostOneAckPerTick(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 256, Checked: true})
	cd := &countingConduit{poolConduit: poolConduit{nullConduit{done: make(chan struct{})}, pool}}
	// A Tick of an hour: the test plays the timer, an hour after the
	// peer's hello (which got its own ack at once).
	l, err := New(Config{Self: 0, N: 2, Conduit: cd, Epoch: fuzzEpoch, Tick: time.Hour})
	require.NoError(t, err)
	w := newWire(t, l, pool)
	now := time.Now().Add(2 * time.Hour)
	_, fr := onecastFrames(1, 0, 100, 100)
	old := linkFrame(KindData, fuzzEpoch, 1, fr[0])
	w.receiveAt(1, old, now)
	for _, in := range w.drain() {
		in.Release()
	}
	acks := cd.acks
	for range 500 {
		w.receiveAt(1, old, now)                                        // a duplicate
		w.receiveAt(1, linkFrame(KindData, fuzzEpoch+7, 9, fr[0]), now) // for another incarnation
	}
	assert.Equal(t, acks+1, cd.acks, "one ack at once for 1000 replayed datagrams")
	assert.Equal(t, uint64(500), l.Stats().Duplicates)
	p := l.peers[1]
	p.mu.Lock()
	p.tick(now.Add(time.Millisecond))
	p.mu.Unlock()
	assert.Equal(t, acks+2, cd.acks, "and one with the tick")
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// TestStaleSelectiveAcksDoNotTriggerRetransmissions: a frame that
// carries an acknowledgement state older than the current one (reordered,
// or replayed by a Byzantine peer) does not make the node resend frames
// its selective acks once showed missing.
func TestStaleSelectiveAcksDoNotTriggerRetransmissions(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 256, Checked: true})
	cd := &countingConduit{poolConduit: poolConduit{nullConduit{done: make(chan struct{})}, pool}}
	l, err := New(Config{Self: 0, N: 2, Conduit: cd, Epoch: fuzzEpoch, Tick: time.Hour})
	require.NoError(t, err)
	w := newWire(t, l, pool)
	hello := linkFrame(KindAck, fuzzEpoch, 0, nil)
	binary.LittleEndian.PutUint32(hello[4:], 64)
	w.send(1, hello) // credit 64
	for s := range 20 {
		m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Instance: broadcast.Instance{Seq: uint64(s)}}}
		require.NoError(t, l.Send(1, &m))
	}
	require.Equal(t, 20, l.PeerStats(1).InFlight)
	later := time.Now().Add(time.Second) // every frame older than the fast-retransmit threshold
	ack := func(cum, sack uint64) []byte {
		b := make([]byte, HeaderSize)
		h := Header{Kind: KindAck, Window: 64, SrcEpoch: fuzzPeerEpoch, DstEpoch: fuzzEpoch, Ack: cum, SACK: sack}
		h.Put(b)
		return b
	}
	w.receiveAt(1, ack(10, 0), later) // frames 1–10 acknowledged
	require.Equal(t, 10, l.PeerStats(1).InFlight)
	// A replayed frame of old: cumulative ack 2, frames 4 and 12 selectively
	// acknowledged (12 is in flight: frames 11 would look lost).
	// (The first ack sampled a round trip of a second: these come later
	// than twice that.)
	w.receiveAt(1, ack(2, 1<<0|1<<8), later.Add(3*time.Second))
	assert.Zero(t, l.Stats().Retransmits, "the stale bitmap resends nothing")
	// The current state with the same bitmap shape does repair the gap.
	w.receiveAt(1, ack(10, 1<<0), later.Add(3*time.Second)) // 12 received, 11 missing
	assert.Equal(t, uint64(1), l.Stats().Retransmits, "frame 11 resent")
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// TestHeldFrameIsNotResentOnEveryAck: a peer that holds the next frame in
// order without acknowledging it (its receive queue, or this node's rate
// there, is full) while it acknowledges later frames selectively gets that
// frame again with a doubling interval, not on every ack.
func TestHeldFrameIsNotResentOnEveryAck(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 256, Checked: true})
	cd := &countingConduit{poolConduit: poolConduit{nullConduit{done: make(chan struct{})}, pool}}
	l, err := New(Config{Self: 0, N: 2, Conduit: cd, Epoch: fuzzEpoch, Tick: time.Hour, RTOMax: time.Hour, RTOInit: time.Hour, RTOMin: time.Hour})
	require.NoError(t, err)
	w := newWire(t, l, pool)
	hello := linkFrame(KindAck, fuzzEpoch, 0, nil)
	binary.LittleEndian.PutUint32(hello[4:], 64)
	w.send(1, hello)
	for s := range 4 {
		m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Instance: broadcast.Instance{Seq: uint64(s)}}}
		require.NoError(t, l.Send(1, &m))
	}
	ack := make([]byte, HeaderSize)
	h := Header{Kind: KindAck, Window: 64, SrcEpoch: fuzzPeerEpoch, DstEpoch: fuzzEpoch, Ack: 0, SACK: 0b111} // 2–4 held, 1 not acked
	h.Put(ack)
	start := time.Now()
	for i := range 200 { // an ack every 2 ms for 400 ms
		w.receiveAt(1, ack, start.Add(time.Duration(i+1)*2*time.Millisecond))
	}
	// Resent at about 2, 4, 8, … 256 ms after the previous send: 8 times
	// in 400 ms, not 200.
	got := l.Stats().Retransmits
	assert.GreaterOrEqual(t, got, uint64(6))
	assert.LessOrEqual(t, got, uint64(10))
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// TestReceiveRateConfig: a RateFactor below 1 and a RecvRate without a
// byte rate are refused by name; a negative RecvRate turns the receive
// rate off.
func TestReceiveRateConfig(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 256, Checked: true})
	cd := func() *poolConduit { return &poolConduit{nullConduit{done: make(chan struct{})}, pool} }
	_, err := New(Config{Self: 0, N: 2, Conduit: cd(), RateFactor: 0.5})
	assert.ErrorContains(t, err, "RateFactor")
	_, err = New(Config{Self: 0, N: 2, Conduit: cd(), RecvRate: 10, RecvByteRate: -1})
	assert.ErrorContains(t, err, "RecvByteRate")
	l, err := New(Config{Self: 0, N: 3, Conduit: cd(), Epoch: fuzzEpoch, Tick: time.Hour, RecvRate: -1})
	require.NoError(t, err)
	w := newWire(t, l, pool)
	for s := range 200 {
		_, fr := onecastFrames(1, uint64(s), 10, 10)
		w.data(1, fr[0])
	}
	got := w.drain()
	assert.Len(t, got, 200, "no rate: every message goes up")
	for _, in := range got {
		in.Release()
	}
	assert.Zero(t, l.PeerStats(1).RateMsgs)
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}
