package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/sim"
)

func TestSimPassesCorrectProtocol(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runSim(context.Background(), []string{"--protocol", "toyrb", "--n", "7", "--byzantine", "2:any", "--seeds", "50"}, &out, &errOut)
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "PASS: 50 runs, 0 with violations")
	assert.Contains(t, out.String(), "payload duplication factor")
}

func TestSimReportsViolationWithReplayCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	trace := filepath.Join(t.TempDir(), "fail.trace")
	args := []string{"--protocol", "toyrb", "--n", "4", "--byzantine", "1:equivocate", "--seeds", "200", "--unsafe-echo-quorum", "2", "--trace", trace}
	err := runSim(context.Background(), args, &out, &errOut)
	require.Error(t, err)
	assert.True(t, errors.Is(err, errViolation))
	assert.Contains(t, out.String(), "first failing seed")
	assert.Contains(t, out.String(), "replay: onecast sim ")
	assert.Contains(t, out.String(), "--unsafe-echo-quorum=2")
	assert.FileExists(t, trace)

	code := run(context.Background(), append([]string{"sim"}, args...), &out, &errOut)
	assert.Equal(t, 1, code, "a violation exits 1")
}

func TestSimRejectsBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{
		{"--protocol", "nosuch"},
		{"--byzantine", "1:nosuch"},
		{"--n", "4", "--byzantine", "2:crash"},
		{"--mode", "half"},
	} {
		code := run(context.Background(), append([]string{"sim"}, args...), &out, &errOut)
		assert.Equal(t, 2, code, "%v", args)
	}
}

// TestSimDolevStrongDefaultsToTheLargestF is the command: without
// --f, Dolev–Strong runs with f = n−1 and passes.
func TestSimDolevStrongDefaultsToTheLargestF(t *testing.T) {
	for _, n := range []string{"4", "5", "7"} {
		var out, errOut bytes.Buffer
		err := runSim(context.Background(), []string{"--protocol", "dolevstrong", "--n", n, "--seeds", "3"}, &out, &errOut)
		require.NoError(t, err, out.String())
		nv, _ := strconv.Atoi(n)
		assert.Contains(t, out.String(), fmt.Sprintf("n=%d f=%d ", nv, nv-1))
		assert.Contains(t, out.String(), "PASS: 3 runs, 0 with violations, 0 cut by a time limit")
		assert.Contains(t, out.String(), "coverage: 3 runs; Dolev–Strong decisions on the default value")
	}
}

// TestSimTimeLimitIsALivenessFailure: a horizon cut short by the flags
// (rounds of 1 ms at a 100 ms network) is reported as liveness/time-limit.
func TestSimTimeLimitIsALivenessFailure(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runSim(context.Background(), []string{"--protocol", "toyrb", "--n", "4", "--seeds", "3", "--max-events", "30", "--trace", filepath.Join(t.TempDir(), "t")}, &out, &errOut)
	require.ErrorIs(t, err, errViolation)
	assert.Contains(t, out.String(), "[liveness/time-limit: 3]")
	assert.Contains(t, out.String(), "3 cut by a time limit")
}

// TestSimPBFTDefaultsReachCheckpointsAndScheduleReachesViewChanges: the
// default PBFT sweep prints a coverage line with every run past two stable
// checkpoints; --schedule viewchange reaches view changes in a row.
func TestSimPBFTDefaultsReachCheckpointsAndScheduleReachesViewChanges(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runSim(context.Background(), []string{"--protocol", "pbft", "--n", "4", "--byzantine", "1:any", "--seeds", "30"}, &out, &errOut)
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "schedule=none")
	assert.Contains(t, out.String(), "stable checkpoints ≥2: 100.0%")

	out.Reset()
	err = runSim(context.Background(), []string{"--protocol", "pbft", "--n", "4", "--byzantine", "1:any", "--seeds", "30", "--schedule", "viewchange"}, &out, &errOut)
	require.NoError(t, err, out.String())
	m := regexp.MustCompile(`≥2 consecutive: ([0-9.]+)%`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	pct, _ := strconv.ParseFloat(m[1], 64)
	assert.GreaterOrEqual(t, pct, 10.0, out.String())

	code := run(context.Background(), []string{"sim", "--protocol", "bracha", "--schedule", "viewchange"}, &out, &errOut)
	assert.Equal(t, 2, code, "the view-change schedule needs PBFT")
}

// TestSimScheduleViewSplit: --schedule viewsplit runs PBFT, passes, and
// reaches view changes in a row; it needs PBFT.
func TestSimScheduleViewSplit(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runSim(context.Background(), []string{"--protocol", "pbft", "--n", "4", "--byzantine", "1:any", "--seeds", "16", "--schedule", "viewsplit"}, &out, &errOut)
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "schedule=viewsplit")
	m := regexp.MustCompile(`≥2 consecutive: ([0-9.]+)%`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	pct, _ := strconv.ParseFloat(m[1], 64)
	assert.GreaterOrEqual(t, pct, 25.0, out.String())

	code := run(context.Background(), []string{"sim", "--protocol", "bracha", "--schedule", "viewsplit"}, &out, &errOut)
	assert.Equal(t, 2, code, "the viewsplit schedule needs PBFT")
}

