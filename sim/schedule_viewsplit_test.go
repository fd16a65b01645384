package sim

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/internal/mutant"
	"github.com/onecast/onecast/pbft"
)

// TestViewSplitRelayTemplate: the relay template makes the views led by
// the Byzantine node dead (it is cut out), prepares the first live view at
// its primary and the Byzantine node, the next two at their primary alone
// with the previous live primary cut out, and cuts the last of them out of
// the view after, where everyone prepares.
func TestViewSplitRelayTemplate(t *testing.T) {
	want := map[broadcast.NodeID][]string{
		3: {"*+3", "*-0", "*-1", "-2"},
		0: {"-0", "*+0", "*-1", "*-2", "-3"},
		1: {"*+1", "-1", "*-0", "*-2", "-3"},
		2: {"*+2", "*-0", "-2", "*-1", "-3"},
	}
	for z, w := range want {
		var got []string
		for _, r := range relayRounds(4, z) {
			got = append(got, r.String())
		}
		assert.Equal(t, w, got, "Byzantine node %d", z)
	}
}

// TestViewSplitLateNewViewTemplate: the late NEW-VIEW template cuts view
// 0's primary out of views 0 and 1, delays view 1's NEW-VIEWs, and cuts
// view 1's primary out of view 2, whose VIEW-CHANGEs it delays.
func TestViewSplitLateNewViewTemplate(t *testing.T) {
	var got []string
	for _, r := range lateNewViewRounds(4, 300*time.Millisecond, 500*time.Millisecond) {
		got = append(got, r.String())
	}
	assert.Equal(t, []string{"-0", "-0N+300ms", "-1V+500ms"}, got)
}

// TestViewSplitHoldsByViewRule: a message is held to after GST exactly
// when its own view's rule says so — PREPAREs of a star view reach only
// the primary and the extra replica, everything of a view to or from the
// replica cut out of it is held, COMMITs reach only commitTo — and nothing
// is held at or after GST, past the drawn views, or that carries no view.
func TestViewSplitHoldsByViewRule(t *testing.T) {
	gst := 10 * time.Second
	e := &engine{cfg: Config{N: 4, Net: Network{GST: gst, MinLatency: time.Millisecond}}, rng: rand.New(rand.NewPCG(1, 2))}
	e.now = time.Second
	sc := &scheduler{views: []viewRound{
		{star: true, also: 3, cut: noNode},
		{star: true, also: noNode, cut: 0},
		{also: noNode, cut: noNode, commitTo: []bool{true, false, true, false}},
		{also: noNode, cut: noNode, lateNewView: 300 * time.Millisecond, lateViewChange: 20 * time.Second},
	}}
	at := e.now + time.Millisecond
	held := func(typ broadcast.MsgType, view uint32, from, to broadcast.NodeID) bool {
		m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: typ, Round: view}}
		got := sc.hold(e, from, to, &m, at)
		if got != at {
			require.GreaterOrEqual(t, got, gst, "a held message arrives after GST")
			return true
		}
		return false
	}
	// View 0: PREPAREs only to the primary (0) and 3.
	assert.True(t, held(pbft.TypePrepare, 0, 1, 2))
	assert.False(t, held(pbft.TypePrepare, 0, 1, 0))
	assert.False(t, held(pbft.TypePrepare, 0, 1, 3))
	assert.False(t, held(pbft.TypePrePrepare, 0, 0, 2))
	assert.False(t, held(pbft.TypeCommit, 0, 3, 2))
	// View 1: 0 cut out; PREPAREs only to the primary (1).
	assert.True(t, held(pbft.TypeViewChange, 1, 0, 1))
	assert.True(t, held(pbft.TypeNewView, 1, 1, 0))
	assert.True(t, held(pbft.TypeCommit, 1, 2, 0))
	assert.False(t, held(pbft.TypeViewChange, 1, 2, 1))
	assert.False(t, held(pbft.TypePrepare, 1, 2, 1))
	assert.True(t, held(pbft.TypePrepare, 1, 2, 3))
	// View 2: COMMITs only to 0 and 2; PREPAREs to everyone.
	assert.True(t, held(pbft.TypeCommit, 2, 1, 3))
	assert.False(t, held(pbft.TypeCommit, 2, 1, 2))
	assert.False(t, held(pbft.TypePrepare, 2, 1, 3))
	// View 3: NEW-VIEWs 300 ms late, VIEW-CHANGEs to GST (20 s is past it).
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: pbft.TypeNewView, Round: 3}}
	late := sc.hold(e, 3, 1, &m, at)
	assert.GreaterOrEqual(t, late, e.now+300*time.Millisecond)
	assert.Less(t, late, gst)
	assert.True(t, held(pbft.TypeViewChange, 3, 0, 1))
	assert.False(t, held(pbft.TypePrepare, 3, 0, 1))
	// Past the drawn views, messages without a view, after GST: nothing.
	assert.False(t, held(pbft.TypeViewChange, 4, 0, 1))
	assert.False(t, held(pbft.TypeRequest, 1, 0, 1))
	assert.False(t, held(pbft.TypeCheckpoint, 0, 0, 1))
	e.now = gst
	assert.False(t, held(pbft.TypePrepare, 0, 1, 2))
}

