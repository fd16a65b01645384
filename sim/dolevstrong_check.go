package sim

import (
	"fmt"
	"time"

	"github.com/onecast/onecast/broadcast"
)

// ByzantineBroadcastChecker checks the properties of Byzantine broadcast
// (Dolev–Strong), in which every instance ends at a fixed time:
//
//   - agreement: in every instance, the correct nodes output the same thing
//     — the same value, or ⊥ (a Delivery with zero Digest and Payload), or,
//     when none of them accepted anything, nothing at all. Two different
//     outputs are a violation in any run; an output at some correct nodes
//     and none at others, by the run's Deadline (RunInfo.Unmet);
//   - validity: a value a correct node broadcasts is output by every
//     correct node, in an instance of that node, by the Deadline
//     (RunInfo.Unmet);
//   - integrity: a node outputs at most once per instance, delivered bytes
//     hash to the delivered digest, ⊥ carries no payload, and in an instance
//     of a correct origin only what that origin broadcast is output (never ⊥).
type ByzantineBroadcastChecker struct {
	n         int
	submitted [][]broadcast.Digest
	out       map[broadcast.Instance]*bbSlot
	keys      []broadcast.Instance // first-output order, for stable reports
	early     []Violation
}

type bbSlot struct {
	got     []bool
	digests []broadcast.Digest // zero = ⊥
}

// NewByzantineBroadcastChecker returns a checker for a cluster of n nodes.
func NewByzantineBroadcastChecker(n int) *ByzantineBroadcastChecker {
	return &ByzantineBroadcastChecker{n: n, submitted: make([][]broadcast.Digest, n), out: map[broadcast.Instance]*bbSlot{}}
}

// ByzantineBroadcastCheckers is a Config.Checkers for Byzantine broadcast.
func ByzantineBroadcastCheckers(n int) []Checker { return []Checker{NewByzantineBroadcastChecker(n)} }

// Name implements Checker.
func (c *ByzantineBroadcastChecker) Name() string { return "byzantine-broadcast" }

// Submitted implements Checker.
func (c *ByzantineBroadcastChecker) Submitted(node broadcast.NodeID, d broadcast.Digest, _ time.Duration) {
	c.submitted[node] = append(c.submitted[node], d)
}

// Delivered implements Checker.
func (c *ByzantineBroadcastChecker) Delivered(node broadcast.NodeID, d *broadcast.Delivery, _ time.Duration) {
	if d.Digest.IsZero() {
		if !d.Payload.IsZero() {
			c.early = append(c.early, Violation{"integrity", node, fmt.Sprintf("⊥ of %v carries %d payload bytes", d.Instance, d.Payload.Len())})
		}
	} else if got := broadcast.DigestOf(d.Payload); got != d.Digest {
		c.early = append(c.early, Violation{"integrity", node, fmt.Sprintf("delivered bytes of %v hash to %v, not its digest %v", d.Instance, got, d.Digest)})
	}
	if int(d.Instance.Origin) >= c.n {
		c.early = append(c.early, Violation{"integrity", node, fmt.Sprintf("output for instance %v of a node outside the cluster", d.Instance)})
		return
	}
	s := c.out[d.Instance]
	if s == nil {
		s = &bbSlot{got: make([]bool, c.n), digests: make([]broadcast.Digest, c.n)}
		c.out[d.Instance] = s
		c.keys = append(c.keys, d.Instance)
	}
	if s.got[node] {
		c.early = append(c.early, Violation{"integrity", node, fmt.Sprintf("output for %v twice (%v, then %v)", d.Instance, bottom(s.digests[node]), bottom(d.Digest))})
		return
	}
	s.got[node], s.digests[node] = true, d.Digest
}

func bottom(d broadcast.Digest) string {
	if d.IsZero() {
		return "⊥"
	}
	return d.String()
}

// Finish implements Checker.
func (c *ByzantineBroadcastChecker) Finish(run *RunInfo) []Violation {
	vs := append([]Violation(nil), c.early...)
	for _, in := range c.keys {
		s := c.out[in]
		var ref broadcast.NodeID
		found := false
		for i := range c.n {
			id := broadcast.NodeID(i)
			if !run.Correct[i] || !s.got[i] {
				continue
			}
			if !found {
				ref, found = id, true
				continue
			}
			if s.digests[i] != s.digests[ref] {
				vs = append(vs, Violation{"agreement", id, fmt.Sprintf("output %s for %v, but %v output %s", bottom(s.digests[i]), in, ref, bottom(s.digests[ref]))})
			}
		}
		if found {
			for i := range c.n {
				if run.Correct[i] && !s.got[i] {
					vs = append(vs, run.Unmet("agreement", broadcast.NodeID(i), fmt.Sprintf("no output for %v, but %v output %s", in, ref, bottom(s.digests[ref]))))
				}
			}
		}
		if found && run.Correct[in.Origin] {
			d := s.digests[ref]
			if d.IsZero() || !containsDigest(c.submitted[in.Origin], d) {
				vs = append(vs, Violation{"integrity", ref, fmt.Sprintf("output %s for %v, which correct %v never broadcast", bottom(d), in, in.Origin)})
			}
		}
	}
	for o := range c.n {
		if !run.Correct[o] {
			continue
		}
		for _, d := range c.submitted[o] {
			for i := range c.n {
				if run.Correct[i] && !c.outputs(broadcast.NodeID(i), broadcast.NodeID(o), d) {
					vs = append(vs, run.Unmet("validity", broadcast.NodeID(i), fmt.Sprintf("never output %v, broadcast by correct %v", d, broadcast.NodeID(o))))
				}
			}
		}
	}
	return vs
}

func containsDigest(ds []broadcast.Digest, d broadcast.Digest) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// outputs reports whether node output d in some instance of origin.
func (c *ByzantineBroadcastChecker) outputs(node, origin broadcast.NodeID, d broadcast.Digest) bool {
	for _, in := range c.keys {
		if in.Origin == origin {
			if s := c.out[in]; s.got[node] && s.digests[node] == d {
				return true
			}
		}
	}
	return false
}
