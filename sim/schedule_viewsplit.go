package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/pbft"
)

// vsMinGST is the least GST under ScheduleViewSplit: room for six views
// in a row with nothing executed, at the simulator's PBFT timeout (100 ms,
// doubling with every view change until a batch executes: 6.3 s).
const vsMinGST = 10 * time.Second

// viewRound is ScheduleViewSplit's rule for the messages of one view.
// Nothing is dropped: what a rule holds arrives after GST, or, for a late
// NEW-VIEW or VIEW-CHANGE, after its delay.
type viewRound struct {
	// star: the view's PREPAREs reach only its primary and, if not
	// noNode, also — so that the primary (with also) alone prepares.
	star bool
	also broadcast.NodeID
	// cut, if not noNode, is cut out of the view: everything of the view
	// it sends or is sent (its VIEW-CHANGE asking for the view, the
	// NEW-VIEW, the view's PRE-PREPAREs and votes) is held, so that its
	// certificates are missing from the view's NEW-VIEW and it stays in
	// an earlier view.
	cut broadcast.NodeID
	// lateNewView and lateViewChange, if not 0, hold the view's NEW-VIEWs
	// and VIEW-CHANGEs that long (to GST at most): replicas give up on a
	// view before its NEW-VIEW reaches them, and ask for a view whose
	// VIEW-CHANGEs the others hear only later.
	lateNewView, lateViewChange time.Duration
	// commitTo, if not nil, are the only replicas the view's COMMITs
	// reach.
	commitTo []bool
}

// noNode marks an unused NodeID field of a viewRound.
const noNode = broadcast.NodeID(255)

// String is a compact form: "*" (PREPAREs only to the primary), "*+a"
// (and to a), "-c" (c cut out), "N+d" and "V+d" (NEW-VIEWs and
// VIEW-CHANGEs d late), "C{…}" (COMMITs only to those), "·" (no rule).
func (r viewRound) String() string {
	var b strings.Builder
	if r.star {
		b.WriteString("*")
		if r.also != noNode {
			fmt.Fprintf(&b, "+%d", r.also)
		}
	}
	if r.cut != noNode {
		fmt.Fprintf(&b, "-%d", r.cut)
	}
	if r.lateNewView > 0 {
		fmt.Fprintf(&b, "N+%v", r.lateNewView)
	}
	if r.lateViewChange > 0 {
		fmt.Fprintf(&b, "V+%v", r.lateViewChange)
	}
	if r.commitTo != nil {
		b.WriteString("C{")
		for i, ok := range r.commitTo {
			if ok {
				fmt.Fprint(&b, i)
			}
		}
		b.WriteString("}")
	}
	if b.Len() == 0 {
		return "·"
	}
	return b.String()
}

// drawViewRounds draws the rules of a ScheduleViewSplit run: half the
// time the relay template (relayRounds) around the first Byzantine node
// (a random node when there is none), three times in eight the late
// NEW-VIEW template (lateNewViewRounds), else free rules for the first 3–6
// views: in each, with probability 2/3 the PREPAREs reach
// only the primary (and, one time in three, one more replica); from view 1
// on, with probability 2/3 one replica other than the primary is cut out;
// with probability 1/3 the COMMITs reach only a random set of replicas.
func (e *engine) drawViewRounds() []viewRound {
	n := e.cfg.N
	switch k := e.rng.IntN(8); {
	case k < 3:
		timeout := e.cfg.Tuning.Timeout
		if timeout <= 0 {
			timeout = 100 * time.Millisecond // PBFTSpec's
		}
		nv := 5*timeout/2 + time.Duration(e.rng.Int64N(int64(6*timeout)))
		return lateNewViewRounds(n, nv, nv+time.Duration(e.rng.Int64N(int64(5*timeout))))
	case k < 7:
		z := broadcast.NodeID(e.rng.IntN(n))
		for i, nd := range e.nodes {
			if !nd.correct {
				z = broadcast.NodeID(i)
				break
			}
		}
		return relayRounds(n, z)
	}
	rounds := make([]viewRound, 3+e.rng.IntN(4))
	for v := range rounds {
		r := viewRound{also: noNode, cut: noNode}
		primary := broadcast.NodeID(v % n)
		if e.rng.IntN(3) != 0 {
			r.star = true
			if e.rng.IntN(3) == 0 {
				r.also = e.otherNode(primary)
			}
		}
		if v > 0 && e.rng.IntN(3) != 0 {
			r.cut = e.otherNode(primary)
		}
		if e.rng.IntN(3) == 0 {
			r.commitTo = make([]bool, n)
			for i := range r.commitTo {
				r.commitTo[i] = e.rng.IntN(2) == 0
			}
		}
		rounds[v] = r
	}
	return rounds
}

