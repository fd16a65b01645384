package link_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/link"
	"github.com/onecast/onecast/netio/udp"
)

// loopbackAddrs returns n free UDP addresses on distinct 127.0.0.x hosts.
func loopbackAddrs(t testing.TB, n int) []netip.AddrPort {
	t.Helper()
	addrs, err := udp.LoopbackAddrs(n, 10)
	require.NoError(t, err)
	return addrs
}

type node struct {
	pool *bufpool.Pool
	cd   *udp.Conduit
	link *link.Link
}

func newNodes(t testing.TB, addrs []netip.AddrPort, fault *udp.Fault, mtu int) []*node {
	t.Helper()
	nodes := make([]*node, len(addrs))
	for i := range addrs {
		nodes[i] = startNode(t, addrs, broadcast.NodeID(i), fault, mtu, 0)
	}
	return nodes
}

func startNode(t testing.TB, addrs []netip.AddrPort, id broadcast.NodeID, fault *udp.Fault, mtu int, epoch uint64) *node {
	t.Helper()
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 8192, Checked: true, Name: fmt.Sprintf("n%d", id)})
	var f *udp.Fault
	if fault != nil {
		c := *fault
		c.Seed += uint64(id)
		f = &c
	}
	cd, err := udp.New(udp.Config{Self: id, Peers: addrs, Pool: pool, MTU: mtu, Fault: f})
	require.NoError(t, err)
	l, err := link.New(link.Config{Self: id, N: len(addrs), Conduit: cd, Epoch: epoch})
	require.NoError(t, err)
	return &node{pool: pool, cd: cd, link: l}
}

func (n *node) close(t testing.TB) {
	require.NoError(t, n.link.Close())
	require.NoError(t, n.pool.CheckLeaks())
}

// testMessage makes a message whose payload encodes (sender, seq) in its
// first 12 bytes and is size bytes long.
func testMessage(t testing.TB, pool *bufpool.Pool, from broadcast.NodeID, seq uint64, size int) broadcast.Message {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + int(seq))
	}
	if size >= 12 {
		binary.LittleEndian.PutUint32(data, uint32(from))
		binary.LittleEndian.PutUint64(data[4:], seq)
	}
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Sender: from,
		Instance: broadcast.Instance{Origin: from, Seq: seq}}, Auth: []byte("sig-of-" + fmt.Sprint(seq))}
	if size > 0 {
		b, err := pool.Copy(data)
		require.NoError(t, err)
		m.SetPayload(b, broadcast.DigestOfBytes(data))
	}
	return m
}

