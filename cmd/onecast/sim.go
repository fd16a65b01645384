package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/sim"
	"github.com/onecast/onecast/sim/toyrb"
)

func simCommand() command {
	return command{name: "sim", summary: "simulate a protocol with Byzantine nodes over many seeds and check its properties", run: runSim}
}

// simSpecs lists the protocols the simulator can run. unsafeEcho, when
// positive, breaks the reliable broadcasts' ECHO quorum (checker tests).
func simSpecs(unsafeEcho int) []broadcast.Spec {
	brachaSpec := bracha.Spec
	if unsafeEcho > 0 {
		brachaSpec.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
			return bracha.New(bracha.Config{N: p.N, F: p.F, Self: p.Self, Mode: p.Mode, Keys: env.Keys, Store: env.Store,
				Batch: env.Tuning.Batch, FetchTimeout: env.Tuning.Timeout, UnsafeEchoQuorum: unsafeEcho})
		}
	}
	return []broadcast.Spec{
		brachaSpec,
		toyrb.Spec(unsafeEcho),
		sim.PBFTSpec(nil), // pbft.Spec with the simulator's cheap, unforgeable certificate signatures
		dolevstrong.Spec,
	}
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		protocol   = fs.String("protocol", "bracha", "protocol to simulate")
		mode       = fs.String("mode", "digest", "payload mode: full or digest")
		n          = fs.Int("n", 4, "nodes")
		f          = fs.Int("f", 0, "faults tolerated (0: the largest the protocol allows at n)")
		byz        = fs.String("byzantine", "", "Byzantine nodes, e.g. 2:equivocate, 1:crash,1:twins, 2:equivocate|replay, 2:any")
		seeds      = fs.Uint64("seeds", 100, "number of seeds to run")
		seed       = fs.Uint64("seed", 1, "first seed")
		workers    = fs.Int("workers", 1, "runs in parallel (each run stays deterministic)")
		netName    = fs.String("net", "", "network preset: lan, hostile, or sync (default: sync for Byzantine broadcast, hostile otherwise)")
		loss       = fs.Float64("loss", -1, "per-transmission loss probability (retransmitted); -1: preset")
		reorder    = fs.Float64("reorder", -1, "reorder probability; -1: preset")
		dup        = fs.Float64("dup", -1, "duplication probability; -1: preset")
		partitions = fs.Int("partitions", -1, "partition episodes before GST; -1: preset")
		gst        = fs.Duration("gst", -1, "global stabilization time; -1: preset")
		delta      = fs.Duration("delta", 0, "delivery bound after GST; 0: preset")
		latency    = fs.Duration("latency", -1, "minimum link latency; -1: preset")
		jitter     = fs.Duration("jitter", -1, "mean exponential jitter; -1: preset")
		bandwidth  = fs.Int64("bandwidth", -1, "link bandwidth in bytes/s (0: infinite); -1: preset")
		payload    = fs.Int("payload", 1024, "payload size in bytes")
		perNode    = fs.Int("per-node", 1, "payloads each node submits")
		batch      = fs.Int("batch", 0, "Tuning.Batch (0: protocol default)")
		round      = fs.Duration("round", 0, "Tuning.RoundDuration (0: protocol default)")
		timeout    = fs.Duration("timeout", 0, "Tuning.Timeout (0: protocol default)")
		unsafeEcho = fs.Int("unsafe-echo-quorum", 0, "TEST ONLY: lower the reliable broadcast's ECHO quorum to this (0: correct)")
		traceFile  = fs.String("trace", "", "write the trace of the (first failing) run to this file (default: a file in the temp dir on failure)")
		maxEvents  = fs.Int("max-events", 0, "event budget per run (0: default)")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: onecast sim [flags]\n\nByzantine behaviours: %s (pbft also: %s; dolevstrong also: %s)\n\nflags:\n",
			sim.BehaviourNames(sim.Behaviours()), sim.BehaviourNames(sim.PBFTBehaviours()), sim.BehaviourNames(sim.DolevStrongBehaviours()))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	specs := simSpecs(*unsafeEcho)
	spec, err := broadcast.FindSpec(specs, *protocol)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	md, err := broadcast.ParseMode(*mode)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	behaviours := behavioursFor(spec.Class)
	as, err := sim.ParseByzantine(*byz, behaviours)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *netName == "" {
		*netName = "hostile"
		if spec.Class == broadcast.ByzantineBroadcast {
			*netName = "sync"
		}
	}
	syncDelta := sim.DefaultNetwork().Delta
	if *delta > 0 {
		syncDelta = *delta
	}
	var nw sim.Network
	switch *netName {
	case "lan":
		nw = sim.DefaultNetwork()
	case "hostile":
		nw = sim.HostileNetwork()
	case "sync":
		nw = sim.SynchronousNetwork(syncDelta)
	default:
		return fmt.Errorf("%w: unknown network preset %q (want lan, hostile or sync)", errUsage, *netName)
	}
	setF := func(dst *float64, v float64) {
		if v >= 0 {
			*dst = v
		}
	}
	setD := func(dst *time.Duration, v time.Duration) {
		if v >= 0 {
			*dst = v
		}
	}
	setF(&nw.Loss, *loss)
	setF(&nw.Reorder, *reorder)
	setF(&nw.Duplicate, *dup)
	if *partitions >= 0 {
		nw.Partitions = *partitions
	}
	setD(&nw.GST, *gst)
	if *delta > 0 {
		nw.Delta = *delta
	}
	setD(&nw.MinLatency, *latency)
	setD(&nw.Jitter, *jitter)
	if *bandwidth >= 0 {
		nw.Bandwidth = *bandwidth
	}
	cfg := sim.Config{Spec: spec, N: *n, F: *f, Mode: md, Byzantine: as}
	if spec.Class == broadcast.ByzantineBroadcast {
		// A synchronous protocol: rounds of Δ sized for the network, every
		// value submitted within the first rounds, a horizon past the last
		// decision.
		cfg = sim.DolevStrongConfig(spec, *n, *f, md, syncDelta, as)
	}
	cfg.Net = nw
	cfg.Tuning.Batch, cfg.Tuning.Timeout = *batch, *timeout
	if *round > 0 {
		cfg.Tuning.RoundDuration = *round
	}
	cfg.Workload.PayloadSize, cfg.Workload.PerNode = *payload, *perNode
	cfg.MaxEvents = *maxEvents
	if *seeds == 0 {
		return fmt.Errorf("%w: --seeds must be positive", errUsage)
	}
	fmt.Fprintf(stdout, "sim %s mode=%s n=%d byzantine=%q seeds %d..%d network=%s\n", spec.Name, md, *n, *byz, *seed, *seed+*seeds-1, *netName)
	if *workers <= 0 {
		*workers = runtime.GOMAXPROCS(0)
	}
	sum, err := sim.Sweep(ctx, cfg, *seed, *seeds, *workers)
	if err != nil {
		if errors.Is(err, sim.ErrConfig) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	printSummary(stdout, spec, sum)
	if sum.Failed == 0 {
		if *traceFile != "" {
			return writeTrace(cfg, *seed, *traceFile, stdout)
		}
		return nil
	}
	ff := sum.FirstFailure
	fmt.Fprintf(stdout, "\nfirst failing seed %d (byzantine %s):\n", ff.Seed, strings.Join(ff.Byzantine, " "))
	for i, v := range ff.Violations {
		if i == 10 {
			fmt.Fprintf(stdout, "  … and %d more\n", len(ff.Violations)-10)
			break
		}
		fmt.Fprintf(stdout, "  %v\n", v)
	}
	path := *traceFile
	if path == "" {
		path = filepath.Join(os.TempDir(), fmt.Sprintf("onecast-sim-%s-seed%d.trace", spec.Name, ff.Seed))
	}
	if err := writeTrace(cfg, ff.Seed, path, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replay: %s\n", replayCommand(fs, ff.Seed))
	return fmt.Errorf("%w: %d of %d runs (%s); first failing seed %d", errViolation, sum.Failed, sum.Runs, strings.Join(sum.Properties(), ", "), ff.Seed)
}

// writeTrace replays one seed with a trace writer.
func writeTrace(cfg sim.Config, seed uint64, path string, stdout io.Writer) error {
	fh, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write trace: %w", err)
	}
	cfg.Trace = fh
	_, runErr := sim.Run(cfg, seed)
	if err := fh.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return fmt.Errorf("trace seed %d: %w", seed, runErr)
	}
	fmt.Fprintf(stdout, "trace of seed %d: %s\n", seed, path)
	return nil
}