// viewSplitConfig is the viewsplit configuration of the mutation check
// (mutcheck.ConfigForSeed) with mutations muts.
func viewSplitConfig(t *testing.T, muts mutant.Set) Config {
	var byz []BehaviourSpec
	for _, b := range PBFTBehaviours() {
		if slices.Contains([]string{"pbft-forgevc", "pbft-twins", "pbft-newview", "pbft-stale", "pbft-splitvote"}, b.Name) {
			byz = append(byz, b)
		}
	}
	require.Len(t, byz, 5)
	cfg := PBFTConfig(4, 1, broadcast.ModeDigest, []Assignment{{Count: 1, Behaviours: byz}}, func(c *pbft.Config) { c.Mutations = muts })
	cfg.Schedule = ScheduleViewSplit
	return cfg
}

// TestViewSplitCatchesViewMutants: under ScheduleViewSplit a replica that
// counts COMMITs of other views (pbft-commits-any-view, relay template) or
// enters a view below the one it asked for (pbft-newview-below-target,
// late NEW-VIEW template) executes a batch another correct replica does
// not — the mutation check's first catches — while the correct protocol
// passes the same seeds.
func TestViewSplitCatchesViewMutants(t *testing.T) {
	for _, c := range []struct {
		m    mutant.ID
		seed uint64
	}{{mutant.PBFTCommitsAnyView, 1043}, {mutant.PBFTNewViewBelowTarget, 1315}} {
		res, err := Run(viewSplitConfig(t, mutant.Of(c.m)), c.seed)
		require.NoError(t, err)
		require.NotEmpty(t, res.Violations, "mutant %d seed %d %v", c.m, c.seed, res.Byzantine)
		assert.Equal(t, "smr/agreement", res.Violations[0].Property, "%v", res.Violations[0])
		res, err = Run(viewSplitConfig(t, 0), c.seed)
		require.NoError(t, err)
		assert.Empty(t, res.Violations, "the correct protocol passes seed %d", c.seed)
	}
}

// TestViewSplitReachesViewChangesInARow: runs under ScheduleViewSplit,
// with a Byzantine replica of any behaviour, pass, and most of them enter
// two or more views in a row with nothing executed and carry prepared
// certificates across NEW-VIEWs.
func TestViewSplitReachesViewChangesInARow(t *testing.T) {
	cfg := PBFTConfig(4, 0, broadcast.ModeDigest, pbftAny(t, 4), nil)
	cfg.Schedule = ScheduleViewSplit
	const seeds = 24
	sum, err := Sweep(context.Background(), cfg, 1, seeds, 0)
	require.NoError(t, err)
	if sum.FirstFailure != nil {
		t.Fatalf("seed %d %v %v", sum.FirstFailure.Seed, sum.FirstFailure.Byzantine, sum.FirstFailure.Violations)
	}
	cov := sum.Coverage
	t.Logf("%s", cov.String())
	assert.GreaterOrEqual(t, cov.ConsecutiveViews2*2, seeds, "≥ 50%% of runs with two view changes in a row")
	assert.Positive(t, cov.CertCarriedTwice, "a certificate carried across two NEW-VIEWs")
}

// TestParseScheduleViewSplit: the schedule's name parses, and it needs
// PBFT.
func TestParseScheduleViewSplit(t *testing.T) {
	s, err := ParseSchedule("viewsplit")
	require.NoError(t, err)
	assert.Equal(t, ScheduleViewSplit, s)
	assert.Contains(t, Schedules(), ScheduleViewSplit)
}
