package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/netio/config"
)

// TestExplicitFZeroIsFZero checks that every command taking --f reads an
// explicit --f 0 as f = 0, not as its default (the largest f at n), and
// still defaults when --f is not given (issue 21: `keygen --f 0` meant the
// default f).
func TestExplicitFZeroIsFZero(t *testing.T) {
	ctx := context.Background()
	t.Run("keygen", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			f    int
		}{
			{[]string{"--n", "4", "--f", "0"}, 0},
			{[]string{"--n", "4"}, 1},
			{[]string{"--n", "7", "--f", "0", "--protocol", "pbft"}, 0},
			{[]string{"--n", "3", "--f", "0", "--protocol", "dolevstrong"}, 0},
		} {
			dir := t.TempDir()
			var out, errb bytes.Buffer
			require.Equal(t, 0, run(ctx, append([]string{"keygen", "--out", dir}, tc.args...), &out, &errb), "%v: %s", tc.args, errb.String())
			c, err := config.Load(filepath.Join(dir, config.ConfigFile))
			require.NoError(t, err)
			assert.Equal(t, tc.f, c.F, "%v", tc.args)
			assert.Contains(t, out.String(), " f="+strconv.Itoa(tc.f)+" ", "%v", tc.args)
		}
	})
	t.Run("sim", func(t *testing.T) {
		for _, tc := range []struct {
			args   []string
			header string
		}{
			{[]string{"--n", "4", "--f", "0"}, "n=4 f=0 "},
			{[]string{"--n", "4"}, "n=4 f=1 "},
			{[]string{"--n", "3", "--f", "0", "--protocol", "dolevstrong"}, "n=3 f=0 "},
			{[]string{"--n", "4", "--f", "0", "--protocol", "pbft", "--per-node", "2"}, "n=4 f=0 "},
		} {
			var out, errb bytes.Buffer
			code := run(ctx, append([]string{"sim", "--seeds", "3"}, tc.args...), &out, &errb)
			require.Equal(t, 0, code, "%v: %s%s", tc.args, out.String(), errb.String())
			assert.Contains(t, out.String(), tc.header, "%v", tc.args)
		}
		// f = 0 tolerates no Byzantine node: the run itself has f = 0.
		var out, errb bytes.Buffer
		assert.Equal(t, 2, run(ctx, []string{"sim", "--n", "4", "--f", "0", "--byzantine", "1:silent", "--seeds", "1"}, &out, &errb))
		assert.Contains(t, errb.String(), "exceed f = 0")
	})
	t.Run("bench", func(t *testing.T) {
		var out, errb bytes.Buffer
		code := run(ctx, []string{"bench", "--n", "4", "--f", "0", "--payload", "1KiB", "--duration", "300ms", "--warmup", "100ms",
			"--format", "json"}, &out, &errb)
		require.Equal(t, 0, code, errb.String())
		var results []map[string]any
		require.NoError(t, json.Unmarshal(out.Bytes(), &results))
		require.Len(t, results, 2)
		for _, r := range results {
			assert.Equal(t, 0.0, r["f"])
			assert.Greater(t, r["deliveries"].(float64), 0.0)
		}
		errb.Reset()
		assert.Equal(t, 2, run(ctx, []string{"bench", "--n", "4", "--f", "0", "--byzantine", "1:silent"}, &out, &errb))
		assert.Contains(t, errb.String(), "exceed f = 0")
	})
	t.Run("bench local", func(t *testing.T) {
		// The node processes run the configuration bench generated for
		// them: f = 0 in it, not config.Generate's default.
		t.Setenv(runMainEnv, "1")
		copied := t.TempDir()
		t.Setenv(copyConfigEnv, copied)
		var out, errb bytes.Buffer
		code := run(ctx, []string{"bench", "--cluster", "local", "--transport", "udp", "--mode", "digest", "--n", "4", "--f", "0",
			"--payload", "1KiB", "--duration", "500ms", "--warmup", "200ms", "--format", "json"}, &out, &errb)
		require.Equal(t, 0, code, errb.String())
		c, err := config.Load(filepath.Join(copied, "node0.yaml"))
		require.NoError(t, err)
		assert.Equal(t, 0, c.F, "the nodes run with f = 0")
	})
}

// TestFIsValidatedAgainstN checks the bound of each protocol on --f in
// every command that takes it: n ≥ 3f+1 for Bracha and PBFT, f < n for
// Dolev–Strong, a usage error (exit 2) otherwise.
func TestFIsValidatedAgainstN(t *testing.T) {
	for _, args := range [][]string{
		{"keygen", "--n", "3", "--f", "1"},
		{"keygen", "--n", "6", "--f", "2", "--protocol", "pbft"},
		{"keygen", "--n", "2", "--f", "2", "--protocol", "dolevstrong"},
		{"sim", "--n", "3", "--f", "1"},
		{"sim", "--n", "6", "--f", "2", "--protocol", "pbft"},
		{"sim", "--n", "2", "--f", "2", "--protocol", "dolevstrong"},
		{"sim", "--f", "-1"},
		{"bench", "--n", "3", "--f", "1"},
		{"bench", "--n", "6", "--f", "2", "--protocol", "pbft"},
		{"bench", "--n", "2", "--f", "2", "--protocol", "dolevstrong"},
		{"bench", "--f", "-1"},
	} {
		if args[0] == "keygen" {
			args = append(args, "--out", filepath.Join(t.TempDir(), "c"))
		}
		var out, errb bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), args, &out, &errb), "%v: %s", args, errb.String())
		assert.Empty(t, out.String(), "%v: nothing run", args)
	}
}
