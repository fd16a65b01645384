package link

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
)

// poolConduit is a nullConduit that says which pool its frames come from,
// as the UDP and AF_XDP conduits do.
type poolConduit struct {
	nullConduit
	pool *bufpool.Pool
}

func (c *poolConduit) Pool() *bufpool.Pool { return c.pool }

// wire plays a conduit's receive side for a test: each datagram gets a
// frame from the pool, or is dropped when none is free (as udp and xdp do).
type wire struct {
	t       *testing.T
	l       *Link
	pool    *bufpool.Pool
	seq     []uint64 // per peer: the next sequence number
	dropped int
}

func newWire(t *testing.T, l *Link, pool *bufpool.Pool) *wire {
	w := &wire{t: t, l: l, pool: pool, seq: make([]uint64, len(l.peers))}
	for id := range l.peers {
		if l.peers[id] != nil {
			w.send(broadcast.NodeID(id), linkFrame(KindAck, 0, 0, nil)) // the peer's epoch
			w.seq[id] = 1
		}
	}
	return w
}

func (w *wire) send(from broadcast.NodeID, b []byte) {
	f, err := w.pool.Get()
	if err != nil {
		w.dropped++
		return
	}
	copy(f.Bytes(), b)
	w.l.peers[from].receive(f.Slice(0, len(b)), time.Now())
}

// data sends onecast frames from `from` in order, under the next sequence
// numbers.
func (w *wire) data(from broadcast.NodeID, frames ...[]byte) {
	for _, fr := range frames {
		w.send(from, linkFrame(KindData, fuzzEpoch, w.seq[from], fr))
		w.seq[from]++
	}
}

// drain takes every message handed up, as a runner would.
func (w *wire) drain() []netio.Inbound {
	var got []netio.Inbound
	for {
		select {
		case in := <-w.l.inbound:
			w.l.taken(in)
			got = append(got, in)
			continue
		default:
		}
		return got
	}
}

// onecastFrames cuts a message with a payload of size bytes into the
// onecast frames a sender at MTU 1472 sends: the first frame, then
// continuations.
func onecastFrames(from broadcast.NodeID, seq uint64, size int, announce uint32) (broadcast.Digest, [][]byte) {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i*31 + int(seq))
	}
	msg := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Sender: from,
		Instance: broadcast.Instance{Origin: from, Seq: seq}}, Auth: []byte("authenticator")}
	msg.Flags, msg.PayloadLen, msg.Digest = broadcast.HasPayload, announce, broadcast.DigestOfBytes(payload)
	prefix, _ := broadcast.AppendPrefix(nil, &msg)
	room := 1472 - HeaderSize
	first := min(size, room-len(prefix))
	frames := [][]byte{append(prefix, payload[:first]...)}
	h := msg.Header
	h.Flags = broadcast.HasPayload | broadcast.Fragment
	h.BodyLen, h.AuthLen = 0, 0
	for off, idx := first, 1; off < size; off, idx = off+chunkRoom(1472), idx+1 {
		n := min(chunkRoom(1472), size-off)
		h.FragIndex, h.FragOffset = uint16(idx), uint32(off)
		fb := make([]byte, broadcast.HeaderSize)
		h.Put(fb)
		frames = append(frames, append(fb, payload[off:off+n]...))
	}
	return msg.Digest, frames
}

