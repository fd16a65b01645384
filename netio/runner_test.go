package netio_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/link"
	"github.com/onecast/onecast/netio/mem"
	"github.com/onecast/onecast/netio/udp"
)

// loopbackAddrs returns n free UDP addresses on distinct 127.0.0.x hosts.
func loopbackAddrs(t testing.TB, n int) []netip.AddrPort {
	t.Helper()
	addrs, err := udp.LoopbackAddrs(n, 20)
	require.NoError(t, err)
	return addrs
}

// udpNode is one node of a test cluster on loopback UDP.
type udpNode struct {
	id      broadcast.NodeID
	pool    *bufpool.Pool
	conduit *udp.Conduit
	link    *link.Link
	runner  *netio.Runner
	metrics *broadcast.Metrics

	mu        sync.Mutex
	delivered map[broadcast.Instance]int
	count     int
	notify    chan struct{}
	// onPayload, when set, sees each delivery before its release.
	onPayload func(broadcast.Delivery)
}

func (n *udpNode) onDeliver(d broadcast.Delivery) {
	n.mu.Lock()
	n.delivered[d.Instance]++
	n.count++
	n.mu.Unlock()
	if n.onPayload != nil {
		n.onPayload(d)
	}
	d.Payload.Release()
	select {
	case n.notify <- struct{}{}:
	default:
	}
}

func (n *udpNode) deliveries() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.count
}

type udpNodeOpts struct {
	fault  *udp.Fault
	scheme broadcast.Scheme
	frames int
	// unchecked turns the pool's checked mode off (benchmarks).
	unchecked bool
	// window is the link's window (0: the default).
	window int
}

func startUDPNode(t testing.TB, addrs []netip.AddrPort, id broadcast.NodeID, ring *broadcast.Keyring, proto broadcast.Protocol, o udpNodeOpts) *udpNode {
	t.Helper()
	if o.frames == 0 {
		o.frames = 16384
	}
	n := &udpNode{id: id, metrics: &broadcast.Metrics{}, delivered: map[broadcast.Instance]int{}, notify: make(chan struct{}, 1)}
	n.pool = bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: o.frames, Checked: !o.unchecked, Name: fmt.Sprintf("n%d", id)})
	var f *udp.Fault
	if o.fault != nil {
		c := *o.fault
		c.Seed += uint64(id)
		f = &c
	}
	var err error
	n.conduit, err = udp.New(udp.Config{Self: id, Peers: addrs, Pool: n.pool, Fault: f})
	require.NoError(t, err)
	n.link, err = link.New(link.Config{Self: id, N: len(addrs), Conduit: n.conduit, Metrics: n.metrics, Window: o.window})
	require.NoError(t, err)
	auth, err := broadcast.NewAuthenticator(o.scheme, ring)
	require.NoError(t, err)
	n.runner, err = netio.NewRunner(netio.RunnerConfig{Self: id, N: len(addrs), Protocol: proto, Transport: n.link,
		Auth: auth, Metrics: n.metrics, OnDeliver: n.onDeliver})
	require.NoError(t, err)
	n.runner.Start()
	return n
}

// stop stops the runner and the link; the caller checks the pool after
// releasing the protocol's own references.
func (n *udpNode) stop(t testing.TB) {
	n.runner.Stop()
	require.NoError(t, n.link.Close())
}

