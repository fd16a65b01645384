package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/config"
	"github.com/onecast/onecast/netio/netns"
	"github.com/onecast/onecast/netio/node"
)

// A four-node Bracha cluster on loopback UDP: node 0 broadcasts a payload
// and every node delivers it.
func Example() {
	dir, _ := os.MkdirTemp("", "onecast-example")
	defer os.RemoveAll(dir)
	c, err := config.Generate(config.GenerateOptions{N: 4, Dir: dir, BasePort: 27400}) // bracha, digest mode, ed25519
	if err != nil {
		panic(err)
	}
	deliveries := make(chan broadcast.Delivery, 4)
	for i := range c.N() {
		nd, err := node.Start(node.Config{Cluster: c, ID: i, Deliveries: deliveries, Frames: 1024,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			panic(err)
		}
		defer nd.Close()
		if i == 0 {
			defer func() { fmt.Println("over", nd.Metrics().Transport) }()
			b, _ := nd.Pool().Copy([]byte("hello, cluster"))
			if err := nd.Submit(context.Background(), b); err != nil { // takes b's reference
				panic(err)
			}
		}
	}
	for range c.N() {
		d := <-deliveries // ours now: release when done
		fmt.Printf("%s from node %d\n", d.Payload.Bytes(), d.Instance.Origin)
		d.Payload.Release()
	}
	// Output:
	// hello, cluster from node 0
	// hello, cluster from node 0
	// hello, cluster from node 0
	// hello, cluster from node 0
	// over udp
}

// A node over AF_XDP: its configuration entry names the interface and
// queue (here, the veth of a network namespace; on a host, the NIC), and
// the node falls back to kernel UDP where AF_XDP cannot be used. (Needs
// root; compiled, not run, by go test. TestXDPClusterInNamespaces runs it.)
func Example_xdp() {
	topo, err := netns.New(netns.Config{Nodes: 4, Bridge: true})
	if err != nil {
		panic(err)
	}
	defer topo.Close()
	c, rings := namespaceCluster(topo, "xdp") // nodes[i].transport: {kind: xdp, iface: <veth>, fallback: udp}
	for i := range c.N() {
		nd, err := node.Start(node.Config{Cluster: c, ID: i, Keyring: rings[i],
			Do: func(fn func() error) error { return topo.Do(i, fn) }})
		if err != nil {
			panic(err)
		}
		defer nd.Close()
		fmt.Println(nd.Metrics().Transport, nd.Metrics().Fallback)
	}
}
