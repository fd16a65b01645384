package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/config"
)

// TestGenerateLoadKeyringRoundTrip generates a 4-node loopback cluster,
// loads it back, and checks that keyrings derived from the files agree:
// node 1's signature verifies at node 2 and their MAC keys match.
func TestGenerateLoadKeyringRoundTrip(t *testing.T) {
	dir := t.TempDir()
	_, err := config.Generate(config.GenerateOptions{N: 4, Dir: dir, BasePort: 17000})
	require.NoError(t, err)
	c, err := config.Load(filepath.Join(dir, config.ConfigFile))
	require.NoError(t, err)
	assert.Equal(t, 4, c.N())
	assert.Equal(t, 1, c.F)
	assert.Equal(t, "bracha", c.Protocol)
	assert.Equal(t, broadcast.ModeDigest, c.ModeValue())
	assert.Equal(t, "127.0.0.3:17002", c.Addrs()[2].String())
	st, err := os.Stat(filepath.Join(dir, "node2.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "secret keys are private")

	r1, err := c.Keyring(1)
	require.NoError(t, err)
	r2, err := c.Keyring(2)
	require.NoError(t, err)
	assert.Equal(t, r1.MACKeys[2], r2.MACKeys[1], "pairwise MAC keys agree")
	a1, err := broadcast.NewEd25519(r1)
	require.NoError(t, err)
	a2, err := broadcast.NewEd25519(r2)
	require.NoError(t, err)
	sd := broadcast.DigestOfBytes([]byte("x"))
	require.NoError(t, a2.Verify(1, &sd, a1.Authenticate(nil, 2, &sd)))

	// A key file that belongs to another node is refused.
	c.Nodes[3].KeyFile = "node2.key"
	_, err = c.Keyring(3)
	assert.ErrorContains(t, err, "id")
}

// TestBadConfigNamesTheField feeds broken configurations and checks that
// each error names the field at fault.
func TestBadConfigNamesTheField(t *testing.T) {
	dir := t.TempDir()
	_, err := config.Generate(config.GenerateOptions{N: 4, Dir: dir, BasePort: 17100})
	require.NoError(t, err)
	good, err := os.ReadFile(filepath.Join(dir, config.ConfigFile))
	require.NoError(t, err)
	_, err = config.Parse(good)
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		old, new, want string
	}{
		"mode":       {"mode: digest", "mode: fast", "mode:"},
		"auth":       {"auth: ed25519", "auth: none", "auth:"},
		"f":          {"f: 1", "f: 4", "f:"},
		"addr":       {"addr: 127.0.0.2:17101", "addr: 127.0.0.2", "nodes[1].addr"},
		"dup addr":   {"addr: 127.0.0.2:17101", "addr: 127.0.0.1:17100", "nodes[1].addr"},
		"id":         {"id: 2", "id: 7", "nodes[2].id"},
		"protocol":   {"protocol: bracha", "protocol: \"\"", "protocol:"},
		"unknown":    {"protocol: bracha", "protocol: bracha\ncolour: blue", "colour"},
		"verify key": {"verify_key: ", "verify_key: AAAA", "nodes[0].verify_key"},
	} {
		t.Run(name, func(t *testing.T) {
			bad := strings.Replace(string(good), tc.old, tc.new, 1)
			require.NotEqual(t, string(good), bad, "the edit applies")
			_, err := config.Parse([]byte(bad))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
