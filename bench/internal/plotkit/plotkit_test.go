package plotkit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot/plotter"
)

func TestEveryKindOfPlotIsWritten(t *testing.T) {
	dir := t.TempDir()
	lines := []Series{{Name: "a", Points: plotter.XYs{{X: 1, Y: 10}, {X: 2, Y: 40}}}, {Name: "a (fit)", Fit: true, Points: plotter.XYs{{X: 1, Y: 11}, {X: 2, Y: 39}}}}
	require.NoError(t, Lines(filepath.Join(dir, "lines.png"), Axes{Title: "t", X: "x", Y: "y", LogX: true}, lines))
	require.NoError(t, Lines(filepath.Join(dir, "logy.png"), Axes{Title: "t", X: "x", Y: "y", LogY: true, XFromZero: true}, lines))
	require.NoError(t, GroupedBars(filepath.Join(dir, "bars.png"), Axes{Title: "t", Y: "y", LogY: true}, []string{"p", "q"}, []string{"m", "n"}, [][]float64{{250, 750}, {0, 1100}}))
	require.NoError(t, StackedBars(filepath.Join(dir, "stack.png"), Axes{Title: "t", Y: "y"}, []string{"p", "q"}, []string{"m", "n"}, [][]float64{{1, 2}, {3, 4}}))
	for _, f := range []string{"lines.png", "logy.png", "bars.png", "stack.png"} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Positive(t, st.Size(), f)
	}
}

// TestDegenerateDataIsAnErrorNotAPanic: a log axis over values within one
// decade, or all zero, used to panic inside gonum.
func TestDegenerateDataIsAnErrorNotAPanic(t *testing.T) {
	dir := t.TempDir()
	assert.NotPanics(t, func() {
		_ = GroupedBars(filepath.Join(dir, "z.png"), Axes{Title: "t", LogY: true}, []string{"p"}, []string{"m"}, [][]float64{{0}})
		_ = Lines(filepath.Join(dir, "z2.png"), Axes{Title: "t", LogY: true}, []Series{{Name: "s", Points: plotter.XYs{{X: 1, Y: 300}, {X: 2, Y: 400}}}})
	})
}
