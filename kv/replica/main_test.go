package replica

import (
	"testing"

	"github.com/onecast/onecast/internal/testenv"
)

// env reports the tests that did not run here, and why, in one line of
// `go test ./...` output (testenv's package doc).
var env = testenv.New("onecast/kv/replica")

func TestMain(m *testing.M) { env.Main(m) }
