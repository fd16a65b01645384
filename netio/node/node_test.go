package node_test

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/config"
	"github.com/onecast/onecast/netio/link"
	"github.com/onecast/onecast/netio/netns"
	"github.com/onecast/onecast/netio/node"
)

// namespaceCluster describes topo's nodes as a cluster (port 7700, kind
// on every node, peers' MACs given) with generated keys.
func namespaceCluster(topo *netns.Topology, kind string) (*config.Cluster, []*broadcast.Keyring) {
	rings, err := broadcast.GenerateKeyrings(len(topo.Nodes), crand.Reader)
	if err != nil {
		panic(err)
	}
	c := &config.Cluster{Protocol: "bracha", Mode: "digest", F: (len(topo.Nodes) - 1) / 3, Auth: "ed25519"}
	for i, n := range topo.Nodes {
		tr := &config.Transport{Kind: kind, MAC: n.MAC.String()}
		if kind == config.TransportXDP {
			tr.Iface, tr.Fallback, tr.Frames = n.Ifname, config.TransportUDP, 4096
		}
		c.Nodes = append(c.Nodes, config.Node{ID: i, Addr: netip.AddrPortFrom(n.Addr, 7700).String(),
			Transport: tr})
	}
	return c, rings
}

// namespaces makes four namespaces on a bridge, removed when the test
// ends; it skips the test without root.
func namespaces(t *testing.T) *netns.Topology {
	t.Helper()
	ok, why := netns.Available()
	env.Need(t, ok, why)
	topo, err := netns.New(netns.Config{Nodes: 4, Bridge: true})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, topo.Close()) })
	return topo
}

// startCluster starts every node of c and returns them with the channel
// of their deliveries.
func startCluster(t *testing.T, c *config.Cluster, tweak func(i int, cfg *node.Config)) ([]*node.Node, chan broadcast.Delivery) {
	t.Helper()
	out := make(chan broadcast.Delivery, 64)
	nodes := make([]*node.Node, c.N())
	for i := range nodes {
		cfg := node.Config{Cluster: c, ID: i, Deliveries: out, Frames: 1024, Logger: slog.New(slog.DiscardHandler)}
		if tweak != nil {
			tweak(i, &cfg)
		}
		nd, err := node.Start(cfg)
		require.NoError(t, err, "node %d", i)
		nodes[i] = nd
		t.Cleanup(func() { assert.NoError(t, nd.Close()) })
	}
	return nodes, out
}

// broadcastEverywhere submits payload at node 0 and checks that n
// deliveries of it arrive.
func broadcastEverywhere(t *testing.T, nd *node.Node, n int, out chan broadcast.Delivery, payload []byte) {
	t.Helper()
	b, err := nd.Pool().Copy(payload)
	require.NoError(t, err)
	require.NoError(t, nd.Submit(context.Background(), b))
	for i := range n {
		select {
		case d := <-out:
			assert.Equal(t, payload, append([]byte(nil), d.Payload.Bytes()...), "delivery %d", i)
			d.Payload.Release()
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d deliveries", i, n)
		}
	}
}

// TestNodeClusterOverUDPDeliversAndCounts runs a loopback cluster from a
// generated configuration and checks the deliveries and that Metrics
// reads every layer's counters.
func TestNodeClusterOverUDPDeliversAndCounts(t *testing.T) {
	dir := t.TempDir()
	c, err := config.Generate(config.GenerateOptions{N: 4, Dir: dir, BasePort: 27500})
	require.NoError(t, err)
	c, err = config.Load(filepath.Join(dir, config.ConfigFile))
	require.NoError(t, err)
	nodes, out := startCluster(t, c, nil)
	payload := make([]byte, 5000) // several datagrams
	for i := range payload {
		payload[i] = byte(i)
	}
	broadcastEverywhere(t, nodes[0], 4, out, payload)
	m := nodes[1].Metrics()
	assert.Equal(t, "udp", m.Transport)
	assert.Empty(t, m.Fallback)
	assert.Equal(t, uint64(1), m.Broadcast.Deliveries)
	assert.NotZero(t, m.Link.FramesSent)
	assert.NotZero(t, m.Conduit.BytesReceived)
	assert.NotZero(t, m.Runner.Received)
	assert.Equal(t, nodes[1].LocalAddr().String(), c.Nodes[1].Addr)
	assert.Same(t, nodes[1].Pool(), nodes[1].SendPool(), "over UDP, payloads are sent from the node's pool")
}

