// Package sim is a deterministic, discrete-event simulator that runs any
// broadcast.Protocol — the same state machines the node runner drives over
// real transports — under a hostile network and Byzantine peers, and checks
// the protocol's properties on every run.
//
// # Why
//
// A Byzantine protocol is only as good as the executions it was tried on.
// Real clusters explore few interleavings and cannot replay them; the
// simulator explores thousands per minute, each fixed by one seed, so that a
// violation comes with the exact command that replays it.
//
// # Usage
//
//	cfg := sim.Config{
//		Spec:      bracha.Spec,           // any broadcast.Spec
//		N:         7,
//		Mode:      broadcast.ModeDigest,
//		Net:       sim.HostileNetwork(),  // loss, reorder, duplicates, partitions, GST
//		Byzantine: []sim.Assignment{{Count: 2, Behaviours: sim.Behaviours()}},
//	}
//	res, err := sim.Run(cfg, seed)        // err: unusable config
//	if res.Failed() { ... res.Violations ... }
//
// or, for many seeds with counters, sim.Sweep (one run per CPU; a
// cancelled context stops it within milliseconds, with the runs that
// finished); or from the command line,
// `onecast sim --protocol bracha --n 7 --byzantine 2:any --seeds 1000`.
//
// Config.F defaults to MaxF, the largest f the protocol tolerates at N
// (n−1 for Dolev–Strong). PBFTConfig and DolevStrongConfig are the default
// runs of those protocols: PBFT with checkpoints every
// PBFTCheckpointInterval sequence numbers and PBFTRequestsPerNode
// requests per client in batches of PBFTBatch, so that every run crosses
// stable checkpoints and watermark windows; Dolev–Strong on a synchronous
// network with a horizon past its last decision (SyncDeadline).
//
// # Determinism
//
// One run is one goroutine, one virtual clock and one RNG (PCG seeded by the
// seed). Events sit in a container/heap ordered by (time, sequence number),
// so that ties break by insertion order and never by the heap's internals.
// Nothing iterates a Go map where order matters. Result.TraceHash
// fingerprints every delivered message and delivery with its time: two runs
// of one seed give one hash (a test proves it). A protocol that iterates a
// map to build its output breaks this; the hash test shows it.
//
// # Driving protocols
//
// Exactly as the runner does: Step(from, msg) with msg.Sender == from (links
// are authentic, so no node can forge another's message; Byzantine nodes
// send anything under their own identity), Everyone fans out to every node
// but the sender, a Ready's payload references are released once its
// messages are queued, and Tick is called at the NextWake the protocol asked
// for. Each node has its own broadcast.PayloadStore and broadcast.Metrics.
//
// # Network
//
// Every directed link serializes messages at Network.Bandwidth (so
// duplicated payload bytes cost latency), adds MinLatency plus an
// exponential jitter, loses transmissions with probability Loss (the
// reliable link retransmits after RTO: loss is latency and wire bytes, never
// a message gone for good), reorders and duplicates. Partition episodes
// split the cluster before GST and heal by it; from GST on, a message
// between correct nodes arrives within Delta (partial synchrony).
//
// # Byzantine nodes
//
// A Byzantine node runs a correct core built from the same Spec; a Behaviour
// sits between the core and the network (Outbound, and optionally
// InboundFilter) and can drop, alter, duplicate, delay or invent messages.
// Twins run two cores under one identity. Behaviours() lists the built-in
// ones: crash, silent, equivocate, subset, wrongdigest, corrupt, replay,
// flood, delay, twins, mutate (ByzzFuzz-style small-scope mutation).
//
// # Schedules
//
// Config.Schedule adds an adversarial schedule to the network, before GST
// only (where any finite delay is allowed) and without dropping anything.
// ScheduleViewChange (PBFT) runs storms that hold every COMMIT and, in half
// of them, isolate the current primary (from the views correct replicas
// entered), so that backups time out view after view and NEW-VIEWs carry
// prepared certificates across consecutive view changes.
//
// # Properties
//
// Checkers are chosen by Spec.Class (checkersFor); each sees submissions and
// deliveries of correct nodes and judges the run at its end. Safety is
// judged on every run. Liveness ("eventually delivers") is judged on every
// run too, through RunInfo.Unmet: a run that ran out of work, or reached its
// Horizon at or after its Deadline (a synchronous protocol's last
// decision), owed everything, and an unmet obligation breaks the property
// itself; a run cut by a time limit — the Horizon with no Deadline or
// before it, or MaxEvents — with an unmet obligation fails with
// TimeLimit (liveness/time-limit), never passes. Result.Ended says why a
// run stopped.
//
// # Coverage
//
// Result.Coverage reads the counters of the correct nodes (pbft.Stats,
// dolevstrong.Stats) and Summary.Coverage counts the runs of a sweep that
// reached each path: view changes, two or more in a row, certificates
// carried once and twice, two or more stable checkpoints, state transfers,
// Dolev–Strong decisions on ⊥. The CLI prints it as the coverage line.
//
// # Buffers
//
// Every message in flight owns one payload reference; the run releases
// everything it holds at its end (queued messages, pending output, Byzantine
// state, stores). With Config.Pool set (Checked in tests) the pool's leak
// check covers the whole run.
package sim
