package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/onecast/onecast/broadcast"
)

// Summary aggregates the runs of a sweep.
type Summary struct {
	// Runs counts the runs, Failed those with violations, Unsettled those
	// cut by a time limit (Result.Settled false; failed or not).
	Runs, Failed, Unsettled int
	// Ended counts the runs by why they stopped (index: Ending).
	Ended [EndBudget + 1]int
	// Coverage counts the runs that reached each protocol path.
	Coverage CoverageSummary
	// FirstFailure is the failing run with the lowest seed, if any.
	FirstFailure *Result
	// ByProperty counts failing runs per violated property.
	ByProperty map[string]int
	// ByBehaviour counts Byzantine node-runs per behaviour.
	ByBehaviour map[string]int
	// Sums over all runs.
	Events, Messages, Deliveries, WireBytes      uint64
	Retransmits, Reordered, Duplicated, Rejected uint64
	SimTime                                      time.Duration
	Correct                                      broadcast.Snapshot
	Elapsed                                      time.Duration
}

// MessagesPerSecond is simulated messages per second of wall time.
func (s *Summary) MessagesPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Messages) / s.Elapsed.Seconds()
}

func (s *Summary) add(r *Result) {
	s.Runs++
	if !r.Settled {
		s.Unsettled++
	}
	if r.Ended <= EndBudget {
		s.Ended[r.Ended]++
	}
	if r.Failed() {
		s.Failed++
		if s.FirstFailure == nil || r.Seed < s.FirstFailure.Seed {
			s.FirstFailure = r
		}
		seen := map[string]bool{}
		for _, v := range r.Violations {
			if !seen[v.Property] {
				seen[v.Property] = true
				s.ByProperty[v.Property]++
			}
		}
	}
	for _, b := range r.Byzantine {
		_, name, _ := cutColon(b)
		s.ByBehaviour[name]++
	}
	s.Events += r.Events
	s.Messages += r.Messages
	s.Deliveries += r.Deliveries
	s.WireBytes += r.WireBytes
	s.Retransmits += r.Retransmits
	s.Reordered += r.Reordered
	s.Duplicated += r.Duplicated
	s.Rejected += r.Rejected
	s.SimTime += r.End
	s.Correct.Add(r.Correct)
	s.Coverage.add(r.Coverage)
}

func cutColon(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// Properties returns the violated properties in name order.
func (s *Summary) Properties() []string { return slices.Sorted(maps.Keys(s.ByProperty)) }

// Sweep runs seeds first … first+count-1 on `workers` goroutines (each run
// is still one goroutine and deterministic; workers ≤ 0 means GOMAXPROCS)
// and aggregates them. When ctx ends it stops within milliseconds —
// abandoning the runs under way — and returns the summary of the runs that
// finished with ctx's error. cfg.Trace must be nil.
func Sweep(ctx context.Context, cfg Config, first, count uint64, workers int) (*Summary, error) {
	if cfg.Trace != nil {
		return nil, configErr("Sweep cannot share one trace writer; replay a seed with Run")
	}
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	sum := &Summary{ByProperty: map[string]int{}, ByBehaviour: map[string]int{}}
	start := time.Now()
	var (
		mu      sync.Mutex
		next    = first
		runErr  error
		wg      sync.WaitGroup
		end     = first + count
		claimed = func() (uint64, bool) {
			mu.Lock()
			defer mu.Unlock()
			if next >= end || runErr != nil || ctx.Err() != nil {
				return 0, false
			}
			s := next
			next++
			return s, true
		}
	)
	for range workers {
		wg.Go(func() {
			for {
				seed, ok := claimed()
				if !ok {
					return
				}
				r, err := runUntil(ctx.Done(), cfg, seed)
				if errors.Is(err, errAbandoned) {
					return // cancelled mid-run: the run is dropped
				}
				mu.Lock()
				if err != nil {
					runErr = fmt.Errorf("seed %d: %w", seed, err)
				} else {
					sum.add(r)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sum.Elapsed = time.Since(start)
	if runErr != nil {
		return sum, runErr
	}
	return sum, ctx.Err()
}
