package wireadv

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/link"
	"github.com/onecast/onecast/pbft"
)

const testN = 4

// byzID is the Byzantine node in these tests.
const byzID broadcast.NodeID = 3

func keyrings(t *testing.T) []*broadcast.Keyring {
	t.Helper()
	rings, err := broadcast.GenerateKeyrings(testN, crand.Reader)
	require.NoError(t, err)
	return rings
}

// build returns the Byzantine node's protocol for behaviour b over inner.
func build(t *testing.T, b Behaviour, inner broadcast.Spec, rings []*broadcast.Keyring) (*Adversary, broadcast.Protocol) {
	t.Helper()
	a, err := New(Options{Behaviour: b, Inner: inner, Seed: 7})
	require.NoError(t, err)
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	t.Cleanup(store.Close)
	p, err := a.Spec().New(broadcast.Params{N: testN, F: 1, Self: byzID, Mode: broadcast.ModeDigest},
		broadcast.Env{Store: store, Keys: rings[byzID]})
	require.NoError(t, err)
	t.Cleanup(func() { p.(interface{ Close() }).Close() })
	return a, p
}

// drain takes the protocol's messages over ticks of one millisecond.
func drain(p broadcast.Protocol, from time.Duration, ticks int) []broadcast.Outbound {
	var out []broadcast.Outbound
	for i := range ticks {
		p.Tick(from + time.Duration(i)*time.Millisecond)
		rd := p.Ready()
		out = append(out, rd.Messages...)
	}
	return out
}

func TestParseNamesEveryBehaviour(t *testing.T) {
	for _, b := range Behaviours() {
		got, err := Parse(string(b))
		require.NoError(t, err)
		assert.Equal(t, b, got)
	}
	_, err := Parse("loud")
	assert.ErrorIs(t, err, ErrUnknownBehaviour)
	_, err = New(Options{Behaviour: FutureView, Inner: bracha.Spec})
	assert.Error(t, err, "future-view needs PBFT")
}

func TestFetchFloodAsksForTheDigestsItSaw(t *testing.T) {
	a, p := build(t, FetchFlood, bracha.Spec, keyrings(t))
	d := broadcast.DigestOfBytes([]byte("held"))
	echo := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoBracha, Type: bracha.TypeEcho, Sender: 1,
		Instance: broadcast.Instance{Origin: 0, Seq: 5}, Round: 2, Digest: d, PayloadLen: 4}}
	assert.Empty(t, drain(p, 0, 3), "nothing to fetch yet")
	require.NoError(t, p.Step(1, &echo))
	out := drain(p, 10*time.Millisecond, 5)
	require.Len(t, out, 5*32, "PerTick FETCHes per tick")
	for _, o := range out {
		m := o.Msg
		assert.Equal(t, broadcast.Everyone, o.To)
		assert.Equal(t, broadcast.TypeFetch, m.Type)
		assert.Equal(t, d, m.Digest)
		assert.Equal(t, echo.Instance, m.Instance)
		assert.Equal(t, echo.Round, m.Round)
		assert.Equal(t, echo.PayloadLen, m.PayloadLen)
		assert.Equal(t, byzID, m.Sender)
	}
	assert.Equal(t, uint64(len(out)), a.Stats().Injected)
}