// TestLinkDeliversEveryMessageOnceInOrderDespiteLossAndReordering sends
// messages of every size class (no payload, one frame, fragmented) between
// every pair of 3 nodes over UDP with 5 % loss and 5 % reordering injected,
// and checks each arrives exactly once, in order, with intact payload.
func TestLinkDeliversEveryMessageOnceInOrderDespiteLossAndReordering(t *testing.T) {
	defer leaktest.AfterTest(t)()
	const n, perPair = 3, 300
	addrs := loopbackAddrs(t, n)
	nodes := newNodes(t, addrs, &udp.Fault{Seed: 7, Loss: 0.05, Reorder: 0.05}, 1472)
	sizes := []int{0, 100, 1300, 4096, 20000}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Send from a goroutine per node, pacing on backlog.
	errc := make(chan error, n)
	for i, nd := range nodes {
		go func() {
			for s := range uint64(perPair) {
				for j := range n {
					if j == i {
						continue
					}
					m := testMessage(t, nd.pool, broadcast.NodeID(i), s, sizes[int(s)%len(sizes)])
					for {
						err := nd.link.Send(broadcast.NodeID(j), &m)
						if err == nil {
							break
						}
						if ctx.Err() != nil {
							m.Payload.Release()
							errc <- err
							return
						}
						time.Sleep(time.Millisecond)
					}
					m.Payload.Release()
				}
				_ = nd.link.Flush()
			}
			errc <- nil
		}()
	}
	for range n {
		require.NoError(t, <-errc)
	}
	for i, nd := range nodes {
		next := make([]uint64, n)
		for got := 0; got < perPair*(n-1); got++ {
			in, err := nd.link.Recv(ctx)
			require.NoError(t, err, "node %d after %d messages", i, got)
			from := in.From
			require.Equal(t, from, in.Msg.Sender)
			seq := in.Msg.Instance.Seq
			require.Equal(t, next[from], seq, "node %d: message from %v out of order", i, from)
			next[from]++
			size := sizes[int(seq)%len(sizes)]
			require.Equal(t, size, in.Msg.Payload.Len())
			require.Equal(t, "sig-of-"+fmt.Sprint(seq), string(in.Msg.Auth))
			if size > 0 {
				require.Equal(t, in.Msg.Digest, broadcast.DigestOf(in.Msg.Payload), "payload of %v/%d", from, seq)
			}
			in.Release()
		}
	}
	// Nothing more arrives: no duplicates.
	short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	for _, nd := range nodes {
		_, err := nd.link.Recv(short)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	var retx, loss uint64
	for _, nd := range nodes {
		retx += nd.link.Stats().Retransmits
		loss += nd.cd.UDPStats().InjectedLoss
	}
	assert.Positive(t, loss, "loss was injected")
	assert.Positive(t, retx, "losses were repaired by retransmission")
	for _, nd := range nodes {
		assert.Positive(t, nd.link.Stats().Reassembled)
		assert.Positive(t, nd.link.Stats().RecvCopiedPayload)
	}
	for _, nd := range nodes {
		nd.close(t)
	}
}

// TestLinkCarriesPrefixesLargerThanTheMTU sends messages whose body and
// authenticator alone exceed the MTU (a PRE-PREPARE with a large batch, a
// view change), with and without payloads, over a lossy, reordering link,
// and checks every byte arrives, in order.
func TestLinkCarriesPrefixesLargerThanTheMTU(t *testing.T) {
	defer leaktest.AfterTest(t)()
	addrs := loopbackAddrs(t, 2)
	nodes := newNodes(t, addrs, &udp.Fault{Seed: 3, Loss: 0.05, Reorder: 0.05}, 1472)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type shape struct{ body, payload int }
	// body −1: the prefix fills the first frame exactly, with a payload
	// still to come.
	shapes := []shape{{1400, 0}, {1500, 0}, {5000, 100}, {3000, 20000}, {60000, 0}, {100, 1300}, {-1, 3000}}
	exact := func(seq uint64) int {
		return 1472 - link.HeaderSize - broadcast.HeaderSize - len("sig-of-"+fmt.Sprint(seq))
	}
	const rounds = 20
	body := func(seq uint64, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*13 + int(seq))
		}
		return b
	}
	go func() {
		for s := range uint64(rounds * len(shapes)) {
			sh := shapes[s%uint64(len(shapes))]
			m := testMessage(t, nodes[0].pool, 0, s, sh.payload)
			if sh.body < 0 {
				sh.body = exact(s)
			}
			m.Body = body(s, sh.body)
			for nodes[0].link.Send(1, &m) != nil && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			m.Payload.Release()
			_ = nodes[0].link.Flush()
		}
	}()
	for s := range uint64(rounds * len(shapes)) {
		sh := shapes[s%uint64(len(shapes))]
		if sh.body < 0 {
			sh.body = exact(s)
		}
		in, err := nodes[1].link.Recv(ctx)
		require.NoError(t, err, "message %d", s)
		require.Equal(t, s, in.Msg.Instance.Seq)
		require.Equal(t, body(s, sh.body), in.Msg.Body, "body of message %d", s)
		require.Equal(t, "sig-of-"+fmt.Sprint(s), string(in.Msg.Auth))
		require.Equal(t, sh.payload, in.Msg.Payload.Len())
		if sh.payload > 0 {
			require.Equal(t, in.Msg.Digest, broadcast.DigestOf(in.Msg.Payload))
		}
		in.Release()
	}
	st := nodes[0].link.Stats()
	assert.Equal(t, uint64(rounds*6), st.SpiltPrefixes, "the 6 shapes whose prefix leaves no room for a payload byte were spilt")
	assert.Zero(t, nodes[1].link.Stats().Rejected)
	for _, nd := range nodes {
		nd.close(t)
	}
}

