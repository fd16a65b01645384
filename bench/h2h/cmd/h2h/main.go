// Command h2h runs the head-to-head harness: onecast's pbft (digest and
// full mode), Hyperledger Labs' SmartBFT and etcd's raft, one after the
// other in this process, on the same in-memory network with the same
// closed-loop load, and prints one row per system.
//
//	go run ./cmd/h2h -payload 1024 -inflight 32 -duration 5s
//	go run ./cmd/h2h -systems onecast-digest,raft -json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onecast/onecast/bench/h2h"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "h2h:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("h2h", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 4, "nodes (f = (n-1)/3 for the BFT systems)")
	payload := fs.Int("payload", 1024, "request size in bytes (the first 16 name the request)")
	inflight := fs.Int("inflight", 32, "outstanding requests (closed loop), over all submitting nodes")
	duration := fs.Duration("duration", 5*time.Second, "measurement window per system")
	warmup := fs.Duration("warmup", time.Second, "warm-up before the window")
	systems := fs.String("systems", strings.Join(h2h.Systems, ","), "systems to run, in order")
	rounds := fs.Int("rounds", 1, "run every system this many times, interleaved, and report each figure's median")
	asJSON := fs.Bool("json", false, "print []Result as JSON")
	pipeline := fs.Int("pbft-pipeline", 0, "pbft's Config.Pipeline for the onecast rows (0: its default, 4)")
	adaptive := fs.Bool("pbft-adaptive", false, "pbft's adaptive batching (Config.AdaptiveBatch) for the onecast rows")
	verbose := fs.Bool("v", false, "log the systems' warnings to stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	var names []string
	for _, name := range strings.Split(*systems, ",") {
		if name = strings.TrimSpace(name); name != "" {
			names = append(names, name)
		}
	}
	runs := make([][]h2h.Result, len(names))
	for round := range max(*rounds, 1) {
		for i, name := range names {
			res := h2h.RunNamed(name, h2h.Config{N: *n, Payload: *payload, Inflight: *inflight,
				Warmup: *warmup, Duration: *duration, PBFTPipeline: *pipeline, PBFTAdaptive: *adaptive, Logger: logger})
			runs[i] = append(runs[i], res)
			if res.Error != "" && *rounds > 1 {
				fmt.Fprintf(stderr, "round %d: %s: %s\n", round+1, name, res.Error)
			}
			if !*asJSON {
				fmt.Fprintf(stderr, "round %d: %s done\n", round+1, name)
			}
		}
	}
	results := make([]h2h.Result, len(names))
	for i := range names {
		results[i] = h2h.Median(runs[i])
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tn\tpayload B\tinflight\trequests\treq/s\tp50 ms\tp99 ms\twire B/req\tmsgs/req\terror\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.0f\t%.1f\t%s\t\n", r.System, r.N, r.PayloadBytes, r.Inflight,
			r.Requests, r.RequestsPerSec, r.LatencyP50Ms, r.LatencyP99Ms, r.WireBytesPerRequest, r.MessagesPerRequest, r.Error)
	}
	return tw.Flush()
}
