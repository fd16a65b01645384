package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/onecast/onecast/broadcast"
)

// ClusterFactory starts a cluster for a point; the cluster reports every
// delivery at every correct node to sink. The returned Load says how payloads
// for this cluster are allocated.
type ClusterFactory func(ctx context.Context, pt Point, spec broadcast.Spec, sink Sink) (Cluster, Load, error)

// Options configure Run.
type Options struct {
	// Specs are the protocols the run may name.
	Specs []broadcast.Spec
	// Clusters maps a cluster kind ("inproc", "local", …) to its factory.
	Clusters map[string]ClusterFactory
	// Progress, when set, receives the run's progress: a bar redrawn in
	// place if ProgressLines is zero (for a terminal), else one line every
	// ProgressLines (for a pipe or a log), the first as the run starts.
	Progress      io.Writer
	ProgressLines time.Duration
	// Repeat runs each point this many times (default 1) and reports the
	// median of every figure with its spread (Summarize).
	Repeat int
	// Logger receives one line per point. Nil: discard.
	Logger *slog.Logger
	// OnResult is called as each point finishes (all its repeats).
	OnResult func(Result)
}

// Run measures every point in turn, Repeat times each. It returns the
// results of the points that ran (failed points carry Error) and whether
// ctx ended the run early; a point cut short by ctx is not reported.
func Run(ctx context.Context, points []Point, opts Options) ([]Result, bool) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	repeat := max(opts.Repeat, 1)
	var total time.Duration
	for _, pt := range points {
		total += time.Duration(repeat) * (pt.Warmup + pt.Duration)
	}
	prog := newProgress(opts, len(points)*repeat, total)
	defer prog.stop()
	var results []Result
	step := 0
	for _, pt := range points {
		var runs []Result
		for r := range repeat {
			if ctx.Err() != nil {
				return results, true
			}
			step++
			label := pt.Key()
			if repeat > 1 {
				label = fmt.Sprintf("%s, run %d of %d", label, r+1, repeat)
			}
			prog.point(step, label, pt.Warmup+pt.Duration)
			res, err := runPoint(ctx, pt, opts)
			prog.pointDone()
			if errors.Is(err, context.Canceled) || (err != nil && ctx.Err() != nil) {
				return results, true
			}
			if err != nil {
				res.Error = err.Error()
				log.Warn("point failed", "point", pt.Key(), "err", err)
			} else {
				log.Info("point done", "point", pt.Key(), "deliveries_per_sec", res.DeliveriesPerSec, "dup_factor", res.PayloadDupFactor)
			}
			runs = append(runs, res)
		}
		res := Summarize(runs)
		results = append(results, res)
		if opts.OnResult != nil {
			opts.OnResult(res)
		}
	}
	prog.finish()
	return results, false
}

// progress shows how far a run is: a bar on a terminal, lines elsewhere.
type progress struct {
	bar   *progressbar.ProgressBar
	w     io.Writer
	every time.Duration
	steps int
	total time.Duration
	start time.Time

	mu       sync.Mutex
	step     int
	label    string
	done     time.Duration // planned time of the steps finished
	stepFrom time.Time
	stepSpan time.Duration
	quit     chan struct{}
	wg       sync.WaitGroup
}

func newProgress(opts Options, steps int, total time.Duration) *progress {
	p := &progress{w: opts.Progress, every: opts.ProgressLines, steps: steps, total: total, start: time.Now(), quit: make(chan struct{})}
	switch {
	case opts.Progress == nil:
	case opts.ProgressLines > 0:
		p.wg.Add(1)
		go p.lines()
	case total >= 3*time.Second:
		p.bar = progressbar.NewOptions64(int64(total/time.Millisecond),
			progressbar.OptionSetWriter(opts.Progress),
			progressbar.OptionSetDescription(fmt.Sprintf("%d points", steps)),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		p.wg.Add(1)
		go p.redraw()
	}
	return p
}

// point says step k (from 1), named label, starts, planned to take span.
func (p *progress) point(k int, label string, span time.Duration) {
	p.mu.Lock()
	p.step, p.label, p.stepFrom, p.stepSpan = k, label, time.Now(), span
	p.mu.Unlock()
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("[%d/%d] %s", k, p.steps, label))
	}
}

func (p *progress) pointDone() {
	p.mu.Lock()
	p.done += p.stepSpan
	p.stepSpan = 0
	p.mu.Unlock()
}

// position returns the planned time done so far, as a share of the whole.
func (p *progress) position() (k int, label string, done time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.step, p.label, p.done + min(time.Since(p.stepFrom), p.stepSpan)
}

func (p *progress) redraw() {
	defer p.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			_, _, done := p.position()
			_ = p.bar.Set64(int64(done / time.Millisecond))
		}
	}
}

// lines writes "point k of N …, elapsed, ETA" at once and then every p.every.
func (p *progress) lines() {
	defer p.wg.Done()
	// The first line waits for the first point to be named, briefly.
	first := time.NewTimer(50 * time.Millisecond)
	defer first.Stop()
	select {
	case <-p.quit:
		return
	case <-first.C:
	}
	p.writeLine()
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			p.writeLine()
		}
	}
}

func (p *progress) writeLine() {
	k, label, done := p.position()
	elapsed := time.Since(p.start)
	// The plan (warm-up + duration per point) ignores start-up and drain,
	// so scale it by how the run has kept to it so far.
	left := p.total - done
	if done > time.Second {
		left = time.Duration(float64(left) * float64(elapsed) / float64(done))
	}
	fmt.Fprintf(p.w, "bench: point %d of %d (%s), %s elapsed, about %s left\n",
		max(k, 1), p.steps, label, elapsed.Round(time.Second), left.Round(time.Second))
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

func (p *progress) stop() {
	select {
	case <-p.quit:
		return
	default:
	}
	close(p.quit)
	p.wg.Wait()
	if p.bar != nil {
		_ = p.bar.Exit()
	}
}

func runPoint(ctx context.Context, pt Point, opts Options) (Result, error) {
	res := resultFor(pt)
	spec, err := broadcast.FindSpec(opts.Specs, pt.Protocol)
	if err != nil {
		return res, err
	}
	factory, ok := opts.Clusters[pt.Cluster]
	if !ok {
		return res, fmt.Errorf("cluster kind %q is not available in this build", pt.Cluster)
	}
	window := pt.window()
	if pt.Rate > 0 {
		window = 0
	}
	ring := 1 << 16
	tr := newTracker(pt.N-pt.Faulty(), ring, window)
	// Return the previous point's heap to the system before resetting the
	// peak, so that an in-process cluster's peak RSS is this point's.
	debug.FreeOSMemory()
	resetPeakRSS()
	c, load, err := factory(ctx, pt, spec, tr)
	if err != nil {
		return res, fmt.Errorf("start %s cluster: %w", pt.Cluster, err)
	}
	res, err = measure(ctx, pt, c, tr, load)
	if cerr := c.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("stop cluster: %w", cerr)
	}
	return res, err
}
