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
// (n−1 for Dolev–Strong); NoFaults asks for f = 0. PBFTConfig and DolevStrongConfig are the default
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
// Twins run two cores under one identity.
//
// An Adversary is a Behaviour with full control of its node's messages: for
// each message its core sends (keyed by type, instance, round and digest,
// so that retransmissions are treated alike) a Tactic draws one Plan —
// per recipient, whether it gets the message, which version (another
// digest, payload, view, sequence number or certificate, re-signed with the
// node's own key; never another node's), and how late it may arrive
// (SendNotBefore). Twins scenarios (TwinsScenario, after Bano et al.) change
// the partition round by round — a time slice, or a PBFT view — and are
// sampled per seed (twins-rounds, pbft-twins) or enumerated in a small scope
// (TwinsScenarios, TwinsBehaviour).
//
// The built-in behaviours (Behaviours for every protocol, PBFTBehaviours,
// DolevStrongBehaviours; `--byzantine K:any` draws from those of the
// protocol's class):
//
//	crash              runs correctly, then stops at a random time
//	silent             never sends
//	equivocate         a different payload (and digest) to half its peers
//	subset             sends only to a fixed random half
//	wrongdigest        random digests in half its messages
//	corrupt            flips a payload byte, keeping the digest
//	replay             re-sends old messages to random peers
//	flood              duplicates payloads, pushes unsolicited PAYLOADs
//	delay              holds every message to the edge of its round
//	twins              two cores, one identity, one fixed split of the peers
//	mutate             ByzzFuzz-style small-scope mutation
//	splitvote          each message to exactly 1, f, f+1 or 2f peers, drawn per message
//	equivocate-each    every peer its own version of each payload, named in later votes
//	impersonate        copies of its instances' messages in another origin's name
//	twins-rounds       Twins with a new partition every time slice (correct nodes too, before GST)
//	pbft-equivocate    as primary, a conflicting signed PRE-PREPARE to half the backups
//	pbft-wrongvote     signed votes for random digests to half its peers
//	pbft-splitvote     PREPARE/COMMIT/CHECKPOINT to an exact subset, other digests or views to the rest
//	pbft-ppequivocate  as primary, a different signed batch per backup
//	pbft-newview       as new primary, NEW-VIEWs on different quorums (or stale, too few) per replica
//	pbft-forgevc       VIEW-CHANGEs with unprovable certificates/checkpoints, older certificates, omissions
//	pbft-stale         replays its messages of earlier views, re-signs votes for earlier views
//	pbft-future        PRE-PREPAREs beyond the watermarks and in far-future views
//	pbft-newview-to-one  as new primary, NEW-VIEW to one replica that did not ask for the view; no VIEW-CHANGEs, no ordering
//	pbft-twins         Twins with a new partition every view
//	pbft-viewchange-storm  valid empty VIEW-CHANGEs for view after view, faster than one installs; no votes
//	ds-equivocate      as sender, two signed values to different peers
//	ds-late            coalition proofs shown late, mostly in the last two rounds
//	ds-partial         as sender, reaches only some peers
//	ds-relay           relays to a subset at the round's edge
//	ds-repeat          chains whose signers repeat (as long as the last round needs)
//	ds-outsider        chains naming a signer outside the cluster, or one it cannot sign for
//	ds-edge            another value at the last instant of the last round, one signature short
//	ds-forge-origin    another value in a correct origin's instance, chain signed by the coalition, not the origin
//
// Each adversary has a test showing it catches a bug seeded on purpose that
// the earlier behaviours miss or find far less often (adversary_test.go):
// ds-repeat a verifier that counts chain entries, ds-edge one that accepts
// a proof one signature short, impersonate a Bracha that believes a SEND's
// origin field, equivocate-each a Bracha that keeps two candidates per
// instance, pbft-forgevc a PBFT that believes VIEW-CHANGE certificates,
// twins-rounds and the enumerated Twins scenarios PBFT with quorums of 2f.
// pbft-viewchange-storm and ds-forge-origin each catch a mutant of the
// mutation check nothing else does (adversary_storm_test.go):
// pbft-viewchange-storm a PBFT that joins a view change on f VIEW-CHANGEs
// (pbft-join-f, a liveness bug), ds-forge-origin a Dolev–Strong that
// accepts a chain without the origin's signature (ds-no-origin-sig).
// pbft-newview-to-one splits the correct replicas across views (the stall
// of seed 635998) and catches a PBFT that does not hand the NEW-VIEW of an
// entered view on to replicas still asking for it (pbft-no-newview-relay).
//
// # Schedules
//
// Config.Schedule adds an adversarial schedule to the network, before GST
// only (where any finite delay is allowed) and without dropping anything.
// ScheduleViewChange (PBFT) runs storms that hold every COMMIT and, in half
// of them, isolate the current primary (from the views correct replicas
// entered), so that backups time out view after view and NEW-VIEWs carry
// prepared certificates across consecutive view changes.
// ScheduleViewSplit (PBFT) plays Twins-style rounds (Bano et al., 2022)
// with the network: round v is view v, and each of the first views has
// its own rule for the messages of that view — its PREPAREs reach only its
// primary (and perhaps one more replica), one replica is cut out of it
// (its VIEW-CHANGE missing from the NEW-VIEW), its COMMITs reach only some
// replicas, its NEW-VIEWs or VIEW-CHANGEs arrive late. Half the runs
// follow a relay template around the Byzantine node (the network
// adversary and the Byzantine node are one): a batch prepared by one
// primary alone is hidden from the next view's NEW-VIEW and re-ordered in
// the view after, so that lone certificates of different batches follow
// one another and COMMITs of an earlier view sit in the logs of a replica
// that prepares the same batch again. Three in eight follow a late
// NEW-VIEW template: a view's NEW-VIEW reaches replicas only after they
// asked for the next view (TOCS §4.4's schedule). It is the schedule that
// catches pbft-commits-any-view (a replica counting COMMITs of other
// views) and pbft-newview-below-target in the mutation check.
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
