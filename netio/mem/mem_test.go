package mem

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
)

func testPool(t *testing.T) *bufpool.Pool {
	p := bufpool.MustNew(bufpool.Config{FrameSize: 1024, Frames: 64, Checked: true, Name: t.Name()})
	t.Cleanup(func() { require.NoError(t, p.CheckLeaks()) })
	return p
}

func message(t *testing.T, p *bufpool.Pool, seq uint64, body string) broadcast.Message {
	b, err := p.Copy([]byte("payload"))
	require.NoError(t, err)
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Sender: 0, Instance: broadcast.Instance{Seq: seq}}}
	m.SetPayload(b, broadcast.DigestOfBytes([]byte("payload")))
	m.Body = []byte(body)
	m.Auth = []byte("auth")
	return m
}

func TestSendPassesPayloadByReference(t *testing.T) {
	pool := testPool(t)
	net := NewNetwork(2)
	defer net.Close()
	m := message(t, pool, 1, "body")
	copiesBefore := pool.Stats().Copies
	require.NoError(t, net.Endpoint(0).Send(1, &m))
	m.Body[0] = 'X' // the sender may reuse its body buffer after Send
	m.Payload.Release()

	in, err := net.Endpoint(1).Recv(context.Background())
	require.NoError(t, err)
	assert.Equal(t, broadcast.NodeID(0), in.From)
	assert.Equal(t, "body", string(in.Msg.Body), "the body is the receiver's own copy")
	assert.Equal(t, "auth", string(in.Msg.Auth))
	assert.Equal(t, "payload", string(in.Msg.Payload.Bytes()))
	assert.Equal(t, m.Payload.FrameIndex(), in.Msg.Payload.FrameIndex(), "same frame: passed by reference")
	assert.Equal(t, copiesBefore, pool.Stats().Copies, "no payload copy")
	in.Release()
}

func TestFaultsDropDuplicateReorder(t *testing.T) {
	pool := testPool(t)
	fault := func(from, to broadcast.NodeID, m *broadcast.Message, _ *rand.Rand) Decision {
		switch m.Instance.Seq {
		case 1:
			return Decision{Drop: true}
		case 2:
			return Decision{Duplicates: 2}
		}
		return Decision{}
	}
	net := NewNetwork(2, WithFault(fault))
	defer net.Close()
	for seq := uint64(1); seq <= 3; seq++ {
		m := message(t, pool, seq, "")
		require.NoError(t, net.Endpoint(0).Send(1, &m))
		m.Payload.Release()
	}
	var seqs []uint64
	for {
		in, ok := net.Endpoint(1).TryRecv()
		if !ok {
			break
		}
		seqs = append(seqs, in.Msg.Instance.Seq)
		in.Release()
	}
	assert.Equal(t, []uint64{2, 2, 2, 3}, seqs)
	st := net.Stats()
	assert.EqualValues(t, 1, st.Dropped)
	assert.EqualValues(t, 2, st.Duplicated)
}

func TestReorderIsDeterministicForASeed(t *testing.T) {
	run := func(seed uint64) []uint64 {
		pool := testPool(t)
		net := NewNetwork(2, WithSeed(seed), WithFault(func(_, _ broadcast.NodeID, _ *broadcast.Message, _ *rand.Rand) Decision {
			return Decision{Reorder: true}
		}))
		defer net.Close()
		for seq := range uint64(20) {
			m := message(t, pool, seq, "")
			require.NoError(t, net.Endpoint(0).Send(1, &m))
			m.Payload.Release()
		}
		var seqs []uint64
		for {
			in, ok := net.Endpoint(1).TryRecv()
			if !ok {
				return seqs
			}
			seqs = append(seqs, in.Msg.Instance.Seq)
			in.Release()
		}
	}
	a, b := run(7), run(7)
	assert.Equal(t, a, b)
	assert.Len(t, a, 20)
	assert.NotEqual(t, run(8), a, "another seed reorders differently")
}

func TestDelayAndCloseReleaseEverything(t *testing.T) {
	pool := testPool(t)
	net := NewNetwork(2, WithFault(func(_, _ broadcast.NodeID, m *broadcast.Message, _ *rand.Rand) Decision {
		if m.Instance.Seq == 1 {
			return Decision{Delay: time.Hour} // still pending at Close
		}
		return Decision{Delay: time.Millisecond}
	}))
	for seq := uint64(1); seq <= 3; seq++ {
		m := message(t, pool, seq, "")
		require.NoError(t, net.Endpoint(0).Send(1, &m))
		m.Payload.Release()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, err := net.Endpoint(1).Recv(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, uint64(1), in.Msg.Instance.Seq)
	in.Release()
	net.Close() // releases the queued and the delayed messages
	_, err = net.Endpoint(1).Recv(ctx)
	require.ErrorIs(t, err, netio.ErrClosed)
	m := message(t, pool, 9, "")
	require.ErrorIs(t, net.Endpoint(0).Send(1, &m), netio.ErrClosed)
	m.Payload.Release()
}

func TestSendToUnknownNode(t *testing.T) {
	net := NewNetwork(2)
	defer net.Close()
	m := broadcast.Message{}
	require.Error(t, net.Endpoint(0).Send(5, &m))
}

// echoOnce is a toy protocol for the Cluster test: node 0 sends each
// submitted payload to everyone, and every node delivers what it receives.
type echoOnce struct {
	self broadcast.NodeID
	rd   broadcast.Ready
	seq  uint64
}

func (e *echoOnce) Step(from broadcast.NodeID, m *broadcast.Message) error {
	e.rd.Deliveries = append(e.rd.Deliveries, broadcast.Delivery{Instance: m.Instance, Digest: m.Digest, Payload: m.Payload.Retain()})
	return nil
}
func (e *echoOnce) Tick(time.Duration) {}
func (e *echoOnce) Submit(p bufpool.Buf) error {
	e.seq++
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Instance: broadcast.Instance{Origin: e.self, Seq: e.seq}}}
	m.SetPayload(p, broadcast.DigestOf(p))
	e.rd.Messages = append(e.rd.Messages, broadcast.Outbound{To: broadcast.Everyone, Msg: m})
	return nil
}
func (e *echoOnce) Ready() broadcast.Ready {
	rd := e.rd
	e.rd = broadcast.Ready{}
	return rd
}

func TestClusterDrivesProtocolsAndCounts(t *testing.T) {
	pool := testPool(t)
	nodes := make([]broadcast.Protocol, 3)
	for i := range nodes {
		nodes[i] = &echoOnce{self: broadcast.NodeID(i)}
	}
	c := NewCluster(NewNetwork(3), nodes)
	b, err := pool.Copy([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, c.Submit(0, b))
	assert.Equal(t, 2, c.Stabilize(100))
	for i := 1; i < 3; i++ {
		require.Len(t, c.Delivered[i], 1)
		assert.Equal(t, "hello", string(c.Delivered[i][0].Payload.Bytes()))
		snap := c.Metrics[i].Snapshot()
		assert.InDelta(t, 1.0, snap.PayloadDupFactor(), 1e-9)
		assert.InDelta(t, float64(broadcast.HeaderSize+5)/5, snap.WireFactor(), 1e-9)
	}
	assert.EqualValues(t, 2, c.Metrics[0].Snapshot().Totals().SentMessages)
	c.Close()
}
