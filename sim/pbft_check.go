package sim

import (
	"fmt"
	"sort"
	"time"

	"github.com/onecast/onecast/broadcast"
)

// SMRChecker checks the properties of state machine replication (PBFT) from
// the requests correct replicas execute (one Delivery per executed request:
// Instance.Seq = sequence number, Index = position in the batch,
// Instance.Origin = the requesting client):
//
//   - agreement: no two correct replicas execute different requests at one
//     (sequence number, index), and a request executes at the same position
//     at every correct replica that executes it — so two replicas that
//     committed different batches at one sequence number are caught as soon
//     as either executes a request the other placed elsewhere;
//   - exactly once: no correct replica executes a request (client, digest)
//     twice;
//   - integrity: executed bytes hash to the delivered digest, and a request
//     attributed to a correct client is one it submitted;
//   - liveness: every request a correct client submitted is executed by a
//     correct replica (RunInfo.Unmet: TimeLimit on a run cut by its
//     Horizon or event budget).
//
// Whether clients get correct results is checked in package pbft, where the
// results are visible (TestClientResultsAreTheStateMachineResults).
type SMRChecker struct {
	n         int
	submitted map[reqKey]bool
	subOrder  []reqKey
	at        map[posKey]reqKey
	pos       map[reqKey]posKey
	executed  []map[reqKey]bool
	early     []Violation
}

type reqKey struct {
	client broadcast.NodeID
	d      broadcast.Digest
}

type posKey struct {
	seq uint64
	idx int
}

// NewSMRChecker returns a checker for a cluster of n replicas.
func NewSMRChecker(n int) *SMRChecker {
	c := &SMRChecker{n: n, submitted: map[reqKey]bool{}, at: map[posKey]reqKey{}, pos: map[reqKey]posKey{}, executed: make([]map[reqKey]bool, n)}
	for i := range c.executed {
		c.executed[i] = map[reqKey]bool{}
	}
	return c
}

// SMRCheckers is a Config.Checkers for state machine replication.
func SMRCheckers(n int) []Checker { return []Checker{NewSMRChecker(n)} }

// Name implements Checker.
func (c *SMRChecker) Name() string { return "smr" }

// Submitted implements Checker.
func (c *SMRChecker) Submitted(node broadcast.NodeID, d broadcast.Digest, _ time.Duration) {
	k := reqKey{node, d}
	if !c.submitted[k] {
		c.submitted[k] = true
		c.subOrder = append(c.subOrder, k)
	}
}

// Delivered implements Checker.
func (c *SMRChecker) Delivered(node broadcast.NodeID, d *broadcast.Delivery, _ time.Duration) {
	k := reqKey{d.Instance.Origin, d.Digest}
	p := posKey{d.Instance.Seq, d.Index}
	if got := broadcast.DigestOf(d.Payload); got != d.Digest {
		c.early = append(c.early, Violation{"integrity", node, fmt.Sprintf("executed bytes at %d/%d hash to %v, not %v", p.seq, p.idx, got, d.Digest)})
	}
	if c.executed[node][k] {
		c.early = append(c.early, Violation{"exactly-once", node, fmt.Sprintf("request %v of client %v executed twice (again at %d/%d)", k.d, k.client, p.seq, p.idx)})
	}
	c.executed[node][k] = true
	if old, ok := c.at[p]; ok && old != k {
		c.early = append(c.early, Violation{"agreement", node, fmt.Sprintf("at %d/%d executes %v of %v, another correct replica %v of %v", p.seq, p.idx, k.d, k.client, old.d, old.client)})
	}
	c.at[p] = k
	if old, ok := c.pos[k]; ok && old != p {
		c.early = append(c.early, Violation{"agreement", node, fmt.Sprintf("executes %v of %v at %d/%d, another correct replica at %d/%d", k.d, k.client, p.seq, p.idx, old.seq, old.idx)})
	}
	c.pos[k] = p
}

// Finish implements Checker.
func (c *SMRChecker) Finish(run *RunInfo) []Violation {
	out := append([]Violation(nil), c.early...)
	// A request attributed to a correct client must be one it submitted.
	var forged []reqKey
	for k := range c.pos {
		if int(k.client) < len(run.Correct) && run.Correct[k.client] && !c.submitted[k] {
			forged = append(forged, k)
		}
	}
	sort.Slice(forged, func(a, b int) bool { return c.pos[forged[a]].seq < c.pos[forged[b]].seq })
	for _, k := range forged {
		out = append(out, Violation{"integrity", k.client, fmt.Sprintf("request %v executed for correct client %v, which never submitted it", k.d, k.client)})
	}
	for _, k := range c.subOrder {
		if _, ok := c.pos[k]; !ok {
			out = append(out, run.Unmet("liveness", k.client, fmt.Sprintf("request %v of correct client %v never executed", k.d, k.client)))
		}
	}
	return out
}
