package sim

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
)

// brachaSpec is bracha.Spec, with the ECHO quorum replaced when unsafeEcho
// is positive (a broken protocol the checkers must catch).
func brachaSpec(unsafeEcho int) broadcast.Spec {
	s := bracha.Spec
	if unsafeEcho > 0 {
		s.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
			return bracha.New(bracha.Config{N: p.N, F: p.F, Self: p.Self, Mode: p.Mode, Keys: env.Keys, Store: env.Store,
				Batch: env.Tuning.Batch, FetchTimeout: env.Tuning.Timeout, UnsafeEchoQuorum: unsafeEcho})
		}
	}
	return s
}

// simSeeds is the seed count of the long property tests: small in CI,
// ONECAST_SIM_SEEDS=10000 for the acceptance run.
func simSeeds(t *testing.T, ci int) uint64 {
	if s := os.Getenv("ONECAST_SIM_SEEDS"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		return n
	}
	if testing.Short() {
		return uint64(ci / 4)
	}
	return uint64(ci)
}

// TestBrachaKeepsValidityAgreementIntegrityTotality runs Bracha in both
// modes at n = 4 and n = 7 with f Byzantine nodes, each drawn from every
// behaviour, on a network that loses, reorders and duplicates messages and
// partitions the cluster before GST. No property may break, and no buffer
// may leak.
func TestBrachaKeepsValidityAgreementIntegrityTotality(t *testing.T) {
	seeds := simSeeds(t, 100)
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		for _, n := range []int{4, 7} {
			t.Run(fmt.Sprintf("%v/n%d", mode, n), func(t *testing.T) {
				pool := checkedPool(t)
				cfg := Config{Spec: brachaSpec(0), N: n, Mode: mode, Net: HostileNetwork(), Pool: pool,
					Byzantine: []Assignment{{Count: (n - 1) / 3, Behaviours: Behaviours()}}, Workload: Workload{PayloadSize: 512}}
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
}

// TestBrachaAgainstEachBehaviour runs f nodes of one behaviour at a time,
// so that a failure names the behaviour that caused it.
func TestBrachaAgainstEachBehaviour(t *testing.T) {
	seeds := simSeeds(t, 20)
	for _, b := range Behaviours() {
		for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
			for _, n := range []int{4, 7} {
				t.Run(fmt.Sprintf("%s/%v/n%d", b.Name, mode, n), func(t *testing.T) {
					pool := checkedPool(t)
					cfg := Config{Spec: brachaSpec(0), N: n, Mode: mode, Net: HostileNetwork(), Pool: pool,
						Byzantine: []Assignment{{Count: (n - 1) / 3, Behaviours: []BehaviourSpec{b}}}, Workload: Workload{PayloadSize: 256}}
					for seed := uint64(1); seed <= seeds; seed++ {
						res, err := Run(cfg, seed)
						require.NoError(t, err)
						require.Empty(t, res.Violations, "seed %d, byzantine %v", seed, res.Byzantine)
					}
					require.NoError(t, pool.CheckLeaks())
				})
			}
		}
	}
}

func TestBrachaSameSeedSameTrace(t *testing.T) {
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		cfg := Config{Spec: brachaSpec(0), N: 7, Mode: mode, Net: HostileNetwork(),
			Byzantine: []Assignment{{Count: 2, Behaviours: Behaviours()}}}
		for seed := uint64(1); seed <= 20; seed++ {
			a, err := Run(cfg, seed)
			require.NoError(t, err)
			b, err := Run(cfg, seed)
			require.NoError(t, err)
			require.Equal(t, a.TraceHash, b.TraceHash, "%v seed %d", mode, seed)
			require.Equal(t, a.Events, b.Events)
		}
	}
}

// TestCheckersCatchBrachaWithEchoQuorumFPlusOne: Bracha with its ECHO
// quorum lowered to f+1 and f equivocating nodes breaks agreement or
// totality; the checkers must find it within 1,000 seeds, in both modes.
func TestCheckersCatchBrachaWithEchoQuorumFPlusOne(t *testing.T) {
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		for _, n := range []int{4, 7} {
			t.Run(fmt.Sprintf("%v/n%d", mode, n), func(t *testing.T) {
				f := (n - 1) / 3
				cfg := Config{Spec: brachaSpec(f + 1), N: n, Mode: mode, Net: HostileNetwork(),
					Byzantine: []Assignment{{Count: f, Behaviours: []BehaviourSpec{behaviourNamed(t, "equivocate")}}}}
				seed, res := firstFailure(t, cfg, 1000)
				require.NotNil(t, res, "the broken Bracha passed 1,000 seeds")
				assert.LessOrEqual(t, seed, uint64(1000))
				t.Logf("caught at seed %d: %v", seed, res.Violations[0])
			})
		}
	}
}

// BenchmarkRunBracha measures simulated messages per second with the
// production Bracha at n = 7, digest mode, two Byzantine nodes drawn from
// every behaviour, on the hostile network.
func BenchmarkRunBracha(b *testing.B) {
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		b.Run(mode.String(), func(b *testing.B) {
			cfg := Config{Spec: brachaSpec(0), N: 7, Mode: mode, Net: HostileNetwork(),
				Byzantine: []Assignment{{Count: 2, Behaviours: Behaviours()}}}
			b.ReportAllocs()
			var msgs uint64
			seed := uint64(0)
			for b.Loop() {
				seed++
				res, err := Run(cfg, seed)
				if err != nil {
					b.Fatal(err)
				}
				if res.Failed() {
					b.Fatalf("seed %d: %v", seed, res.Violations)
				}
				msgs += res.Messages
			}
			b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(msgs)/float64(b.N), "msgs/run")
		})
	}
}
