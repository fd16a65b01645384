package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBenchPrintsModesSideBySide runs the default point pair, shortened, and
// checks the table and the ratio block that the README promises.
func TestBenchPrintsModesSideBySide(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"bench", "--duration", "700ms", "--warmup", "200ms"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	s := out.String()
	assert.Contains(t, s, "bracha full mem/inproc n=4 f=1 16KiB")
	assert.Contains(t, s, "bracha digest mem/inproc n=4 f=1 16KiB")
	assert.Contains(t, s, "digest ÷ full")
}

// TestBenchLocalClusterOfNodeProcesses starts four `onecast node` processes
// (this test binary acting as the CLI) and measures them through their
// control ports.
func TestBenchLocalClusterOfNodeProcesses(t *testing.T) {
	t.Setenv(runMainEnv, "1") // children run main()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"bench", "--cluster", "local", "--transport", "udp", "--mode", "digest",
		"--payload", "1KiB", "--duration", "1s", "--warmup", "300ms", "--format", "json"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	var results []map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &results))
	require.Len(t, results, 1)
	r := results[0]
	assert.Equal(t, "local", r["cluster"])
	assert.Greater(t, r["deliveries_per_sec"].(float64), 0.0)
	assert.InDelta(t, 1.0, r["payload_dup_factor"].(float64), 0.02)
	assert.Greater(t, r["cpu_us_per_delivery"].(float64), 0.0, "the nodes report their own CPU")
}

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--mode", "fast"},
		{"bench", "--payload", "lots"},
		{"bench", "--n", "3", "--f", "1"},
		{"bench", "--format", "xml"},
		{"bench", "--cluster", "remote"},
		{"bench", "--byzantine", "2:silent"},
	} {
		var out, errb bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), args, &out, &errb), "%v: %s", args, errb.String())
	}
}
