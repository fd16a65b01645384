package evaluate

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHeadToHeadHarnessRuns builds and runs the head-to-head module
// (bench/h2h, its own go.mod: the root module's `go test ./...` does not
// reach it) for a short window, the way onecast evaluate does, and checks
// every system committed requests and reported their wire cost.
func TestHeadToHeadHarnessRuns(t *testing.T) {
	if testing.Short() {
		env.OptIn(t, "builds the head-to-head module (-short)")
	}
	res, err := runH2H(context.Background(), "../h2h",
		[]string{"-n", "4", "-payload", "1024", "-inflight", "8", "-duration", "700ms", "-warmup", "200ms"}, 5*time.Minute)
	require.NoError(t, err)
	require.NotEmpty(t, res)
	seen := map[string]bool{}
	for _, r := range res {
		seen[r.System] = true
		require.Empty(t, r.Error, r.System)
		assert.Positive(t, r.Requests, r.System)
		assert.Positive(t, r.RequestsPerSec, r.System)
		assert.Greater(t, r.WireBytesPerRequest, 1024.0, "%s: a request crosses the network at least once", r.System)
		assert.Positive(t, r.LatencyP99Ms, r.System)
	}
	for _, sys := range []string{"onecast-digest", "smartbft", "raft"} {
		assert.True(t, seen[sys], "%s ran", sys)
	}
}
