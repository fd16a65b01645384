package evaluate

import (
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/onecast/onecast/bench/internal/plotkit"
)

// series is one named line of (x, y) points.
type series struct {
	name string
	pts  plotter.XYs
}

// drawLines draws line plots with markers; a series named "… fit)" is
// drawn as the fit of the series before it.
func drawLines(path, title, xLabel, yLabel string, data []series, logY bool) error {
	ss := make([]plotkit.Series, len(data))
	for i, d := range data {
		ss[i] = plotkit.Series{Name: d.name, Points: d.pts, Fit: strings.HasSuffix(d.name, "fit)")}
	}
	return plotkit.Lines(path, plotkit.Axes{Title: title, X: xLabel, Y: yLabel, LogY: logY, XFromZero: true,
		Width: 8 * vg.Inch, Height: 5 * vg.Inch}, ss)
}

// drawGroupedBars draws one group of bars per label and one bar per
// series in each group.
func drawGroupedBars(path, title, yLabel string, labels []string, names []string, values [][]float64, logY bool) error {
	return plotkit.GroupedBars(path, plotkit.Axes{Title: title, Y: yLabel, LogY: logY, Width: 9 * vg.Inch, Height: 5 * vg.Inch}, labels, names, values)
}