// TestByzantinePeerCannotExhaustTheFramesOfCorrectPeers: peer 1 sends first
// frames of many large messages, in order and far ahead of its stream (a
// gap it never fills), to take every frame of the pool. Its share is
// bounded by PeerFrames; peer 2's messages, fragmented or not, all arrive.
func TestByzantinePeerCannotExhaustTheFramesOfCorrectPeers(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 512, Checked: true})
	logs := &countingHandler{}
	l, err := New(Config{Self: 0, N: 3, Conduit: &poolConduit{nullConduit{done: make(chan struct{})}, pool},
		Epoch: fuzzEpoch, Tick: time.Hour, Window: 512, Logger: slog.New(logs)})
	require.NoError(t, err)
	require.Equal(t, 512/(2*3), l.cfg.PeerFrames, "the default quota is the pool over 2N")
	w := newWire(t, l, pool)

	// In order: first frames announcing 64 MiB each, never continued.
	for s := range 20 {
		_, fr := onecastFrames(1, uint64(s), 1000, 64<<20)
		w.data(1, fr[0])
	}
	// Ahead of its stream: a gap at w.seq[1] that never fills.
	for s := range 500 {
		_, fr := onecastFrames(1, uint64(100+s), 1000, 64<<20)
		w.send(1, linkFrame(KindData, fuzzEpoch, w.seq[1]+1+uint64(s), fr[0]))
	}
	assert.LessOrEqual(t, l.PeerStats(1).HeldFrames, l.cfg.PeerFrames, "peer 1 holds no more than its quota")
	assert.Positive(t, l.Stats().QuotaDrops, "frames over the quota were dropped and counted")
	assert.Equal(t, l.Stats().QuotaDrops, l.PeerStats(1).QuotaDrops)
	assert.Equal(t, int64(1), logs.warnings.Load(), "hundreds of refusals within a second, one log line")
	for _, in := range w.drain() {
		in.Release()
	}

	// Peer 2, correct, sends messages of every size.
	sizes := []int{100, 1300, 4000, 40000, 100000}
	var want []broadcast.Digest
	for s, size := range sizes {
		d, fr := onecastFrames(2, uint64(s), size, uint32(size))
		want = append(want, d)
		w.data(2, fr...)
	}
	got := w.drain()
	require.Len(t, got, len(sizes), "every message of the correct peer arrives")
	for i, in := range got {
		assert.Equal(t, broadcast.NodeID(2), in.From)
		assert.Equal(t, want[i], broadcast.DigestOf(in.Msg.Payload))
		in.Release()
	}
	assert.Zero(t, w.dropped, "the pool never ran dry")
	t.Logf("pool of %d frames, quota %d per peer: the Byzantine peer held %d frames, %d of its frames dropped; pool free %d",
		pool.Frames(), l.cfg.PeerFrames, l.PeerStats(1).HeldFrames, l.PeerStats(1).QuotaDrops, pool.Free())
	assert.Zero(t, l.PeerStats(2).QuotaDrops)
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// TestLargePayloadIsReceivedIntoTheHeap: a message needing more frames
// than half the peer's quota is copied into a heap buffer as it arrives,
// holding no frame, and arrives whole; the copy is counted.
func TestLargePayloadIsReceivedIntoTheHeap(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 64, Checked: true})
	metrics := &broadcast.Metrics{}
	l, err := New(Config{Self: 0, N: 2, Conduit: &poolConduit{nullConduit{done: make(chan struct{})}, pool},
		Epoch: fuzzEpoch, Tick: time.Hour, Window: 64, Metrics: metrics})
	require.NoError(t, err)
	require.Equal(t, 64, l.cfg.PeerFrames)
	w := newWire(t, l, pool)
	const size = 1 << 20 // 776 frames through a pool of 64
	d, fr := onecastFrames(1, 0, size, size)
	for i, f := range fr {
		w.data(1, f)
		if i > 0 && i < len(fr)-1 {
			require.Zero(t, l.PeerStats(1).HeldFrames, "a heap reassembly holds no frame")
			require.Positive(t, l.PeerStats(1).PartialBytes)
		}
	}
	assert.Zero(t, l.PeerStats(1).PartialBytes, "complete")
	got := w.drain()
	require.Len(t, got, 1)
	assert.Equal(t, d, broadcast.DigestOf(got[0].Msg.Payload))
	assert.Equal(t, size, got[0].Msg.Payload.Len())
	got[0].Release()
	st := l.Stats()
	assert.Equal(t, uint64(1), st.HeapReassembled)
	assert.Equal(t, uint64(size), st.HeapCopiedBytes)
	assert.Equal(t, uint64(size), metrics.CopiedBytes.Load(), "the heap copy is a counted copy")
	assert.Zero(t, w.dropped)

	// A sender cutting a small announced payload into tiny fragments is
	// moved to the heap once it holds half its quota.
	const small = 40 * 100
	_, fr = onecastFrames(1, 1, 100, small)
	payload := make([]byte, small)
	for i := range payload {
		payload[i] = byte(i)
	}
	first := fr[0][:len(fr[0])-100]
	first = append(first, payload[:100]...)
	// Patch the digest of the first frame to the real payload's.
	real := broadcast.DigestOfBytes(payload)
	copy(first[broadcast.DigestOffset:], real[:])
	w.data(1, first)
	h, err := broadcast.ParseHeader(first)
	require.NoError(t, err)
	h.Flags = broadcast.HasPayload | broadcast.Fragment
	h.BodyLen, h.AuthLen = 0, 0
	for idx, off := 1, 100; off < small; idx, off = idx+1, off+100 {
		h.FragIndex, h.FragOffset = uint16(idx), uint32(off)
		fb := make([]byte, broadcast.HeaderSize)
		h.Put(fb)
		w.data(1, append(fb, payload[off:off+100]...))
		require.LessOrEqual(t, l.PeerStats(1).HeldFrames, l.cfg.PeerFrames/2+1)
	}
	got = w.drain()
	require.Len(t, got, 1)
	assert.Equal(t, real, broadcast.DigestOf(got[0].Msg.Payload))
	got[0].Release()
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// TestPartialMessageExpires: a first frame whose continuations never come
// is dropped after PartialTimeout and counted; time spent with the next
// frame waiting on a full receive queue does not count.
func TestPartialMessageExpires(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 64, Checked: true})
	l, err := New(Config{Self: 0, N: 2, Conduit: &poolConduit{nullConduit{done: make(chan struct{})}, pool},
		Epoch: fuzzEpoch, Tick: time.Hour, Window: 16, PartialTimeout: time.Second})
	require.NoError(t, err)
	w := newWire(t, l, pool)
	_, fr := onecastFrames(1, 0, 5000, 5000)
	w.data(1, fr[0])
	p := l.peers[1]
	require.Equal(t, 1, p.heldFrames(), "the first frame is held")
	now := time.Now()
	p.mu.Lock()
	p.tick(now)
	p.tick(now.Add(999 * time.Millisecond))
	require.True(t, p.re.active, "not yet")
	p.tick(now.Add(time.Second))
	require.False(t, p.re.active, "expired")
	p.mu.Unlock()
	assert.Zero(t, p.heldFrames(), "its frame went back")
	assert.Equal(t, uint64(1), l.Stats().PartialsExpired)
	assert.Equal(t, uint64(1), l.PeerStats(1).PartialsExpired)
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// TestSendRefusesPayloadsOverMaxPayload: the limit is a config field, and
// the error names it.
func TestSendRefusesPayloadsOverMaxPayload(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 64, Checked: true})
	l, err := New(Config{Self: 0, N: 2, Conduit: &poolConduit{nullConduit{done: make(chan struct{})}, pool},
		Epoch: fuzzEpoch, Tick: time.Hour, MaxPayload: 1 << 20})
	require.NoError(t, err)
	big := bufpool.Wrap(make([]byte, 1<<20+1))
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1}}
	m.SetPayload(big, broadcast.DigestOf(big))
	err = l.Send(1, &m)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "MaxPayload of 1048576 bytes")
	assert.Equal(t, uint64(1), l.Stats().TooLarge)
	big.Release()

	_, err = New(Config{Self: 0, N: 2, Conduit: &poolConduit{nullConduit{done: make(chan struct{})}, pool},
		MaxPayload: 128 << 20})
	require.Error(t, err, "MaxPayload above Limits.MaxPayload")
	require.NoError(t, l.Close())
}

