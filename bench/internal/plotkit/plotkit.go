// Package plotkit draws the PNG plots of the bench reports (onecast bench
// --out, characterize, evaluate) with gonum/plot, one look for all: white
// background, grid, labelled axes, legend, and log axes that always have a
// decade to tick. gonum panics on some degenerate data; every function here
// returns that as an error instead.
package plotkit

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Series is one named line of points.
type Series struct {
	Name   string
	Points plotter.XYs
	// Fit draws the series dashed, without markers, in the colour of the
	// series before it (the one it fits).
	Fit bool
}

// Axes describe a plot's frame.
type Axes struct {
	Title, X, Y string
	// LogX and LogY use log scales (LogX only when every x is positive).
	LogX, LogY bool
	// XFromZero starts the x axis at zero.
	XFromZero bool
	// Width and Height default to 9 × 5.5 inches.
	Width, Height vg.Length
}

func (a Axes) frame() *plot.Plot {
	p := plot.New()
	p.Title.Text = a.Title
	p.X.Label.Text = a.X
	p.Y.Label.Text = a.Y
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	p.BackgroundColor = color.White
	return p
}

func (a Axes) save(p *plot.Plot, path string) error {
	w, h := a.Width, a.Height
	if w == 0 {
		w = 9 * vg.Inch
	}
	if h == 0 {
		h = 5.5 * vg.Inch
	}
	if err := p.Save(w, h, path); err != nil {
		return fmt.Errorf("save plot %s: %w", path, err)
	}
	return nil
}

// Lines draws line plots with markers to path (PNG).
func Lines(path string, a Axes, data []Series) (err error) {
	defer recoverPlot(a.Title, &err)
	p := a.frame()
	p.Legend.Left = true
	if a.LogX {
		positive := true
		for _, s := range data {
			for _, pt := range s.Points {
				positive = positive && pt.X > 0
			}
		}
		if positive {
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		}
	}
	ci := -1
	var ys []float64
	for _, s := range data {
		if len(s.Points) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.Points)
		if err != nil {
			return fmt.Errorf("plot %s: %w", a.Title, err)
		}
		if !s.Fit || ci < 0 {
			ci++
		}
		c := plotutil.Color(ci)
		l.Color, pts.Color, pts.Shape = c, c, plotutil.Shape(ci)
		l.Dashes = plotutil.Dashes(ci / 7)
		if s.Fit {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			pts.Radius = 0
		}
		p.Add(l, pts)
		p.Legend.Add(s.Name, l, pts)
		for _, pt := range s.Points {
			ys = append(ys, pt.Y)
		}
	}
	if a.LogY {
		decades(p, ys)
	} else {
		p.Y.Min = 0
	}
	if a.XFromZero {
		p.X.Min = 0
	}
	return a.save(p, path)
}

// GroupedBars draws one group of bars per label, one bar per name in each
// group; values[name][label].
func GroupedBars(path string, a Axes, labels, names []string, values [][]float64) (err error) {
	defer recoverPlot(a.Title, &err)
	p := a.frame()
	base := 0.0
	if a.LogY {
		var ys []float64
		for _, row := range values {
			ys = append(ys, row...)
		}
		decades(p, ys)
		base = p.Y.Min
	} else {
		p.Y.Min = 0
	}
	k := len(names)
	w := vg.Points(float64(min(28, 220/max(1, k*len(labels)))) + 6)
	for i, name := range names {
		offset := w * vg.Length(float64(i)-float64(k-1)/2)
		vals := make(plotter.Values, len(labels))
		for j := range labels {
			vals[j] = math.Max(values[i][j]-base, 0)
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return fmt.Errorf("plot %s: %w", a.Title, err)
		}
		if base > 0 {
			// Bars stand on the log axis' floor: stack them on an unplotted
			// bar of that height (gonum's bars start at zero otherwise).
			floor := make(plotter.Values, len(labels))
			for j := range floor {
				floor[j] = base
			}
			under, err := plotter.NewBarChart(floor, w)
			if err != nil {
				return fmt.Errorf("plot %s: %w", a.Title, err)
			}
			under.Offset = offset
			bars.StackOn(under)
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = offset
		p.Add(bars)
		p.Legend.Add(name, bars)
	}
	p.NominalX(labels...)
	return a.save(p, path)
}

// StackedBars draws one stacked bar per label with one layer per part;
// values[label][part]. The y axis leaves room above the bars for the
// legend.
func StackedBars(path string, a Axes, labels, parts []string, values [][]float64) (err error) {
	defer recoverPlot(a.Title, &err)
	p := a.frame()
	w := vg.Points(28)
	var prev *plotter.BarChart
	for i, name := range parts {
		vals := make(plotter.Values, len(labels))
		for j := range labels {
			vals[j] = values[j][i]
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return fmt.Errorf("plot %s: %w", a.Title, err)
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		if prev != nil {
			b.StackOn(prev)
		}
		p.Add(b)
		p.Legend.Add(name, b)
		prev = b
	}
	p.NominalX(labels...)
	top := 0.0
	for _, v := range values {
		sum := 0.0
		for _, x := range v {
			sum += x
		}
		top = max(top, sum)
	}
	p.Y.Min, p.Y.Max = 0, top*1.45
	return a.save(p, path)
}

// decades sets a log y axis to whole decades around the positive values, so
// that it always has ticks to draw (gonum's LogTicks needs a decade).
func decades(p *plot.Plot, ys []float64) {
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	lo, hi := math.Inf(1), 0.0
	for _, y := range ys {
		if y > 0 {
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	p.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
	if p.Y.Max <= p.Y.Min {
		p.Y.Max = p.Y.Min * 10
	}
}

// recoverPlot turns a panic of the plotting library into an error.
func recoverPlot(title string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("plot %q: %v", title, r)
	}
}
