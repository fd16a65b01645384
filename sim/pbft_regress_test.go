package sim

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
)

// behavioursNamed picks behaviours by name, in the given order, so that a
// recorded seed keeps choosing the same behaviour for the same node when
// the registries grow.
func behavioursNamed(t *testing.T, names ...string) []BehaviourSpec {
	t.Helper()
	all := append(Behaviours(), PBFTBehaviours()...)
	var out []BehaviourSpec
	for _, n := range names {
		found := false
		for _, b := range all {
			if b.Name == n {
				out, found = append(out, b), true
				break
			}
		}
		require.True(t, found, "behaviour %q", n)
	}
	return out
}

// TestPBFTRegressionNewViewBelowTheAskedView replays the two schedules that
// broke agreement before a replica refused NEW-VIEW(v) after asking for a
// view above v (pbft.acceptsNewView; TOCS §4.4): seed 234487 of the CLI's
// default PBFT run with `--byzantine 1:any` (as its behaviour list stood
// then), and seeds 1..2000 of `--batch 1 --per-node 6 --timeout 20ms
// --byzantine '1:pbft-equivocate|delay|crash'`, of which 485, 1,106 and
// 1,286 violated agreement. ONECAST_SIM_SEEDS raises the second count.
func TestPBFTRegressionNewViewBelowTheAskedView(t *testing.T) {
	base := func() Config {
		return Config{Spec: PBFTSpec(nil), N: 4, Mode: broadcast.ModeDigest, Net: HostileNetwork(),
			Workload: Workload{PerNode: 1, PayloadSize: 1024, Spread: 10 * time.Millisecond}}
	}
	t.Run("seed234487", func(t *testing.T) {
		cfg := base()
		cfg.Byzantine = []Assignment{{Count: 1, Behaviours: behavioursNamed(t, "crash", "silent", "equivocate", "subset",
			"wrongdigest", "corrupt", "replay", "flood", "delay", "twins", "mutate", "pbft-equivocate", "pbft-wrongvote")}}
		res, err := Run(cfg, 234487)
		require.NoError(t, err)
		require.False(t, res.Failed(), "%v", res.Violations)
	})
	t.Run("equivocate-delay-crash", func(t *testing.T) {
		cfg := base()
		cfg.Tuning = broadcast.Tuning{Batch: 1, Timeout: 20 * time.Millisecond}
		cfg.Workload.PerNode = 6
		cfg.Byzantine = []Assignment{{Count: 1, Behaviours: behavioursNamed(t, "pbft-equivocate", "delay", "crash")}}
		for _, seed := range []uint64{485, 1106, 1286} {
			res, err := Run(cfg, seed)
			require.NoError(t, err)
			require.False(t, res.Failed(), "seed %d: %v", seed, res.Violations)
		}
		seeds := simSeeds(t, 300)
		sum, err := Sweep(context.Background(), cfg, 1, seeds, runtime.GOMAXPROCS(0))
		require.NoError(t, err)
		if sum.FirstFailure != nil {
			t.Fatalf("%d of %d runs failed %v; first: seed %d %v", sum.Failed, sum.Runs, sum.Properties(), sum.FirstFailure.Seed, sum.FirstFailure.Violations)
		}
	})
}

// TestPBFTRegressionParkedBatchKeepsItsRequests replays seed 37962 of the
// default PBFT run with `--byzantine 1:any` (behaviours pinned by name as
// the list stood then): a backup that parked a PRE-PREPARE until it had
// fetched a request's bytes accepted it later without pinning them, the
// bytes were evicted at every correct replica, and the committed batch
// could never execute — a liveness failure (pbft.acceptPrePrepare now pins
// a parked slot's batch and requests).
func TestPBFTRegressionParkedBatchKeepsItsRequests(t *testing.T) {
	cfg := PBFTConfig(4, 1, broadcast.ModeDigest, []Assignment{{Count: 1, Behaviours: behavioursNamed(t,
		"crash", "silent", "equivocate", "subset", "wrongdigest", "corrupt", "replay", "flood", "delay", "twins", "mutate",
		"splitvote", "equivocate-each", "impersonate", "twins-rounds", "pbft-equivocate", "pbft-wrongvote", "pbft-splitvote",
		"pbft-ppequivocate", "pbft-newview", "pbft-forgevc", "pbft-stale", "pbft-future", "pbft-twins")}}, nil)
	res, err := Run(cfg, 37962)
	require.NoError(t, err)
	require.False(t, res.Failed(), "%v", res.Violations)
}

// TestPBFTRegressionNewViewReachesEveryReplica replays seed 635998 of the
// default PBFT run with `--byzantine 1:any` (behaviours pinned by name as
// the list stood then; n2 is `equivocate-each`): view 2's Byzantine primary
// handed a valid NEW-VIEW(2) to replica 0 only, which had been cut off and
// never asked for view 2. Replica 0 entered view 2 and moved on towards 3;
// replicas 1 and 3 held two VIEW-CHANGE(2)s (not 2f+1: no timer) and one
// VIEW-CHANGE(3) (not f+1: no join) — a stall to the horizon. A replica
// now hands the NEW-VIEW it entered to replicas still asking for that view
// (pbft relayNewView); the scripted twin of this test is pbft
// TestPaper_4_5_NewViewIsHandedOnToReplicasStillAskingForIt, and the
// pbft-newview-to-one behaviour reaches the split on purpose.
func TestPBFTRegressionNewViewReachesEveryReplica(t *testing.T) {
	as := []Assignment{{Count: 1, Behaviours: behavioursNamed(t, "crash", "silent", "equivocate", "subset", "wrongdigest", "corrupt",
		"replay", "flood", "delay", "twins", "mutate", "splitvote", "equivocate-each", "impersonate", "twins-rounds",
		"pbft-equivocate", "pbft-wrongvote", "pbft-splitvote", "pbft-ppequivocate", "pbft-newview", "pbft-forgevc",
		"pbft-stale", "pbft-future", "pbft-twins")}}
	cfg := PBFTConfig(4, 0, broadcast.ModeDigest, as, nil)
	res, err := Run(cfg, 635998)
	require.NoError(t, err)
	require.False(t, res.Failed(), "%v", res.Violations)
	require.Equal(t, []string{"n2:equivocate-each"}, res.Byzantine, "the recorded schedule")
}
