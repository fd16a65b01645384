package evaluate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/onecast/onecast/bench"
	"github.com/onecast/onecast/bench/characterize"
	"github.com/onecast/onecast/broadcast"
)

// Options configure Run.
type Options struct {
	// Quick runs the reduced profile (under 10 minutes on 2 cores).
	Quick bool
	// Specs are the protocols; Clusters the cluster factories, which must
	// include "inproc" and, for the AF_XDP parts, "netns".
	Specs    []broadcast.Spec
	Clusters map[string]bench.ClusterFactory
	// Netns enables the namespace parts (root). Without it they run in
	// process and the AF_XDP configurations are left out.
	Netns bool
	// H2HDir is the head-to-head harness module (bench/h2h); empty skips
	// the head-to-head.
	H2HDir string
	// Progress, when set, shows progress there: a bar, or with
	// ProgressLines a line every ProgressLines (bench.Options).
	Progress      io.Writer
	ProgressLines time.Duration
	// Log receives one line per step. Nil: discard.
	Log *slog.Logger
	// Repeat runs every point, and the head-to-head, this many times: each
	// figure is then the median of the runs, and the summary gives the
	// runs' range (bench.Summarize). 0 or 1: one run.
	Repeat int
}

// Evaluation is the outcome of one run: every result, grouped as the
// report's tables read them.
type Evaluation struct {
	Env         bench.Environment
	Quick       bool
	Netns       bool
	Interrupted bool
	Took        time.Duration
	// Repeat is how many runs each figure is the median of (1: one run).
	Repeat int
	// LoadAverage is /proc/loadavg's 1-, 5- and 15-minute load at the
	// start and at the end of the run (empty where unknown).
	LoadAverage [2]string

	plan      *plan
	Matrix    []bench.Result
	Byzantine []bench.Result
	Ablation  []bench.Result
	ScaleMem  []bench.Result
	ScaleNet  []bench.Result

	// ByzSim are the simulator's exact counts under each Byzantine
	// behaviour, in both modes.
	ByzSim []characterize.OwnResult

	H2H        []H2HResult
	H2HPayload int
	H2HError   string

	// PlotError says why plots are missing, if they are.
	PlotError string `json:"-"`
}

// Run measures everything the report shows. args is the command line, for
// the record. A point that fails is kept with its error; Run fails only if
// nothing could be planned.
func Run(ctx context.Context, args []string, opts Options) (*Evaluation, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	p, err := newPlan(opts.Quick, opts.Netns, opts.Specs)
	if err != nil {
		return nil, err
	}
	repeat := max(opts.Repeat, 1)
	ev := &Evaluation{Env: bench.CurrentEnvironment(args), Quick: opts.Quick, Netns: opts.Netns, plan: p, H2HPayload: 1 << 10,
		Repeat: repeat}
	ev.LoadAverage[0] = loadAverage()
	defer func() { ev.LoadAverage[1] = loadAverage() }()
	for _, pt := range p.parts() {
		pt.repeat = repeat
	}
	outs := []*[]bench.Result{&ev.Matrix, &ev.Byzantine, &ev.Ablation, &ev.ScaleMem, &ev.ScaleNet}
	names := []string{"matrix", "byzantine", "ablation", "scaling (in process)", "scaling (throughput)"}
	for i, pt := range p.parts() {
		log.Info("evaluate: running", "part", names[i], "points", len(pt.points))
		res, interrupted := bench.Run(ctx, pt.points, bench.Options{Specs: opts.Specs, Clusters: opts.Clusters,
			Progress: opts.Progress, ProgressLines: opts.ProgressLines, Logger: log, Repeat: repeat})
		*outs[i] = res
		if interrupted {
			ev.Interrupted = true
			ev.Took = time.Since(start)
			return ev, nil
		}
	}
	log.Info("evaluate: Byzantine behaviours in the simulator")
	ev.ByzSim = runByzSim()
	if opts.H2HDir != "" {
		log.Info("evaluate: head-to-head", "dir", opts.H2HDir)
		var runs [][]H2HResult
		for range repeat {
			res, err := runH2H(ctx, opts.H2HDir, h2hArgs(opts.Quick, ev.H2HPayload), 10*time.Minute)
			if err != nil {
				ev.H2HError = err.Error()
				log.Warn("evaluate: head-to-head failed", "err", err)
				break
			}
			runs = append(runs, res)
		}
		if ev.H2HError == "" {
			ev.H2H = medianH2H(runs)
		}
	} else {
		ev.H2HError = "not run (no harness directory given)"
	}
	ev.Took = time.Since(start)
	return ev, ctx.Err()
}

// find returns the result of the point with these coordinates, or nil.
func find(rs []bench.Result, proto, mode, transport string, n, payload, batch int, byz string) *bench.Result {
	for i := range rs {
		r := &rs[i]
		if r.Protocol == proto && r.Mode == mode && r.Transport == transport && r.N == n && r.PayloadBytes == payload &&
			(batch == 0 || r.Batch == batch) && r.Byzantine == byz {
			return r
		}
	}
	return nil
}

// ok reports whether r exists and measured something.
func ok(r *bench.Result) bool { return r != nil && r.Error == "" && r.Deliveries > 0 }

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// Byzantine behaviours the simulator-based table covers (sim.Behaviours
// and the protocol-specific ones of the same names).
var byzBehaviours = []string{"", "silent", "equivocate", "flood", "replay"}

// runByzSim runs each protocol, mode and Byzantine behaviour once in the
// deterministic simulator (n = 4, f = 1, 16 KiB, 4 payloads per node, seed
// 1): exact received-byte counts at the correct nodes, and the checkers'
// verdict.
func runByzSim() []characterize.OwnResult {
	var out []characterize.OwnResult
	for _, proto := range []string{"bracha", "pbft", "dolevstrong"} {
		for _, b := range byzBehaviours {
			for _, m := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
				out = append(out, characterize.RunOwn(characterize.OwnPoint{Protocol: proto, N: 4, F: 1, Payload: 16 << 10,
					Batch: 1, PerNode: 4, Byzantine: b, Mode: m}, 1))
			}
		}
	}
	return out
}
