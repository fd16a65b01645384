package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/onecast/onecast/netio/config"
)

// TestKeygenRefusesBadFlagsBeforeWriting checks every flag keygen must
// refuse, with exit code 2, and that nothing is written for any of them.
func TestKeygenRefusesBadFlagsBeforeWriting(t *testing.T) {
	for name, args := range map[string][]string{
		"bracha needs 3f+1":       {"--n", "3", "--f", "1"},
		"pbft needs 3f+1":         {"--n", "6", "--f", "2", "--protocol", "pbft"},
		"dolevstrong needs f < n": {"--n", "2", "--f", "2", "--protocol", "dolevstrong"},
		"unknown protocol":        {"--protocol", "foo"},
		"unknown mode":            {"--mode", "foo"},
		"unknown authenticator":   {"--auth", "rot13"},
		"negative f":              {"--f", "-1"},
		"stray positional":        {"extra"},
		"unknown flag":            {"--colour", "blue"},
		"malformed integer":       {"--n", "four"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "c")
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"keygen", "--out", dir}, args...), &out, &errb)
			assert.Equal(t, 2, code, errb.String())
			_, err := os.Stat(dir)
			assert.True(t, os.IsNotExist(err), "nothing written: %v", err)
		})
	}
	var out, errb bytes.Buffer
	dir := t.TempDir()
	require.Equal(t, 0, run(context.Background(), []string{"keygen", "--n", "2", "--f", "1", "--protocol", "dolevstrong", "--out", dir}, &out, &errb), errb.String())
	assert.Contains(t, out.String(), "n=2 f=1 dolevstrong")
}

// TestUsageErrorPrintsUsageOnceAndExits2 checks the Go convention for an
// unknown flag and for a bad flag value: the complaint, the usage once, exit
// code 2.
func TestUsageErrorPrintsUsageOnceAndExits2(t *testing.T) {
	for _, args := range [][]string{
		{"keygen", "--bogus"},
		{"bench", "--bogus"},
		{"node", "--bogus"},
		{"characterize", "--bogus"},
		{"bench", "--mode", "fast"},
		{"keygen", "--out", "/nonexistent/x", "--protocol", "foo"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		assert.Equal(t, 2, code, "%v", args)
		s := errb.String()
		usage := "-h" // every usage lists its flags; count one that all have
		switch args[0] {
		case "keygen":
			usage = "-out string"
		case "bench":
			usage = "-payload value"
		case "node":
			usage = "-config string"
		case "characterize":
			usage = "-quick"
		}
		assert.Equal(t, 1, strings.Count(s, usage), "%v: the usage once:\n%s", args, s)
		if args[1] == "--bogus" {
			assert.Equal(t, 1, strings.Count(s, "-bogus"), "%v: the complaint once:\n%s", args, s)
		}
		assert.Empty(t, out.String(), "%v: nothing on stdout", args)
	}
	// Every command the same way.
	for _, c := range commands() {
		var out, usage, errb bytes.Buffer
		require.Equal(t, 0, run(context.Background(), []string{c.name, "-h"}, &out, &usage), c.name)
		require.NotEmpty(t, usage.String(), c.name)
		assert.Equal(t, 2, run(context.Background(), []string{c.name, "--bogus"}, &out, &errb), c.name)
		assert.Equal(t, "flag provided but not defined: -bogus\n"+usage.String(), errb.String(), "%s: the complaint, then the usage, once", c.name)
	}
}

// TestPayloadSizesTakeEveryBinaryUnit checks that --payload reads GiB (and
// refuses it with the payload limit, not as an unreadable size).
func TestPayloadSizesTakeEveryBinaryUnit(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"bench", "--payload", "1GiB"}, &out, &errb)
	assert.Equal(t, 2, code)
	assert.Contains(t, errb.String(), "exceeds the 8MiB payload limit")
	code = run(context.Background(), []string{"bench", "--payload", "16MiB"}, &out, &errb)
	assert.Equal(t, 2, code, "16 MiB is over the nodes' default MaxPayload: refused before anything runs")
	assert.Contains(t, errb.String(), "exceeds the 8MiB payload limit (the nodes' default MaxPayload)")
	assert.NotContains(t, errb.String(), "want a positive size")
}

// TestNodeRefusesACorruptedSigningKey corrupts node 1's Ed25519 seed and
// checks that `onecast node` refuses to start, naming the key file.
func TestNodeRefusesACorruptedSigningKey(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"keygen", "--n", "4", "--out", dir, "--port", "7000"}, &out, &errb), errb.String())
	keyPath := filepath.Join(dir, "node1.key")
	data, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	var sec config.Secret
	require.NoError(t, yaml.Unmarshal(data, &sec))
	sk, err := base64.StdEncoding.DecodeString(sec.SignKey)
	require.NoError(t, err)
	sk[0] ^= 1
	sec.SignKey = base64.StdEncoding.EncodeToString(sk)
	data, err = yaml.Marshal(&sec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyPath, data, 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a node that did start would stop at once
	errb.Reset()
	code := run(ctx, []string{"node", "--config", filepath.Join(dir, "cluster.yaml"), "--id", "1", "--stats", "0"}, &out, &errb)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), keyPath)
	assert.Contains(t, errb.String(), "sign_key does not match")
}

// TestFlagsAreCheckedBeforeAnyFileIsWritten gives kv and bench a bad flag
// next to one that writes a file: the usage error comes first and the file
// is never created.
func TestFlagsAreCheckedBeforeAnyFileIsWritten(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "cpu.prof")
	for _, args := range [][]string{
		{"kv", "--single", "--cpuprofile", prof},                                  // no --listen
		{"kv", "--config", "x.yaml", "--cpuprofile", prof, "--log-level", "loud"}, // bad level
		{"bench", "--out", filepath.Join(dir, "out"), "--repeat", "0"},
	} {
		var out, errb bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), args, &out, &errb), "%v: %s", args, errb.String())
		assert.NoFileExists(t, prof, "%v", args)
		assert.NoDirExists(t, filepath.Join(dir, "out"), "%v", args)
	}
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	var out, errb bytes.Buffer
	assert.Equal(t, 2, run(context.Background(), []string{"bench", "--out", file}, &out, &errb), "an --out that is a file is refused before the run")
}