// otherNode draws a node other than not.
func (e *engine) otherNode(not broadcast.NodeID) broadcast.NodeID {
	i := broadcast.NodeID(e.rng.IntN(e.cfg.N - 1))
	if i >= not {
		i++
	}
	return i
}

// holdByView is hold under ScheduleViewSplit: a message of a view with a
// rule, sent before GST, that the rule holds arrives after GST.
func (sc *scheduler) holdByView(e *engine, from, to broadcast.NodeID, m *broadcast.Message, at time.Duration) time.Duration {
	switch m.Type {
	case pbft.TypePrePrepare, pbft.TypePrepare, pbft.TypeCommit, pbft.TypeViewChange, pbft.TypeNewView:
	default:
		return at
	}
	gst := e.cfg.Net.GST
	if e.now >= gst || int(m.Round) >= len(sc.views) {
		return at
	}
	r := &sc.views[m.Round]
	primary := broadcast.NodeID(int(m.Round) % e.cfg.N)
	hold := from == r.cut || to == r.cut
	switch m.Type {
	case pbft.TypePrepare:
		hold = hold || r.star && to != primary && to != r.also
	case pbft.TypeCommit:
		hold = hold || r.commitTo != nil && !r.commitTo[to]
	}
	if !hold {
		late := time.Duration(0)
		switch m.Type {
		case pbft.TypeNewView:
			late = r.lateNewView
		case pbft.TypeViewChange:
			late = r.lateViewChange
		}
		if late == 0 {
			return at
		}
		return max(at, min(e.now+late, gst)+e.latency())
	}
	return max(at, gst+e.latency())
}

// relayRounds is ScheduleViewSplit's relay template around node z — the
// Byzantine one: the adversary that holds messages and the one that runs
// the Byzantine node are one, as the model allows. It passes a batch from
// one lone preparer to the next, so that each view's NEW-VIEW sees a
// different part of what was prepared:
//
//   - a view whose primary is z is dead: z is cut out of it, and the
//     others time out into the next;
//   - the first live view prepares at its primary R and at z only (their
//     COMMITs reach everyone, and nobody commits);
//   - the next two live views (primaries Q, then X) cut the previous live
//     primary out — R is missing from Q's NEW-VIEW, Q from X's — and
//     prepare at their primary only;
//   - the view after them cuts X out and lets everyone prepare.
//
// A correct protocol survives it: each view's NEW-VIEW carries the
// highest certificate of 2f+1 replicas. A replica that counts COMMITs of
// other views (pbft-commits-any-view) does not: if z hides its
// certificate from Q, Q orders another batch e, X re-orders R's d and
// executes it on the COMMITs R and z sent in the first view, and the last
// view, without X, orders Q's e.
func relayRounds(n int, z broadcast.NodeID) []viewRound {
	var rounds []viewRound
	prev := noNode
	for v, role := 0, 0; role < 4; v++ {
		p := broadcast.NodeID(v % n)
		r := viewRound{also: noNode, cut: noNode}
		switch {
		case role == 3:
			r.cut = prev
			role++
		case p == z:
			r.cut = z
		default:
			r.star = true
			if role == 0 {
				r.also = z
			} else {
				r.cut = prev
			}
			prev = p
			role++
		}
		rounds = append(rounds, r)
	}
	return rounds
}

// lateNewViewRounds is ScheduleViewSplit's late NEW-VIEW template, the
// schedule TOCS §4.4 rules out (a replica that asked for view v+1 accepts
// no message of view v): view 0's primary p is cut out of views 0 and 1;
// the others change to view 1, and view 1's NEW-VIEW reaches them only
// after nv, when their timers have made them ask for view 2 (with no
// certificate); view 1's primary is cut out of view 2, whose VIEW-CHANGEs
// arrive only after vc, once view 1 could have run. A replica that still
// entered view 1 (pbft-newview-below-target) commits a batch there that
// view 2's NEW-VIEW, built on VIEW-CHANGEs sent before, does not carry: p
// executes another at the same sequence number.
func lateNewViewRounds(n int, nv, vc time.Duration) []viewRound {
	p, q := broadcast.NodeID(0), broadcast.NodeID(1%n)
	return []viewRound{
		{also: noNode, cut: p},
		{also: noNode, cut: p, lateNewView: nv},
		{also: noNode, cut: q, lateViewChange: vc},
	}
}