// TestFloodingPeerTakesOnlyItsShareOfTheReceiveQueue: peer 1 sends more
// messages than the application takes; they fill its share
// (RecvQueue/(N-1)) and wait in its window, and peer 2's message still
// finds a slot.
func TestFloodingPeerTakesOnlyItsShareOfTheReceiveQueue(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 256, Checked: true})
	l, err := New(Config{Self: 0, N: 3, Conduit: &poolConduit{nullConduit{done: make(chan struct{})}, pool},
		Epoch: fuzzEpoch, Tick: time.Hour, Window: 64, RecvQueue: 8})
	require.NoError(t, err)
	w := newWire(t, l, pool)
	for s := range 40 {
		_, fr := onecastFrames(1, uint64(s), 100, 100)
		w.data(1, fr...)
	}
	assert.Equal(t, 4, l.PeerStats(1).Pending, "peer 1 has its share of 8/2")
	_, fr := onecastFrames(2, 0, 100, 100)
	w.data(2, fr...)
	got := w.drain()
	require.Len(t, got, 5)
	assert.Equal(t, broadcast.NodeID(2), got[4].From, "the correct peer's message found a slot")
	for _, in := range got {
		in.Release()
	}
	// Taken, peer 1's waiting messages follow on the next tick.
	p := l.peers[1]
	p.mu.Lock()
	p.tick(time.Now())
	p.mu.Unlock()
	got = w.drain()
	assert.Len(t, got, 4)
	for _, in := range got {
		in.Release()
	}
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// countingHandler counts the warnings logged through it.
type countingHandler struct{ warnings atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warnings.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// TestSenderKeepsWithinThePeersCredit: a peer that advertises a credit of
// 3 frames (Header.Window) never has more than 3 in flight from this node.
func TestSenderKeepsWithinThePeersCredit(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 64, Checked: true})
	l, err := New(Config{Self: 0, N: 2, Conduit: &poolConduit{nullConduit{done: make(chan struct{})}, pool},
		Epoch: fuzzEpoch, Tick: time.Hour})
	require.NoError(t, err)
	hello := linkFrame(KindAck, fuzzEpoch, 0, nil)
	binary.LittleEndian.PutUint32(hello[4:], 3)
	w := &wire{t: t, l: l, pool: pool, seq: make([]uint64, 2)}
	w.send(1, hello)
	for s := range 10 {
		m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Instance: broadcast.Instance{Seq: uint64(s)}}}
		require.NoError(t, l.Send(1, &m))
	}
	ps := l.PeerStats(1)
	assert.Equal(t, 3, ps.InFlight, "within the credit")
	assert.Equal(t, 7, ps.Queued)
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// TestLinkAdvertisesItsCredit: the Window of the link's headers is the
// half of the peer's frame quota its reorder window may hold, whatever
// its partial message holds (at most the other half).
func TestLinkAdvertisesItsCredit(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 256, Checked: true})
	sent := &recordingConduit{poolConduit: poolConduit{nullConduit{done: make(chan struct{})}, pool}}
	l, err := New(Config{Self: 0, N: 2, Conduit: sent, Epoch: fuzzEpoch, Tick: time.Hour})
	require.NoError(t, err)
	require.Equal(t, 64, l.cfg.PeerFrames)
	w := newWire(t, l, pool)
	_, fr := onecastFrames(1, 0, 20000, 20000) // 15 frames: zero-copy
	w.data(1, fr[:5]...)
	p := l.peers[1]
	p.mu.Lock()
	p.sendAck()
	p.mu.Unlock()
	h, err := ParseHeader(sent.last)
	require.NoError(t, err)
	assert.Equal(t, uint32(32), h.Window, "half of PeerFrames")
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// recordingConduit keeps the last datagram sent.
type recordingConduit struct {
	poolConduit
	last []byte
}

