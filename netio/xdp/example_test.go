package xdp_test

import (
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/link"
	"github.com/onecast/onecast/netio/netns"
	"github.com/onecast/onecast/netio/xdp"
)

// A node's transport stack over AF_XDP: the conduit (one per node, opened
// inside each node's namespace), a payload store that keeps the kernel's
// dedup map in step and rehomes payloads when UMEM frames run low, and the
// reliable link on top. (Needs root; compiled, not run, by go test.)
func Example() {
	topo, err := netns.New(netns.Config{Nodes: 4})
	if err != nil {
		panic(err)
	}
	defer topo.Close()
	conduits, err := xdp.OpenTopology(topo, 7700, nil)
	if err != nil {
		panic(err)
	}
	for i, c := range conduits {
		store := broadcast.NewPayloadStore(broadcast.StoreConfig{Observer: c.Program()})
		defer store.Close()
		c.WatchStore(store)
		l, err := link.New(link.Config{Self: broadcast.NodeID(i), N: len(conduits), Conduit: c})
		if err != nil {
			panic(err)
		}
		defer l.Close() // closes the conduit too
		// … a protocol with Store: store, driven by a netio.Runner over l.
	}
}
