package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onecast/onecast/bench"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/config"
)

func benchCommand() command {
	return command{
		name:    "bench",
		summary: "run a cluster under load and report throughput, latency and duplication",
		run:     runBench,
	}
}

// listFlag is a comma-separated list flag; repeating the flag appends.
type listFlag struct {
	vals []string
	set  bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }
func (l *listFlag) Set(s string) error {
	if !l.set {
		l.vals, l.set = nil, true
	}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			l.vals = append(l.vals, v)
		}
	}
	return nil
}

func newList(defaults ...string) *listFlag { return &listFlag{vals: defaults} }

func parseInts(name string, l *listFlag) ([]int, error) {
	var out []int
	for _, v := range l.vals {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: --%s %q is not a non-negative integer", errUsage, name, v)
		}
		out = append(out, n)
	}
	return out, nil
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	protocols := newList("bracha")
	modes := newList("full", "digest")
	ns := newList("4")
	fsList := newList()
	payloads := newList("16KiB")
	batches := newList("1")
	rates := newList()
	inflight := newList("32")
	transports := newList("mem")
	clusters := newList("inproc")
	byz := newList()
	fs.Var(protocols, "protocol", "protocols, comma-separated (bracha, pbft, dolevstrong)")
	fs.Var(modes, "mode", "modes: full, digest")
	fs.Var(ns, "n", "cluster sizes")
	fs.Var(fsList, "f", "faults tolerated (default: the most the protocol tolerates at each n)")
	fs.Var(payloads, "payload", "payload sizes, e.g. 1KiB,16KiB,64KiB")
	fs.Var(batches, "batch", "application payloads per protocol instance")
	fs.Var(rates, "rate", "open-loop offered load, payloads/s across the cluster (overrides --inflight)")
	fs.Var(inflight, "inflight", "closed-loop window: payloads outstanding until delivered by every correct node (capped at 16 MiB of payload in flight, at least one)")
	fs.Var(transports, "transport", "transports: mem, udp (inproc, netns, local); xdp-copy, xdp-ref, xdp, xdp-busy (netns: AF_XDP copying out, passing references, plus in-kernel strip, plus busy-polling the RX ring)")
	fs.Var(clusters, "cluster", "cluster kinds: inproc (one process), local (a process per node, udp), netns (a namespace per node, udp or xdp; root), remote (nodes started by the operator, --config)")
	fs.Var(byz, "byzantine", "k:behaviour, Byzantine nodes in every point (e.g. 1:silent); behaviours: silent, crash (not started)\nand, attacking the wire with the cluster's real keys (--transport udp or xdp): partial-large, fetch-flood,\nheld-spray, future-view (pbft), garbage, replay, ack-withhold; BEHAVIOUR@N paces it at N messages per ms")
	byzEach := newList()
	fs.Var(byzEach, "byzantine-sweep", "k:behaviour or none, each a separate variant of every point (after --byzantine's nodes):\ne.g. none,1:garbage,1:replay gives the fault-free row and one row per behaviour in one run")
	duration := fs.Duration("duration", 4*time.Second, "measurement time per point")
	warmup := fs.Duration("warmup", time.Second, "warm-up time per point, not measured")
	authName := fs.String("auth", "mac", "link authenticator: mac, ed25519")
	maxDelay := fs.Duration("max-delay", 50*time.Millisecond, "one-way delay bound between nodes, from which synchronous protocols (dolevstrong) derive their round Δ;\nthe default is generous for loopback and veth: on real networks, measure the p99.9 one-way latency under load and pass it")
	cfgPath := fs.String("config", "", "cluster configuration of a remote cluster (its nodes' control addresses)")
	out := fs.String("out", "", "directory for results.json, results.csv, report.md and plots")
	format := fs.String("format", "table", "output on stdout: table, json, csv")
	verbose := fs.Bool("v", false, "log each point")
	repeat := fs.Int("repeat", 1, "run each point this many times and report the median of each figure with its min–max")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: onecast bench [flags]\n\nWith no flags: an in-process Bracha cluster of 4 nodes, full and digest mode side by side, 16 KiB payloads, about 10 s.\nList flags take comma-separated values; the run sweeps their cartesian product.\nWith --cluster remote, --protocol, --mode, --n and --f default to the --config file's, and --transport to udp.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if st, err := os.Stat(*out); *out != "" && err == nil && !st.IsDir() {
		return fmt.Errorf("%w: --out %s is a file, not a directory", errUsage, *out)
	}
	if *repeat < 1 {
		return fmt.Errorf("%w: --repeat %d: want 1 or more", errUsage, *repeat)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var remoteCfg *config.Cluster
	if *cfgPath != "" {
		c, err := config.Load(*cfgPath)
		if err != nil {
			return fmt.Errorf("%w: --config: %v", errUsage, err)
		}
		remoteCfg = c
	} else if slices.Contains(clusters.vals, "remote") {
		return fmt.Errorf("%w: --cluster remote needs --config, the cluster's configuration", errUsage)
	}
	if remoteCfg != nil && slices.Equal(clusters.vals, []string{"remote"}) {
		// The nodes run what their configuration says: measure that unless
		// told otherwise.
		c := remoteCfg
		defaults := map[string]struct {
			l *listFlag
			v string
		}{"protocol": {protocols, c.Protocol}, "mode": {modes, c.Mode}, "n": {ns, strconv.Itoa(c.N())},
			"f": {fsList, strconv.Itoa(c.F)}, "transport": {transports, "udp"}}
		for name, d := range defaults {
			if !set[name] {
				d.l.vals = []string{d.v}
			}
		}
	}
	sweep := bench.Sweep{Protocols: protocols.vals, Transports: transports.vals, Clusters: clusters.vals, Duration: *duration, Warmup: *warmup,
		MaxDelay: *maxDelay}
	var err error
	for _, m := range modes.vals {
		mode, err := broadcast.ParseMode(m)
		if err != nil {
			return fmt.Errorf("%w: --mode: %v", errUsage, err)
		}
		sweep.Modes = append(sweep.Modes, mode)
	}
	if sweep.Ns, err = parseInts("n", ns); err != nil {
		return err
	}
	if sweep.Fs, err = parseInts("f", fsList); err != nil {
		return err
	}
	if sweep.Batches, err = parseInts("batch", batches); err != nil {
		return err
	}
	if sweep.Inflight, err = parseInts("inflight", inflight); err != nil {
		return err
	}
	for _, p := range payloads.vals {
		size, err := bench.ParseSize(p)
		if err != nil {
			return fmt.Errorf("%w: --payload: %v", errUsage, err)
		}
		sweep.Payloads = append(sweep.Payloads, size)
	}
	sweep.Rates = []float64{0}
	if rates.set {
		sweep.Rates = nil
		for _, r := range rates.vals {
			v, err := strconv.ParseFloat(r, 64)
			if err != nil || v <= 0 {
				return fmt.Errorf("%w: --rate %q is not a positive number", errUsage, r)
			}
			sweep.Rates = append(sweep.Rates, v)
		}
		sweep.Inflight = []int{0}
	}
	for _, b := range byz.vals {
		bz, err := bench.ParseByzantine(b)
		if err != nil {
			return fmt.Errorf("%w: --byzantine: %v", errUsage, err)
		}
		sweep.Byzantine = append(sweep.Byzantine, bz)
	}
	for _, b := range byzEach.vals {
		if b == "none" {
			sweep.ByzantineVariants = append(sweep.ByzantineVariants, nil)
			continue
		}
		bz, err := bench.ParseByzantine(b)
		if err != nil {
			return fmt.Errorf("%w: --byzantine-sweep: %v", errUsage, err)
		}
		sweep.ByzantineVariants = append(sweep.ByzantineVariants, []bench.Byzantine{bz})
	}
	if sweep.Auth, err = broadcast.ParseScheme(*authName); err != nil || sweep.Auth == broadcast.SchemeNone {
		return fmt.Errorf("%w: --auth %q: want mac or ed25519", errUsage, *authName)
	}
	if *duration <= 0 || *warmup < 0 {
		return fmt.Errorf("%w: --duration must be positive and --warmup not negative", errUsage)
	}
	switch *format {
	case "table", "json", "csv":
	default:
		return fmt.Errorf("%w: --format %q: want table, json or csv", errUsage, *format)
	}
	points, err := sweep.Points(protocolSpecs())
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	for _, pt := range points {
		if pt.Faulty() > pt.F {
			return fmt.Errorf("%w: %d Byzantine nodes exceed f = %d at n = %d", errUsage, pt.Faulty(), pt.F, pt.N)
		}
	}

	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the onecast binary for local clusters: %w", err)
	}
	var controls []string
	if remoteCfg != nil {
		for _, n := range remoteCfg.Nodes {
			if n.Control == "" {
				return fmt.Errorf("%w: %s: node %d has no control address (nodes[%d].control)", errUsage, *cfgPath, n.ID, n.ID)
			}
			controls = append(controls, n.Control)
		}
	}
	opts := bench.Options{Specs: protocolSpecs(), Clusters: clusterFactories(logger, exe, controls), Logger: logger,
		Repeat: *repeat, Progress: stderr, ProgressLines: progressEvery}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		opts.ProgressLines = 0 // a bar, redrawn in place
	}
	env := bench.CurrentEnvironment(append([]string{"bench"}, args...))
	results, interrupted := bench.Run(ctx, points, opts)
	if interrupted {
		fmt.Fprintf(stderr, "interrupted: reporting the %d of %d points that finished\n", len(results), len(points))
	}
	switch *format {
	case "json":
		err = bench.WriteJSON(stdout, results)
	case "csv":
		err = bench.WriteCSV(stdout, results)
	default:
		fmt.Fprintf(stdout, "onecast bench — commit %.12s, %s, %s, %d cores\n\n", env.Commit, env.GoVersion, env.Kernel, env.Cores)
		err = bench.WriteTable(stdout, results)
	}
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if *out != "" {
		rep := bench.Report{Env: env, Results: results, Interrupted: interrupted}
		written, err := rep.WriteDir(*out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s\n", strings.Join(written, ", "))
	}
	failed := 0
	for _, r := range results {
		if r.Error != "" {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d points failed", failed, len(results))
	}
	if interrupted {
		return errInterrupted // said above, before the table
	}
	return nil
}

// progressEvery is the period of the progress lines bench writes to a
// stderr that is not a terminal.
const progressEvery = 3 * time.Second

// isTerminal reports whether f is a terminal (for the progress bar).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