// TestNodeRefusesABadConfiguration checks that Start names what is wrong.
func TestNodeRefusesABadConfiguration(t *testing.T) {
	dir := t.TempDir()
	c, err := config.Generate(config.GenerateOptions{N: 4, Dir: dir, BasePort: 27600})
	require.NoError(t, err)
	ring0, err := c.Keyring(0)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		cfg  node.Config
		want string
	}{
		{"no cluster", node.Config{}, "Config.Cluster is required"},
		{"id", node.Config{Cluster: c, ID: 4}, "Config.ID 4 outside"},
		{"protocol", node.Config{Cluster: c, Protocol: "paxos"}, "unknown protocol"},
		{"mode", node.Config{Cluster: c, Mode: "half"}, "mode"},
		{"transport", node.Config{Cluster: c, Transport: &config.Transport{Kind: "xdp"}}, "transport: iface: missing"},
		{"no address", node.Config{Cluster: &config.Cluster{Protocol: "bracha", Mode: "full", F: 1, Auth: "mac",
			Nodes: append(append([]config.Node{}, c.Nodes[:3]...), config.Node{ID: 3, KeyFile: c.Nodes[3].KeyFile})},
			Keyring: ring0}, "nodes[3].addr"},
		{"bound", node.Config{Cluster: &config.Cluster{Protocol: "bracha", Mode: "full", F: 1, Auth: "mac",
			Nodes: c.Nodes[:3]}}, "bracha"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := node.Start(tc.cfg)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// TestNodeXDPClusterInNamespaces runs four nodes over AF_XDP, each in its
// own network namespace, from configuration entries that name their
// veths, and checks deliveries and that the traffic went through AF_XDP.
// Root only; run under flock /tmp/onecast-netns.lock.
func TestNodeXDPClusterInNamespaces(t *testing.T) {
	topo := namespaces(t)
	c, rings := namespaceCluster(topo, config.TransportXDP)
	c.Nodes[3].Transport.MAC = "" // resolved from the neighbour table
	c.Nodes[2].Transport.Bind = "copy"
	nodes, out := startCluster(t, c, func(i int, cfg *node.Config) {
		cfg.Keyring = rings[i]
		cfg.Do = func(fn func() error) error { return topo.Do(i, fn) }
	})
	for i, nd := range nodes {
		m := nd.Metrics()
		require.Equal(t, "xdp", m.Transport, "node %d: %s", i, m.Fallback)
	}
	broadcastEverywhere(t, nodes[0], 4, out, []byte(fmt.Sprintf("%0900d", 7)))

	// Zero copies by identity: every remote delivery's payload lies in the
	// UMEM of a node's conduit, past the headers the kernel wrote there.
	// Built in the sender's SendPool (its UMEM), the payload goes out by
	// reference: no copy into TX frames.
	payload := []byte(fmt.Sprintf("%01200d", 8))
	b, err := nodes[0].SendPool().Copy(payload)
	require.NoError(t, err)
	require.Same(t, nodes[0].Conduit().(interface{ Pool() *bufpool.Pool }).Pool(), nodes[0].SendPool(), "SendPool is the UMEM")
	sendCopied := nodes[0].Metrics().Conduit.SendCopiedBytes
	require.NoError(t, nodes[0].Submit(context.Background(), b))
	inUMEM := 0
	for i := range 4 {
		select {
		case d := <-out:
			for _, nd := range nodes {
				if u, ok := nd.Conduit().(interface{ UMEMHolds(bufpool.Buf) bool }); ok && u.UMEMHolds(d.Payload) {
					inUMEM++
				}
			}
			d.Payload.Release()
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of 4 deliveries", i)
		}
	}
	assert.Equal(t, 3, inUMEM, "the three remote deliveries are views on the UMEM frames the kernel wrote")
	assert.Equal(t, sendCopied, nodes[0].Metrics().Conduit.SendCopiedBytes, "a payload in the UMEM is sent by reference")

	// A second node on node 1's interface and queue: busy.
	_, err = node.Start(node.Config{Cluster: c, ID: 1, Keyring: rings[1], Logger: slog.New(slog.DiscardHandler),
		Transport: &config.Transport{Kind: "xdp", Iface: topo.Nodes[1].Ifname},
		Do:        func(fn func() error) error { return topo.Do(1, fn) }})
	t.Logf("second socket: %v", err)
	assert.ErrorIs(t, err, node.ErrXDPQueueBusy)

	m := nodes[2].Metrics()
	assert.NotZero(t, m.XDP.Kernel.Redirected, "frames went through the XDP program")
	assert.NotZero(t, m.XDP.FramesReceived, "received into UMEM")
	assert.False(t, m.XDP.ZeroCopy, "bound in copy mode")
	assert.NotZero(t, m.UMEM.Gets)
	assert.Zero(t, m.Conduit.RecvCopiedBytes, "AF_XDP passes received frames up by reference")
	assert.Equal(t, m.Conduit.BytesReceived, m.Conduit.KernelRecvCopiedBytes, "copy mode: the kernel copied each received byte into UMEM")
}

// TestNodeXDPZeroCopyOnVethIsUnsupported asks for a zero-copy binding on
// a veth, whose driver binds in copy mode only: one error naming the
// cause. Root only; run under flock /tmp/onecast-netns.lock.
func TestNodeXDPZeroCopyOnVethIsUnsupported(t *testing.T) {
	topo := namespaces(t)
	c, rings := namespaceCluster(topo, config.TransportXDP)
	_, err := node.Start(node.Config{Cluster: c, ID: 0, Keyring: rings[0], Logger: slog.New(slog.DiscardHandler),
		Transport: &config.Transport{Kind: "xdp", Iface: topo.Nodes[0].Ifname, Bind: "zerocopy"},
		Do:        func(fn func() error) error { return topo.Do(0, fn) }})
	t.Logf("zero-copy on veth: %v", err)
	assert.ErrorIs(t, err, node.ErrXDPUnsupported)
}

// TestNodeCloseReleasesWhatNobodyTook broadcasts into a cluster whose
// deliveries channel nobody reads: Close must not wait for a reader, and
// every buffer of every node's pool must be free again afterwards (the
// undelivered payloads released, the store and protocol emptied).
func TestNodeCloseReleasesWhatNobodyTook(t *testing.T) {
	dir := t.TempDir()
	c, err := config.Generate(config.GenerateOptions{N: 4, Dir: dir, BasePort: 27800})
	require.NoError(t, err)
	// Never read: the last node to deliver blocks on it. (Unbuffered, the
	// first two to deliver could block before their READYs left: two
	// stopped nodes where Bracha tolerates f = 1.)
	out := make(chan broadcast.Delivery, 3)
	var nodes []*node.Node
	for i := range c.N() {
		nd, err := node.Start(node.Config{Cluster: c, ID: i, Deliveries: out, Frames: 512, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		nodes = append(nodes, nd)
	}
	b, err := nodes[0].Pool().Copy(make([]byte, 3000))
	require.NoError(t, err)
	require.NoError(t, nodes[0].Submit(context.Background(), b))
	require.Eventually(t, func() bool {
		for _, nd := range nodes {
			if nd.Metrics().Runner.Delivered == 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "every node reached its delivery")
	done := make(chan struct{})
	go func() {
		for _, nd := range nodes {
			assert.NoError(t, nd.Close())
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits for a reader that never comes")
	}
	// The deliveries handed over are the reader's: it releases them.
	for len(out) > 0 {
		d := <-out
		d.Payload.Release()
	}
	for i, nd := range nodes {
		st := nd.Pool().Stats()
		assert.Equal(t, st.Frames, st.Free, "node %d: every frame back in the pool", i)
	}
}

// TestNodeSubmitRefusesAPayloadOverMaxPayload: the default MaxPayload is
// link.DefaultMaxPayload (8 MiB); Submit refuses a larger payload at once,
// naming the limit, instead of broadcasting what no peer will take.
func TestNodeSubmitRefusesAPayloadOverMaxPayload(t *testing.T) {
	dir := t.TempDir()
	c, err := config.Generate(config.GenerateOptions{N: 4, Dir: dir, BasePort: 27640})
	require.NoError(t, err)
	c, err = config.Load(filepath.Join(dir, config.ConfigFile))
	require.NoError(t, err)
	nodes, _ := startCluster(t, c, nil)
	err = nodes[0].Submit(context.Background(), bufpool.Wrap(make([]byte, link.DefaultMaxPayload+1)))
	require.ErrorIs(t, err, link.ErrTooLarge)
	assert.Contains(t, err.Error(), "exceeds MaxPayload of 8388608 bytes")
	assert.Zero(t, nodes[0].Metrics().Link.MessagesSent, "nothing was sent")
}
