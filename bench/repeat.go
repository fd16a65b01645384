package bench

import (
	"fmt"
	"slices"
)

// Summarize folds the results of one point run several times into one: each
// table figure is the median of the runs, RepeatValues keeps every run's
// value (for the min–max spread), and the other fields come from the run
// whose deliveries/s is the median. Incomplete payloads add up. If a run
// failed, the summary is that failure, naming the run.
func Summarize(runs []Result) Result {
	if len(runs) == 0 {
		return Result{}
	}
	for i, r := range runs {
		if r.Error != "" && len(runs) > 1 {
			r.Error = fmt.Sprintf("run %d of %d: %s", i+1, len(runs), r.Error)
			r.Repeats = len(runs)
			return r
		}
	}
	if len(runs) == 1 {
		return runs[0]
	}
	order := make([]int, len(runs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmpFloat(runs[a].DeliveriesPerSec, runs[b].DeliveriesPerSec)
	})
	out := runs[order[(len(runs)-1)/2]]
	out.Repeats = len(runs)
	out.RepeatValues = map[string][]float64{}
	out.Incomplete = 0
	for _, r := range runs {
		out.Incomplete += r.Incomplete
	}
	for _, f := range figures {
		vals := make([]float64, len(runs))
		for i := range runs {
			vals[i] = f.get(&runs[i])
		}
		out.RepeatValues[f.name] = vals
		f.set(&out, median(vals))
	}
	return out
}

// spread returns the smallest and largest value of figure f over the runs.
func (r *Result) spread(f figure) (lo, hi float64) {
	vals := r.RepeatValues[f.name]
	if len(vals) == 0 {
		v := f.get(r)
		return v, v
	}
	return slices.Min(vals), slices.Max(vals)
}

func median(vals []float64) float64 {
	s := slices.Clone(vals)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
