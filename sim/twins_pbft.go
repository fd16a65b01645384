package sim

import (
	"fmt"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/pbft"
)

// Twins as in Bano et al., "Twins: BFT Systems Made Robust" (2022): a
// Byzantine node is two correct instances (twins) sharing one identity and
// one keyring, and a scenario says, round by round, how the nodes are
// partitioned — which peers each twin talks to, and which correct nodes
// reach each other. Leaders change with the rounds: with round = view (PBFT)
// the leader of round r is view r's primary, so a scenario over several
// views puts the twin in the leader's seat in some of them and beside a
// correct leader in the others.
//
// Messages across a partition are handled by the model: a twin's are
// dropped (it is Byzantine, it may drop anything), and those between
// correct nodes are held until the round ends, through the engine's
// partition episodes — only before GST, so that partial synchrony holds
// after it.

// TwinsRound is one round of a scenario: Group[i] is the part of the
// partition of the twin's i-th peer (its peers in ID order, itself left
// out: a scenario fits whichever node the run makes the twin), Twin[k] the
// part of core k.
type TwinsRound struct {
	Group []uint8
	Twin  [2]uint8
}

// TwinsScenario is a Twins schedule. Rounds are time slices of length
// Slice, or, with ByView, the views of the twin's first core (PBFT): round
// r is view r. After the last round the last one's twin links stay and
// correct nodes are connected again.
type TwinsScenario struct {
	Rounds []TwinsRound
	Slice  time.Duration
	ByView bool
}

// String is a compact form: per round, the parts of the twin's peers in
// ID order, then "t" and the parts of its two cores.
func (s TwinsScenario) String() string {
	out := ""
	for i, r := range s.Rounds {
		if i > 0 {
			out += "|"
		}
		for _, g := range r.Group {
			out += fmt.Sprint(g)
		}
		out += fmt.Sprintf("t%d%d", r.Twin[0], r.Twin[1])
	}
	return out
}

// TwinsScenarios enumerates every scenario of the given number of rounds
// in which, each round, the nodes are split in two parts with the twin's
// cores in different ones (core 0 in part 0, core 1 in part 1: the mirrored
// assignment is the same scenario with the twins' payloads swapped), each
// of the n-1 peers in either: 2^(n-1) rounds, 2^((n-1)·rounds) scenarios —
// the small scope a test enumerates (n = 4, 2 rounds: 64).
func TwinsScenarios(n, rounds int, slice time.Duration, byView bool) []TwinsScenario {
	per := 1 << (n - 1)
	total := 1
	for range rounds {
		total *= per
	}
	out := make([]TwinsScenario, 0, total)
	for k := range total {
		s := TwinsScenario{Slice: slice, ByView: byView}
		x := k
		for range rounds {
			bits := x % per
			x /= per
			g := make([]uint8, n-1)
			for i := range g {
				g[i] = uint8(bits >> i & 1)
			}
			s.Rounds = append(s.Rounds, TwinsRound{Group: g, Twin: [2]uint8{0, 1}})
		}
		out = append(out, s)
	}
	return out
}

// SampleTwinsScenario draws a scenario of the given rounds from the run's
// RNG: each round two or three parts, the correct nodes placed at random,
// the twins in different parts most of the time.
func SampleTwinsScenario(c *Ctx, rounds int, slice time.Duration, byView bool) TwinsScenario {
	r := c.Rand()
	s := TwinsScenario{Slice: slice, ByView: byView}
	for range rounds {
		parts := 2 + r.IntN(2)
		g := make([]uint8, c.N()-1)
		for j := range g {
			g[j] = uint8(r.IntN(parts))
		}
		a := uint8(r.IntN(parts))
		b := uint8(r.IntN(parts))
		if r.IntN(4) != 0 {
			b = (a + 1 + uint8(r.IntN(parts-1))) % uint8(parts)
		}
		s.Rounds = append(s.Rounds, TwinsRound{Group: g, Twin: [2]uint8{a, b}})
	}
	return s
}

