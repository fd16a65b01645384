package sim

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dsDelta bounds the delay of a correct node's message in the Dolev–Strong
// runs: the network is synchronous from the start (no GST, no partitions),
// and a round lasts 3·dsDelta — a relay plus a fetch round trip, what
// digest mode needs.
const dsDelta = 20 * time.Millisecond

func dsConfig(spec broadcast.Spec, n, f, byz int, mode broadcast.Mode, behaviours []BehaviourSpec) Config {
	cfg := DolevStrongConfig(spec, n, f, mode, dsDelta, []Assignment{{Count: byz, Behaviours: behaviours}})
	// Both modes get digest mode's round, so that the two differ in payload
	// handling only.
	round := 3 * dsDelta
	cfg.Tuning.RoundDuration = round
	cfg.Workload.Spread = 2 * round
	cfg.Horizon = time.Duration(f+6) * round
	// Three senders per run (whichever of them the seed makes Byzantine):
	// the sweeps' cost is signatures, and every run still has instances of
	// correct and, with byz/n odds each, Byzantine senders.
	cfg.Workload.Origins = []broadcast.NodeID{0, 1, 2}
	return cfg
}

// dsSeeds is the seeds per configuration: DOLEVSTRONG_SEEDS, or a number
// that keeps the package's tests short.
func dsSeeds(t *testing.T, short uint64) uint64 {
	if s := os.Getenv("DOLEVSTRONG_SEEDS"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		return v
	}
	return short
}

func dsBehaviours() []BehaviourSpec { return append(DolevStrongBehaviours(), Behaviours()...) }

// TestDolevStrongAgreementAndValidityUnderByzantineNodes runs Dolev–Strong
// with f = n−1 and 1, about n/2 and n−1 Byzantine nodes drawing from the
// Dolev–Strong attacks (validly signed equivocation, coalition proofs shown
// late, partial senders, selective relayers) and the generic behaviours.
// Signatures make validity hold without an honest majority, so both
// properties are checked at every Byzantine count.
func TestDolevStrongAgreementAndValidityUnderByzantineNodes(t *testing.T) {
	seeds := dsSeeds(t, 25)
	for _, n := range []int{4, 7, 10} {
		for _, byz := range []int{1, n / 2, n - 1} {
			for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
				t.Run(fmt.Sprintf("n%d/byz%d/%v", n, byz, mode), func(t *testing.T) {
					cfg := dsConfig(dolevstrong.Spec, n, n-1, byz, mode, dsBehaviours())
					sum, err := Sweep(context.Background(), cfg, 1, seeds, runtime.GOMAXPROCS(0))
					require.NoError(t, err)
					require.Equal(t, int(seeds), sum.Runs)
					if sum.FirstFailure != nil {
						t.Fatalf("%d of %d runs failed %v; first: seed %d %v %v", sum.Failed, sum.Runs, sum.Properties(),
							sum.FirstFailure.Seed, sum.FirstFailure.Byzantine, sum.FirstFailure.Violations)
					}
					assert.Zero(t, sum.Unsettled)
					assert.Positive(t, sum.Deliveries)
					t.Logf("%d runs, %d deliveries, %d messages, behaviours %v", sum.Runs, sum.Deliveries, sum.Messages, sum.ByBehaviour)
				})
			}
		}
	}
}

// TestDolevStrongAggregateVariantInSimulator is the same check for the BLS
// aggregate variant, on fewer seeds (each aggregate costs ≈ 2 ms to verify).
func TestDolevStrongAggregateVariantInSimulator(t *testing.T) {
	seeds := dsSeeds(t, 10)
	if os.Getenv("DOLEVSTRONG_SEEDS") != "" {
		seeds = max(seeds/50, 10)
	}
	for _, sz := range []struct{ n, byz int }{{4, 1}, {7, 6}} {
		n := sz.n
		rings, err := dolevstrong.GenerateBLSKeyrings(n, crand.Reader)
		require.NoError(t, err)
		for _, byz := range []int{sz.byz} {
			t.Run(fmt.Sprintf("n%d/byz%d", n, byz), func(t *testing.T) {
				cfg := dsConfig(dolevstrong.AggregateSpec(rings), n, n-1, byz, broadcast.ModeDigest, dsBehaviours())
				cfg.Workload.Origins = []broadcast.NodeID{0, 1}
				sum, err := Sweep(context.Background(), cfg, 1, seeds, runtime.GOMAXPROCS(0))
				require.NoError(t, err)
				if sum.FirstFailure != nil {
					t.Fatalf("%d runs failed; first: seed %d %v %v", sum.Failed, sum.FirstFailure.Seed, sum.FirstFailure.Byzantine, sum.FirstFailure.Violations)
				}
				assert.Positive(t, sum.Deliveries)
			})
		}
	}
}

// unsafeSpec is Dolev–Strong broken on purpose: f rounds instead of f+1.
func unsafeSpec() broadcast.Spec {
	s := dolevstrong.Spec
	s.Name = "dolevstrong-f-rounds"
	s.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		return dolevstrong.New(dolevstrong.Config{Params: p, Store: env.Store, Keys: env.Keys,
			RoundDuration: env.Tuning.RoundDuration, UnsafeRounds: p.F})
	}
	return s
}

// TestDolevStrongWithFRoundsIsCaught shows that the checker catches the
// broken variant: a coalition of f Byzantine nodes shows a proof of f
// signatures to some correct nodes in round f, the last round of the broken
// protocol, and agreement fails. The same runs of the real protocol (f+1
// rounds) pass.
func TestDolevStrongWithFRoundsIsCaught(t *testing.T) {
	const n, f = 7, 3
	seeds := dsSeeds(t, 100)
	late := []BehaviourSpec{DolevStrongBehaviours()[1]}
	require.Equal(t, "ds-late", late[0].Name)

	broken, err := Sweep(context.Background(), dsConfig(unsafeSpec(), n, f, f, broadcast.ModeDigest, late), 1, seeds, runtime.GOMAXPROCS(0))
	require.NoError(t, err)
	require.Positive(t, broken.Failed, "f rounds must lose agreement on some seed")
	assert.Positive(t, broken.ByProperty["byzantine-broadcast/agreement"])
	t.Logf("broken variant: %d of %d runs violate %v; first: seed %d %v", broken.Failed, broken.Runs, broken.Properties(),
		broken.FirstFailure.Seed, broken.FirstFailure.Violations[0])

	sound, err := Sweep(context.Background(), dsConfig(dolevstrong.Spec, n, f, f, broadcast.ModeDigest, late), 1, seeds, runtime.GOMAXPROCS(0))
	require.NoError(t, err)
	require.Zero(t, sound.Failed, "f+1 rounds: %v", sound.FirstFailure)
}

// TestDolevStrongFullModeWithTightRounds runs full mode with Δ equal to the
// delivery bound (RoundFor), the tightest round it is specified for.
func TestDolevStrongFullModeWithTightRounds(t *testing.T) {
	seeds := dsSeeds(t, 50)
	cfg := DolevStrongConfig(dolevstrong.Spec, 7, 6, broadcast.ModeFull, dsDelta,
		[]Assignment{{Count: 3, Behaviours: dsBehaviours()}})
	require.Equal(t, dsDelta, cfg.Tuning.RoundDuration)
	sum, err := Sweep(context.Background(), cfg, 1, seeds, runtime.GOMAXPROCS(0))
	require.NoError(t, err)
	require.Zero(t, sum.Failed, "%v", sum.FirstFailure)
	assert.Positive(t, sum.Deliveries)
}