func TestLoadIsBoundedInCountAndTime(t *testing.T) {
	a, err := New(Options{Behaviour: FetchFlood, Inner: bracha.Spec, MaxInjections: 50, Delay: 5 * time.Millisecond, Duration: time.Hour})
	require.NoError(t, err)
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	defer store.Close()
	p, err := a.Spec().New(broadcast.Params{N: testN, F: 1, Self: byzID, Mode: broadcast.ModeDigest}, broadcast.Env{Store: store})
	require.NoError(t, err)
	echo := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoBracha, Type: bracha.TypeEcho, Sender: 1,
		Digest: broadcast.DigestOfBytes([]byte("x")), PayloadLen: 1}}
	require.NoError(t, p.Step(1, &echo))
	assert.Empty(t, drain(p, 0, 5), "nothing before Delay")
	assert.Len(t, drain(p, 5*time.Millisecond, 10), 50, "MaxInjections")

	b, err := New(Options{Behaviour: FetchFlood, Inner: bracha.Spec, Duration: 3 * time.Millisecond})
	require.NoError(t, err)
	q, err := b.Spec().New(broadcast.Params{N: testN, F: 1, Self: byzID, Mode: broadcast.ModeDigest}, broadcast.Env{Store: store})
	require.NoError(t, err)
	require.NoError(t, q.Step(1, &echo))
	assert.Len(t, drain(q, 0, 10), 3*32, "Duration")
	rd := q.Ready()
	assert.Zero(t, rd.NextWake, "no wake-ups after the window")
}

func TestHeldSprayBroadcastsDistinctPayloads(t *testing.T) {
	a, p := build(t, HeldSpray, bracha.Spec, keyrings(t))
	out := drain(p, 0, 20)
	seen := map[broadcast.Digest]bool{}
	for _, o := range out {
		if o.Msg.Type == bracha.TypeSend {
			assert.Equal(t, 16<<10, o.Msg.Payload.Len())
			assert.Equal(t, broadcast.DigestOf(o.Msg.Payload), o.Msg.Digest, "a valid SEND names its payload")
			seen[o.Msg.Digest] = true
		}
		o.Msg.Payload.Release()
	}
	assert.Len(t, seen, 20, "one distinct SEND per tick")
	assert.Equal(t, uint64(20), a.Stats().Injected)
}

func TestFutureViewPrePreparesAreValidAndHitTheQuota(t *testing.T) {
	rings := keyrings(t)
	a, p := build(t, FutureView, pbft.Spec, rings)
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	defer store.Close()
	victim, err := pbft.Spec.New(broadcast.Params{N: testN, F: 1, Self: 0, Mode: broadcast.ModeDigest},
		broadcast.Env{Store: store, Keys: rings[0]})
	require.NoError(t, err)
	defer victim.(interface{ Close() }).Close()
	victim.Tick(time.Millisecond)
	out := drain(p, 0, 4*futureSpan)
	require.Len(t, out, futureSpan, "one PRE-PREPARE per futureEvery (4 ms)")
	for _, o := range out {
		m := o.Msg
		assert.Equal(t, pbft.TypePrePrepare, m.Type)
		assert.Greater(t, m.Round, uint32(0), "a view ahead")
		assert.Equal(t, uint32(byzID), m.Round%testN, "a view this node leads")
		assert.Equal(t, futureBytes, m.Payload.Len())
		require.NoError(t, victim.Step(byzID, &m), "a correct replica accepts it as a future PRE-PREPARE")
		m.Payload.Release()
	}
	st := victim.(*pbft.Node).Stats()
	assert.Positive(t, st.FutureStripped, "beyond FutureQuota the payloads are stripped")
	assert.Equal(t, uint64(futureSpan), a.Stats().Injected)
}

func TestReplayResendsItsOwnMessages(t *testing.T) {
	_, p := build(t, Replay, bracha.Spec, keyrings(t))
	require.NoError(t, p.Submit(bufpool.Wrap([]byte("value"))))
	first := drain(p, 0, 1)
	require.NotEmpty(t, first)
	own := map[broadcast.Header]string{}
	for _, o := range first {
		own[o.Msg.Header] = string(o.Msg.Payload.Bytes())
	}
	again := drain(p, time.Millisecond, 3)
	require.Len(t, again, 3*32)
	for _, o := range again {
		payload, ok := own[o.Msg.Header]
		assert.True(t, ok, "one of its own messages again: %+v", o.Msg.Header)
		assert.Equal(t, payload, string(o.Msg.Payload.Bytes()))
		o.Msg.Payload.Release()
	}
	for _, o := range first {
		o.Msg.Payload.Release()
	}
}

