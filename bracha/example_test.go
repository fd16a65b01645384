package bracha_test

import (
	"fmt"
	"time"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/mem"
)

// Four nodes, one of which may be Byzantine, in digest mode: node 0
// broadcasts one payload and every node delivers it.
func Example() {
	const n, f = 4, 1
	nodes := make([]broadcast.Protocol, n)
	for i := range n {
		nd, err := bracha.New(bracha.Config{N: n, F: f, Self: broadcast.NodeID(i), Mode: broadcast.ModeDigest})
		if err != nil {
			panic(err)
		}
		defer nd.Close()
		nodes[i] = nd
	}
	cluster := mem.NewCluster(mem.NewNetwork(n), nodes)
	defer cluster.Close()
	cluster.OnDeliver = func(node broadcast.NodeID, d broadcast.Delivery) {
		fmt.Printf("%v delivered %v: %s\n", node, d.Instance, d.Payload.Bytes())
	}

	// Cluster.Submit calls Node.Broadcast and sends what it returns.
	if err := cluster.Submit(0, bufpool.Wrap([]byte("hello"))); err != nil {
		panic(err)
	}
	cluster.Run(time.Minute, 10_000)
	// Output:
	// n0 delivered n0/0: hello
	// n1 delivered n0/0: hello
	// n2 delivered n0/0: hello
	// n3 delivered n0/0: hello
}
