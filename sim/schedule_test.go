package sim

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
)

func pbftAny(t *testing.T, n int) []Assignment {
	as, err := ParseByzantine("1:any", append(Behaviours(), PBFTBehaviours()...))
	require.NoError(t, err)
	as[0].Count = (n - 1) / 3
	return as
}

// TestDefaultPBFTWorkloadCrossesTwoStableCheckpoints: the default PBFT run
// (PBFTConfig) crosses at least two stable checkpoints — and so more than
// one watermark window — in every run, under a Byzantine replica on the
// hostile network, and passes.
func TestDefaultPBFTWorkloadCrossesTwoStableCheckpoints(t *testing.T) {
	for _, n := range []int{4, 7} {
		cfg := PBFTConfig(n, 0, broadcast.ModeDigest, pbftAny(t, n), nil)
		seeds := uint64(50)
		if n == 7 {
			seeds = 15
		}
		for seed := uint64(1); seed <= seeds; seed++ {
			res, err := Run(cfg, seed)
			require.NoError(t, err)
			require.Empty(t, res.Violations, "n=%d seed %d %v", n, seed, res.Byzantine)
			require.GreaterOrEqual(t, res.Coverage.MaxStableCheckpoints, uint64(2), "n=%d seed %d %v: %+v", n, seed, res.Byzantine, res.Coverage)
			require.Equal(t, n-(n-1)/3, res.Coverage.PBFTReplicas)
		}
	}
}

// TestViewChangeScheduleReachesConsecutiveViewChanges: under
// ScheduleViewChange at least 10% of PBFT runs have a correct replica enter
// two views in a row with no batch executed in between, and some carry a
// prepared certificate across both; without the schedule they are rarer.
// Every run still passes, and a run is still one seed's.
func TestViewChangeScheduleReachesConsecutiveViewChanges(t *testing.T) {
	cfg := PBFTConfig(4, 0, broadcast.ModeDigest, pbftAny(t, 4), nil)
	cfg.Schedule = ScheduleViewChange
	const seeds = 60
	sum, err := Sweep(context.Background(), cfg, 1, seeds, 0)
	require.NoError(t, err)
	if sum.FirstFailure != nil {
		t.Fatalf("seed %d %v %v", sum.FirstFailure.Seed, sum.FirstFailure.Byzantine, sum.FirstFailure.Violations)
	}
	cov := sum.Coverage
	t.Logf("%s", cov.String())
	assert.Equal(t, seeds, cov.PBFT)
	assert.GreaterOrEqual(t, cov.ConsecutiveViews2*10, seeds, "≥ 10%% of runs with two view changes in a row")
	assert.Positive(t, cov.CertCarriedTwice, "a certificate carried across two NEW-VIEWs")
	assert.Greater(t, cov.ViewChange*10, seeds*9, "nearly every run changes view")

	plain := cfg
	plain.Schedule = ScheduleNone
	base, err := Sweep(context.Background(), plain, 1, seeds, 0)
	require.NoError(t, err)
	assert.Greater(t, cov.ConsecutiveViews2, base.Coverage.ConsecutiveViews2, "the schedule reaches the path more often")

	a, err := Run(cfg, 7)
	require.NoError(t, err)
	b, err := Run(cfg, 7)
	require.NoError(t, err)
	assert.Equal(t, a.TraceHash, b.TraceHash)
}

func TestScheduleViewChangeNeedsPBFT(t *testing.T) {
	_, err := Run(Config{Spec: bracha.Spec, N: 4, Schedule: ScheduleViewChange}, 1)
	require.ErrorIs(t, err, ErrConfig)
	c, err := PBFTConfig(4, 0, broadcast.ModeDigest, nil, nil).withDefaults()
	require.NoError(t, err)
	c.Schedule = ScheduleViewChange
	c, err = c.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, vcMinGST, c.Net.GST, "storms need time before GST")
	for _, s := range []string{"", "none", "viewchange"} {
		_, err := ParseSchedule(s)
		assert.NoError(t, err, s)
	}
	_, err = ParseSchedule("chaos")
	assert.Error(t, err)
}

// TestCoverageLine: the summary's coverage line names every path.
func TestCoverageLine(t *testing.T) {
	var s CoverageSummary
	s.add(Coverage{PBFTReplicas: 3, ViewsEntered: 2, MaxConsecutiveViews: 2, CertsCarried: 1, CertsCarriedTwice: 1, MinStableCheckpoints: 1, MaxStableCheckpoints: 3, StateTransfers: 1})
	s.add(Coverage{PBFTReplicas: 3, MinStableCheckpoints: 2, MaxStableCheckpoints: 2})
	s.add(Coverage{}) // a protocol without counters
	assert.Equal(t, "coverage: 2 runs; view changes ≥1: 50.0%, ≥2 consecutive: 50.0%; certs carried: 50.0%, twice: 50.0%; stable checkpoints ≥2: 100.0% (at every correct replica: 50.0%); state transfers: 50.0%", s.String())
	var d CoverageSummary
	d.add(Coverage{DolevStrongNodes: 4, Decisions: 8, DefaultDecisions: 2})
	d.add(Coverage{DolevStrongNodes: 4, Decisions: 8})
	assert.Equal(t, "coverage: 2 runs; Dolev–Strong decisions on the default value ⊥: 50.0%", d.String())
	assert.Empty(t, (&CoverageSummary{}).String())
}
