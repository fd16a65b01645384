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
	// Ended says why the run stopped.
	Ended Ending
	// Settled says the run owed every liveness obligation when it ended:
	// it ran out of work, or reached its Horizon at or after its Deadline.
	// A run that is not settled was cut by a time limit (the Horizon before
	// the Deadline or with none, or the event budget).
	Settled bool
	// Limit describes the time limit that cut an unsettled run ("horizon
	// 6s", "event budget of 1000 events at 2.1s"); empty on a settled run.
	Limit string
}

// TimeLimit is the property of a liveness obligation that a run cut by a
// time limit had not met: the run ended (Horizon, MaxEvents) before the
// protocol owed it, so the run proves nothing either way — but it is never
// a pass. Checkers report it through RunInfo.Unmet; the detail names the
// checker's own property.
const TimeLimit = "liveness/time-limit"

// Unmet is the violation for a liveness obligation ("eventually delivers")
// the run had not met when it ended: the property itself on a settled run,
// TimeLimit — the property and the limit in its detail — on a run cut by a
// time limit. Checkers judge liveness on every run through it.
func (r *RunInfo) Unmet(property string, node broadcast.NodeID, detail string) Violation {
	if r.Settled {
		return Violation{property, node, detail}
	}
	return Violation{TimeLimit, node, fmt.Sprintf("%s: %s (run cut by its %s)", property, detail, r.Limit)}
}

// Ending says why a run stopped.
type Ending uint8

// Endings.
const (
	// EndIdle: no event was left; nothing more could happen.
	EndIdle Ending = iota + 1
	// EndHorizon: virtual time reached Config.Horizon.
	EndHorizon
	// EndBudget: Config.MaxEvents events were processed.
	EndBudget
)

func (e Ending) String() string {
	switch e {
	case EndIdle:
		return "idle"
	case EndHorizon:
		return "horizon"
	case EndBudget:
		return "event budget"
	}
	return fmt.Sprintf("ending(%d)", uint8(e))
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
