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
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/internal/units"
	"github.com/onecast/onecast/pbft"
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
		f          = fs.Int("f", 0, "faults tolerated (unset: the largest the protocol allows at n: n-1 for dolevstrong, (n-1)/3 otherwise; 0 is f = 0)")
		byz        = fs.String("byzantine", "", "Byzantine nodes, e.g. 2:equivocate, 1:crash,1:twins, 2:equivocate|replay, 2:any")
		seeds      = fs.Uint64("seeds", 100, "number of seeds to run")
		seed       = fs.Uint64("seed", 1, "first seed")
		workers    = fs.Int("workers", 0, "runs in parallel (0: one per CPU; each run stays deterministic, and so does the summary)")
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
		payload    = fs.String("payload", "", "payload size: 1024, 512B, 16KiB, 1MiB (at most 64MiB; default: 512B for dolevstrong, 1KiB otherwise)")
		perNode    = fs.Int("per-node", 0, fmt.Sprintf("payloads each node submits (0: protocol default: %d for pbft, 1 otherwise)", sim.PBFTRequestsPerNode))
		batch      = fs.Int("batch", 0, fmt.Sprintf("Tuning.Batch (0: protocol default; the simulator's pbft orders %d request per batch, with a checkpoint every %d)", sim.PBFTBatch, sim.PBFTCheckpointInterval))
		schedule   = fs.String("schedule", "", "adversarial schedule before GST: none, viewchange (pbft: storms that hold COMMITs and isolate the current primary, for view changes in a row), or viewsplit (pbft: each view partitioned its own way — PREPAREs to one replica, one replica cut out of the view change, NEW-VIEWs late — so that lone certificates of different batches follow one another and COMMITs of earlier views wait in the logs)")
		memLimit   = fs.String("mem-limit", "", "refuse to start when the estimated memory exceeds this size (default: the machine's available memory); raise it to override")
		round      = fs.Duration("round", 0, "Tuning.RoundDuration (0: protocol default)")
		timeout    = fs.Duration("timeout", 0, "Tuning.Timeout (0: protocol default)")
		unsafeEcho = fs.Int("unsafe-echo-quorum", 0, "TEST ONLY: lower the reliable broadcast's ECHO quorum to this (0: correct)")
		traceFile  = fs.String("trace", "", "write the trace of the (first failing) run to this file (default: a file in the temp dir on failure)")
		maxEvents  = fs.Int("max-events", 0, "event budget per run (0: default)")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: onecast sim [flags]

Runs --seeds seeds (one deterministic run each, on every CPU) and checks the
protocol's properties. A run cut by a time limit (horizon, event budget, or a
synchronous protocol's rounds) before every correct node delivered what it
must fails with liveness/time-limit. Defaults per protocol: f is the largest
the protocol tolerates at n; pbft submits %d requests per node, %d per batch,
with a checkpoint every %d sequence numbers (every run crosses stable
checkpoints and watermark windows); dolevstrong runs f+1 rounds of Δ = 3·delta
on a synchronous network. A coverage line counts the runs that reached view
changes, carried certificates, checkpoints, state transfers and ⊥ decisions.
SIGINT or SIGTERM stops the sweep and prints what finished.

Byzantine behaviours: %s (pbft also: %s; dolevstrong also: %s)

