package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/onecast/onecast/bench/evaluate"
	"github.com/onecast/onecast/netio/netns"
)

func evaluateCommand() command {
	return command{
		name:    "evaluate",
		summary: "phase 3: every primitive × configuration, ablation, scaling and a head-to-head; writes docs/EVALUATION.md",
		run:     runEvaluate,
	}
}

func runEvaluate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("evaluate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "reduced profile: every section with fewer points (under 10 minutes on 2 cores)")
	out := fs.String("out", "docs/EVALUATION.md", "report path; plots and results.json go to evaluation/ beside it")
	h2h := fs.String("h2h", "bench/h2h", "directory of the head-to-head harness module (empty: skip the head-to-head)")
	useNetns := fs.Bool("netns", true, "run the namespace and AF_XDP parts (needs root; without it they run in process over loopback UDP)")
	verbose := fs.Bool("v", false, "log every point")
	repeat := fs.Int("repeat", 1, "run every point and the head-to-head this many times: each figure the median, the summary with the runs' range (3 for headline figures; 3× the time)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: onecast evaluate [--quick] [flags]\n\nRun from the repository root, as root for the AF_XDP parts. The quick profile takes about 3 minutes on 2 cores, the full one about 16.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	if *repeat < 1 {
		return fmt.Errorf("%w: --repeat %d: want 1 or more", errUsage, *repeat)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	withNetns := *useNetns
	if withNetns {
		if ok, why := netns.Available(); !ok {
			log.Warn("evaluate: no namespace clusters, so no AF_XDP parts", "why", why)
			withNetns = false
		}
	}
	progressLines := progressEvery // a line every few seconds, as bench
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		progressLines = 0 // a bar, redrawn in place
	}
	ev, err := evaluate.Run(ctx, append([]string{"evaluate"}, args...), evaluate.Options{
		Quick: *quick, Specs: protocolSpecs(), Clusters: clusterFactories(nil, "", nil), Netns: withNetns,
		H2HDir: *h2h, Progress: stderr, ProgressLines: progressLines, Log: log, Repeat: *repeat})
	if err != nil && ev == nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	if dir := filepath.Dir(*out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	files, werr := ev.Write(*out)
	if werr != nil {
		return fmt.Errorf("evaluate: write report: %w", werr)
	}
	for _, f := range files {
		fmt.Fprintln(stdout, f)
	}
	if ev.Interrupted {
		return fmt.Errorf("evaluate: interrupted; %s holds the points that finished", *out)
	}
	return err
}