// TestSimUsesEveryCore: without --workers the sweep runs one run per CPU,
// and the report (but for the speed line) is the one of a single worker.
func TestSimUsesEveryCore(t *testing.T) {
	report := func(args ...string) string {
		var out, errOut bytes.Buffer
		require.NoError(t, runSim(context.Background(), append([]string{"--protocol", "pbft", "--byzantine", "1:any", "--seeds", "12"}, args...), &out, &errOut))
		var keep []string
		for _, l := range strings.Split(out.String(), "\n") {
			if !strings.HasPrefix(l, "speed:") && !strings.HasPrefix(l, "sim ") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	var out, errOut bytes.Buffer
	require.NoError(t, runSim(context.Background(), []string{"--protocol", "toyrb", "--seeds", "4"}, &out, &errOut))
	assert.Contains(t, out.String(), fmt.Sprintf("workers=%d\n", runtime.GOMAXPROCS(0)))
	assert.Equal(t, report("--workers", "1"), report("--workers", "3"))
}

// TestSimPayloadIsASizeWithinTheMessageLimit: --payload takes B, KiB, MiB
// and GiB; one byte over 64 MiB is a usage error (exit 2, usage printed
// once), not a property violation.
func TestSimPayloadIsASizeWithinTheMessageLimit(t *testing.T) {
	for in, want := range map[string]uint64{"512": 512, "512B": 512, "16KiB": 16 << 10, "1 MiB": 1 << 20, "2gib": 2 << 30, "4k": 4 << 10} {
		got, err := parseByteSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "KiB", "-1", "1.5MiB", "12XB", "99999999999999999999GiB"} {
		_, err := parseByteSize(bad)
		assert.Error(t, err, bad)
	}
	for _, args := range [][]string{{"--payload", "67108865"}, {"--payload", "65MiB"}, {"--payload", "0"}, {"--payload", "lots"}} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"sim", "--protocol", "toyrb", "--seeds", "1"}, args...), &out, &errOut)
		assert.Equal(t, 2, code, "%v", args)
		assert.Equal(t, 1, strings.Count(errOut.String(), "usage: onecast sim"), "%v: %s", args, errOut.String())
		assert.NotContains(t, out.String(), "violation", "%v", args)
	}
	var out, errOut bytes.Buffer
	require.NoError(t, runSim(context.Background(), []string{"--protocol", "toyrb", "--seeds", "2", "--payload", "16KiB"}, &out, &errOut))
	out.Reset()
	// PBFT accepts requests as large as the payload (its default limit is 1 MiB).
	require.NoError(t, runSim(context.Background(), []string{"--protocol", "pbft", "--seeds", "1", "--payload", "2MiB", "--per-node", "1"}, &out, &errOut), out.String())
}

// TestSimRefusesARunLargerThanTheMachine: --n 1000 is refused before it
// starts, with the estimate and the flag that overrides the limit.
func TestSimRefusesARunLargerThanTheMachine(t *testing.T) {
	var out, errOut bytes.Buffer
	start := time.Now()
	code := run(context.Background(), []string{"sim", "--protocol", "pbft", "--n", "1000"}, &out, &errOut)
	assert.Equal(t, 2, code)
	assert.Less(t, time.Since(start), 5*time.Second, "refused before any run")
	assert.Contains(t, errOut.String(), "n = 1000 needs an estimated")
	assert.Contains(t, errOut.String(), "GiB")
	assert.Contains(t, errOut.String(), "--mem-limit")
	assert.Empty(t, out.String())

	errOut.Reset()
	code = run(context.Background(), []string{"sim", "--protocol", "bracha", "--n", "16", "--mem-limit", "1MiB"}, &out, &errOut)
	assert.Equal(t, 2, code, "a lower limit refuses a small run")
	assert.Contains(t, errOut.String(), "more than the 1.0 MiB limit (--mem-limit)")
	code = run(context.Background(), []string{"sim", "--protocol", "toyrb", "--n", "4", "--seeds", "2", "--mem-limit", "1GiB"}, &out, &errOut)
	assert.Equal(t, 0, code, errOut.String())

	small := estimateSimMemory(sim.PBFTConfig(4, 0, broadcast.ModeDigest, nil, nil), 2)
	big := estimateSimMemory(sim.PBFTConfig(1000, 0, broadcast.ModeDigest, nil, nil), 2)
	assert.Less(t, small.total, uint64(64<<20))
	assert.Greater(t, big.total, uint64(1<<40))
}

// TestSimStopsWithinASecondOnInterrupt: cancelling the context (what
// SIGINT and SIGTERM do, through main's signal.NotifyContext) stops a
// sweep of a million seeds within a second and prints what finished.
func TestSimStopsWithinASecondOnInterrupt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var out, errOut bytes.Buffer
	start := time.Now()
	err := runSim(ctx, []string{"--protocol", "pbft", "--n", "4", "--seeds", "1000000"}, &out, &errOut)
	assert.Less(t, time.Since(start), 1300*time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, out.String(), "PASS: ")
	assert.Contains(t, out.String(), "interrupted: ")
	assert.Contains(t, out.String(), "of 1000000 runs finished")
}
