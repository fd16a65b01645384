package sim

import (
	"fmt"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/pbft"
)

// Schedule is an adversarial message schedule the engine applies on top of
// the Network model. It acts only before GST, where partial synchrony
// allows any finite delay, and it holds messages back but never drops
// them: it steers runs into paths that random delays rarely reach, without
// leaving the model the protocol is proved in.
type Schedule string

// Schedules.
const (
	// ScheduleNone adds nothing to the Network model.
	ScheduleNone Schedule = ""
	// ScheduleViewChange (PBFT) runs storms before GST: from a time in the
	// first 30 ms (while the first batches are in flight) for 200 ms to
	// 1 s, then possibly again. During a storm every COMMIT is held until
	// the storm ends, so that batches prepare but nothing executes and the
	// backups' timers fire, view after view; in half the storms the
	// current primary — that of the newest view a correct replica entered
	// (pbft.Node.View) — is also isolated: everything it sends but
	// VIEW-CHANGE and NEW-VIEW is held, so that it cannot order new
	// batches in its view; in half the storms the NEW-VIEWs sent to a
	// random set of replicas arrive only after the storm, when their
	// timers have made them ask for a later view. Prepared certificates
	// are then carried by one NEW-VIEW after another. GST is raised to at
	// least 1.2 s to make room.
	ScheduleViewChange Schedule = "viewchange"
	// ScheduleViewSplit (PBFT) plays Twins-style rounds with the network
	// alone (Bano et al., 2022: a partition per round, the leader changing
	// with the round): round v is PBFT view v — every message whose view
	// (its Round: the view of a PRE-PREPARE, PREPARE or COMMIT, the view
	// asked for by a VIEW-CHANGE, the view a NEW-VIEW installs) is v is
	// delivered or held by view v's own rules, drawn per run for the first
	// views (see viewRound; half the runs follow the relay template of
	// relayRounds, around the Byzantine node, three in eight the late
	// NEW-VIEW template of lateNewViewRounds, the others free rules for
	// 3–6 views). A view's PREPAREs may reach only its primary (and
	// perhaps one more replica), so that one replica alone prepares; one
	// replica may be cut out of a view, so that its VIEW-CHANGE and its
	// certificates are missing from that view's NEW-VIEW and it stays in
	// an earlier view; its COMMITs may reach only some replicas; its
	// NEW-VIEWs or VIEW-CHANGEs may arrive late, after replicas gave up on
	// it. Consecutive views then prepare different batches at one
	// sequence number, each on one replica, and COMMITs of an earlier view
	// sit in the logs of replicas that prepare the same batch again in a
	// later one — the schedules under which a replica that counts COMMITs
	// of other views (mutant pbft-commits-any-view) or enters a view below
	// the one it asked for (pbft-newview-below-target) executes a batch the
	// others do not. Held messages arrive after GST, raised to at least
	// 10 s to make room for six view changes in a row.
	ScheduleViewSplit Schedule = "viewsplit"
)

// Schedules lists the schedules by name, for usage text.
func Schedules() []Schedule { return []Schedule{ScheduleNone, ScheduleViewChange, ScheduleViewSplit} }

// ParseSchedule reads a schedule name ("", "none", "viewchange" or
// "viewsplit").
func ParseSchedule(s string) (Schedule, error) {
	switch s {
	case "", "none":
		return ScheduleNone, nil
	case string(ScheduleViewChange):
		return ScheduleViewChange, nil
	case string(ScheduleViewSplit):
		return ScheduleViewSplit, nil
	}
	return ScheduleNone, fmt.Errorf("unknown schedule %q (want none, viewchange or viewsplit)", s)
}

func (s Schedule) String() string {
	if s == ScheduleNone {
		return "none"
	}
	return string(s)
}

// vcMinGST is the least GST under ScheduleViewChange: room for storms long
// enough for three view changes in a row at the simulator's PBFT timeout
// (100 ms, doubling per view change).
const vcMinGST = 1200 * time.Millisecond