// fakeConduit records what is sent through it.
type fakeConduit struct {
	mu   sync.Mutex
	sent []sentDatagram
}

type sentDatagram struct {
	to broadcast.NodeID
	b  []byte
}

func (f *fakeConduit) Send(to broadcast.NodeID, hdr []byte, body bufpool.Buf) error {
	b := append([]byte(nil), hdr...)
	for seg := range body.Segments() {
		b = append(b, seg...)
	}
	f.mu.Lock()
	f.sent = append(f.sent, sentDatagram{to, b})
	f.mu.Unlock()
	return nil
}
func (f *fakeConduit) Flush() error { return nil }

// count is the number of datagrams sent so far.
func (f *fakeConduit) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}
func (f *fakeConduit) Recv(ctx context.Context) (netio.Datagram, error) {
	<-ctx.Done()
	return netio.Datagram{}, ctx.Err()
}
func (f *fakeConduit) MTU() int                  { return 1500 }
func (f *fakeConduit) Stats() netio.ConduitStats { return netio.ConduitStats{} }
func (f *fakeConduit) Close() error              { return nil }
func (f *fakeConduit) take() []sentDatagram {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.sent
	f.sent = nil
	return out
}

// dataFrame is a link data frame to peer with seq, carrying a onecast
// header with flags.
func dataFrame(seq uint64, flags broadcast.Flags) []byte {
	b := make([]byte, link.HeaderSize+broadcast.HeaderSize)
	h := link.Header{Kind: link.KindData, Window: 8, SrcEpoch: 11, DstEpoch: 22, Seq: seq, Ack: 5, SACK: 3}
	h.Put(b)
	oh := broadcast.Header{Protocol: broadcast.ProtoBracha, Type: bracha.TypeSend, Flags: flags}
	oh.Put(b[link.HeaderSize:])
	return b
}

func TestPartialLargeKeepsContinuationsBack(t *testing.T) {
	a, err := New(Options{Behaviour: PartialLarge, Inner: bracha.Spec})
	require.NoError(t, err)
	f := &fakeConduit{}
	c := a.Conduit(f)
	defer c.Close()
	require.NoError(t, c.Send(1, dataFrame(1, broadcast.HasPayload), bufpool.Wrap(make([]byte, 1000))))
	require.NoError(t, c.Send(1, dataFrame(2, broadcast.HasPayload|broadcast.Fragment), bufpool.Wrap(make([]byte, 1000))))
	// A continuation whose onecast header travels in the body.
	cont := dataFrame(3, broadcast.HasPayload|broadcast.Fragment)
	require.NoError(t, c.Send(1, cont[:link.HeaderSize], bufpool.Wrap(cont[link.HeaderSize:])))
	sent := f.take()
	require.Len(t, sent, 1, "only the first fragment leaves")
	assert.Equal(t, uint64(1), binary.LittleEndian.Uint64(sent[0].b[offSeq:]))
	assert.Equal(t, uint64(2), a.Stats().DroppedFragments)
}

func TestAckWithholdZeroesAcks(t *testing.T) {
	a, err := New(Options{Behaviour: AckWithhold, Inner: bracha.Spec})
	require.NoError(t, err)
	f := &fakeConduit{}
	c := a.Conduit(f)
	defer c.Close()
	frame := dataFrame(4, broadcast.HasPayload)
	require.NoError(t, c.Send(2, frame, bufpool.Buf{}))
	sent := f.take()
	require.Len(t, sent, 1)
	h, err := link.ParseHeader(sent[0].b)
	require.NoError(t, err)
	assert.Zero(t, h.Ack)
	assert.Zero(t, h.SACK)
	assert.Equal(t, uint64(4), h.Seq, "the rest is untouched")
	assert.Equal(t, uint64(11), h.SrcEpoch)
	assert.Equal(t, uint64(5), binary.LittleEndian.Uint64(frame[offAck:]), "the borrowed header is not written")
}

