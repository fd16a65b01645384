package config_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/netio/config"
)

// TestGenerateForHostsWritesABundlePerHost generates a cluster of four
// hosts and checks the addresses and that each host's bundle holds the
// configuration and its own key file only.
func TestGenerateForHostsWritesABundlePerHost(t *testing.T) {
	dir := t.TempDir()
	addrs := []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000", "10.0.0.3:7001"}
	c, err := config.Generate(config.GenerateOptions{Addrs: addrs, Dir: dir, Protocol: "pbft"})
	require.NoError(t, err)
	require.Equal(t, 4, c.N())
	assert.Equal(t, 1, c.F)
	assert.Equal(t, config.Node{ID: 2, Addr: "10.0.0.3:7000", API: "10.0.0.3:7100", Control: "10.0.0.3:7200",
		VerifyKey: c.Nodes[2].VerifyKey, DHKey: c.Nodes[2].DHKey, KeyFile: "node2.key"}, c.Nodes[2])
	assert.Equal(t, "10.0.0.3:7101", c.Nodes[3].API)
	for i := range addrs {
		hc, err := config.Load(filepath.Join(dir, config.HostDir(i), config.ConfigFile))
		require.NoError(t, err)
		assert.Equal(t, c.Nodes, hc.Nodes)
		_, err = hc.Keyring(i)
		require.NoError(t, err, "host %d has its key", i)
		_, err = hc.Keyring((i + 1) % 4)
		assert.ErrorContains(t, err, "key_file", "host %d has no other node's key", i)
	}

	for _, tc := range []struct {
		o    config.GenerateOptions
		want string
	}{
		{config.GenerateOptions{Addrs: []string{"10.0.0.1:7000", "10.0.0.1:7000"}}, "is also address 0"},
		{config.GenerateOptions{Addrs: []string{"host:7000"}}, "address 0"},
		{config.GenerateOptions{Addrs: []string{"10.0.0.1:65400"}}, "port below"},
		{config.GenerateOptions{N: 3, Addrs: []string{"10.0.0.1:7000"}}, "n is 3 but 1 addresses"},
	} {
		tc.o.Dir = t.TempDir()
		_, err := config.Generate(tc.o)
		assert.ErrorContains(t, err, tc.want)
	}
}
