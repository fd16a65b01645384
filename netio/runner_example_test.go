package netio_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/mem"
)

// ExampleRunner drives a small protocol on three nodes over the in-process
// transport: each runner verifies what arrives, steps the protocol, ticks
// it, authenticates and fans out what it sends, and hands deliveries to
// OnDeliver. Over UDP the transport is a link.Link on a udp.Conduit; the
// runner is the same.
func ExampleRunner() {
	const n = 3
	rings, _ := broadcast.GenerateKeyrings(n, rand.Reader)
	network := mem.NewNetwork(n)
	defer network.Close()
	delivered := make(chan string, n)
	var runners []*netio.Runner
	for i := range n {
		id := broadcast.NodeID(i)
		auth, _ := broadcast.NewMAC(rings[i])
		r, err := netio.NewRunner(netio.RunnerConfig{
			Self: id, N: n, Protocol: newEcho(id, n), Transport: network.Endpoint(id), Auth: auth,
			OnDeliver: func(d broadcast.Delivery) {
				delivered <- fmt.Sprintf("node %d delivered %q from %v", id, d.Payload.Bytes(), d.Instance.Origin)
				d.Payload.Release() // OnDeliver takes the reference
			},
		})
		if err != nil {
			panic(err)
		}
		r.Start()
		defer r.Stop()
		runners = append(runners, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = runners[0].Submit(ctx, bufpool.Wrap([]byte("hello"))) // takes the reference
	got := map[string]bool{}
	for range n {
		got[<-delivered] = true
	}
	for i := range n {
		fmt.Println(got[fmt.Sprintf("node %d delivered %q from n0", i, "hello")])
	}
	// Output:
	// true
	// true
	// true
}