// waitFor polls cond until it holds or the deadline passes; msg describes
// the state at the deadline.
func waitFor(t testing.TB, d time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunnerDeliversOverLossyUDP runs the echo protocol on 4 nodes over the
// reliable link on UDP with 5 % loss, with each authenticator scheme, and
// checks every node delivers every payload exactly once, that the copies
// on the receive path are counted, and that nothing leaks.
func TestRunnerDeliversOverLossyUDP(t *testing.T) {
	for _, scheme := range []broadcast.Scheme{broadcast.SchemeEd25519, broadcast.SchemeMAC} {
		t.Run(scheme.String(), func(t *testing.T) {
			defer leaktest.AfterTest(t)()
			const n, per, size = 4, 50, 4096
			addrs := loopbackAddrs(t, n)
			rings, err := broadcast.GenerateKeyrings(n, rand.Reader)
			require.NoError(t, err)
			nodes := make([]*udpNode, n)
			protos := make([]*echoProto, n)
			for i := range n {
				protos[i] = newEcho(broadcast.NodeID(i), n)
				nodes[i] = startUDPNode(t, addrs, broadcast.NodeID(i), rings[i], protos[i],
					udpNodeOpts{fault: &udp.Fault{Seed: 11, Loss: 0.05, Reorder: 0.05}, scheme: scheme})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for s := range per {
				for _, nd := range nodes {
					data := make([]byte, size)
					data[0], data[1] = byte(nd.id), byte(s)
					b, err := nd.pool.Copy(data)
					require.NoError(t, err)
					require.NoError(t, nd.runner.Submit(ctx, b))
				}
			}
			for _, nd := range nodes {
				waitFor(t, 30*time.Second, func() bool { return nd.deliveries() >= n*per },
					func() string { return fmt.Sprintf("node %v delivered %d of %d", nd.id, nd.deliveries(), n*per) })
			}
			time.Sleep(50 * time.Millisecond)
			for _, nd := range nodes {
				nd.stop(t)
			}
			for i, nd := range nodes {
				assert.Equal(t, n*per, nd.deliveries())
				for inst, c := range nd.delivered {
					assert.Equal(t, 1, c, "node %d delivered %v %d times", i, inst, c)
				}
				st := nd.runner.Stats()
				assert.Zero(t, st.AuthFailures+st.SenderMismatch+st.StepErrors)
				snap := nd.metrics.Snapshot()
				assert.Equal(t, uint64(n*per*size), snap.DeliveredBytes)
				assert.Equal(t, uint64((n-1)*per*size), snap.RemoteDeliveredBytes)
				// Each received payload byte was copied once by the kernel,
				// retransmitted duplicates included.
				assert.GreaterOrEqual(t, snap.CopiedBytes, snap.RemoteDeliveredBytes)
				assert.Positive(t, protos[i].ticks, "the protocol was ticked on its NextWake")
				protos[i].release()
				require.NoError(t, nd.pool.CheckLeaks())
			}
		})
	}
}

// TestRunnerRejectsForgedMessages injects, over the mem transport, a
// message whose header names another sender than the link it came from and
// one whose signature does not verify: both are counted and never reach the
// protocol.
func TestRunnerRejectsForgedMessages(t *testing.T) {
	defer leaktest.AfterTest(t)()
	rings, err := broadcast.GenerateKeyrings(3, rand.Reader)
	require.NoError(t, err)
	net := mem.NewNetwork(3)
	defer net.Close()
	auth, err := broadcast.NewEd25519(rings[0])
	require.NoError(t, err)
	proto := newEcho(0, 3)
	metrics := &broadcast.Metrics{}
	r, err := netio.NewRunner(netio.RunnerConfig{Self: 0, N: 3, Protocol: proto, Transport: net.Endpoint(0), Auth: auth, Metrics: metrics})
	require.NoError(t, err)
	r.Start()
	defer r.Stop()

	attacker, err := broadcast.NewEd25519(rings[1])
	require.NoError(t, err)
	ack := func(sender broadcast.NodeID) broadcast.Message {
		m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: echoAck, Sender: sender,
			Instance: broadcast.Instance{Origin: 0, Seq: 1}}}
		sd := broadcast.SigningDigest(&m.Header, nil)
		m.Auth = attacker.Authenticate(nil, 0, &sd)
		return m
	}
	spoofed := ack(2) // node 1 claims to be node 2
	require.NoError(t, net.Endpoint(1).Send(0, &spoofed))
	tampered := ack(1)
	tampered.Round = 7 // changed after signing
	require.NoError(t, net.Endpoint(1).Send(0, &tampered))
	good := ack(1)
	require.NoError(t, net.Endpoint(1).Send(0, &good))
	waitFor(t, 5*time.Second, func() bool { return r.Stats().Stepped == 1 }, func() string { return "the good message was not stepped" })
	st := r.Stats()
	assert.Equal(t, uint64(3), st.Received)
	assert.Equal(t, uint64(1), st.SenderMismatch)
	assert.Equal(t, uint64(1), st.AuthFailures)
	assert.Equal(t, uint64(1), metrics.Rejects.Get(broadcast.ReasonSender))
	assert.Equal(t, uint64(1), metrics.Rejects.Get(broadcast.ReasonAuth))
}

// TestRunnerRefusesNoAuth checks that a runner will not run unauthenticated
// on a real transport, and that every missing field is named.
func TestRunnerRefusesNoAuth(t *testing.T) {
	net := mem.NewNetwork(2)
	defer net.Close()
	base := netio.RunnerConfig{Self: 0, N: 2, Protocol: newEcho(0, 2), Transport: net.Endpoint(0), Auth: broadcast.NoAuth{}}
	for name, tc := range map[string]struct {
		mut  func(*netio.RunnerConfig)
		want string
	}{
		"noauth":    {func(*netio.RunnerConfig) {}, "NoAuth"},
		"protocol":  {func(c *netio.RunnerConfig) { c.Protocol = nil }, "Protocol"},
		"transport": {func(c *netio.RunnerConfig) { c.Transport = nil }, "Transport"},
		"auth":      {func(c *netio.RunnerConfig) { c.Auth = nil }, "Auth"},
		"self":      {func(c *netio.RunnerConfig) { c.AllowNoAuth = true; c.Self = 5 }, "Self"},
	} {
		t.Run(name, func(t *testing.T) {
			c := base
			tc.mut(&c)
			_, err := netio.NewRunner(c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	c := base
	c.AllowNoAuth = true
	_, err := netio.NewRunner(c)
	require.NoError(t, err, "NoAuth is allowed when asked for (in-process transports)")
}
