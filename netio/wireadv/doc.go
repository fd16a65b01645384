// Package wireadv is a Byzantine peer for the real transports: a node of
// the cluster, with the cluster's real keys and the same conduit as the
// others (a UDP socket in its namespace, or AF_XDP), that attacks the
// resources of the correct nodes on the wire instead of (or besides)
// following the protocol. The bench runs it as `--byzantine K:BEHAVIOUR`
// on local and namespace clusters, to prove on real sockets what the
// netio/link resource table promises: no peer can stall or bloat a
// correct node by what it sends.
//
// # Behaviours
//
//	partial-large  its own broadcasts of LargeBytes payloads (4 MiB), of
//	               which only the first fragment leaves: every continuation
//	               frame is dropped on the way out (link partials, heap
//	               reassembly, PartialTimeout). The link is in order, so a
//	               receiver holds one of its partial messages at a time; the
//	               next first fragments wait behind it (reorder-window quota)
//	fetch-flood    FETCH requests for the digests the correct nodes vouch
//	               for (their ECHO/READY, PRE-PREPARE and request digests),
//	               PerTick per millisecond, to every peer (Bracha's serve
//	               budget, PBFT's FetchAnswerRate)
//	held-spray     distinct valid payloads of SprayBytes, broadcast (Bracha)
//	               or requested (PBFT) by the real protocol: the stores'
//	               sender quota and the kernel's held-digest map
//	future-view    PBFT PRE-PREPAREs, signed with its own key, for views
//	               ahead in which it is the primary, each with a payload
//	               (PBFT's FutureQuota)
//	garbage        datagrams that are random bytes, link frames with a wrong
//	               magic, truncated onecast frames and frames with bad
//	               lengths, with the epochs the peers expect
//	replay         old valid datagrams re-sent as they were (link
//	               duplicates), and old valid messages re-sent in fresh link
//	               frames (protocol duplicates)
//	ack-withhold   receives everything and never acknowledges: every
//	               outgoing link header has its ack and selective-ack
//	               fields zeroed (the peers' send windows and queues)
//
// Only held-spray, partial-large and replay run the cluster's protocol
// (they need its messages); the others take part in nothing: the correct
// nodes reach their quorums without the Byzantine node.
//
// # Bounds
//
// Every load loop is bounded in count (Options.MaxInjections) and time
// (Options.Duration), sends only to the cluster's own addresses (the
// conduit's peers: loopback or the test's namespaces), and stops when the
// node closes. With Options.Backlog, the protocol-side load pauses while the
// node's own link queue holds more than MaxBacklog frames: the flood still
// keeps every budget the correct nodes grant it full (their receive rate,
// netio/link Config.RecvRate, closes its window), but the node does not
// spend its CPU building messages its link cannot send — on a bench whose
// nodes share the cores, that waste would be charged to the correct nodes.
//
// # Usage
//
//	adv, _ := wireadv.New(wireadv.Options{Behaviour: wireadv.FetchFlood, Inner: bracha.Spec})
//	nd, _ := node.Start(node.Config{Cluster: c, ID: 3, Spec: adv.Spec(),
//		Conduit: adv.Conduit(cd)}) // cd: the node's UDP or AF_XDP conduit
//	defer nd.Close()
//	st := adv.Stats() // what it sent
package wireadv
