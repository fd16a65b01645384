// Package broadcast is the vocabulary every onecast protocol shares: node
// and instance names, payload digests, the one wire header, authenticators,
// the payload store, the Protocol interface, and the metrics counters.
//
// # The signed-digest message format
//
// Every message of every protocol starts with the same fixed 72-byte header
// ([Header]), little-endian and versioned. The header carries the SHA-256
// [Digest] of the payload; a frame is laid out as
//
//	Header | Body | Authenticator | payload bytes
//
// and the authenticator covers the header (digest included) and the body,
// never the payload bytes ([SigningDigest]). Three things follow, and the
// rest of onecast leans on them:
//
//   - A vote (ECHO, READY, PREPARE, COMMIT, a relay) is verifiable without its
//     payload, so later rounds carry only the digest (digest mode), and a
//     payload may be cut off the tail of a frame anywhere on the path — in
//     the kernel's XDP program — without invalidating the vote: the flags
//     that say "payload present" or "stripped" are outside the authenticator.
//   - A payload is accepted only if it hashes to the digest, and is then held
//     once in the [PayloadStore]; every later copy is dropped at once, without
//     even hashing it, and counted as duplicate bytes avoided.
//   - Payloads larger than a frame travel as a first frame and continuation
//     fragments (Fragment flag, FragIndex, FragOffset), each naming the
//     digest, so a receiver that holds the payload can drop them unread.
//
// Decoding ([DecodeFrame], [ParseHeader]) trusts no length field: a bad frame
// gives a *[RejectError] whose [Reason] is counted in [RejectCounters];
// nothing already stored is touched.
//
// # Protocols are pure state machines
//
// A [Protocol] never starts a goroutine, reads a clock or touches a socket;
// a driver feeds it ([Protocol.Step], [Protocol.Tick], [Protocol.Submit]) and
// carries out what [Protocol.Ready] returns, in the style of etcd's raft. The
// simulator drives protocols with virtual time, the node runner with real
// transports: the same code in both, so a simulated result means something
// and a failing seed replays. A [Spec] describes a protocol to those tools.
//
// # Authenticators
//
// The driver authenticates links: [Ed25519] signatures (circl; ≈15 µs to sign
// and 34 µs to verify here), [MAC] — HMAC-SHA256 with pairwise keys derived
// by X25519 agreement, one 16-byte MAC per recipient or a vector of n for a
// message sent once to all (≈0.3 µs) — or [NoAuth], for the simulator whose
// links are authentic by construction. Protocols that must convince a third
// party (PBFT view change, Dolev–Strong chains) sign inside their body.
//
// # Metrics
//
// [Metrics] count messages, header bytes and payload bytes per protocol and
// message type, deliveries, copies and rejections. The headline figure is the
// payload duplication factor: payload bytes a node received ÷ payload bytes
// delivered to it from other nodes; its physical limit is 1.0.
package broadcast