// TestLinkBacksOffASilentPeerAndBoundsItsQueue sends to a peer that never
// answers: the link sends no data before the peer's epoch is known, probes
// with a growing interval, and refuses sends beyond MaxQueue.
func TestLinkBacksOffASilentPeerAndBoundsItsQueue(t *testing.T) {
	defer leaktest.AfterTest(t)()
	addrs := loopbackAddrs(t, 2)
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 256, Checked: true})
	cd, err := udp.New(udp.Config{Self: 0, Peers: addrs, Pool: pool})
	require.NoError(t, err)
	l, err := link.New(link.Config{Self: 0, N: 2, Conduit: cd, MaxQueue: 16, RTOMin: 5 * time.Millisecond, RTOInit: 5 * time.Millisecond, RTOMax: 80 * time.Millisecond})
	require.NoError(t, err)
	accepted := 0
	for s := range 40 {
		m := testMessage(t, pool, 0, uint64(s), 64)
		if err := l.Send(1, &m); err == nil {
			accepted++
		} else {
			require.ErrorIs(t, err, link.ErrBacklog)
		}
		m.Payload.Release()
	}
	assert.Equal(t, 16, accepted)
	time.Sleep(400 * time.Millisecond)
	st := l.Stats()
	assert.Zero(t, st.FramesSent, "no data before the peer's epoch is known")
	// Probes at 5, 10, 20, 40, 80, 80 … ms: about 8 in 400 ms, not 400.
	assert.Less(t, st.AcksSent, uint64(15))
	assert.Equal(t, uint64(24), st.Backlogged)
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// TestLinkResendsToARestartedPeer kills a node mid-stream and starts a new
// incarnation on the same address: the streams start over and every message
// sent after the restart arrives.
func TestLinkResendsToARestartedPeer(t *testing.T) {
	defer leaktest.AfterTest(t)()
	addrs := loopbackAddrs(t, 2)
	a := startNode(t, addrs, 0, nil, 1472, 0)
	b := startNode(t, addrs, 1, nil, 1472, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	send := func(from *node, to broadcast.NodeID, seq uint64) {
		m := testMessage(t, from.pool, 0, seq, 3000)
		require.NoError(t, from.link.Send(to, &m))
		m.Payload.Release()
		require.NoError(t, from.link.Flush())
	}
	for s := range 10 {
		send(a, 1, uint64(s))
	}
	for s := range 10 {
		in, err := b.link.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, uint64(s), in.Msg.Instance.Seq)
		in.Release()
	}
	time.Sleep(50 * time.Millisecond) // let b's acks reach a
	b.close(t)
	// Sent while b is down: they wait in a's retransmit buffer.
	for s := 10; s < 20; s++ {
		send(a, 1, uint64(s))
	}
	time.Sleep(50 * time.Millisecond)
	b = startNode(t, addrs, 1, nil, 1472, 0)
	for s := 10; s < 20; s++ {
		in, err := b.link.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, uint64(s), in.Msg.Instance.Seq)
		in.Release()
	}
	// And the reverse stream works with the new incarnation.
	m := testMessage(t, b.pool, 1, 99, 10)
	require.NoError(t, b.link.Send(0, &m))
	m.Payload.Release()
	require.NoError(t, b.link.Flush())
	in, err := a.link.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(99), in.Msg.Instance.Seq)
	in.Release()
	assert.Equal(t, uint64(1), a.link.Stats().Restarts)
	a.close(t)
	b.close(t)
}

var _ netio.Transport = (*link.Link)(nil)

