package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
)

func hasProperty(vs []Violation, p string) bool {
	for _, v := range vs {
		if v.Property == p {
			return true
		}
	}
	return false
}

// TestRunCutByATimeLimitIsALivenessFailure: a run that stops at its
// Horizon or its event budget before every correct node delivered fails
// with liveness/time-limit — never passes, and is never blamed on the
// protocol's own validity — while the same run given time passes.
func TestRunCutByATimeLimitIsALivenessFailure(t *testing.T) {
	base := toyConfig(t, 4, DefaultNetwork(), "")
	res, err := Run(base, 1)
	require.NoError(t, err)
	require.Empty(t, res.Violations)
	assert.Equal(t, EndIdle, res.Ended)
	assert.True(t, res.Settled)

	horizon := base
	horizon.Horizon = 3 * time.Millisecond // before most deliveries
	res, err = Run(horizon, 1)
	require.NoError(t, err)
	assert.Equal(t, EndHorizon, res.Ended)
	assert.False(t, res.Settled)
	require.True(t, res.Failed(), "a run cut by its horizon is never a pass")
	for _, v := range res.Violations {
		assert.Equal(t, TimeLimit, v.Property, "%v", v)
		assert.Contains(t, v.Detail, "horizon 3ms")
		assert.Contains(t, v.Detail, "reliable-broadcast/")
	}

	budget := base
	budget.MaxEvents = 20
	res, err = Run(budget, 1)
	require.NoError(t, err)
	assert.Equal(t, EndBudget, res.Ended)
	assert.True(t, hasProperty(res.Violations, TimeLimit), "%v", res.Violations)
	assert.False(t, hasProperty(res.Violations, "termination"), "the time-limit failure says it all")

	sum, err := Sweep(context.Background(), horizon, 1, 10, 2)
	require.NoError(t, err)
	assert.Equal(t, 10, sum.Failed)
	assert.Equal(t, 10, sum.Unsettled)
	assert.Equal(t, 10, sum.ByProperty[TimeLimit])
	assert.Equal(t, 10, sum.Ended[EndHorizon])
}

// TestDolevStrongHorizonBeforeItsRoundsIsATimeLimit is the issue's
// failure: Dolev–Strong at n = 5 runs f+1 = 5 rounds, and a horizon sized
// for f = 0 (6 rounds from a start in round 3) ends the run before the last
// decisions. That is a liveness/time-limit failure, not a validity one; the
// horizon derived from the run's Deadline passes.
func TestDolevStrongHorizonBeforeItsRoundsIsATimeLimit(t *testing.T) {
	cfg := DolevStrongConfig(dolevstrong.Spec, 5, 0, broadcast.ModeDigest, 20*time.Millisecond, nil)
	require.Equal(t, 4, cfg.F)
	round := cfg.Tuning.RoundDuration
	short := cfg
	short.Horizon = 6 * round
	sum, err := Sweep(context.Background(), short, 1, 5, 2)
	require.NoError(t, err)
	assert.Equal(t, 5, sum.ByProperty[TimeLimit], "%v", sum.ByProperty)
	assert.Zero(t, sum.ByProperty["byzantine-broadcast/validity"])
	require.NotNil(t, sum.FirstFailure)
	assert.True(t, strings.Contains(sum.FirstFailure.Violations[0].Detail, "before the protocol's deadline"), "%v", sum.FirstFailure.Violations[0])

	sum, err = Sweep(context.Background(), cfg, 1, 5, 2)
	require.NoError(t, err)
	assert.Zero(t, sum.Failed, "%v", sum.FirstFailure)
	assert.Zero(t, sum.Unsettled, "the horizon passes the Deadline: every obligation was owed")
}

// TestDefaultFIsTheProtocolsLargest: f = 0 in Config and in
// DolevStrongConfig means MaxF — n−1 for Dolev–Strong, ⌊(n−1)/3⌋ for
// Bracha and PBFT — and the Dolev–Strong horizon covers the f+1 rounds.
func TestDefaultFIsTheProtocolsLargest(t *testing.T) {
	for n := 1; n <= 10; n++ {
		assert.Equal(t, n-1, MaxF(dolevstrong.Spec, n), "dolevstrong n=%d", n)
		assert.Equal(t, (n-1)/3, MaxF(bracha.Spec, n), "bracha n=%d", n)
		assert.Equal(t, (n-1)/3, MaxF(PBFTSpec(nil), n), "pbft n=%d", n)
	}
	for n := 2; n <= 10; n++ {
		c, err := Config{Spec: dolevstrong.Spec, N: n, Tuning: broadcast.Tuning{RoundDuration: 60 * time.Millisecond}}.withDefaults()
		require.NoError(t, err)
		assert.Equal(t, n-1, c.F)
		assert.Equal(t, SyncDeadline(60*time.Millisecond, n-1, c.Workload), c.Deadline)
		assert.Equal(t, c.Deadline+120*time.Millisecond, c.Horizon)

		d := DolevStrongConfig(dolevstrong.Spec, n, 0, broadcast.ModeDigest, 20*time.Millisecond, nil)
		assert.Equal(t, n-1, d.F)
		// The last instance starts by round 3 and runs n rounds.
		assert.GreaterOrEqual(t, d.Horizon, time.Duration(3+n)*d.Tuning.RoundDuration)
	}
	c, err := Config{Spec: bracha.Spec, N: 7}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, 2, c.F)
	assert.Zero(t, c.Deadline, "an asynchronous protocol has no deadline")
}

// TestDolevStrongDefaultFPassesAtEverySize runs Dolev–Strong as the CLI
// does without --f, at n = 4…10, a few seeds each.
func TestDolevStrongDefaultFPassesAtEverySize(t *testing.T) {
	for n := 4; n <= 10; n++ {
		cfg := DolevStrongConfig(dolevstrong.Spec, n, 0, broadcast.ModeDigest, 20*time.Millisecond, nil)
		sum, err := Sweep(context.Background(), cfg, 1, 3, 0)
		require.NoError(t, err)
		if sum.FirstFailure != nil {
			t.Fatalf("n=%d seed %d: %v", n, sum.FirstFailure.Seed, sum.FirstFailure.Violations)
		}
		assert.Zero(t, sum.Unsettled)
		assert.Equal(t, 3, sum.Coverage.DolevStrong)
	}
}

// TestSweepStopsWithinASecondWhenCancelled cancels a sweep of long runs
// (PBFT at n = 16) mid-run: it returns within a second with the runs that
// finished, the runs under way abandoned.
func TestSweepStopsWithinASecondWhenCancelled(t *testing.T) {
	cfg := PBFTConfig(16, 0, broadcast.ModeDigest, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	sum, err := Sweep(ctx, cfg, 1, 1000, 2)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), time.Second+200*time.Millisecond)
	assert.Less(t, sum.Runs, 1000)
}