// activate opens a's load window through its protocol's clock.
func activate(t *testing.T, a *Adversary) {
	t.Helper()
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	t.Cleanup(store.Close)
	p, err := a.Spec().New(broadcast.Params{N: testN, F: 1, Self: byzID, Mode: broadcast.ModeDigest}, broadcast.Env{Store: store})
	require.NoError(t, err)
	p.Tick(0)
	require.True(t, a.active.Load())
}

func TestGarbageIsRejectedByTheDecoders(t *testing.T) {
	a, err := New(Options{Behaviour: Garbage, Inner: bracha.Spec, MaxInjections: 600})
	require.NoError(t, err)
	f := &fakeConduit{}
	c := a.Conduit(f)
	defer c.Close()
	require.NoError(t, c.Send(1, dataFrame(9, 0), bufpool.Buf{})) // learn peer 1's epochs
	f.take()
	activate(t, a)
	// The counter moves before the send completes: wait for both.
	require.Eventually(t, func() bool { return a.Stats().Datagrams == 600 && f.count() == 600 }, 5*time.Second, time.Millisecond)
	sent := f.take()
	require.Len(t, sent, 600)
	kinds := map[string]int{}
	for _, d := range sent {
		assert.Equal(t, broadcast.NodeID(1), d.to)
		h, err := link.ParseHeader(d.b)
		if err != nil {
			kinds["link"]++
			continue
		}
		assert.Equal(t, uint64(11), h.SrcEpoch, "the epochs the peer expects")
		assert.Equal(t, uint64(22), h.DstEpoch)
		_, _, err = broadcast.ParseFrame(d.b[link.HeaderSize:], nil)
		require.Error(t, err, "every datagram is malformed")
		kinds["onecast"]++
	}
	assert.Positive(t, kinds["link"])
	assert.Positive(t, kinds["onecast"])
}

func TestReplayResendsOldDatagrams(t *testing.T) {
	a, err := New(Options{Behaviour: Replay, Inner: bracha.Spec, MaxInjections: 100})
	require.NoError(t, err)
	f := &fakeConduit{}
	c := a.Conduit(f)
	defer c.Close()
	old := dataFrame(1, broadcast.HasPayload)
	require.NoError(t, c.Send(1, old, bufpool.Buf{}))
	f.take()
	activate(t, a)
	require.Eventually(t, func() bool { return a.Stats().Datagrams == 100 }, 5*time.Second, time.Millisecond)
	for _, d := range f.take() {
		assert.Equal(t, old, d.b, "the old frame, byte for byte")
	}
}

// TestLoadPausesWhileTheLinkQueueIsFull: the protocol-side load injects
// nothing while the node's link holds more than MaxBacklog frames queued,
// and resumes once they drain.
func TestLoadPausesWhileTheLinkQueueIsFull(t *testing.T) {
	queued := 5000
	a, err := New(Options{Behaviour: FetchFlood, Inner: bracha.Spec, Seed: 7, MaxBacklog: 4096,
		Backlog: func() int { return queued }})
	require.NoError(t, err)
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	t.Cleanup(store.Close)
	p, err := a.Spec().New(broadcast.Params{N: testN, F: 1, Self: byzID, Mode: broadcast.ModeDigest},
		broadcast.Env{Store: store, Keys: keyrings(t)[byzID]})
	require.NoError(t, err)
	t.Cleanup(func() { p.(interface{ Close() }).Close() })
	echo := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoBracha, Type: bracha.TypeEcho, Sender: 1,
		Instance: broadcast.Instance{Origin: 0, Seq: 5}, Round: 2, Digest: broadcast.DigestOfBytes([]byte("held")), PayloadLen: 4}}
	require.NoError(t, p.Step(1, &echo))
	assert.Empty(t, drain(p, 0, 5), "the queue is full")
	assert.Equal(t, uint64(5), a.Stats().Paused)
	queued = 100
	assert.Len(t, drain(p, 10*time.Millisecond, 2), 2*32, "drained: the flood goes on")
}
