package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/netio/config"
)

// TestTransportSectionIsOptionalAndValidated checks that a file without
// transport sections still loads (UDP everywhere), that an xdp section
// round-trips, and that each bad field is named.
func TestTransportSectionIsOptionalAndValidated(t *testing.T) {
	dir := t.TempDir()
	_, err := config.Generate(config.GenerateOptions{N: 4, Dir: dir, BasePort: 17200})
	require.NoError(t, err)
	path := filepath.Join(dir, config.ConfigFile)
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	c, err := config.Parse(good)
	require.NoError(t, err, "a file without transport sections stays valid")
	assert.Nil(t, c.Nodes[1].Transport)
	assert.Equal(t, config.TransportUDP, c.Nodes[1].Transport.KindOrDefault())

	// Insert a transport section under node 1's key_file line.
	with := func(section string) []byte {
		lines := strings.Split(string(good), "\n")
		for i, l := range lines {
			if strings.Contains(l, "key_file: node1.key") {
				indent := l[:strings.Index(l, "key_file")]
				var add []string
				for _, s := range strings.Split(strings.TrimSpace(section), "\n") {
					add = append(add, indent+s)
				}
				lines = append(lines[:i+1], append(add, lines[i+1:]...)...)
				break
			}
		}
		return []byte(strings.Join(lines, "\n"))
	}
	c, err = config.Parse(with("transport:\n  kind: xdp\n  iface: eth1\n  queue: 2\n  attach: native\n  bind: zerocopy\n  frame_size: 4096\n  fallback: udp\n  mac: 02:00:00:00:00:01"))
	require.NoError(t, err)
	tr := c.Nodes[1].Transport
	require.NotNil(t, tr)
	assert.Equal(t, config.Transport{Kind: "xdp", Iface: "eth1", Queue: 2, Attach: "native", Bind: "zerocopy",
		FrameSize: 4096, Fallback: "udp", MAC: "02:00:00:00:00:01"}, *tr)

	for _, tc := range []struct{ section, want string }{
		{"transport:\n  kind: dpdk", "nodes[1].transport: kind"},
		{"transport:\n  kind: xdp", "nodes[1].transport: iface: missing"},
		{"transport:\n  kind: xdp\n  iface: eth1\n  queue: 64", "nodes[1].transport: queue"},
		{"transport:\n  kind: xdp\n  iface: eth1\n  frame_size: 3000", "nodes[1].transport: frame_size"},
		{"transport:\n  kind: xdp\n  iface: eth1\n  attach: fast", "nodes[1].transport: attach"},
		{"transport:\n  kind: xdp\n  iface: eth1\n  bind: maybe", "nodes[1].transport: bind"},
		{"transport:\n  kind: xdp\n  iface: eth1\n  fallback: tcp", "nodes[1].transport: fallback"},
		{"transport:\n  kind: udp\n  iface: eth1", "nodes[1].transport: kind: udp takes no AF_XDP"},
		{"transport:\n  mac: zz", "nodes[1].transport: mac"},
		{"transport:\n  kind: xdp\n  ifname: eth1", "field ifname not found"},
	} {
		_, err := config.Parse(with(tc.section))
		assert.ErrorContains(t, err, tc.want, tc.section)
	}
}