// check validates s against cfg and adjusts cfg's network for it.
func (s Schedule) check(cfg *Config) error {
	switch s {
	case ScheduleNone:
		return nil
	case ScheduleViewChange, ScheduleViewSplit:
		if cfg.Spec.Class != broadcast.StateMachineReplication {
			return configErr("schedule %s needs PBFT (a state machine replication protocol), not %s", s, cfg.Spec.Name)
		}
		gst := vcMinGST
		if s == ScheduleViewSplit {
			gst = vsMinGST
		}
		cfg.Net.GST = max(cfg.Net.GST, gst)
		return nil
	}
	return configErr("unknown schedule %q", string(s))
}

// storm is one interval of a ScheduleViewChange run.
type storm struct {
	from, to time.Duration
	isolate  bool // also hold the current primary's messages
	// lateNewView marks the replicas that NEW-VIEWs sent during the storm
	// reach only after it: their timers run out first, they ask for the
	// next view, and the NEW-VIEW of the one they left arrives after that
	// (the schedule of the agreement violation TOCS §4.4 rules out).
	lateNewView []bool
}

// scheduler carries out a Schedule in one run.
type scheduler struct {
	storms []storm     // ScheduleViewChange
	views  []viewRound // ScheduleViewSplit: the rules of view v are views[v]
}

// newScheduler draws the run's storms or view rounds (nil for
// ScheduleNone).
func (e *engine) newScheduler() *scheduler {
	switch e.cfg.Schedule {
	case ScheduleViewSplit:
		return &scheduler{views: e.drawViewRounds()}
	case ScheduleViewChange:
	default:
		return nil
	}
	gst := e.cfg.Net.GST
	sc := &scheduler{}
	at := time.Duration(e.rng.Int64N(int64(30 * time.Millisecond)))
	for at < gst {
		d := 200*time.Millisecond + time.Duration(e.rng.Int64N(int64(800*time.Millisecond)))
		st := storm{from: at, to: min(at+d, gst), isolate: e.rng.IntN(2) == 0}
		if e.rng.IntN(2) == 0 {
			st.lateNewView = make([]bool, e.cfg.N)
			for late := 1 + e.rng.IntN(e.cfg.N-1); late > 0; {
				if i := e.rng.IntN(e.cfg.N); !st.lateNewView[i] {
					st.lateNewView[i] = true
					late--
				}
			}
		}
		sc.storms = append(sc.storms, st)
		// A calm between storms lets the cluster execute and start over.
		at = st.to + time.Duration(e.rng.Int64N(int64(300*time.Millisecond)))
	}
	return sc
}

// hold returns when a message from `from` sent now, which the network
// would deliver at `at`, arrives under the schedule.
func (sc *scheduler) hold(e *engine, from, to broadcast.NodeID, m *broadcast.Message, at time.Duration) time.Duration {
	if m.Protocol != broadcast.ProtoPBFT {
		return at
	}
	if sc.views != nil {
		return sc.holdByView(e, from, to, m, at)
	}
	for i := range sc.storms {
		st := &sc.storms[i]
		if e.now < st.from || e.now >= st.to {
			continue
		}
		switch {
		case m.Type == pbft.TypeCommit:
		case m.Type == pbft.TypeNewView && st.lateNewView != nil && st.lateNewView[to]:
		case st.isolate && from == e.primary() && m.Type != pbft.TypeViewChange && m.Type != pbft.TypeNewView:
		default:
			return at
		}
		return max(at, st.to+e.latency())
	}
	return at
}

// primary is the primary of the newest view a correct PBFT replica has
// entered.
func (e *engine) primary() broadcast.NodeID {
	var view uint32
	for _, nd := range e.nodes {
		if !nd.correct {
			continue
		}
		if p, ok := nd.cores[0].(*pbft.Node); ok {
			view = max(view, p.View())
		}
	}
	return broadcast.NodeID(view % uint32(e.cfg.N))
}
