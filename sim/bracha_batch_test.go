package sim

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
)

// TestBrachaWithBatchesKeepsItsProperties runs Bracha with several
// application payloads per instance: every item is delivered once
// everywhere, judged by the digest of its own bytes (a delivery's Digest
// names the batch).
func TestBrachaWithBatchesKeepsItsProperties(t *testing.T) {
	seeds := simSeeds(t, 60)
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			pool := checkedPool(t)
			cfg := Config{Spec: brachaSpec(0), N: 4, Mode: mode, Net: HostileNetwork(), Pool: pool,
				Byzantine: []Assignment{{Count: 1, Behaviours: Behaviours()}}, Workload: Workload{PayloadSize: 256},
				Tuning: broadcast.Tuning{Batch: 4}}
			for seed := uint64(1); seed <= seeds; seed++ {
				res, err := Run(cfg, seed)
				require.NoError(t, err)
				require.Empty(t, res.Violations, "seed %d, byzantine %v", seed, res.Byzantine)
				require.True(t, res.Settled, "seed %d", seed)
			}
			require.NoError(t, pool.CheckLeaks())
		})
	}
}
