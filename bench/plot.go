package bench

import (
	"fmt"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot/plotter"

	"github.com/onecast/onecast/bench/internal/plotkit"
)

// Plot names a written plot file and what it shows.
type Plot struct {
	File    string
	Caption string
}

// series is one line of a plot.
type series struct {
	name string
	pts  plotter.XYs
}

// WritePlots draws the standard plots of a sweep into dir and returns what
// it wrote. A plot whose data has fewer than two distinct x values in every
// series is still drawn (as markers), so that a one-point run shows something.
func WritePlots(dir string, results []Result) ([]Plot, error) {
	var out []Plot
	ok := results[:0:0]
	for _, r := range results {
		if r.Error == "" {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return nil, nil
	}

	// Throughput vs payload size, one line per mode (and other parameters).
	tp := group(ok, func(r *Result) string {
		return fmt.Sprintf("%s %s %s n=%d", r.Protocol, r.Mode, r.Transport, r.N)
	}, func(r *Result) (float64, float64) { return float64(r.PayloadBytes) / 1024, r.PayloadMBPerSec })
	if err := drawLines(filepath.Join(dir, "throughput_vs_payload.png"), "Throughput vs payload size",
		"payload size (KiB, log scale)", "payload throughput (MB/s per node)", tp, true); err != nil {
		return out, err
	}
	out = append(out, Plot{"throughput_vs_payload.png", "Payload throughput per node against payload size, one line per mode."})

	// Wire bytes per delivery vs n.
	wb := group(ok, func(r *Result) string {
		return fmt.Sprintf("%s %s %s %s", r.Protocol, r.Mode, r.Transport, FormatSize(r.PayloadBytes))
	}, func(r *Result) (float64, float64) { return float64(r.N), r.WireBytesPerDelivery / 1024 })
	if err := drawLines(filepath.Join(dir, "wire_bytes_vs_n.png"), "Bytes received per delivery vs cluster size",
		"nodes (n)", "bytes received per delivery per node (KiB)", wb, false); err != nil {
		return out, err
	}
	out = append(out, Plot{"wire_bytes_vs_n.png", "Message bytes a correct node receives per payload delivered, against n: quadratic growth in full mode, flat in digest mode."})

	// Latency CDF, one line per result.
	var cdf []series
	for i := range ok {
		r := &ok[i]
		if len(r.LatencyCDF) == 0 {
			continue
		}
		s := series{name: r.label()}
		for _, p := range r.LatencyCDF {
			s.pts = append(s.pts, plotter.XY{X: p[0], Y: p[1]})
		}
		cdf = append(cdf, s)
	}
	if len(cdf) > 0 {
		if len(cdf) > 12 {
			cdf = cdf[:12] // a legend past a dozen lines is unreadable
		}
		if err := drawLines(filepath.Join(dir, "latency_cdf.png"), "Delivery latency CDF",
			"latency (ms, log scale)", "fraction of deliveries", cdf, true); err != nil {
			return out, err
		}
		out = append(out, Plot{"latency_cdf.png", "Distribution of latency from submit at the origin to delivery at each correct node."})
	}
	return out, nil
}

// group collects one series per key, sorted by x.
func group(results []Result, key func(*Result) string, xy func(*Result) (float64, float64)) []series {
	idx := map[string]int{}
	var out []series
	for i := range results {
		k := key(&results[i])
		j, ok := idx[k]
		if !ok {
			out = append(out, series{name: k})
			j = len(out) - 1
			idx[k] = j
		}
		x, y := xy(&results[i])
		out[j].pts = append(out[j].pts, plotter.XY{X: x, Y: y})
	}
	for _, s := range out {
		sort.Slice(s.pts, func(a, b int) bool { return s.pts[a].X < s.pts[b].X })
	}
	return out
}

func drawLines(path, title, xLabel, yLabel string, data []series, logX bool) error {
	ss := make([]plotkit.Series, len(data))
	for i, d := range data {
		ss[i] = plotkit.Series{Name: d.name, Points: d.pts}
	}
	return plotkit.Lines(path, plotkit.Axes{Title: title, X: xLabel, Y: yLabel, LogX: logX}, ss)
}
