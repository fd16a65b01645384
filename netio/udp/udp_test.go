package udp_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/udp"
)

func loopbackAddrs(t *testing.T, n int) []netip.AddrPort {
	t.Helper()
	out := make([]netip.AddrPort, n)
	for i := range n {
		ip := netip.AddrFrom4([4]byte{127, 0, 0, byte(40 + i)})
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		require.NoError(t, err)
		out[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
		require.NoError(t, c.Close())
	}
	return out
}

func pair(t *testing.T, fault *udp.Fault) (*udp.Conduit, *udp.Conduit, *bufpool.Pool, []netip.AddrPort) {
	t.Helper()
	addrs := loopbackAddrs(t, 2)
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 1024, Checked: true})
	a, err := udp.New(udp.Config{Self: 0, Peers: addrs, Pool: pool})
	require.NoError(t, err)
	b, err := udp.New(udp.Config{Self: 1, Peers: addrs, Pool: pool, Fault: fault})
	require.NoError(t, err)
	return a, b, pool, addrs
}

// TestConduitBatchesIOAndCountsTheKernelCopy sends 100 datagrams, header
// and a payload buffer each, and checks they arrive intact, in batches of
// system calls, with every received byte counted as copied into user
// memory.
func TestConduitBatchesIOAndCountsTheKernelCopy(t *testing.T) {
	defer leaktest.AfterTest(t)()
	a, b, pool, _ := pair(t, nil)
	body, err := pool.Copy(make([]byte, 1000))
	require.NoError(t, err)
	for i := range 100 {
		require.NoError(t, a.Send(1, []byte{byte(i), 'h', 'd', 'r'}, body))
	}
	require.NoError(t, a.Flush())
	body.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 100 {
		d, err := b.Recv(ctx)
		require.NoError(t, err)
		assert.Equal(t, broadcast.NodeID(0), d.From)
		require.Equal(t, 1004, d.Frame.Len())
		assert.Equal(t, byte(i), d.Frame.Bytes()[0], "loopback keeps the order")
		d.Frame.Release()
	}
	as, bs := a.UDPStats(), b.UDPStats()
	assert.Equal(t, uint64(100), as.FramesSent)
	assert.LessOrEqual(t, as.SendCalls, uint64(4), "32 datagrams per sendmmsg")
	assert.Equal(t, uint64(100*1004), bs.RecvCopiedBytes)
	assert.Equal(t, uint64(100*1004), bs.BytesReceived)
	assert.Less(t, bs.RecvCalls, uint64(100), "several datagrams per recvmmsg")
	assert.Equal(t, uint64(100), a.PeerStats(1).FramesSent)
	assert.Equal(t, uint64(100), b.PeerStats(0).FramesReceived)
	assert.True(t, b.RecvCopies())
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	require.NoError(t, pool.CheckLeaks())
}

// TestConduitDropsStrangersAndRefusesOversize checks that a datagram from
// outside the cluster is dropped and counted, that Send refuses a datagram
// beyond the MTU and a destination outside the cluster, and that Recv ends
// with its context.
func TestConduitDropsStrangersAndRefusesOversize(t *testing.T) {
	defer leaktest.AfterTest(t)()
	a, b, pool, addrs := pair(t, nil)
	stranger, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addrs[1]))
	require.NoError(t, err)
	_, err = stranger.Write([]byte("not from the cluster"))
	require.NoError(t, err)
	require.NoError(t, stranger.Close())

	big, err := pool.Alloc(udp.DefaultMTU)
	require.NoError(t, err)
	assert.Error(t, a.Send(1, []byte("x"), big), "beyond the MTU")
	big.Release()
	assert.Error(t, a.Send(5, []byte("x"), bufpool.Buf{}), "no such node")
	assert.Error(t, a.Send(0, []byte("x"), bufpool.Buf{}), "not to itself")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = b.Recv(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, uint64(1), b.UDPStats().UnknownPeer)
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	_, err = b.Recv(context.Background())
	require.ErrorIs(t, err, netio.ErrClosed)
	require.NoError(t, pool.CheckLeaks())
}

// TestConduitFaultInjectionIsSeeded drops and reorders datagrams with the
// Fault option: the same seed gives the same losses, and reordered
// datagrams still arrive.
func TestConduitFaultInjectionIsSeeded(t *testing.T) {
	defer leaktest.AfterTest(t)()
	run := func() (got []byte, st udp.Stats) {
		a, b, pool, _ := pair(t, &udp.Fault{Seed: 3, Loss: 0.2, Reorder: 0.2})
		for i := range 200 {
			require.NoError(t, a.Send(1, []byte{byte(i)}, bufpool.Buf{}))
			require.NoError(t, a.Flush()) // one at a time: the same arrival order
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		for {
			d, err := b.Recv(ctx)
			if err != nil {
				break
			}
			got = append(got, d.Frame.Bytes()[0])
			d.Frame.Release()
		}
		st = b.UDPStats()
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
		require.NoError(t, pool.CheckLeaks())
		return got, st
	}
	got1, st1 := run()
	got2, st2 := run()
	assert.Equal(t, st1.InjectedLoss, st2.InjectedLoss)
	assert.InDelta(t, 40, st1.InjectedLoss, 25)
	assert.Positive(t, st1.InjectedReorder)
	assert.Len(t, got1, 200-int(st1.InjectedLoss), "every datagram not dropped arrives")
	assert.ElementsMatch(t, got1, got2, "the same datagrams are dropped")
	sorted := true
	for i := 1; i < len(got1); i++ {
		if got1[i] < got1[i-1] {
			sorted = false
		}
	}
	assert.False(t, sorted, "some datagrams were reordered")
}

// TestConduitMovesHeldPayloadsOutOfALowPool keeps every received datagram
// in a PayloadStore, as a protocol that answers late fetches does: without
// the watched store the 64-frame pool would run dry after 64 datagrams;
// with it, the conduit has the store copy held payloads out to the heap and
// all 300 arrive.
func TestConduitMovesHeldPayloadsOutOfALowPool(t *testing.T) {
	defer leaktest.AfterTest(t)()
	addrs := loopbackAddrs(t, 2)
	sendPool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 64, Checked: true})
	recvPool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 64, Checked: true})
	a, err := udp.New(udp.Config{Self: 0, Peers: addrs, Pool: sendPool})
	require.NoError(t, err)
	b, err := udp.New(udp.Config{Self: 1, Peers: addrs, Pool: recvPool, Batch: 4})
	require.NoError(t, err)
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	b.WatchStore(store)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const total = 300
	for i := range total {
		payload := []byte{byte(i), byte(i >> 8), 'p', 'a', 'y', 'l', 'o', 'a', 'd'}
		require.NoError(t, a.Send(1, payload, bufpool.Buf{}))
		require.NoError(t, a.Flush())
		d, err := b.Recv(ctx)
		require.NoError(t, err, "datagram %d", i)
		require.Equal(t, payload, d.Frame.Bytes())
		// The store retains it; the frame stays out of the pool.
		require.NoError(t, store.Put(0, broadcast.DigestOf(d.Frame), d.Frame))
		d.Frame.Release()
	}
	st := b.UDPStats()
	assert.Zero(t, st.NoFrame, "no datagram dropped for want of a frame")
	assert.Positive(t, st.RehomedPayloads, "held payloads were moved out of the pool")
	assert.Equal(t, total, store.Stats().Held)
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	store.Close()
	require.NoError(t, recvPool.CheckLeaks())
	require.NoError(t, sendPool.CheckLeaks())
}
