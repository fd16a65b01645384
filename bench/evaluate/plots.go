package evaluate

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// series is one named line of (x, y) points.
type series struct {
	name string
	pts  plotter.XYs
}

// drawLines draws line plots with markers, axes from zero.
func drawLines(path, title, xLabel, yLabel string, data []series, logY bool) (err error) {
	defer recoverPlot(title, &err)
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	ci := -1
	for _, s := range data {
		if len(s.pts) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", title, err)
		}
		// A fit ("… fit)") is drawn dashed in the colour of the series
		// before it, the one it fits.
		fit := strings.HasSuffix(s.name, "fit)")
		if !fit || ci < 0 {
			ci++
		}
		c := plotutil.Color(ci)
		l.Color, pts.Color, pts.Shape = c, c, plotutil.Shape(ci)
		if fit {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			pts.Radius = 0
		}
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	if logY {
		var ys []float64
		for _, s := range data {
			for _, pt := range s.pts {
				ys = append(ys, pt.Y)
			}
		}
		decades(p, ys)
	} else {
		p.Y.Min = 0
	}
	p.X.Min = 0
	p.BackgroundColor = color.White
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("save plot %s: %w", path, err)
	}
	return nil
}

// drawGroupedBars draws one group of bars per label and one bar per
// series in each group.
func drawGroupedBars(path, title, yLabel string, labels []string, names []string, values [][]float64, logY bool) (err error) {
	defer recoverPlot(title, &err)
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	base := 0.0
	if logY {
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
		vals := make(plotter.Values, len(labels))
		for j := range labels {
			vals[j] = math.Max(values[i][j]-base, 0) // bars stand on the axis' floor
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return fmt.Errorf("plot %s: %w", title, err)
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
				return fmt.Errorf("plot %s: %w", title, err)
			}
			under.Offset = w * vg.Length(float64(i)-float64(k-1)/2)
			bars.StackOn(under)
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = w * vg.Length(float64(i)-float64(k-1)/2)
		p.Add(bars)
		p.Legend.Add(name, bars)
	}
	p.NominalX(labels...)
	p.BackgroundColor = color.White
	if err := p.Save(9*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("save plot %s: %w", path, err)
	}
	return nil
}

// decades sets a log axis to whole decades around the positive values, so
// that it always has ticks to draw (gonum's LogTicks needs a decade).
func decades(p *plot.Plot, ys []float64) {
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

// recoverPlot turns a panic of the plotting library (it panics on some
// degenerate data) into an error.
func recoverPlot(title string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("plot %q: %v", title, r)
	}
}