// TestLinkDelivers8MiBPayloadThroughADefaultSizedPool: an 8 MiB payload
// needs about 6200 frames at MTU 1472; the receiver's pool has 4096 (the
// AF_XDP conduit's default UMEM shape). The link receives it into the heap
// as it arrives, so it arrives, and the pool is never exhausted.
func TestLinkDelivers8MiBPayloadThroughADefaultSizedPool(t *testing.T) {
	defer leaktest.AfterTest(t)()
	addrs := loopbackAddrs(t, 2)
	nodes := make([]*node, 2)
	for i := range nodes {
		pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 4096, Checked: true, Name: fmt.Sprintf("n%d", i)})
		cd, err := udp.New(udp.Config{Self: broadcast.NodeID(i), Peers: addrs, Pool: pool})
		require.NoError(t, err)
		l, err := link.New(link.Config{Self: broadcast.NodeID(i), N: 2, Conduit: cd})
		require.NoError(t, err)
		nodes[i] = &node{pool: pool, cd: cd, link: l}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m := testMessage(t, bufpool.MustNew(bufpool.Config{FrameSize: 1 << 20, Frames: 9}), 0, 1, 8<<20)
	require.NoError(t, nodes[0].link.Send(1, &m))
	require.NoError(t, nodes[0].link.Flush())
	in, err := nodes[1].link.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, 8<<20, in.Msg.Payload.Len())
	assert.Equal(t, m.Digest, broadcast.DigestOf(in.Msg.Payload))
	in.Release()
	m.Payload.Release()
	st := nodes[1].link.Stats()
	assert.Equal(t, uint64(1), st.HeapReassembled)
	assert.Equal(t, uint64(8<<20), st.HeapCopiedBytes)
	assert.Zero(t, nodes[1].cd.UDPStats().NoFrame, "the receive pool never ran dry")
	t.Logf("receiver: %d frames, %d retransmits by the sender, %d quota drops",
		st.FramesReceived, nodes[0].link.Stats().Retransmits, st.QuotaDrops)

	// Over the limit: refused at the sender, naming it.
	big := bufpool.Wrap(make([]byte, 64<<20+1))
	m2 := testMessage(t, nodes[0].pool, 0, 2, 0)
	m2.SetPayload(big, broadcast.Digest{1})
	err = nodes[0].link.Send(1, &m2)
	require.ErrorIs(t, err, link.ErrTooLarge)
	big.Release()
	for _, nd := range nodes {
		nd.close(t)
	}
}

// TestLinkDeliversThroughASmallPoolDespiteLoss: with a pool of 256 frames
// the peer's frame quota (64) and credit (32) are far below Window (512); over
// a lossy, reordering path every message still arrives once, in order,
// and the sender's credit keeps the receiver's quota from dropping
// anything.
func TestLinkDeliversThroughASmallPoolDespiteLoss(t *testing.T) {
	defer leaktest.AfterTest(t)()
	addrs := loopbackAddrs(t, 2)
	nodes := make([]*node, 2)
	for i := range nodes {
		pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 256, Checked: true, Name: fmt.Sprintf("n%d", i)})
		cd, err := udp.New(udp.Config{Self: broadcast.NodeID(i), Peers: addrs, Pool: pool,
			Fault: &udp.Fault{Seed: uint64(11 + i), Loss: 0.05, Reorder: 0.05}})
		require.NoError(t, err)
		l, err := link.New(link.Config{Self: broadcast.NodeID(i), N: 2, Conduit: cd})
		require.NoError(t, err)
		nodes[i] = &node{pool: pool, cd: cd, link: l}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sizes := []int{10, 1300, 20000, 60000}
	payloads := bufpool.MustNew(bufpool.Config{FrameSize: 64 << 10, Frames: 128})
	const count = 120
	go func() {
		for s := range uint64(count) {
			m := testMessage(t, payloads, 0, s, sizes[s%uint64(len(sizes))])
			for nodes[0].link.Send(1, &m) != nil && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			m.Payload.Release()
			_ = nodes[0].link.Flush()
		}
	}()
	for s := range uint64(count) {
		in, err := nodes[1].link.Recv(ctx)
		if err != nil {
			t.Logf("sender %+v peer %+v", nodes[0].link.Stats(), nodes[0].link.PeerStats(1))
			t.Logf("receiver %+v peer %+v", nodes[1].link.Stats(), nodes[1].link.PeerStats(0))
			t.Logf("recv pool %+v udp %+v", nodes[1].pool.Stats(), nodes[1].cd.UDPStats())
		}
		require.NoError(t, err, "message %d", s)
		require.Equal(t, s, in.Msg.Instance.Seq)
		require.Equal(t, in.Msg.Digest, broadcast.DigestOf(in.Msg.Payload))
		in.Release()
	}
	st := nodes[1].link.Stats()
	assert.Zero(t, st.QuotaDrops, "the sender kept within the receiver's credit")
	assert.LessOrEqual(t, nodes[0].link.PeerStats(1).InFlight, 32)
	t.Logf("receiver: %d frames, %d duplicates, %d heap reassemblies; sender: %d retransmits", st.FramesReceived,
		st.Duplicates, st.HeapReassembled, nodes[0].link.Stats().Retransmits)
	for _, nd := range nodes {
		nd.close(t)
	}
}
