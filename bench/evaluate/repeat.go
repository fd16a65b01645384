package evaluate

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/onecast/onecast/bench"
)

// loadAverage reads the 1-, 5- and 15-minute load averages ("" where
// /proc/loadavg is not readable).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// medianH2H folds several runs of the head-to-head into one: per system,
// the run whose requests/s is the median, with every run's requests/s in
// RunsPerSec (for the range). A system that failed in any run keeps that
// run's error.
func medianH2H(runs [][]H2HResult) []H2HResult {
	if len(runs) == 0 {
		return nil
	}
	out := slices.Clone(runs[0])
	if len(runs) == 1 {
		return out
	}
	for i := range out {
		var all []H2HResult
		for _, r := range runs {
			if i < len(r) && r[i].System == out[i].System {
				all = append(all, r[i])
			}
		}
		failed := slices.IndexFunc(all, func(r H2HResult) bool { return r.Error != "" })
		if failed >= 0 || len(all) != len(runs) {
			if failed >= 0 {
				out[i] = all[failed]
			}
			continue
		}
		slices.SortStableFunc(all, func(a, b H2HResult) int { return cmp.Compare(a.RequestsPerSec, b.RequestsPerSec) })
		med := all[(len(all)-1)/2]
		for _, r := range runs {
			med.RunsPerSec = append(med.RunsPerSec, r[i].RequestsPerSec)
		}
		out[i] = med
	}
	return out
}

// runsRange is " (runs lo–hi×)": the smallest and largest ratio a ÷ b of
// the runs taken in order (the first run of a over the first of b, …), or
// "" when either side ran once.
func runsRange(a, b []float64) string {
	if s := runsSpan(a, b); s != "" {
		return " (" + s + ")"
	}
	return ""
}

// runsSpan is runsRange without its parentheses ("runs lo–hi×", or "").
func runsSpan(a, b []float64) string {
	n := min(len(a), len(b))
	if n < 2 {
		return ""
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for k := range n {
		if b[k] == 0 {
			return ""
		}
		v := a[k] / b[k]
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return fmt.Sprintf("runs %.2f–%.2f×", lo, hi)
}

// commaSpan is ", runs lo–hi×" (runsSpan after a comma), or "".
func commaSpan(a, b []float64) string {
	if s := runsSpan(a, b); s != "" {
		return ", " + s
	}
	return ""
}

// figureRuns returns every run's value of a table figure of a result
// ("deliveries/s", "cpu µs/deliv", …), nil when it ran once.
func figureRuns(r *bench.Result, name string) []float64 {
	if r == nil || r.Repeats < 2 {
		return nil
	}
	return r.RepeatValues[name]
}
