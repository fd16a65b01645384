package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// timedWriter records when the first write arrived; safe for concurrent use.
type timedWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	first time.Time
}

func (w *timedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first.IsZero() {
		w.first = time.Now()
	}
	return w.buf.Write(p)
}

func (w *timedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestBenchPrintsModesSideBySide runs the default point pair, shortened,
// with stderr not a terminal (as in `onecast bench | cat` or a CI log), and
// checks: progress lines on stderr from the start (point k of N, elapsed,
// time left), the table, the labelled and aligned "digest ÷ full" row, and
// a legend line for every column.
func TestBenchPrintsModesSideBySide(t *testing.T) {
	var out bytes.Buffer
	errw := &timedWriter{}
	start := time.Now()
	code := run(context.Background(), []string{"bench", "--duration", "3s", "--warmup", "200ms"}, &out, errw)
	require.Equal(t, 0, code, errw.String())
	progress := errw.String()
	assert.Less(t, errw.first.Sub(start), 2*time.Second, "the first progress line comes within 2 s")
	assert.Regexp(t, `bench: point 1 of 2 \(bracha/full/mem/inproc/n4/f1/16KiB/b1\), 0s elapsed, about \d+s left`, progress)
	assert.Contains(t, progress, "bench: point 2 of 2", "a line every few seconds: %s", progress)

	s := out.String()
	assert.Contains(t, s, "bracha full mem/inproc n=4 f=1 16KiB")
	assert.Contains(t, s, "bracha digest mem/inproc n=4 f=1 16KiB")
	assert.Regexp(t, `(?m)^digest ÷ full: bracha mem/inproc n=4 f=1 16KiB b=1 +\d+\.\d\d×`, s, "the ratio row says what it is")
	// Every table line (header, points, ratio) is as wide as the header:
	// the figures are right-aligned under their column names.
	lines := strings.Split(s, "\n")
	var table []string
	for i, l := range lines {
		if strings.HasPrefix(l, "point ") {
			table = lines[i : i+4]
			break
		}
	}
	require.Len(t, table, 4, s)
	for _, l := range table[1:] {
		assert.Equal(t, utf8.RuneCountInString(table[0]), utf8.RuneCountInString(l), "aligned:\n%s\n%s", table[0], l)
	}
	for _, col := range []string{"deliveries/s", "payload MB/s", "p50 ms", "p99 ms", "dup factor", "wire factor", "copies/B",
		"allocs/deliv", "cpu µs/deliv", "rss MB"} {
		assert.Regexp(t, `(?m)^  `+regexp.QuoteMeta(col)+` +\S`, s, "a legend line for %s", col)
	}
	assert.Regexp(t, `(?m)^  ÷ +digest ÷ full`, s, "the legend explains the ratio row")
	assert.Contains(t, s, "--repeat 5 gives each figure's median and min–max", "a single run says its figures vary")
}

// TestBenchRepeatGivesMedianAndSpread runs each point three times and checks
// the median row, the min–max row under it, and the JSON's repeat values.
func TestBenchRepeatGivesMedianAndSpread(t *testing.T) {
	args := []string{"bench", "--repeat", "3", "--duration", "300ms", "--warmup", "100ms", "--payload", "1KiB"}
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), args, &out, &errb), errb.String())
	s := out.String()
	assert.Equal(t, 2, strings.Count(s, "  min–max of 3 runs "), "one spread row per point:\n%s", s)
	assert.Contains(t, s, "  min–max of the runs' ratios", "the ratio's spread too")
	assert.Regexp(t, `(?m)^  min–max +the smallest and largest`, s, "legend")
	assert.Contains(t, errb.String(), "point 1 of 6 (bracha/full/mem/inproc/n4/f1/1KiB/b1, run 1 of 3)", "progress counts every run")

	out.Reset()
	errb.Reset()
	require.Equal(t, 0, run(context.Background(), append(args, "--format", "json", "--mode", "digest"), &out, &errb), errb.String())
	var results []map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &results))
	require.Len(t, results, 1)
	assert.Equal(t, 3.0, results[0]["repeats"])
	vals := results[0]["repeat_values"].(map[string]any)["deliveries/s"].([]any)
	require.Len(t, vals, 3)
	fs := []float64{vals[0].(float64), vals[1].(float64), vals[2].(float64)}
	slices.Sort(fs)
	assert.Equal(t, fs[1], results[0]["deliveries_per_sec"], "the figure is the median of the runs")
}

// TestBenchRemoteAsTheReadmeWritesIt starts four `onecast node` processes
// from keygen's configuration and runs the README's command,
// `bench --cluster remote --config cluster.yaml`, with nothing added but a
// shorter window: protocol, mode, n, f come from the configuration, the
// transport is udp, and every payload is delivered everywhere.
func TestBenchRemoteAsTheReadmeWritesIt(t *testing.T) {
	dir := t.TempDir()
	base := freeBasePort(t, 4)
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"keygen", "--n", "4", "--out", dir, "--port", fmt.Sprint(base)}, &out, &errb), errb.String())
	cfg := filepath.Join(dir, "cluster.yaml")
	for i := range 4 {
		cmd := exec.Command(os.Args[0], "node", "--config", cfg, "--id", fmt.Sprint(i), "--stats", "0", "--frames", "8192")
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 4; {
		c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", base+200+i))
		if err == nil {
			c.Close()
			i++
			continue
		}
		require.True(t, time.Now().Before(deadline), "node %d's control port did not come up", i)
		time.Sleep(20 * time.Millisecond)
	}
	out.Reset()
	errb.Reset()
	code := run(context.Background(), []string{"bench", "--cluster", "remote", "--config", cfg,
		"--duration", "1s", "--warmup", "300ms", "--format", "json"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	var results []map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &results))
	require.Len(t, results, 1, "one point: the configuration's")
	r := results[0]
	assert.Equal(t, "digest", r["mode"])
	assert.Equal(t, "udp", r["transport"])
	assert.Equal(t, "remote", r["cluster"])
	assert.Greater(t, r["deliveries"].(float64), 0.0)
	assert.Equal(t, 0.0, r["incomplete_payloads"], "a healthy cluster delivers every payload everywhere")
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
	// The counters the notes under the table come from cross the control
	// port too.
	health, ok := r["health"].(map[string]any)
	require.True(t, ok, "health counters in the JSON: %v", r)
	assert.Greater(t, health["frames_sent"].(float64), 0.0, "the nodes' links sent data frames")
	assert.Greater(t, health["receive_frames"].(float64), 0.0, "the size of a node's receive pool")
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

// TestBenchLegendUnderEveryTable runs a point with and without a Byzantine
// node, which prints two tables (the figures and the resource budgets), and
// checks that every column of each table has its line in the legend under
// them.
func TestBenchLegendUnderEveryTable(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"bench", "--byzantine-sweep", "none,1:silent", "--mode", "digest", "--payload", "1KiB",
		"--duration", "300ms", "--warmup", "100ms"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	s := out.String()
	columns := regexp.MustCompile(` {2,}`)
	tables := 0
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "point ") && !strings.HasPrefix(l, "resource budgets (correct nodes) ") {
			continue
		}
		tables++
		cols := columns.Split(strings.TrimSpace(l), -1)
		require.Greater(t, len(cols), 5, l)
		for _, col := range cols[1:] {
			assert.Regexp(t, `(?m)^  `+regexp.QuoteMeta(col)+` +\S`, s, "a legend line for %q of the table %q", col, cols[0])
		}
	}
	assert.Equal(t, 2, tables, s)
}
