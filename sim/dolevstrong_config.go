package sim

import (
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
)

// SynchronousNetwork is the network a synchronous protocol (Dolev–Strong)
// is specified for: no GST and no partitions, every message between correct
// nodes delivered within delta from the start; latency, jitter, loss (with
// retransmission), reordering and duplication stay inside that bound.
func SynchronousNetwork(delta time.Duration) Network {
	n := DefaultNetwork()
	n.Loss, n.RTO, n.Reorder, n.Duplicate = 0.02, delta/4, 0.1, 0.02
	n.GST, n.Partitions, n.Delta = 0, 0, delta
	return n
}

// DolevStrongConfig is a simulation of Dolev–Strong (spec: dolevstrong.Spec,
// dolevstrong.AggregateSpec, or a variant) on a SynchronousNetwork(delta),
// with Δ = dolevstrong.RoundFor(mode, delta), the Byzantine-broadcast
// checker, every node submitting one value within the first two rounds, and
// a horizon two rounds past the last instance's decision (SyncDeadline).
// f = 0 means the largest f the protocol tolerates at n (MaxF: n−1), as in
// Config, and NoFaults f = 0: the horizon must cover f+1 rounds of the f
// the nodes run with.
// A caller that changes the Workload sets Horizon (or zero, to have it
// derived again from Deadline).
func DolevStrongConfig(spec broadcast.Spec, n, f int, mode broadcast.Mode, delta time.Duration, byz []Assignment) Config {
	f = effectiveF(spec, n, f)
	if f == 0 {
		f = NoFaults // f = 0 in Config
	}
	round := dolevstrong.RoundFor(mode, delta)
	wl := Workload{PerNode: 1, PayloadSize: 512, Spread: 2 * round}
	return Config{
		Spec: spec, N: n, F: f, Mode: mode,
		Tuning:    broadcast.Tuning{RoundDuration: round},
		Net:       SynchronousNetwork(delta),
		Byzantine: byz,
		Workload:  wl,
		Horizon:   SyncDeadline(round, max(f, 0), wl) + 2*round,
		Checkers:  ByzantineBroadcastCheckers,
	}
}
