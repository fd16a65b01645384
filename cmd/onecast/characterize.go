package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/onecast/onecast/bench"
	"github.com/onecast/onecast/bench/characterize"
	"github.com/onecast/onecast/bench/realsys"
)

func characterizeCommand() command {
	return command{
		name:    "characterize",
		summary: "phase 1: measure payload duplication in onecast's primitives and in real etcd / ZooKeeper clusters",
		run:     runCharacterize,
	}
}

// docsReport is the committed characterization, which only --write-docs
// overwrites.
const docsReport = "docs/CHARACTERIZATION.md"

func runCharacterize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("characterize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "reduced sweep (a few minutes)")
	out := fs.String("out", "", "directory for CHARACTERIZATION.md and its plots (default: a new directory characterization-<time> here)")
	writeDocs := fs.Bool("write-docs", false, "write the committed report, "+docsReport+" and its plots, instead of --out (run from the repository's root)")
	systems := newList(realsys.Systems...)
	fs.Var(systems, "systems", "real systems to run (etcd, zookeeper; empty for none); one whose programs are missing is skipped, with the apt-get command that installs them")
	ns := newList()
	fs.Var(ns, "n", "cluster sizes of the sweep of onecast's primitives (default: the sweep's)")
	payloads := newList()
	fs.Var(payloads, "payload", "payload sizes of that sweep, e.g. 1KiB,16KiB (default: the sweep's)")
	udp := fs.Bool("udp", true, "also run onecast's primitives over kernel UDP on loopback (system-level figures)")
	verbose := fs.Bool("v", false, "log every step")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: onecast characterize [flags]\n\nMeasures duplication in onecast's primitives (simulator, kernel UDP) and in real 3-member etcd and ZooKeeper clusters.\nInstalls nothing: what a real system needs and is missing is listed with its apt-get command, and the rest runs.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	for _, s := range systems.vals {
		if !slices.Contains(realsys.Systems, s) {
			return fmt.Errorf("%w: --systems %q: want %v", errUsage, s, realsys.Systems)
		}
	}
	sweep := characterize.DefaultOwnSweep(*quick)
	if ns.set {
		v, err := parseInts("n", ns)
		if err != nil {
			return err
		}
		for _, n := range v {
			if n < 4 {
				return fmt.Errorf("%w: --n %d: the sweep's protocols need n ≥ 4 for f ≥ 1", errUsage, n)
			}
		}
		sweep.Ns = v
	}
	if payloads.set {
		sweep.Payloads = nil
		for _, p := range payloads.vals {
			size, err := bench.ParseSize(p)
			if err != nil {
				return fmt.Errorf("%w: --payload: %v", errUsage, err)
			}
			sweep.Payloads = append(sweep.Payloads, size)
		}
	}
	if len(sweep.Ns) == 0 || len(sweep.Payloads) == 0 {
		return fmt.Errorf("%w: --n and --payload need at least one value", errUsage)
	}
	report, err := characterizeReportPath(*out, *writeDocs, time.Now())
	if err != nil {
		return err
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	sys := systems.vals
	if sys == nil {
		sys = []string{}
	}
	// Say up front what cannot run here and how to make it run.
	missing, install, err := characterize.Missing(sys, *udp)
	if err != nil {
		return err
	}
	for _, s := range sys {
		if m := missing[s]; len(m) > 0 {
			fmt.Fprintf(stderr, "characterize: %s will be skipped: %s\n", s, realsys.SkipReason(m))
		}
	}
	if install != "" {
		fmt.Fprintf(stderr, "characterize: to run everything, install what is missing and run again:\n  %s\n", install)
	}
	c, err := characterize.Run(ctx, append([]string{"characterize"}, args...), characterize.Options{
		Quick: *quick, Own: sweep, Systems: sys, RealOwn: *udp, Log: log})
	if err != nil {
		return fmt.Errorf("characterize: %w (no report written)", err)
	}
	if err := os.MkdirAll(filepath.Dir(report), 0o755); err != nil {
		return err
	}
	files, err := c.Write(report)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(stdout, f)
	}
	return nil
}

// characterizeReportPath decides where the report goes, before anything
// runs: docs/CHARACTERIZATION.md with --write-docs (from the repository's
// root only), else CHARACTERIZATION.md in --out, by default a directory
// named after the time that must not exist yet.
func characterizeReportPath(out string, writeDocs bool, now time.Time) (string, error) {
	if writeDocs {
		if out != "" {
			return "", fmt.Errorf("%w: --write-docs writes %s; --out goes elsewhere: give one of them", errUsage, docsReport)
		}
		if _, err := os.Stat(filepath.Join("docs", "CHARACTERIZATION.md")); err != nil {
			return "", fmt.Errorf("%w: --write-docs overwrites the committed %s, which is not here: run from the repository's root", errUsage, docsReport)
		}
		return docsReport, nil
	}
	if out == "" {
		out = "characterization-" + now.UTC().Format("20060102-150405")
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w: %s exists; name another directory with --out", errUsage, out)
		}
	}
	if st, err := os.Stat(out); err == nil && !st.IsDir() {
		return "", fmt.Errorf("%w: --out %s is a file, not a directory", errUsage, out)
	}
	return filepath.Join(out, "CHARACTERIZATION.md"), nil
}
