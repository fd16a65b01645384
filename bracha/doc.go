// Package bracha is Bracha's Byzantine reliable broadcast for n ≥ 3f+1, in
// two modes from one code path, as a pure state machine
// (broadcast.Protocol).
//
// A node broadcasts a payload; every correct node delivers it once, and no
// two correct nodes deliver different payloads for one instance — even when
// the origin is Byzantine. The protocol, per instance (origin, seq):
//
//   - the origin sends SEND(m) to all;
//   - on the origin's SEND, a node sends ECHO(m) to all;
//   - on ⌈(n+f+1)/2⌉ ECHOs or f+1 READYs for m, it sends READY(m) (once);
//   - on 2f+1 READYs for m, it delivers m.
//
// Quorum sizes come from broadcast/quorum, the one place they live.
//
// # Full and digest modes
//
// In full mode (broadcast.ModeFull) every message carries the payload: the
// textbook protocol, whose payload duplication factor is 2n−1. In digest
// mode (broadcast.ModeDigest) only SEND carries it; ECHO and READY carry
// its digest, which the authenticator covers. A node that reaches 2f+1
// READYs for a digest whose payload it lacks (a Byzantine origin sent it to
// only some nodes) fetches it from one voucher at a time (see fetch.go),
// accepts the first answer that hashes to the digest, and then delivers.
// With a correct origin, digest mode receives each payload byte exactly
// once per node.
//
// # Instances, batches, memory
//
// Instances are keyed by (origin, seq) and run concurrently. Config.Batch
// packs several application payloads into one instance as a batch
// container (count, lengths, bytes); each delivered payload is a view on
// the instance's one buffer. A single payload travels as submitted, with no
// container, so that nothing is added to its bytes; Header.Round says which
// layout an instance uses, and votes name it together with the digest.
//
// Per-instance state is bounded (one ECHO and one READY count per node, only
// the origin's first SEND counts), the instances tracked per origin are
// bounded by Config.Window, the bytes pinned per origin by
// Config.MaxOriginBytes (and for Config.SendExpiry at most: the payload of
// an instance that does not deliver is let go, and fetched should it
// deliver later), and payloads that arrive without being needed are
// bounded by the store's sender quota. A delivered instance is collected at
// once in full mode, and after Config.Retention in digest mode, where it
// may still have to answer FETCHes.
//
// # Usage loop
//
//	nd, _ := bracha.New(bracha.Config{N: 4, F: 1, Self: 0, Mode: broadcast.ModeDigest})
//	nd.Broadcast(payload)                 // takes payload's reference
//	for {
//		rd := nd.Ready()
//		send(rd.Messages)                 // authenticate, send, Release payloads
//		for _, d := range rd.Deliveries { // (origin, seq), index, payload
//			use(d.Instance, d.Payload)
//			d.Payload.Release()
//		}
//		// then nd.Step(from, msg) for each verified message received,
//		// and nd.Tick(now) when now passes rd.NextWake.
//	}
//
// Deliveries come in the order instances complete, not in seq order: Bracha
// promises no order. Each Delivery owns one payload reference, which the
// application releases; its Digest names the instance's payload (for a
// batch, the container), which every correct node agrees on.
package bracha
