package sim

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/sim/toyrb"
)

func behaviourNamed(t testing.TB, name string) BehaviourSpec {
	for _, b := range Behaviours() {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no behaviour %q", name)
	return BehaviourSpec{}
}

func checkedPool(t testing.TB) *bufpool.Pool {
	return bufpool.MustNew(bufpool.Config{FrameSize: 64, Frames: 1, Checked: true, Name: t.Name()})
}

func toyConfig(t testing.TB, n int, net Network, byz string) Config {
	as, err := ParseByzantine(byz, Behaviours())
	require.NoError(t, err)
	return Config{Spec: toyrb.Spec(0), N: n, Net: net, Byzantine: as, Workload: Workload{PayloadSize: 256}}
}

func TestCorrectClusterDeliversEverything(t *testing.T) {
	pool := checkedPool(t)
	cfg := toyConfig(t, 4, DefaultNetwork(), "")
	cfg.Pool = pool
	res, err := Run(cfg, 1)
	require.NoError(t, err)
	assert.Empty(t, res.Violations)
	assert.True(t, res.Settled)
	assert.Equal(t, uint64(16), res.Deliveries, "4 origins × 4 nodes")
	// The toy carries the payload in every round: per instance 3 SENDs,
	// 12 ECHOs and 12 READYs, each with the payload.
	assert.Equal(t, uint64(4*27), res.Messages)
	// Each node receives 27 payloads and delivers 3 remote ones: 108/12.
	assert.InDelta(t, 9.0, res.Correct.PayloadDupFactor(), 1e-9)
	require.NoError(t, pool.CheckLeaks())
}

func TestSameSeedSameTrace(t *testing.T) {
	cfg := toyConfig(t, 7, HostileNetwork(), "2:any")
	a, err := Run(cfg, 42)
	require.NoError(t, err)
	b, err := Run(cfg, 42)
	require.NoError(t, err)
	assert.Equal(t, a.TraceHash, b.TraceHash)
	assert.Equal(t, a.Events, b.Events)
	assert.Equal(t, a.Byzantine, b.Byzantine)
	c, err := Run(cfg, 43)
	require.NoError(t, err)
	assert.NotEqual(t, a.TraceHash, c.TraceHash, "another seed is another run")

	// The written trace is deterministic too.
	var t1, t2 bytes.Buffer
	cfg.Trace = &t1
	_, err = Run(cfg, 42)
	require.NoError(t, err)
	cfg.Trace = &t2
	_, err = Run(cfg, 42)
	require.NoError(t, err)
	assert.Equal(t, t1.String(), t2.String())
	assert.Greater(t, t1.Len(), 1000)
}

// TestEveryBehaviourKeepsToyBrachaSafe runs the correct toy Bracha against
// each behaviour on a hostile network: no property may break.
func TestEveryBehaviourKeepsToyBrachaSafe(t *testing.T) {
	for _, b := range Behaviours() {
		for _, n := range []int{4, 7} {
			t.Run(fmt.Sprintf("%s/n%d", b.Name, n), func(t *testing.T) {
				pool := checkedPool(t)
				cfg := toyConfig(t, n, HostileNetwork(), "")
				f := (n - 1) / 3
				cfg.Byzantine = []Assignment{{Count: f, Behaviours: []BehaviourSpec{b}}}
				cfg.Pool = pool
				for seed := uint64(1); seed <= 40; seed++ {
					res, err := Run(cfg, seed)
					require.NoError(t, err)
					require.Empty(t, res.Violations, "seed %d, byzantine %v", seed, res.Byzantine)
					require.True(t, res.Settled)
				}
				require.NoError(t, pool.CheckLeaks())
			})
		}
	}
}

// TestCheckersCatchBrokenEchoQuorum: with the ECHO quorum lowered to f+1 an
// equivocating origin splits the correct nodes; the checkers must notice
// within 1,000 seeds.
func TestCheckersCatchBrokenEchoQuorum(t *testing.T) {
	for _, n := range []int{4, 7} {
		t.Run(fmt.Sprintf("n%d", n), func(t *testing.T) {
			f := (n - 1) / 3
			cfg := toyConfig(t, n, HostileNetwork(), fmt.Sprintf("%d:equivocate", f))
			cfg.Spec = toyrb.Spec(f + 1)
			seed, res := firstFailure(t, cfg, 1000)
			require.NotNil(t, res, "no violation in 1,000 seeds")
			t.Logf("first failing seed %d: %v", seed, res.Violations[0])
		})
	}
}

func firstFailure(t *testing.T, cfg Config, seeds uint64) (uint64, *Result) {
	for seed := uint64(1); seed <= seeds; seed++ {
		res, err := Run(cfg, seed)
		require.NoError(t, err)
		if res.Failed() {
			return seed, res
		}
	}
	return 0, nil
}

func TestParseByzantine(t *testing.T) {
	specs := Behaviours()
	for _, tc := range []struct {
		in    string
		count []int
		names [][]string
		err   bool
	}{
		{in: "", count: nil},
		{in: "2:equivocate", count: []int{2}, names: [][]string{{"equivocate"}}},
		{in: "1:crash,1:twins|replay", count: []int{1, 1}, names: [][]string{{"crash"}, {"twins", "replay"}}},
		{in: "2:any", count: []int{2}, names: [][]string{nil}},
		{in: "x:crash", err: true},
		{in: "1:nosuch", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			as, err := ParseByzantine(tc.in, specs)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Len(t, as, len(tc.count))
			for i, a := range as {
				assert.Equal(t, tc.count[i], a.Count)
				if tc.names[i] == nil {
					assert.Len(t, a.Behaviours, len(specs))
					continue
				}
				var got []string
				for _, b := range a.Behaviours {
					got = append(got, b.Name)
				}
				assert.Equal(t, tc.names[i], got)
			}
		})
	}
}

func TestConfigRejectsTooManyByzantine(t *testing.T) {
	cfg := toyConfig(t, 4, DefaultNetwork(), "2:crash")
	_, err := Run(cfg, 1)
	require.ErrorContains(t, err, "exceed f")
	require.ErrorIs(t, err, ErrConfig)
}

var _ = broadcast.Everyone