flags:
`, sim.PBFTRequestsPerNode, sim.PBFTBatch, sim.PBFTCheckpointInterval,
			sim.BehaviourNames(sim.Behaviours()), sim.BehaviourNames(sim.PBFTBehaviours()), sim.BehaviourNames(sim.DolevStrongBehaviours()))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// usage reports a bad invocation (run prints the complaint, then the
	// usage, once).
	usage := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %v", fs.Args())
	}
	specs := simSpecs(*unsafeEcho)
	spec, err := broadcast.FindSpec(specs, *protocol)
	if err != nil {
		return usage("%v", err)
	}
	md, err := broadcast.ParseMode(*mode)
	if err != nil {
		return usage("%v", err)
	}
	behaviours := behavioursFor(spec.Class)
	as, err := sim.ParseByzantine(*byz, behaviours)
	if err != nil {
		return usage("%v", err)
	}
	sched, err := sim.ParseSchedule(*schedule)
	if err != nil {
		return usage("--schedule: %v", err)
	}
	payloadSize := 0
	if *payload != "" {
		sz, err := parseByteSize(*payload)
		if err != nil {
			return usage("--payload: %v", err)
		}
		if sz == 0 || sz > uint64(broadcast.DefaultLimits.MaxPayload) {
			return usage("--payload %s: want 1 B to %s (the largest payload a message may carry)", *payload, formatByteSize(uint64(broadcast.DefaultLimits.MaxPayload)))
		}
		payloadSize = int(sz)
	}
	switch {
	case *n <= 0:
		return usage("--n must be positive, got %d", *n)
	case *f < 0:
		return usage("--f must not be negative, got %d", *f)
	case *perNode < 0:
		return usage("--per-node must not be negative, got %d", *perNode)
	case *seeds == 0:
		return usage("--seeds must be positive")
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
		return usage("unknown network preset %q (want lan, hostile or sync)", *netName)
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
	// Without --f, f is the largest the protocol tolerates at n, so that
	// the header names it and Dolev–Strong runs (and times) the f+1 rounds
	// its nodes need; an explicit --f 0 is f = 0 (sim.NoFaults, as
	// sim.Config's zero F means the largest).
	fv, cfgF := *f, *f
	if !flagSet(fs, "f") {
		fv = sim.MaxF(spec, *n)
		cfgF = fv
	} else if fv == 0 {
		cfgF = sim.NoFaults
	}
	if spec.MinN(fv) > *n {
		return usage("%s needs n ≥ %d for f = %d, got n = %d", spec.Name, spec.MinN(fv), fv, *n)
	}
	var cfg sim.Config
	switch {
	case spec.Class == broadcast.ByzantineBroadcast:
		// A synchronous protocol: rounds of Δ sized for the network, every
		// value submitted within the first rounds.
		cfg = sim.DolevStrongConfig(spec, *n, cfgF, md, syncDelta, as)
	case spec.Name == "pbft":
		// Checkpoints every sim.PBFTCheckpointInterval and the default PBFT
		// workload; requests as large as the payload.
		size := payloadSize
		cfg = sim.PBFTConfig(*n, cfgF, md, as, func(c *pbft.Config) { c.MaxRequest = max(c.MaxRequest, size) })
	default:
		cfg = sim.Config{Spec: spec, N: *n, F: cfgF, Mode: md, Byzantine: as}
	}
	cfg.Net = nw
	cfg.Schedule = sched
	if *batch > 0 {
		cfg.Tuning.Batch = *batch
	}
	if *timeout > 0 {
		cfg.Tuning.Timeout = *timeout
	}
	if *round > 0 {
		cfg.Tuning.RoundDuration = *round
	}
	if payloadSize > 0 {
		cfg.Workload.PayloadSize = payloadSize
	}
	if *perNode > 0 {
		cfg.Workload.PerNode = *perNode
	}
	if spec.Class == broadcast.ByzantineBroadcast {
		// The horizon follows the rounds and workload as set: two rounds
		// past the last decision (sim.SyncDeadline).
		cfg.Horizon = 0
	}
	cfg.MaxEvents = *maxEvents
	if *workers <= 0 {
		*workers = runtime.GOMAXPROCS(0)
	}
	limit, err := memoryLimit(*memLimit)
	if err != nil {
		return usage("--mem-limit: %v", err)
	}
	est := estimateSimMemory(cfg, *workers)
	if limit > 0 && est.total > limit {
		return usage("n = %d needs an estimated %s (%s), more than the %s limit (%s); lower --n, --workers or --per-node, or raise --mem-limit",
			*n, formatByteSize(est.total), est.detail, formatByteSize(limit), est.limitSource(*memLimit))
	}
	if os.Getenv("GOGC") == "" && limit > 0 && est.total < limit/8 {
		// Small runs allocate fast and keep little: a sparser collector
		// saves about a quarter of the CPU (the heap may grow 5×, not 2×).
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	fmt.Fprintf(stdout, "sim %s mode=%s n=%d f=%d byzantine=%q seeds %d..%d network=%s schedule=%s workers=%d\n",
		spec.Name, md, *n, fv, *byz, *seed, *seed+*seeds-1, *netName, sched, *workers)
	sum, err := sim.Sweep(ctx, cfg, *seed, *seeds, *workers)
	if err != nil && !errors.Is(err, ctx.Err()) {
		if errors.Is(err, sim.ErrConfig) {
			return usage("%v", err)
		}
		return err
	}
	printSummary(stdout, spec, sum)
	if ctx.Err() != nil {
		fmt.Fprintf(stdout, "interrupted: %d of %d runs finished (runs under way were dropped)\n", sum.Runs, *seeds)
	}
	if sum.Failed == 0 && ctx.Err() != nil {
		// Exit 130, as bench: said above ("interrupted: …").
		return fmt.Errorf("%w after %d of %d runs, none failed: %w", errInterrupted, sum.Runs, *seeds, ctx.Err())
	}
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
	if ctx.Err() == nil {
		if err := writeTrace(cfg, ff.Seed, path, stdout); err != nil {
			return err
		}
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
	fmt.Fprintf(w, ", %d cut by a time limit (%d of them with deliveries still owed: %s)\n", s.Unsettled, s.ByProperty[sim.TimeLimit], sim.TimeLimit)
	fmt.Fprintf(w, "runs ended: %d idle, %d at the horizon, %d at the event budget\n", s.Ended[sim.EndIdle], s.Ended[sim.EndHorizon], s.Ended[sim.EndBudget])
	if c := s.Coverage.String(); c != "" {
		fmt.Fprintln(w, c)
	}
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

// parseByteSize reads a size in bytes with internal/units (B, KiB, MiB,
// GiB).
func parseByteSize(s string) (uint64, error) {
	v, err := units.ParseSize(s)
	if err != nil {
		return 0, err
	}
	if v < 0 {
		return 0, fmt.Errorf("size %q is negative", s)
	}
	return uint64(v), nil
}

// formatByteSize prints a size with a binary unit, rounded to 0.1.
func formatByteSize(v uint64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(v)/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(v)/(1<<10))
	}
	return fmt.Sprintf("%d B", v)
}

// memoryLimit is --mem-limit, or, when it is empty, the memory the machine
// has available (MemAvailable, bounded by a cgroup v2 memory.max); 0 when
// neither can be read (no check).
func memoryLimit(flagValue string) (uint64, error) {
	if flagValue != "" {
		return parseByteSize(flagValue)
	}
	var limit uint64
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
				if kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64); err == nil {
					limit = kb << 10
				}
			}
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && (limit == 0 || v < limit) {
			limit = v
		}
	}
	return limit, nil
}

// simMemory is the estimated memory of a sweep.
type simMemory struct {
	total  uint64
	detail string
}

func (simMemory) limitSource(flagValue string) string {
	if flagValue != "" {
		return "--mem-limit"
	}
	return "available memory"
}

// estimateSimMemory estimates the peak memory of a sweep of cfg on
// `workers` goroutines, each holding one run. A run's memory grows as n³:
// every one of n·per-node instances (or PBFT's batches and view changes)
// has n² messages in flight, each with its event, body and signatures; on
// top, every node stores every payload (n² · per-node · payload) and the
// cluster's keyrings hold n² keys. The per-message constants were measured
// (peak heap of single runs at n = 16…48: PBFT ≈ 1.3 KiB·n³, Dolev–Strong
// ≈ 0.55 KiB·n³, Bracha ≈ 0.25 KiB·n³) and doubled for the garbage
// collector's headroom. It is an estimate, meant to refuse n = 1000 before
// it exhausts the machine, not to size small runs.
func estimateSimMemory(cfg sim.Config, workers int) simMemory {
	n := uint64(max(cfg.N, 1))
	per := uint64(max(cfg.Workload.PerNode, 1))
	payload := uint64(max(cfg.Workload.PayloadSize, 0))
	if payload == 0 {
		payload = 1024 // sim.Config's default
	}
	var perMsg uint64
	switch cfg.Spec.Class {
	case broadcast.StateMachineReplication:
		perMsg = 1300 * max(1, per/sim.PBFTRequestsPerNode)
	case broadcast.ByzantineBroadcast:
		perMsg = 550 * per
	default:
		perMsg = 250 * per
	}
	run := 2 * (perMsg*n*n*n + n*n*per*payload)
	keys := 128 * n * n
	total := uint64(max(workers, 1))*run + keys
	return simMemory{total: total, detail: fmt.Sprintf("%d workers × %s per run, with %d nodes, %d payloads of %s per node",
		max(workers, 1), formatByteSize(run), n, per, formatByteSize(payload))}
}
