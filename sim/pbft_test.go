package sim

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/pbft"
)

func pbftConfig(n int, mode broadcast.Mode, tweak func(*pbft.Config)) Config {
	return Config{Spec: PBFTSpec(tweak), N: n, Mode: mode, Net: HostileNetwork(),
		Tuning:    broadcast.Tuning{Batch: 8},
		Byzantine: []Assignment{{Count: (n - 1) / 3, Behaviours: append(PBFTBehaviours(), Behaviours()...)}},
		Workload:  Workload{PerNode: 3, PayloadSize: 256, Spread: 300 * time.Millisecond},
		Checkers:  SMRCheckers}
}

// TestPBFTKeepsAgreementExactlyOnceAndLiveness runs PBFT in both modes at
// n = 4 and 7 with f Byzantine replicas, each drawn from the PBFT attacks
// (equivocating primary, signed wrong votes) and every generic behaviour
// (silent, crash, replay, twins, …), on a network that loses, reorders and
// duplicates messages and partitions before GST. ONECAST_SIM_SEEDS=10000
// is the acceptance run.
func TestPBFTKeepsAgreementExactlyOnceAndLiveness(t *testing.T) {
	seeds := simSeeds(t, 200)
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		for _, n := range []int{4, 7} {
			t.Run(fmt.Sprintf("%v/n%d", mode, n), func(t *testing.T) {
				cfg := pbftConfig(n, mode, nil)
				sum, err := Sweep(context.Background(), cfg, 1, seeds, runtime.GOMAXPROCS(0))
				require.NoError(t, err)
				require.Equal(t, int(seeds), sum.Runs)
				if sum.FirstFailure != nil {
					t.Fatalf("%d of %d runs failed %v; first: seed %d %v %v", sum.Failed, sum.Runs, sum.Properties(),
						sum.FirstFailure.Seed, sum.FirstFailure.Byzantine, sum.FirstFailure.Violations)
				}
				// Runs may end at the horizon (a Byzantine client retries
				// forever); one that did so before every request executed
				// fails with liveness/time-limit above.
				assert.Zero(t, sum.Ended[EndBudget])
				assert.Positive(t, sum.Deliveries)
				t.Logf("%d runs in %v, %d deliveries, %d messages, behaviours %v", sum.Runs, sum.Elapsed, sum.Deliveries, sum.Messages, sum.ByBehaviour)
			})
		}
	}
}

// TestPBFTWithLoweredQuorumIsCaught breaks PBFT on purpose (prepare and
// commit quorums of 1) and requires the checker to catch it under an
// equivocating primary.
func TestPBFTWithLoweredQuorumIsCaught(t *testing.T) {
	cfg := pbftConfig(4, broadcast.ModeDigest, func(c *pbft.Config) { c.UnsafeCommitQuorum = 1 })
	cfg.Byzantine = []Assignment{{Count: 1, Behaviours: PBFTBehaviours()[:1]}}
	sum, err := Sweep(context.Background(), cfg, 1, 40, runtime.GOMAXPROCS(0))
	require.NoError(t, err)
	require.Positive(t, sum.Failed, "the broken variant must be caught")
	assert.Positive(t, sum.ByProperty["smr/agreement"], "%v", sum.ByProperty)
	t.Logf("broken variant: %d of %d runs fail %v", sum.Failed, sum.Runs, sum.ByProperty)
}

func TestPBFTSameSeedSameTrace(t *testing.T) {
	cfg := pbftConfig(4, broadcast.ModeDigest, nil)
	for seed := uint64(1); seed <= 10; seed++ {
		a, err := Run(cfg, seed)
		require.NoError(t, err)
		b, err := Run(cfg, seed)
		require.NoError(t, err)
		require.Equal(t, a.TraceHash, b.TraceHash, "seed %d", seed)
	}
}

// TestPBFTSpecWithEd25519Certificates runs the exported pbft.Spec as the
// CLI does (certificates signed with Ed25519 from Env.Keys), on fewer seeds.
func TestPBFTSpecWithEd25519Certificates(t *testing.T) {
	cfg := pbftConfig(4, broadcast.ModeDigest, nil)
	cfg.Spec = pbft.Spec
	cfg.Tuning.Timeout = 100 * time.Millisecond
	cfg.Byzantine = []Assignment{{Count: 1, Behaviours: Behaviours()}}
	sum, err := Sweep(context.Background(), cfg, 1, 20, runtime.GOMAXPROCS(0))
	require.NoError(t, err)
	if sum.FirstFailure != nil {
		t.Fatalf("seed %d %v %v", sum.FirstFailure.Seed, sum.FirstFailure.Byzantine, sum.FirstFailure.Violations)
	}
	assert.Positive(t, sum.Deliveries)
}

// TestPBFTCheckpointsAndStateTransferUnderByzantineNodes is the same sweep
// with checkpoints every 4 sequence numbers, batches of 2 and 12 requests
// per client: stable checkpoints, garbage collection, watermarks and state
// transfer of replicas left behind by partitions all happen in every run.
func TestPBFTCheckpointsAndStateTransferUnderByzantineNodes(t *testing.T) {
	seeds := simSeeds(t, 100)
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		for _, n := range []int{4, 7} {
			t.Run(fmt.Sprintf("%v/n%d", mode, n), func(t *testing.T) {
				cfg := pbftConfig(n, mode, func(c *pbft.Config) { c.CheckpointInterval = 4 })
				cfg.Tuning.Batch = 2
				cfg.Workload.PerNode = 12
				sum, err := Sweep(context.Background(), cfg, 1, seeds, runtime.GOMAXPROCS(0))
				require.NoError(t, err)
				if sum.FirstFailure != nil {
					t.Fatalf("%d of %d runs failed %v; first: seed %d %v %v", sum.Failed, sum.Runs, sum.Properties(),
						sum.FirstFailure.Seed, sum.FirstFailure.Byzantine, sum.FirstFailure.Violations)
				}
				// Runs may end at the horizon (a Byzantine client retries
				// forever); one that did so before every request executed
				// fails with liveness/time-limit above.
				assert.Zero(t, sum.Ended[EndBudget])
				t.Logf("%d runs in %v, %d deliveries, %d messages", sum.Runs, sum.Elapsed, sum.Deliveries, sum.Messages)
			})
		}
	}
}