// replayCommand is the command line that runs exactly one seed with the
// flags of this invocation.
func replayCommand(fs *flag.FlagSet, seed uint64) string {
	parts := []string{"onecast", "sim"}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "seed", "seeds", "workers", "trace":
			return
		}
		parts = append(parts, fmt.Sprintf("--%s=%s", fl.Name, shellQuote(fl.Value.String())))
	})
	parts = append(parts, fmt.Sprintf("--seed=%d", seed), "--seeds=1")
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:,/", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func printSummary(w io.Writer, spec broadcast.Spec, s *sim.Summary) {
	verdict := "PASS"
	if s.Failed > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s: %d runs, %d with violations", verdict, s.Runs, s.Failed)
	for _, p := range s.Properties() {
		fmt.Fprintf(w, " [%s: %d]", p, s.ByProperty[p])
	}
	fmt.Fprintf(w, ", %d unsettled\n", s.Unsettled)
	fmt.Fprintf(w, "speed: %d events, %d messages in %v: %.0f simulated msgs/s\n", s.Events, s.Messages, s.Elapsed.Round(time.Millisecond), s.MessagesPerSecond())
	if len(s.ByBehaviour) > 0 {
		fmt.Fprint(w, "byzantine node-runs:")
		for _, b := range append(append(sim.Behaviours(), sim.PBFTBehaviours()...), sim.DolevStrongBehaviours()...) {
			if c := s.ByBehaviour[b.Name]; c > 0 {
				fmt.Fprintf(w, " %s=%d", b.Name, c)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "network: %d retransmits, %d reordered, %d duplicated; %d messages rejected by protocols; %d deliveries\n",
		s.Retransmits, s.Reordered, s.Duplicated, s.Rejected, s.Deliveries)
	fmt.Fprintf(w, "correct nodes: payload duplication factor %.2f, wire factor %.2f\n", s.Correct.PayloadDupFactor(), s.Correct.WireFactor())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "type\tsent msgs\tsent hdr B\tsent payload B\trecv msgs\trecv hdr B\trecv payload B\t")
	name := func(t broadcast.MsgType) string {
		if spec.TypeName != nil {
			return spec.TypeName(t)
		}
		return fmt.Sprintf("type%d", uint8(t))
	}
	for _, r := range s.Correct.Types {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name(r.Type), r.SentMessages, r.SentHeaderBytes, r.SentPayload, r.RecvMessages, r.RecvHeaderBytes, r.RecvPayload)
	}
	t := s.Correct.Totals()
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t%d\t\n", t.SentMessages, t.SentHeaderBytes, t.SentPayload, t.RecvMessages, t.RecvHeaderBytes, t.RecvPayload)
	tw.Flush()
}

// behavioursFor lists the Byzantine behaviours a protocol class can be run
// against: the generic ones, plus those written for the protocol.
func behavioursFor(c broadcast.Class) []sim.BehaviourSpec {
	bs := sim.Behaviours()
	switch c {
	case broadcast.StateMachineReplication:
		bs = append(bs, sim.PBFTBehaviours()...)
	case broadcast.ByzantineBroadcast:
		bs = append(sim.DolevStrongBehaviours(), bs...)
	}
	return bs
}
