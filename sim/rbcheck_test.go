package sim

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// rbScript drives a ReliableBroadcastChecker over 4 nodes, node 3
// Byzantine.
type rbScript struct {
	submit  map[broadcast.NodeID][]string
	deliver []rbDel
	settled bool
}

type rbDel struct {
	node    broadcast.NodeID
	origin  broadcast.NodeID
	seq     uint64
	payload string
	digest  string // digest claimed, when it differs from the payload's
}

func dg(s string) broadcast.Digest { return broadcast.DigestOfBytes([]byte(s)) }

func (s rbScript) run(t *testing.T) []Violation {
	t.Helper()
	c := NewReliableBroadcastChecker(4)
	for node := range broadcast.NodeID(4) {
		for _, p := range s.submit[node] {
			c.Submitted(node, dg(p), 0)
		}
	}
	for _, d := range s.deliver {
		claimed := dg(d.payload)
		if d.digest != "" {
			claimed = dg(d.digest)
		}
		buf := bufpool.Wrap([]byte(d.payload))
		c.Delivered(d.node, &broadcast.Delivery{Instance: broadcast.Instance{Origin: d.origin, Seq: d.seq}, Digest: claimed, Payload: buf}, 0)
		buf.Release()
	}
	return c.Finish(&RunInfo{N: 4, F: 1, Correct: []bool{true, true, true, false}, Settled: s.settled, Limit: "horizon 1s"})
}

func properties(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Property)
	}
	return out
}

func everyCorrect(origin broadcast.NodeID, seq uint64, payload string) []rbDel {
	return []rbDel{{0, origin, seq, payload, ""}, {1, origin, seq, payload, ""}, {2, origin, seq, payload, ""}}
}

func TestReliableBroadcastCheckerJudgesEachProperty(t *testing.T) {
	a := map[broadcast.NodeID][]string{0: {"a"}}
	for _, tc := range []struct {
		name string
		s    rbScript
		want []string
	}{
		{"all deliver", rbScript{submit: a, deliver: everyCorrect(0, 1, "a"), settled: true}, nil},
		{"validity: a correct node misses a correct origin's payload",
			rbScript{submit: a, deliver: everyCorrect(0, 1, "a")[:2], settled: true}, []string{"totality", "validity"}},
		{"liveness unmet on a run cut by a time limit is a time-limit failure",
			rbScript{submit: a, deliver: everyCorrect(0, 1, "a")[:2], settled: false}, []string{TimeLimit, TimeLimit}},
		{"a run cut by a time limit that met every obligation passes",
			rbScript{submit: a, deliver: everyCorrect(0, 1, "a"), settled: false}, nil},
		{"agreement: two payloads in one Byzantine instance",
			rbScript{deliver: append(everyCorrect(3, 1, "x")[:2], rbDel{2, 3, 1, "y", ""}), settled: true}, []string{"agreement"}},
		{"totality: Byzantine instance delivered by some correct nodes only",
			rbScript{deliver: everyCorrect(3, 1, "x")[:1], settled: true}, []string{"totality", "totality"}},
		{"nothing delivered from a Byzantine origin is fine",
			rbScript{submit: map[broadcast.NodeID][]string{3: {"z"}}, settled: true}, nil},
		{"integrity: delivered twice",
			rbScript{submit: a, deliver: append(everyCorrect(0, 1, "a"), rbDel{1, 0, 1, "a", ""}), settled: true}, []string{"integrity"}},
		{"bytes that do not match the claimed digest are judged by what they are",
			rbScript{submit: a, deliver: append(everyCorrect(0, 1, "a")[:2], rbDel{2, 0, 1, "b", "a"}), settled: true},
			[]string{"agreement", "integrity", "validity"}},
		{"integrity: a payload the correct origin never sent",
			rbScript{submit: a, deliver: append(everyCorrect(0, 1, "a"), everyCorrect(0, 2, "forged")...), settled: true},
			[]string{"integrity", "integrity", "integrity"}},
		{"integrity: delivered more often than broadcast",
			rbScript{submit: a, deliver: append(everyCorrect(0, 1, "a"), everyCorrect(0, 2, "a")...), settled: true},
			[]string{"integrity", "integrity", "integrity"}},
		{"one payload broadcast twice, delivered twice",
			rbScript{submit: map[broadcast.NodeID][]string{0: {"a", "a"}}, deliver: append(everyCorrect(0, 1, "a"), everyCorrect(0, 2, "a")...), settled: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := properties(tc.s.run(t))
			require.ElementsMatch(t, tc.want, got)
		})
	}
}

func TestCheckersForChoosesByClass(t *testing.T) {
	for _, c := range []broadcast.Class{broadcast.ReliableBroadcast, broadcast.StateMachineReplication, broadcast.ByzantineBroadcast} {
		cs, err := checkersFor(c, 4)
		require.NoError(t, err)
		assert.Len(t, cs, 1, "%v", c)
	}
	_, err := checkersFor(broadcast.Class(99), 4)
	assert.Error(t, err)
}
