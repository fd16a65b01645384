package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"512": 512, "16KiB": 16 << 10, "1MiB": 1 << 20, "4k": 4096, "2M": 2 << 20, "64 KiB": 64 << 10, "100B": 100} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		back, err := ParseSize(FormatSize(got))
		require.NoError(t, err)
		assert.Equal(t, got, back, "FormatSize round-trips %s", in)
	}
	for _, bad := range []string{"", "0", "-1KiB", "lots", "1GiB", "65MiB"} {
		_, err := ParseSize(bad)
		assert.Error(t, err, bad)
	}
}

func TestParseByzantine(t *testing.T) {
	b, err := ParseByzantine("2:equivocate")
	require.NoError(t, err)
	assert.Equal(t, Byzantine{Count: 2, Behaviour: "equivocate"}, b)
	for _, bad := range []string{"equivocate", "x:silent", "-1:silent", "1:"} {
		_, err := ParseByzantine(bad)
		assert.Error(t, err, bad)
	}
}

var testSpecs = []broadcast.Spec{{Name: "rb", MinN: func(f int) int { return 3*f + 1 }}}

func TestSweepIsTheCartesianProduct(t *testing.T) {
	s := Sweep{
		Protocols: []string{"rb"}, Modes: []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest},
		Transports: []string{"mem"}, Clusters: []string{"inproc"}, Ns: []int{4, 7, 10},
		Payloads: []int{1024, 65536}, Batches: []int{1}, Rates: []float64{0}, Inflight: []int{8},
		Duration: time.Second,
	}
	pts, err := s.Points(testSpecs)
	require.NoError(t, err)
	require.Len(t, pts, 2*3*2)
	assert.Equal(t, 1, pts[0].F, "f defaults to the largest the protocol tolerates")
	assert.Equal(t, 2, pts[4].F)
	assert.Equal(t, 3, pts[8].F)
	assert.Equal(t, broadcast.ModeFull, pts[0].Mode, "modes vary fastest, so pairs sit side by side")
	assert.Equal(t, broadcast.ModeDigest, pts[1].Mode)

	s.Fs = []int{2}
	_, err = s.Points(testSpecs)
	require.Error(t, err, "n = 4 cannot tolerate f = 2")
	s.Fs = nil
	s.Protocols = []string{"nope"}
	_, err = s.Points(testSpecs)
	require.Error(t, err)
}

func sampleResults() []Result {
	base := Result{Protocol: "bracha", Transport: "mem", Cluster: "inproc", N: 4, F: 1, PayloadBytes: 16384, Batch: 1, Auth: "mac",
		LatencyCDF: [][2]float64{{0.5, 0.1}, {1, 0.5}, {3, 1}}}
	full, digest := base, base
	full.Mode, digest.Mode = "full", "digest"
	full.DeliveriesPerSec, digest.DeliveriesPerSec = 1000, 3000
	full.PayloadDupFactor, digest.PayloadDupFactor = 7, 1
	full.WireFactor, digest.WireFactor = 7.1, 1.02
	full.WireBytesPerDelivery, digest.WireBytesPerDelivery = 7*16384, 1.02*16384
	failed := base
	failed.Mode, failed.N, failed.Error = "full", 7, "boom"
	return []Result{full, digest, failed}
}

func TestRatiosPairByMode(t *testing.T) {
	rs := Ratios(sampleResults())
	require.Len(t, rs, 1, "the failed point has no pair")
	assert.InDelta(t, 3.0, rs[0].Values[0], 1e-9, "deliveries/s digest ÷ full")
	assert.InDelta(t, 1.0/7, rs[0].Values[4], 1e-9, "dup factor digest ÷ full")
}

