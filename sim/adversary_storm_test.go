package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/internal/mutant"
	"github.com/onecast/onecast/pbft"
	"github.com/onecast/onecast/sim"
)

// only returns the behaviour named name from specs.
func only(t *testing.T, specs []sim.BehaviourSpec, name string) []sim.BehaviourSpec {
	t.Helper()
	for _, b := range specs {
		if b.Name == name {
			return []sim.BehaviourSpec{b}
		}
	}
	t.Fatalf("no behaviour %q", name)
	return nil
}

// TestViewChangeStormDragsReplicasThatJoinOnF: a replica that joins a view
// change on f VIEW-CHANGEs instead of f+1 (TOCS §4.5.2) is dragged by one
// storming Byzantine replica into view after view and the cluster never
// completes its requests; the correct protocol ignores the storm.
func TestViewChangeStormDragsReplicasThatJoinOnF(t *testing.T) {
	byz := []sim.Assignment{{Count: 1, Behaviours: only(t, sim.PBFTBehaviours(), "pbft-viewchange-storm")}}
	cfg := func(muts mutant.Set) sim.Config {
		cfg := sim.PBFTConfig(4, 1, broadcast.ModeDigest, byz, func(c *pbft.Config) { c.Mutations = muts })
		cfg.Horizon = 3 * time.Second // ample for the correct runs, which end idle within 2 s
		return cfg
	}
	caught := 0
	for seed := uint64(1); seed <= 6; seed++ {
		mutated, err := sim.Run(cfg(mutant.Of(mutant.PBFTJoinOnF)), seed)
		require.NoError(t, err)
		correct, err := sim.Run(cfg(0), seed)
		require.NoError(t, err)
		assert.False(t, correct.Failed(), "seed %d: the correct protocol fails under the storm: %v", seed, correct.Violations)
		if mutated.Failed() {
			caught++
		}
	}
	assert.GreaterOrEqual(t, caught, 3, "the storm catches join-on-f on at most %d of 6 seeds", caught)
}

// TestForgedOriginChainFoolsOnlyAVerifierWithoutTheOriginCheck: a chain
// signed by the coalition but not by the (correct) origin makes a verifier
// that does not require the origin's signature accept a second value; the
// correct protocol refuses it.
func TestForgedOriginChainFoolsOnlyAVerifierWithoutTheOriginCheck(t *testing.T) {
	byz := []sim.Assignment{{Count: 2, Behaviours: only(t, sim.DolevStrongBehaviours(), "ds-forge-origin")}}
	cfg := func(muts mutant.Set) sim.Config {
		spec := dolevstrong.Spec
		spec.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
			return dolevstrong.New(dolevstrong.Config{Params: p, Store: env.Store, Keys: env.Keys,
				RoundDuration: env.Tuning.RoundDuration, Mutations: muts})
		}
		return sim.DolevStrongConfig(spec, 4, 2, broadcast.ModeDigest, sim.DefaultNetwork().Delta, byz)
	}
	for seed := uint64(1); seed <= 3; seed++ {
		mutated, err := sim.Run(cfg(mutant.Of(mutant.DSNoOriginSig)), seed)
		require.NoError(t, err)
		correct, err := sim.Run(cfg(0), seed)
		require.NoError(t, err)
		assert.True(t, mutated.Failed(), "seed %d: the forged chain is not accepted without the origin check", seed)
		assert.False(t, correct.Failed(), "seed %d: %v", seed, correct.Violations)
	}
}
