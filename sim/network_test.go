package sim

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/sim/toyrb"
)

// testEngine builds a run's engine without running it, to probe the
// network model directly.
func testEngine(t *testing.T, cfg Config, seed uint64) *engine {
	t.Helper()
	cfg, err := cfg.withDefaults()
	require.NoError(t, err)
	e := &engine{cfg: cfg, seed: seed, rng: rand.New(rand.NewPCG(seed, 1)), hash: fnvOffset, res: &Result{Seed: seed}}
	require.NoError(t, e.setup())
	// Drop the workload: the test sends by hand.
	for _, ev := range e.queue {
		e.recycle(ev)
	}
	e.queue = e.queue[:0]
	t.Cleanup(e.teardown)
	return e
}

func msgOf(size int) broadcast.Message {
	var m broadcast.Message
	m.Protocol, m.Type = broadcast.ProtoTest, 1
	m.SetPayload(bufpool.Wrap(make([]byte, size)), broadcast.Digest{1})
	return m
}

// arrivals pops every queued message event and returns their arrival times.
func arrivals(e *engine) []time.Duration {
	var out []time.Duration
	for len(e.queue) > 0 {
		ev := heap.Pop(&e.queue).(*event)
		if ev.kind == evMsg {
			out = append(out, ev.at)
			ev.msg.Payload.Release()
		}
		e.recycle(ev)
	}
	return out
}

// TestAfterGSTCorrectMessagesArriveWithinDelta: whatever the latency tail,
// loss, reordering and partitions, a message between correct nodes sent at
// t arrives by max(t, GST)+Δ.
func TestAfterGSTCorrectMessagesArriveWithinDelta(t *testing.T) {
	nw := HostileNetwork()
	nw.Jitter = 40 * time.Millisecond // a heavy tail: many draws exceed Δ
	nw.Loss = 0.3
	nw.Partitions = 5
	nw.Delta = 50 * time.Millisecond
	e := testEngine(t, Config{Spec: toyrb.Spec(0), N: 4, Net: nw}, 7)
	m := msgOf(100)
	defer m.Payload.Release()
	late := 0
	for i := range 2000 {
		e.now = time.Duration(i) * time.Millisecond // spans before and after GST
		from, to := broadcast.NodeID(i%4), broadcast.NodeID((i+1)%4)
		e.send(from, to, &m, 0)
		for j, at := range arrivals(e) {
			bound := max(e.now, nw.GST) + nw.Delta
			require.LessOrEqual(t, at, bound, "message %d copy %d sent at %v", i, j, e.now)
			require.GreaterOrEqual(t, at, e.now)
			if at > e.now+nw.Delta {
				late++
			}
		}
	}
	assert.Positive(t, late, "before GST some messages must take longer than Δ")
	assert.Positive(t, e.res.Retransmits)
}

func TestPartitionHoldsMessagesUntilItHeals(t *testing.T) {
	nw := DefaultNetwork()
	nw.GST = time.Second
	e := testEngine(t, Config{Spec: toyrb.Spec(0), N: 4, Net: nw}, 1)
	e.parts = []partition{{from: 0, to: 300 * time.Millisecond, side: []uint8{0, 0, 1, 1}}}
	m := msgOf(10)
	defer m.Payload.Release()
	e.now = 10 * time.Millisecond
	e.send(0, 2, &m, 0) // across the cut
	across := arrivals(e)
	e.send(0, 1, &m, 0) // same side
	within := arrivals(e)
	require.Len(t, across, 1)
	require.Len(t, within, 1)
	assert.GreaterOrEqual(t, across[0], 300*time.Millisecond)
	assert.Less(t, within[0], 100*time.Millisecond)
}

func TestBandwidthSerializesALink(t *testing.T) {
	nw := Network{MinLatency: time.Millisecond, Bandwidth: 1_000_000, Delta: time.Hour} // 1 MB/s
	e := testEngine(t, Config{Spec: toyrb.Spec(0), N: 4, Net: nw}, 1)
	m := msgOf(100_000 - broadcast.HeaderSize) // 100 ms on the wire
	defer m.Payload.Release()
	e.send(0, 1, &m, 0)
	e.send(0, 1, &m, 0)
	e.send(0, 2, &m, 0) // another link: not queued behind the others
	got := arrivals(e)
	require.Len(t, got, 3)
	assert.Equal(t, []time.Duration{101 * time.Millisecond, 101 * time.Millisecond, 201 * time.Millisecond}, got)
}

// passThrough is a Byzantine behaviour that behaves correctly, the baseline
// TestEveryBehaviourChangesTheRun compares against.
type passThrough struct{}

func (passThrough) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) { c.Send(to, m) }

// TestEveryBehaviourChangesTheRun: each built-in behaviour must make some
// run differ from a Byzantine node that follows the protocol.
func TestEveryBehaviourChangesTheRun(t *testing.T) {
	honest := BehaviourSpec{Name: "honest", New: func(*Ctx) Behaviour { return passThrough{} }}
	for _, b := range Behaviours() {
		t.Run(b.Name, func(t *testing.T) {
			differs := false
			for seed := uint64(1); seed <= 20 && !differs; seed++ {
				run := func(spec BehaviourSpec) uint64 {
					cfg := toyConfig(t, 4, DefaultNetwork(), "")
					cfg.Byzantine = []Assignment{{Count: 1, Behaviours: []BehaviourSpec{spec}}}
					res, err := Run(cfg, seed)
					require.NoError(t, err)
					require.Empty(t, res.Violations)
					return res.TraceHash
				}
				differs = run(b) != run(honest)
			}
			assert.True(t, differs, "behaviour %s never changed a run", b.Name)
		})
	}
}

func TestTwinsRunTwoCoresUnderOneIdentity(t *testing.T) {
	cfg := toyConfig(t, 4, DefaultNetwork(), "1:twins")
	cfg.Trace = nil
	for seed := uint64(1); seed <= 20; seed++ {
		e := testEngine(t, cfg, seed)
		twins := 0
		for _, nd := range e.nodes {
			if !nd.correct {
				require.Len(t, nd.cores, 2)
				require.NotSame(t, nd.stores[0], nd.stores[1])
				twins++
			}
		}
		require.Equal(t, 1, twins)
	}
}
