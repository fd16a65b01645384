package evaluate

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Fit is a least-squares fit y ≈ Σ Coef[i]·x^i (Coef[0] the constant).
type Fit struct {
	Coef []float64
	// R2 is the coefficient of determination on the fitted points.
	R2 float64
}

// FitPoly fits a polynomial of the given degree to (xs, ys) by least
// squares (QR). It needs more points than coefficients.
func FitPoly(xs, ys []float64, degree int) (Fit, error) {
	if len(xs) != len(ys) {
		return Fit{}, errors.New("fit: xs and ys differ in length")
	}
	if len(xs) <= degree {
		return Fit{}, fmt.Errorf("fit: %d points for a degree-%d polynomial", len(xs), degree)
	}
	a := mat.NewDense(len(xs), degree+1, nil)
	for i, x := range xs {
		v := 1.0
		for j := 0; j <= degree; j++ {
			a.Set(i, j, v)
			v *= x
		}
	}
	var c mat.VecDense
	if err := c.SolveVec(a, mat.NewVecDense(len(ys), append([]float64(nil), ys...))); err != nil {
		return Fit{}, fmt.Errorf("fit: %w", err)
	}
	f := Fit{Coef: make([]float64, degree+1)}
	for j := range f.Coef {
		f.Coef[j] = c.AtVec(j)
	}
	var mean, ssTot, ssRes float64
	for _, y := range ys {
		mean += y
	}
	mean /= float64(len(ys))
	for i, x := range xs {
		d := ys[i] - f.At(x)
		ssRes += d * d
		ssTot += (ys[i] - mean) * (ys[i] - mean)
	}
	f.R2 = 1
	if ssTot > 0 {
		f.R2 = 1 - ssRes/ssTot
	}
	return f, nil
}

// At evaluates the fit at x.
func (f Fit) At(x float64) float64 {
	y, v := 0.0, 1.0
	for _, c := range f.Coef {
		y += c * v
		v *= x
	}
	return y
}

// String prints the polynomial with its R².
func (f Fit) String() string {
	s := ""
	for j := len(f.Coef) - 1; j >= 0; j-- {
		c := f.Coef[j]
		if s != "" {
			if c < 0 {
				s += " − "
			} else {
				s += " + "
			}
			c = math.Abs(c)
		}
		switch j {
		case 0:
			s += fmt.Sprintf("%.4g", c)
		case 1:
			s += fmt.Sprintf("%.4g·n", c)
		default:
			s += fmt.Sprintf("%.4g·n^%d", c, j)
		}
	}
	return fmt.Sprintf("%s (R² = %.3f)", s, f.R2)
}

// CostModel predicts per-node throughput at larger n from measured costs.
// A correct node's CPU time per delivered payload grows with the messages
// it handles per broadcast (about 2n in Bracha: an ECHO and a READY from
// every node), so it is fitted as cpu(n) = a + b·n; its received bytes per
// delivery as bytes(n) (linear in digest mode, where one payload copy and
// 2n small headers arrive; the payload n-fold more in full mode).
// Throughput(n) = min(cores·10⁶/cpu(n), bandwidth/bytes(n)), for one node
// per host with Cores cores and a link of Bandwidth bytes/s.
type CostModel struct {
	Mode      string
	CPU       Fit // µs per delivery per node, against n
	Bytes     Fit // received bytes per delivery per node, against n
	Cores     float64
	Bandwidth float64 // bytes per second
}

// Throughput predicts deliveries per second per node at n.
func (m CostModel) Throughput(n float64) float64 {
	cpu := m.CPU.At(n)
	t := math.Inf(1)
	if cpu > 0 {
		t = m.Cores * 1e6 / cpu
	}
	if b := m.Bytes.At(n); b > 0 && m.Bandwidth > 0 {
		t = math.Min(t, m.Bandwidth/b)
	}
	return t
}
