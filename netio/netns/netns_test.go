package netns

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

func skipUnlessRoot(t *testing.T) {
	t.Helper()
	ok, why := Available()
	env.Need(t, ok, why)
}

// listenIn opens a UDP socket bound to addr inside node i's namespace.
func listenIn(t *testing.T, topo *Topology, i int, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	require.NoError(t, topo.Do(i, func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: topo.Nodes[i].Addr.AsSlice(), Port: port})
		return err
	}))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTopologyEveryNodeReachesEveryOther(t *testing.T) {
	skipUnlessRoot(t)
	for _, tc := range []struct {
		nodes  int
		bridge bool
	}{{2, false}, {2, true}, {4, true}} {
		t.Run(fmt.Sprintf("nodes=%d/bridge=%v", tc.nodes, tc.bridge), func(t *testing.T) {
			topo, err := New(Config{Nodes: tc.nodes, Bridge: tc.bridge, Subnet: netip.MustParsePrefix("10.77.1.0/24")})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, topo.Close()) })

			conns := make([]*net.UDPConn, tc.nodes)
			for i := range conns {
				conns[i] = listenIn(t, topo, i, 9000)
			}
			for i := range conns {
				for j := range conns {
					if i == j {
						continue
					}
					msg := fmt.Appendf(nil, "%d->%d", i, j)
					_, err := conns[i].WriteToUDP(msg, &net.UDPAddr{IP: topo.Nodes[j].Addr.AsSlice(), Port: 9000})
					require.NoError(t, err)
					buf := make([]byte, 64)
					require.NoError(t, conns[j].SetReadDeadline(time.Now().Add(2*time.Second)))
					n, from, err := conns[j].ReadFromUDP(buf)
					require.NoError(t, err, "node %d never heard from node %d", j, i)
					assert.Equal(t, string(msg), string(buf[:n]))
					assert.Equal(t, topo.Nodes[i].Addr, from.AddrPort().Addr().Unmap())
				}
			}
		})
	}
}

func TestTopologyNodesHaveStaticNeighboursAndDistinctMACs(t *testing.T) {
	skipUnlessRoot(t)
	topo, err := New(Config{Nodes: 3})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, topo.Close()) })
	seen := map[string]bool{}
	for _, n := range topo.Nodes {
		require.False(t, seen[n.MAC.String()], "duplicate MAC %v", n.MAC)
		seen[n.MAC.String()] = true
		h, err := netlink.NewHandleAt(n.NS)
		require.NoError(t, err)
		neighs, err := h.NeighList(n.Ifindex, netlink.FAMILY_V4)
		h.Close()
		require.NoError(t, err)
		perm := 0
		for _, nb := range neighs {
			if nb.State == netlink.NUD_PERMANENT {
				perm++
			}
		}
		assert.Equal(t, 2, perm, "node %d", n.Index)
	}
}

func TestTopologyCloseRemovesNamedNamespaces(t *testing.T) {
	skipUnlessRoot(t)
	prefix := fmt.Sprintf("octest%d-", time.Now().UnixNano()%1e6)
	topo, err := New(Config{Nodes: 2, Named: true, Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { _ = topo.Close() })
	h, err := vnetns.GetFromName(prefix + "0")
	require.NoError(t, err, "named namespace should exist while the topology lives")
	h.Close()
	require.NoError(t, topo.Close())
	_, err = vnetns.GetFromName(prefix + "0")
	assert.Error(t, err, "named namespace should be gone after Close")
	assert.NoError(t, topo.Close(), "Close is idempotent")
}

func TestConfigRejectsBadValues(t *testing.T) {
	for _, cfg := range []Config{{Nodes: 1}, {Nodes: 251}, {Nodes: 2, Subnet: netip.MustParsePrefix("fd00::/64")}} {
		_, err := New(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
}
