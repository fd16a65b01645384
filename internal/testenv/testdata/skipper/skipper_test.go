// Package skipper is a fixture for testenv's end-to-end test: one test that
// runs, one that skips for a missing program.
package skipper

import (
	"testing"

	"github.com/onecast/onecast/internal/testenv"
)

var env = testenv.New("skipper")

func TestMain(m *testing.M) { env.Main(m) }

func TestRuns(t *testing.T) {}

func TestNeedsAProgram(t *testing.T) {
	env.NeedBinary(t, "no-such-binary-onecast", "no-such-package")
}
