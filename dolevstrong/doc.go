// Package dolevstrong is Dolev–Strong authenticated Byzantine broadcast: a
// sender's value reaches every correct node, or every correct node outputs
// ⊥, in f+1 synchronous rounds, for any number f < n of Byzantine nodes.
//
// # Protocol
//
// Rounds last Δ and are numbered from a common clock: the slot k is
// [kΔ, (k+1)Δ). An instance is named (origin, seq) where seq is the slot its
// round 1 runs in, so every node knows when any instance starts and ends
// without trusting its sender; an origin starts at most one instance per
// slot, and its sequence numbers increase but are not dense. Submit queues
// the value for the next slot boundary, where the Tick sends it; a message
// that arrives up to one slot before its instance starts counts as round 1
// (clock skew), earlier ones and late ones are ignored (Stats.Early, Late).
//
// Every signer signs the same statement, (instance, digest) under a domain
// tag (see Statement). A proof of length L is L distinct signers' signatures
// on it, the origin's among them. A node accepts a digest when, in a round
// r ≤ f+1 of the instance, it holds both a proof of length ≥ r and the
// payload the digest names; if r ≤ f it adds its own signature and relays.
// At the end of round f+1 it decides: one accepted value is the output, two
// (the sender equivocated) are ⊥, none is no output. A node accepts and
// relays at most two values per instance: two are enough for ⊥.
//
// Holding the payload is part of acceptance, so a correct signer can always
// hand over what it signed. That is what makes digest mode safe: the value
// travels once, from the sender, and relays carry only the digest and the
// proof; a node that receives a valid proof for a digest it lacks fetches
// the payload (broadcast.TypeFetch / TypePayload) from the relayer that
// vouched for it — from every such relayer, since a Byzantine one may not
// answer. Because a proof of length L stays acceptable until the end of
// round L, a fetch of two message delays fits in the round budget when
// Δ ≥ 3δ (δ the message delay bound); full mode needs only Δ ≥ δ.
// The classic argument then goes through unchanged: if a correct node
// accepts v in round r ≤ f, its relay (length r+1) reaches everyone by round
// r+1 and it answers their fetches; if it accepts in round f+1, the proof
// has f+1 signers, one of them correct, which accepted in an earlier round
// and relayed.
//
// # Outputs
//
// A decided value is a broadcast.Delivery with the value's Digest and
// Payload. ⊥ is a Delivery whose Digest and Payload are both zero. An
// instance of which no correct node accepted anything (a silent sender, or
// messages that were all too late) produces no Delivery at any correct node:
// agreement is "the same Delivery, or none, at every correct node".
//
// # Signature schemes
//
// Ed25519 chains (circl): a relay carries one signature per signer; a node
// verifies each signer's signature once per statement and rebuilds the
// relays it sends from verified signatures only. BLS aggregates (circl
// sign/bls, keys in G2, 48-byte signatures in G1): a relay carries one
// aggregate and a signer bitmap, verified with one pairing check against
// the sum of the signers' keys; each key's proof of possession is checked
// when the keyring is built (NewBLSKeyring), which rules out rogue keys.
//
// # Usage
//
// Node is a pure state machine (broadcast.Protocol). A driver ticks it every
// Δ — NextWake is always the next round boundary — and must Tick it before
// stepping a message that arrived at or after NextWake. The clock is the
// cluster's: a driver whose clock starts at its own start sets
// Config.ClockOffset (or calls SetClockOffset). Messages stepped before the
// first Tick are held (up to 1024) and judged at it, and an own instance
// whose slot boundary passed more than Δ/16 before the Tick that would start
// it moves to the next slot: a driver that starts ticking late loses time,
// never safety.
//
//	node, _ := dolevstrong.New(dolevstrong.Config{Params: params, Store: store, Keys: keys, RoundDuration: delta})
//	node.Submit(value)                 // on the sender
//	node.Step(from, msg); node.Tick(now)
//	rd := node.Ready()                 // send rd.Messages, deliver rd.Deliveries
//
// Spec builds nodes for the tools; AggregateSpec does so for the BLS
// variant. RoundFor turns a measured delay bound into Δ (the default Δ,
// DefaultRoundDuration, suits the simulator's default network only).
// Dolev–Strong is a synchronous protocol: on a network that breaks the
// bound (the simulator's partitions before GST), agreement is not promised.
// Config.UnsafeRounds runs f rounds instead of f+1, and
// Config.UnsafeCountChainEntries and Config.UnsafeAcceptOneShort break the
// verifier (unsafe.go): they exist so that tests can show the simulator's
// checkers and adversaries catch the broken protocol.
package dolevstrong