// twinsRounds carries out a scenario. It implements Twinned (Route),
// InboundFilter (drops what reaches neither twin) and Behaviour.
type twinsRounds struct {
	s   TwinsScenario
	ctx *Ctx
}

// TwinsBehaviour returns a behaviour that plays scenario s (for tests that
// enumerate scenarios).
func TwinsBehaviour(name string, s TwinsScenario) BehaviourSpec {
	return BehaviourSpec{Name: name, Doc: "twins playing the scenario " + s.String(), New: func(c *Ctx) Behaviour { return newTwinsRounds(c, s) }}
}

func newTwinsRounds(c *Ctx, s TwinsScenario) Behaviour {
	b := &twinsRounds{s: s, ctx: c}
	if s.ByView || s.Slice <= 0 {
		return b
	}
	// Partition the correct nodes round by round, before GST only.
	gst := c.e.cfg.Net.GST
	for i := range s.Rounds {
		r := &s.Rounds[i]
		from := time.Duration(i) * s.Slice
		to := min(from+s.Slice, gst)
		if from >= to {
			break
		}
		side := make([]uint8, c.N())
		for j := range side {
			side[j] = b.part(r, broadcast.NodeID(j))
		}
		c.e.parts = append(c.e.parts, partition{from: from, to: to, side: side})
	}
	return b
}

// part is node j's part in round r (sideAll for the twin itself).
func (b *twinsRounds) part(r *TwinsRound, j broadcast.NodeID) uint8 {
	self := b.ctx.Self()
	switch {
	case j == self:
		return sideAll
	case j > self:
		j--
	}
	if int(j) >= len(r.Group) {
		return 0
	}
	return r.Group[j]
}

// round is the scenario's current round.
func (b *twinsRounds) round() *TwinsRound {
	i := 0
	if b.s.ByView {
		if p, ok := b.ctx.e.nodes[b.ctx.Self()].cores[0].(*pbft.Node); ok {
			i = int(p.View())
		}
	} else if b.s.Slice > 0 {
		i = int(b.ctx.Now() / b.s.Slice)
	}
	if len(b.s.Rounds) == 0 {
		return nil
	}
	return &b.s.Rounds[min(i, len(b.s.Rounds)-1)]
}

func (b *twinsRounds) Route(from broadcast.NodeID) int {
	r := b.round()
	if r == nil || b.part(r, from) == r.Twin[0] {
		return 0
	}
	return 1
}

func (b *twinsRounds) Inbound(_ *Ctx, from broadcast.NodeID, _ *broadcast.Message) bool {
	r := b.round()
	return r == nil || b.part(r, from) == r.Twin[0] || b.part(r, from) == r.Twin[1]
}

func (b *twinsRounds) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	r := b.round()
	if r == nil || b.part(r, to) == r.Twin[c.Core()] {
		c.Send(to, m)
	}
}

// twinsSlice is the round length of sampled time-sliced scenarios: the
// protocol's view-change timeout when it has one (a view per round), else
// its round, else Δ.
func twinsSlice(c *Ctx) time.Duration {
	if t := c.e.cfg.Tuning.Timeout; t > 0 {
		return t
	}
	if c.e.cfg.Tuning.RoundDuration > 0 {
		return c.e.cfg.Tuning.RoundDuration
	}
	return c.Delta()
}

// newTwinsSampled plays a scenario of 3–6 time-sliced rounds drawn per run.
func newTwinsSampled(c *Ctx) Behaviour {
	return newTwinsRounds(c, SampleTwinsScenario(c, 3+c.Rand().IntN(4), twinsSlice(c), false))
}

// newPBFTTwins plays a scenario of 2–5 rounds, one per view, drawn per run.
func newPBFTTwins(c *Ctx) Behaviour {
	return newTwinsRounds(c, SampleTwinsScenario(c, 2+c.Rand().IntN(4), 0, true))
}
