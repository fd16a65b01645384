package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
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
	// Progress, when set, shows a progress bar there.
	Progress io.Writer
	// Logger receives one line per point. Nil: discard.
	Logger *slog.Logger
	// OnResult is called as each point finishes.
	OnResult func(Result)
}

// Run measures every point in turn. It returns the results of the points
// that ran (failed points carry Error) and whether ctx ended the run early;
// a point cut short by ctx is not reported.
func Run(ctx context.Context, points []Point, opts Options) ([]Result, bool) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var total time.Duration
	for _, pt := range points {
		total += pt.Warmup + pt.Duration
	}
	var bar *progressbar.ProgressBar
	if opts.Progress != nil && total >= 3*time.Second {
		bar = progressbar.NewOptions64(int64(total/time.Millisecond),
			progressbar.OptionSetWriter(opts.Progress),
			progressbar.OptionSetDescription(fmt.Sprintf("%d points", len(points))),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		defer bar.Exit()
	}
	var results []Result
	done := time.Duration(0)
	for i, pt := range points {
		if ctx.Err() != nil {
			return results, true
		}
		if bar != nil {
			bar.Describe(fmt.Sprintf("[%d/%d] %s", i+1, len(points), pt.Key()))
		}
		stopBar := make(chan struct{})
		if bar != nil {
			go func(base time.Duration, span time.Duration) {
				start := time.Now()
				t := time.NewTicker(200 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stopBar:
						return
					case <-t.C:
						_ = bar.Set64(int64((base + min(time.Since(start), span)) / time.Millisecond))
					}
				}
			}(done, pt.Warmup+pt.Duration)
		}
		res, err := runPoint(ctx, pt, opts)
		close(stopBar)
		done += pt.Warmup + pt.Duration
		if bar != nil {
			_ = bar.Set64(int64(done / time.Millisecond))
		}
		if errors.Is(err, context.Canceled) || (err != nil && ctx.Err() != nil) {
			return results, true
		}
		if err != nil {
			res.Error = err.Error()
			log.Warn("point failed", "point", pt.Key(), "err", err)
		} else {
			log.Info("point done", "point", pt.Key(), "deliveries_per_sec", res.DeliveriesPerSec, "dup_factor", res.PayloadDupFactor)
		}
		results = append(results, res)
		if opts.OnResult != nil {
			opts.OnResult(res)
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	return results, false
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
	window := pt.Inflight
	if pt.Rate > 0 {
		window = 0
	}
	ring := 1 << 16
	tr := newTracker(pt.N-pt.Faulty(), ring, window)
	runtime.GC()
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
