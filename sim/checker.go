package sim

import (
	"fmt"
	"time"

	"github.com/onecast/onecast/broadcast"
)

// Checker judges one run against the properties of a protocol class. The
// engine builds fresh checkers for every run, calls Submitted and Delivered
// as the run goes — for correct nodes only — and Finish once at the end.
//
// Checkers are chosen by broadcast.Spec.Class in checkersFor. A new class's
// checker is one new file in this package (a type implementing Checker and
// its constructor) plus one case in checkersFor.
type Checker interface {
	// Name names the checker in reports.
	Name() string
	// Submitted records that correct node `node` handed the protocol a
	// payload with digest d.
	Submitted(node broadcast.NodeID, d broadcast.Digest, at time.Duration)
	// Delivered records one delivery at correct node `node`. It borrows d
	// (and d.Payload) for the call.
	Delivered(node broadcast.NodeID, d *broadcast.Delivery, at time.Duration)
	// Finish judges the run and returns every violation found.
	Finish(run *RunInfo) []Violation
}

// RunInfo is what a checker knows about a finished run.
type RunInfo struct {
	N, F int
	// Correct[i] says whether node i followed the protocol.
	Correct []bool
	// GST and End are the stabilization time and the time the run ended.
	GST, End time.Duration
	// Settled says the run ended because nothing was left to do (or the
	// horizon passed), not because the event budget ran out: liveness
	// properties ("eventually delivers") are judged only on a settled run.
	Settled bool
}

// CorrectCount returns the number of correct nodes.
func (r *RunInfo) CorrectCount() int {
	c := 0
	for _, ok := range r.Correct {
		if ok {
			c++
		}
	}
	return c
}

// Violation is one broken property.
type Violation struct {
	// Property names what was broken ("agreement", "validity", ...).
	Property string
	// Node is the correct node where it shows, if one does.
	Node broadcast.NodeID
	// Detail says what happened.
	Detail string
}

// String formats v for reports: "property at node: detail".
func (v Violation) String() string {
	return fmt.Sprintf("%s at %v: %s", v.Property, v.Node, v.Detail)
}

// checkersFor returns fresh checkers for a protocol class in a cluster of n.
func checkersFor(class broadcast.Class, n int) ([]Checker, error) {
	switch class {
	case broadcast.ReliableBroadcast:
		return []Checker{NewReliableBroadcastChecker(n)}, nil
	case broadcast.StateMachineReplication:
		return []Checker{NewSMRChecker(n)}, nil
	case broadcast.ByzantineBroadcast:
		return []Checker{NewByzantineBroadcastChecker(n)}, nil
	}
	return nil, configErr("no property checker for class %v (pass Config.Checkers)", class)
}
