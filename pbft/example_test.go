package pbft_test

import (
	"fmt"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/mem"
	"github.com/onecast/onecast/pbft"
)

// Example runs four replicas over the in-process transport: node 2's client
// issues three requests, every replica executes them in the same order, and
// the client accepts each result once f+1 replicas returned it.
func Example() {
	const n, f = 4, 1
	nodes := make([]*pbft.Node, n)
	protos := make([]broadcast.Protocol, n)
	for i := range n {
		nd, err := pbft.New(pbft.Config{
			Params: broadcast.Params{N: n, F: f, Self: broadcast.NodeID(i), Mode: broadcast.ModeDigest},
			Store:  broadcast.NewPayloadStore(broadcast.StoreConfig{}),
		})
		if err != nil {
			panic(err)
		}
		nodes[i], protos[i] = nd, nd
	}
	c := mem.NewCluster(mem.NewNetwork(n), protos)
	defer c.Close()
	for _, op := range []string{"set x 1", "incr x", "get x"} {
		if err := c.Submit(2, bufpool.Wrap([]byte(op))); err != nil {
			panic(err)
		}
	}
	c.Run(time.Second, 1_000_000)
	for _, d := range c.Delivered[0] {
		fmt.Printf("seq %d: %s from client %d\n", d.Instance.Seq, d.Payload.Bytes(), d.Instance.Origin)
	}
	fmt.Println("results at client 2:", len(nodes[2].TakeResults(nil)))
	// Output:
	// seq 1: set x 1 from client 2
	// seq 2: incr x from client 2
	// seq 3: get x from client 2
	// results at client 2: 3
}
