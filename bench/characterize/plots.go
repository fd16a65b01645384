package characterize

import (
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/onecast/onecast/bench/internal/plotkit"
)

// line is one series of a line plot.
type line struct {
	name string
	pts  plotter.XYs
}

func drawLines(path, title, xLabel, yLabel string, data []line, logX bool) error {
	ss := make([]plotkit.Series, len(data))
	for i, d := range data {
		ss[i] = plotkit.Series{Name: d.name, Points: d.pts}
	}
	return plotkit.Lines(path, plotkit.Axes{Title: title, X: xLabel, Y: yLabel, LogX: logX, Width: 8 * vg.Inch, Height: 5 * vg.Inch}, ss)
}

// drawStacked draws one stacked bar per label, with one stack layer per
// part.
func drawStacked(path, title, yLabel string, labels []string, parts []string, values [][]float64) error {
	return plotkit.StackedBars(path, plotkit.Axes{Title: title, Y: yLabel, Width: 8 * vg.Inch, Height: 5 * vg.Inch}, labels, parts, values)
}
