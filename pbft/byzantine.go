package pbft

import (
	"math/rand/v2"
	"time"

	"github.com/onecast/onecast/broadcast"
)

// Behavior is a Byzantine replica's misbehaviour, for tests and the
// simulator.
type Behavior uint8

// Byzantine behaviours.
const (
	// Silent sends nothing: a crashed or mute replica (a silent primary).
	Silent Behavior = iota + 1
	// Equivocate, as primary, sends the real batch to some backups and a
	// conflicting one, validly signed, to the others at the same sequence
	// number (see ConflictingPrePrepare).
	Equivocate
	// WrongDigest sends PREPARE, COMMIT and CHECKPOINT for random digests,
	// validly signed.
	WrongDigest
	// Replay re-sends requests it received, once each: under their client's
	// name (which replicas refuse on its link) or as its own client's, at an
	// old timestamp.
	Replay
)

// String names the behaviour.
func (b Behavior) String() string {
	switch b {
	case Silent:
		return "silent"
	case Equivocate:
		return "equivocate"
	case WrongDigest:
		return "wrong-digest"
	case Replay:
		return "replay"
	}
	return "behavior?"
}

// Byzantine wraps a replica and corrupts what it sends. It implements
// broadcast.Protocol.
type Byzantine struct {
	*Node
	b      Behavior
	rng    *rand.Rand
	replay []broadcast.Outbound // requests seen, not yet replayed, with payload refs
	seen   int
}

// NewByzantine builds a misbehaving replica.
func NewByzantine(cfg Config, b Behavior, seed uint64) (*Byzantine, error) {
	nd, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &Byzantine{Node: nd, b: b, rng: rand.New(rand.NewPCG(seed, uint64(cfg.Self)))}, nil
}

// Step records requests to replay, then steps the replica.
func (z *Byzantine) Step(from broadcast.NodeID, m *broadcast.Message) error {
	if z.b == Replay && m.Type == TypeRequest && z.seen < 64 {
		z.seen++
		c := *m
		c.Body = append([]byte(nil), m.Body...)
		c.Auth = nil
		c.Payload = m.Payload.Retain()
		z.replay = append(z.replay, broadcast.Outbound{To: broadcast.Everyone, Msg: c})
	}
	return z.Node.Step(from, m)
}

// Ready corrupts the replica's output.
func (z *Byzantine) Ready() broadcast.Ready {
	rd := z.Node.Ready()
	switch z.b {
	case Silent:
		for i := range rd.Messages {
			rd.Messages[i].Msg.Payload.Release()
		}
		rd.Messages = nil
	case Equivocate:
		rd.Messages = z.equivocate(rd.Messages)
	case WrongDigest:
		for i := range rd.Messages {
			var d broadcast.Digest
			for j := range d {
				d[j] = byte(z.rng.Uint32())
			}
			WrongVote(&rd.Messages[i].Msg, d, z.signer)
		}
	case Replay:
		for _, o := range z.replay {
			c := o.Msg
			if z.rng.IntN(2) == 1 {
				// Claim it as our own client's, at an old timestamp.
				c.Body = appendRequestBody(nil, z.self, requestFlagRetransmit, nil)
				c.Instance.Seq = 1 + z.rng.Uint64N(max(z.client.nextTS, 1))
			}
			rd.Messages = append(rd.Messages, broadcast.Outbound{To: broadcast.Everyone, Msg: c})
		}
		z.replay = z.replay[:0] // the messages own the references now
	}
	return rd
}

// equivocate splits each PRE-PREPARE: odd-numbered replicas get the real
// batch, even-numbered ones a conflicting one.
func (z *Byzantine) equivocate(msgs []broadcast.Outbound) []broadcast.Outbound {
	out := make([]broadcast.Outbound, 0, len(msgs)+z.n)
	for _, o := range msgs {
		alt, ok := ConflictingPrePrepare(&o.Msg, z.n, z.signer)
		if !ok || o.To != broadcast.Everyone {
			out = append(out, o)
			continue
		}
		for j := range z.n {
			if broadcast.NodeID(j) == z.self {
				continue
			}
			c := alt
			if j%2 == 1 {
				c = o.Msg
				c.Payload = o.Msg.Payload.Retain()
			}
			out = append(out, broadcast.Outbound{To: broadcast.NodeID(j), Msg: c})
		}
		o.Msg.Payload.Release()
	}
	return out
}

// Tick passes time to the replica.
func (z *Byzantine) Tick(now time.Duration) { z.Node.Tick(now) }

// Close releases the replay buffer and the replica.
func (z *Byzantine) Close() {
	for _, o := range z.replay {
		o.Msg.Payload.Release()
	}
	z.replay = nil
	z.Node.Close()
}
