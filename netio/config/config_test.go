package config_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

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

// TestCorruptedSigningKeyIsRefusedAtLoad flips one byte of a node's Ed25519
// seed, keeping the public half the file also carries: the keyring must
// refuse the file, naming it, instead of starting a node whose signatures
// every peer drops.
func TestCorruptedSigningKeyIsRefusedAtLoad(t *testing.T) {
	dir := t.TempDir()
	_, err := config.Generate(config.GenerateOptions{N: 4, Dir: dir, BasePort: 17200})
	require.NoError(t, err)
	keyPath := filepath.Join(dir, "node1.key")
	data, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	var sec config.Secret
	require.NoError(t, yaml.Unmarshal(data, &sec))
	sk, err := base64.StdEncoding.DecodeString(sec.SignKey)
	require.NoError(t, err)
	sk[3] ^= 0x40 // in the seed
	sec.SignKey = base64.StdEncoding.EncodeToString(sk)
	data, err = yaml.Marshal(&sec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyPath, data, 0o600))

	c, err := config.Load(filepath.Join(dir, config.ConfigFile))
	require.NoError(t, err)
	_, err = c.Keyring(1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), keyPath, "the error names the file")
	assert.Contains(t, err.Error(), "sign_key")
	_, err = c.Keyring(2)
	assert.NoError(t, err, "the other nodes' files are fine")
}

// TestGenerateWritesNothingForABadOption checks that an invalid mode or
// authenticator is refused before the directory or any key file exists.
func TestGenerateWritesNothingForABadOption(t *testing.T) {
	for _, o := range []config.GenerateOptions{{N: 4, Mode: "fast"}, {N: 4, Auth: "rot13"}, {N: 4, F: 4}} {
		dir := filepath.Join(t.TempDir(), "c")
		o.Dir, o.BasePort = dir, 17300
		_, err := config.Generate(o)
		require.Error(t, err)
		_, statErr := os.Stat(dir)
		assert.True(t, os.IsNotExist(statErr), "%+v: nothing written", o)
	}
}

// TestGenerateFaultsDefaultAndNoFaults checks that a zero F is the default
// ⌊(n−1)/3⌋ and NoFaults is f = 0.
func TestGenerateFaultsDefaultAndNoFaults(t *testing.T) {
	for f, want := range map[int]int{0: 2, config.NoFaults: 0, 1: 1} {
		c, err := config.Generate(config.GenerateOptions{N: 7, F: f, Dir: t.TempDir()})
		require.NoError(t, err)
		assert.Equal(t, want, c.F, "F: %d", f)
	}
}