func TestWriteTableJSONCSV(t *testing.T) {
	res := sampleResults()
	var tbl bytes.Buffer
	require.NoError(t, WriteTable(&tbl, res))
	assert.Contains(t, tbl.String(), "digest ÷ full")
	assert.Contains(t, tbl.String(), "3.00×")
	assert.Contains(t, tbl.String(), "failed: boom")

	var js bytes.Buffer
	require.NoError(t, WriteJSON(&js, res))
	var decoded []map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &decoded))
	require.Len(t, decoded, 3)
	for _, key := range []string{"protocol", "mode", "transport", "cluster", "n", "f", "payload_bytes", "batch",
		"deliveries_per_sec", "payload_mb_per_sec", "latency_p50_ms", "latency_p99_ms", "payload_dup_factor",
		"wire_factor", "copies_per_payload_byte", "send_copies_per_payload_byte", "kernel_copies_per_payload_byte",
		"allocs_per_delivery", "cpu_us_per_delivery", "peak_rss_mb"} {
		assert.Contains(t, decoded[0], key)
	}

	var cs bytes.Buffer
	require.NoError(t, WriteCSV(&cs, res))
	rows, err := csv.NewReader(&cs).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 4)
	assert.Equal(t, "deliveries_per_sec", rows[0][10])
	assert.Equal(t, "3000", rows[2][10])
}

func TestReportWritesFilesAndReadablePlots(t *testing.T) {
	dir := t.TempDir()
	res := sampleResults()
	more := res[1]
	more.N, more.PayloadBytes = 7, 65536
	more.Health = Health{FramesSent: 1000, Retransmits: 50, Timeouts: 40}
	res = append(res, more)
	rep := Report{Env: CurrentEnvironment([]string{"bench", "--n", "4"}), Results: res}
	written, err := rep.WriteDir(dir)
	require.NoError(t, err)
	names := map[string]bool{}
	for _, p := range written {
		names[filepath.Base(p)] = true
	}
	for _, want := range []string{"results.json", "results.csv", "report.md", "throughput_vs_payload.png", "wire_bytes_vs_n.png", "latency_cdf.png"} {
		assert.True(t, names[want], "%s written", want)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "Digest ÷ full")
	assert.Contains(t, string(md), "- **dup factor**: payload bytes received", "the legend under the tables")
	assert.Contains(t, string(md), "## Notes\n\n- "+more.label()+": the links resent 5.0% of their data frames", "the table's notes")
	assert.Contains(t, string(md), "![throughput_vs_payload.png]")
	assert.Contains(t, string(md), rep.Env.GoVersion)

	f, err := os.Open(filepath.Join(dir, "wire_bytes_vs_n.png"))
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Greater(t, img.Bounds().Dx(), 500)

	js, err := os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	var parsed Report
	require.NoError(t, json.Unmarshal(js, &parsed))
	assert.Len(t, parsed.Results, 4)
	assert.Equal(t, rep.Env.Cores, parsed.Env.Cores)
	assert.True(t, strings.HasPrefix(parsed.Env.Kernel, "Linux"))
}

// TestTableShowsCopiesBothWays: the table has a column for receive, send
// and kernel copies, and a row whose transport copied sent payloads it
// could have referenced says why.
func TestTableShowsCopiesBothWays(t *testing.T) {
	res := sampleResults()[:1]
	res[0].CopiesPerPayloadByte, res[0].SendCopiesPerPayloadByte, res[0].KernelCopiesPerPayloadByte = 0, 1.25, 0.75
	res[0].SendCopyFallback = "payload not in UMEM"
	var tbl bytes.Buffer
	require.NoError(t, WriteTable(&tbl, res))
	out := tbl.String()
	for _, col := range []string{"copies/B", "tx copies/B", "krn copies/B"} {
		assert.Contains(t, out, col)
	}
	assert.Contains(t, out, "1.25")
	assert.Contains(t, out, "0.75")
	assert.Contains(t, out, "sent payloads copied (tx copies/B): payload not in UMEM")

	var cs bytes.Buffer
	require.NoError(t, WriteCSV(&cs, res))
	rows, err := csv.NewReader(&cs).ReadAll()
	require.NoError(t, err)
	col := map[string]string{}
	for i, name := range rows[0] {
		col[name] = rows[1][i]
	}
	assert.Equal(t, "1.25", col["send_copies_per_payload_byte"])
	assert.Equal(t, "0.75", col["kernel_copies_per_payload_byte"])
}
