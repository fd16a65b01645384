package evaluate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// H2HResult is one system's figures from the head-to-head harness: the
// JSON of bench/h2h's Result. It is declared again here, not imported,
// because the harness is a module of its own whose dependencies (SmartBFT,
// raft) the library must not carry; the JSON keys are the interface, and
// TestHeadToHeadHarnessRuns decodes a real run through them.
type H2HResult struct {
	System              string  `json:"system"`
	N                   int     `json:"n"`
	PayloadBytes        int     `json:"payload_bytes"`
	Inflight            int     `json:"inflight"`
	Requests            uint64  `json:"requests"`
	RequestsPerSec      float64 `json:"requests_per_sec"`
	LatencyP50Ms        float64 `json:"latency_p50_ms"`
	LatencyP99Ms        float64 `json:"latency_p99_ms"`
	WireBytesPerRequest float64 `json:"wire_bytes_per_request"`
	MessagesPerRequest  float64 `json:"messages_per_request"`
	Error               string  `json:"error,omitempty"`
	// RunsPerSec is every run's requests/s when the head-to-head ran
	// several times (Options.Repeat); the other figures are the median
	// run's.
	RunsPerSec []float64 `json:"runs_per_sec,omitempty"`
}

// h2hArgs are the harness flags of a profile.
func h2hArgs(quick bool, payload int) []string {
	// The machine may be shared: the full profile interleaves three rounds
	// of every system and reports medians.
	d, rounds := "5s", "3"
	if quick {
		d, rounds = "3s", "1"
	}
	return []string{"-n", "4", "-payload", strconv.Itoa(payload), "-inflight", "32", "-duration", d, "-warmup", "1s", "-rounds", rounds,
		"-systems", "onecast-digest,onecast-full,smartbft,smartbft-signed,raft"}
}

// H2HCommand is the command that reproduces the head-to-head table.
func H2HCommand(quick bool, payload int) string {
	return "cd bench/h2h && go run ./cmd/h2h " + strings.Join(h2hArgs(quick, payload), " ")
}

// runH2H runs the harness module in dir with `go run` (it has its own
// go.mod, so its dependencies are fetched the first time) and decodes its
// JSON results.
func runH2H(ctx context.Context, dir string, flags []string, timeout time.Duration) ([]H2HResult, error) {
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return nil, fmt.Errorf("head-to-head harness: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := append([]string{"run", "./cmd/h2h"}, flags...)
	args = append(args, "-json")
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tail := stderr.String()
		if len(tail) > 600 {
			tail = tail[len(tail)-600:]
		}
		return nil, fmt.Errorf("head-to-head harness (go %s in %s): %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(tail))
	}
	var out []H2HResult
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("head-to-head harness output: %w", err)
	}
	return out, nil
}

// goTool is the go command of the running toolchain when it can be found,
// else "go" from PATH.
func goTool() string {
	if root := runtime.GOROOT(); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
