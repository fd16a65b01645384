package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/onecast/onecast/broadcast"
)

// ReliableBroadcastChecker checks Bracha's four properties:
//
//   - validity: if a correct node broadcasts m, every correct node
//     eventually delivers m (in an instance whose origin is that node);
//   - agreement: no two correct nodes deliver different payloads in one
//     instance (and batch index);
//   - integrity: a correct node delivers at most once per instance and
//     batch index, and in an instance of a correct origin only what that
//     origin broadcast;
//   - totality: if a correct node delivers in an instance, every correct
//     node eventually delivers in it.
//
// Validity and totality are liveness properties: an unmet one is reported
// through RunInfo.Unmet (TimeLimit on a run cut by a time limit).
//
// Delivered items are judged by the digest of their bytes: a Delivery's
// Digest names its instance's payload, which for a batch is the container
// of several items, so it cannot stand for the item.
type ReliableBroadcastChecker struct {
	n int
	// submitted[o] lists the digests correct origin o broadcast, in order.
	submitted [][]broadcast.Digest
	// delivered: per (instance, index), the digest each node delivered.
	delivered map[rbKey]*rbSlot
	keys      []rbKey // in first-delivery order, for stable reports
	early     []Violation
}

type rbKey struct {
	in    broadcast.Instance
	index int
}

type rbSlot struct {
	digests []broadcast.Digest // per node; zero = not delivered
	got     []bool
}

// NewReliableBroadcastChecker returns a checker for a cluster of n nodes.
func NewReliableBroadcastChecker(n int) *ReliableBroadcastChecker {
	return &ReliableBroadcastChecker{n: n, submitted: make([][]broadcast.Digest, n), delivered: map[rbKey]*rbSlot{}}
}

// Name implements Checker.
func (c *ReliableBroadcastChecker) Name() string { return "reliable-broadcast" }

// Submitted implements Checker.
func (c *ReliableBroadcastChecker) Submitted(node broadcast.NodeID, d broadcast.Digest, _ time.Duration) {
	c.submitted[node] = append(c.submitted[node], d)
}

// Delivered implements Checker.
func (c *ReliableBroadcastChecker) Delivered(node broadcast.NodeID, d *broadcast.Delivery, _ time.Duration) {
	item := broadcast.DigestOf(d.Payload)
	if int(d.Instance.Origin) >= c.n {
		c.early = append(c.early, Violation{"integrity", node, fmt.Sprintf("delivered instance %v of a node outside the cluster", d.Instance)})
		return
	}
	k := rbKey{d.Instance, d.Index}
	s := c.delivered[k]
	if s == nil {
		s = &rbSlot{digests: make([]broadcast.Digest, c.n), got: make([]bool, c.n)}
		c.delivered[k] = s
		c.keys = append(c.keys, k)
	}
	if s.got[node] {
		c.early = append(c.early, Violation{"integrity", node, fmt.Sprintf("delivered %v[%d] twice (%v, then %v)", d.Instance, d.Index, s.digests[node], item)})
		return
	}
	s.got[node], s.digests[node] = true, item
}

// Finish implements Checker.
func (c *ReliableBroadcastChecker) Finish(run *RunInfo) []Violation {
	vs := slices.Clone(c.early)
	// Per correct origin: how many times each node delivered each digest.
	type od struct {
		origin broadcast.NodeID
		d      broadcast.Digest
	}
	count := map[od][]int{}
	for _, k := range c.keys {
		s := c.delivered[k]
		first := -1
		for i := range c.n {
			if !s.got[i] || !run.Correct[i] {
				continue
			}
			if first < 0 {
				first = i
			} else if s.digests[i] != s.digests[first] {
				vs = append(vs, Violation{"agreement", broadcast.NodeID(i), fmt.Sprintf("delivered %v in %v[%d], but %v delivered %v", s.digests[i], k.in, k.index, broadcast.NodeID(first), s.digests[first])})
			}
			if run.Correct[k.in.Origin] {
				if !slices.Contains(c.submitted[k.in.Origin], s.digests[i]) {
					vs = append(vs, Violation{"integrity", broadcast.NodeID(i), fmt.Sprintf("delivered %v in %v[%d], which correct origin %v never broadcast", s.digests[i], k.in, k.index, k.in.Origin)})
				}
				key := od{k.in.Origin, s.digests[i]}
				if count[key] == nil {
					count[key] = make([]int, c.n)
				}
				count[key][i]++
			}
		}
		if first < 0 {
			continue
		}
		for i := range c.n {
			if run.Correct[i] && !s.got[i] {
				vs = append(vs, run.Unmet("totality", broadcast.NodeID(i), fmt.Sprintf("never delivered %v[%d], which %v delivered", k.in, k.index, broadcast.NodeID(first))))
			}
		}
	}
	for o := range c.n {
		if !run.Correct[o] {
			continue
		}
		times := map[broadcast.Digest]int{}
		for _, d := range c.submitted[o] {
			times[d]++
		}
		for j, d := range c.submitted[o] {
			if slices.Index(c.submitted[o], d) != j {
				continue // a repeated payload: judged once, with its count
			}
			per := count[od{broadcast.NodeID(o), d}]
			for i := range c.n {
				if !run.Correct[i] {
					continue
				}
				got := 0
				if per != nil {
					got = per[i]
				}
				switch {
				case got > times[d]:
					vs = append(vs, Violation{"integrity", broadcast.NodeID(i), fmt.Sprintf("delivered %v of %v %d times, broadcast %d times", d, broadcast.NodeID(o), got, times[d])})
				case got < times[d]:
					vs = append(vs, run.Unmet("validity", broadcast.NodeID(i), fmt.Sprintf("never delivered %v broadcast by correct %v", d, broadcast.NodeID(o))))
				}
			}
		}
	}
	return vs
}
