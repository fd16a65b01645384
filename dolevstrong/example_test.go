package dolevstrong_test

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/netio/mem"
)

// Four nodes tolerating three Byzantine ones: node 2 broadcasts a value in
// digest mode, and after f+1 = 4 rounds every node outputs it.
func Example() {
	const n, f = 4, 3
	delta := 10 * time.Millisecond
	keys, _ := broadcast.GenerateKeyrings(n, rand.Reader)
	nodes := make([]broadcast.Protocol, n)
	for i := range n {
		nodes[i], _ = dolevstrong.New(dolevstrong.Config{
			Params:        broadcast.Params{N: n, F: f, Self: broadcast.NodeID(i), Mode: broadcast.ModeDigest},
			Store:         broadcast.NewPayloadStore(broadcast.StoreConfig{}),
			Keys:          keys[i],
			RoundDuration: delta,
		})
	}
	c := mem.NewCluster(mem.NewNetwork(n), nodes)
	defer c.Close()
	c.TickAll(0)
	_ = c.Submit(2, bufpool.Wrap([]byte("hello, synchronous world")))
	c.Run(time.Duration(f+2)*delta, 1_000_000)
	for i := range n {
		d := c.Delivered[i][0]
		fmt.Printf("node %d: %v %q\n", i, d.Instance, d.Payload.Bytes())
	}
	// Output:
	// node 0: n2/1 "hello, synchronous world"
	// node 1: n2/1 "hello, synchronous world"
	// node 2: n2/1 "hello, synchronous world"
	// node 3: n2/1 "hello, synchronous world"
}