func (c *recordingConduit) Send(_ broadcast.NodeID, hdr []byte, body bufpool.Buf) error {
	c.last = append(append(c.last[:0], hdr...), body.Bytes()...)
	return nil
}

// TestCongestedIgnoresAPeerThatDoesNotAcknowledge: a live peer whose queue
// has grown slows the application down (Congested) only while its acks
// move; once its oldest frame timed out, waiting does not drain it, and a
// Byzantine peer that receives and never acknowledges (wireadv
// ack-withhold) must not stall the node's submissions. Before, Congested
// held until the peer counted as silent, after DeadBackoff timeouts — over
// a second at the default timeouts, during which nothing was submitted.
func TestCongestedIgnoresAPeerThatDoesNotAcknowledge(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 64, Checked: true})
	l, err := New(Config{Self: 0, N: 2, Conduit: &poolConduit{nullConduit{done: make(chan struct{})}, pool},
		Epoch: fuzzEpoch, Tick: time.Hour, MaxQueue: 16})
	require.NoError(t, err)
	hello := linkFrame(KindAck, fuzzEpoch, 0, nil)
	binary.LittleEndian.PutUint32(hello[4:], 2) // a credit of 2 frames: the rest queue
	w := &wire{t: t, l: l, pool: pool, seq: make([]uint64, 2)}
	w.send(1, hello)
	for s := range 10 {
		m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Instance: broadcast.Instance{Seq: uint64(s)}}}
		require.NoError(t, l.Send(1, &m))
	}
	require.Greater(t, l.PeerStats(1).Queued, 16/4)
	assert.True(t, l.Congested(), "a live peer with a long queue whose acks may still come")
	p := l.peers[1]
	p.mu.Lock()
	p.tick(time.Now().Add(time.Minute)) // its oldest frame times out: no ack
	silent := p.silent()
	p.mu.Unlock()
	require.False(t, silent, "one timeout: the peer still counts as live")
	assert.False(t, l.Congested(), "a peer that does not acknowledge is not waited for")
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}
