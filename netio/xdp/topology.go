package xdp

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/netns"
)

// TopologyConfig returns the Config of node i of topo: its interface, MAC
// and address, with every other node as a peer, all on UDP port `port`.
// Node IDs are the nodes' indexes.
func TopologyConfig(topo *netns.Topology, i int, port uint16) Config {
	n := topo.Nodes[i]
	cfg := Config{
		Ifindex: n.Ifindex, Self: broadcast.NodeID(i), MAC: n.MAC,
		Addr:  netip.AddrPortFrom(n.Addr, port),
		Peers: make(map[broadcast.NodeID]Peer, len(topo.Nodes)-1),
	}
	for j, p := range topo.Nodes {
		if j != i {
			cfg.Peers[broadcast.NodeID(j)] = Peer{MAC: p.MAC, Addr: netip.AddrPortFrom(p.Addr, port)}
		}
	}
	return cfg
}

// OpenTopology opens one conduit per node of topo, each inside its node's
// namespace, configured by TopologyConfig and then by tweak (may be nil).
// On error, the conduits opened so far are closed.
func OpenTopology(topo *netns.Topology, port uint16, tweak func(i int, cfg *Config)) ([]*Conduit, error) {
	out := make([]*Conduit, 0, len(topo.Nodes))
	for i := range topo.Nodes {
		cfg := TopologyConfig(topo, i, port)
		if tweak != nil {
			tweak(i, &cfg)
		}
		var c *Conduit
		err := topo.Do(i, func() error {
			var err error
			c, err = New(cfg)
			return err
		})
		if err != nil {
			errs := []error{fmt.Errorf("xdp: conduit of node %d: %w", i, err)}
			for _, o := range out {
				errs = append(errs, o.Close())
			}
			return nil, errors.Join(errs...)
		}
		out = append(out, c)
	}
	return out, nil
}
