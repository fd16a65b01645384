package sim

import (
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/dolevstrong"
)

// DolevStrongBehaviours returns Byzantine behaviours aimed at Dolev–Strong.
// Unlike the generic ones, they pool the keys of every Byzantine node of the
// run (a coalition, signing through each member's core), which is what the
// attacks on a signature-chain protocol need: validly signed equivocation,
// and proofs of several Byzantine signers shown late.
func DolevStrongBehaviours() []BehaviourSpec {
	return []BehaviourSpec{
		{"ds-equivocate", "as sender, signs two values and shows each to a random part of the peers (some see both, some neither)", newDSEquivocate},
		{"ds-late", "as sender, stays silent, then shows a coalition proof of up to k signers to some correct nodes in round k, mostly the last two rounds, often at a round's edge", newDSLate},
		{"ds-partial", "as sender, reaches only a random subset of its peers, sometimes without the payload; may refuse fetches", newDSPartial},
		{"ds-relay", "as relayer, forwards to a random subset at the edge of the round, may strip payloads and refuse fetches", newDSRelay},
		{"ds-repeat", "as sender, shows some correct nodes another value with a chain long enough for the last round whose signers repeat; as relayer, repeats its own signature", newDSRepeat},
		{"ds-outsider", "adds to its relays a signer outside the cluster, or a correct node signed for with its own key", newDSOutsider},
		{"ds-edge", "as sender, also shows half the correct nodes another value at the last instant of the last round, with a coalition chain one signature short", newDSEdge},
		{"ds-forge-origin", "answers a correct origin's value with another value for its instance, signed by the coalition (its own keys) but not by the origin, sent at once to every correct peer", newDSForgeOrigin},
	}
}

// dsCoalition returns the dolevstrong cores of every Byzantine node of the
// run, self first.
func dsCoalition(c *Ctx) []*dolevstrong.Node {
	var out []*dolevstrong.Node
	add := func(nd *simNode) {
		if len(nd.cores) > 0 {
			if p, ok := nd.cores[0].(*dolevstrong.Node); ok {
				out = append(out, p)
			}
		}
	}
	add(c.e.nodes[c.self])
	for _, nd := range c.e.nodes {
		if !nd.correct && nd.id != c.self {
			add(nd)
		}
	}
	return out
}

// isOwnRelay reports whether m is the node's core sending round 1 of its
// own instance.
func isOwnRelay(c *Ctx, m *broadcast.Message) bool {
	return m.Protocol == broadcast.ProtoDolevStrong && m.Type == dolevstrong.TypeRelay && m.Instance.Origin == c.Self()
}

// roundStart is when round r of the instance starting in slot seq begins.
func roundStart(c *Ctx, seq uint64, r int) time.Duration {
	return time.Duration(seq+uint64(r)-1) * c.RoundDuration()
}

// stripped is m without its payload (a digest-only relay).
func stripped(m *broadcast.Message) broadcast.Message {
	s := *m
	s.Payload = bufpool.Buf{}
	s.Flags &^= broadcast.HasPayload
	return s
}

// --- ds-equivocate ---

type dsEquivocate struct {
	plans map[broadcast.Instance]*dsEqPlan
	bufs  []bufpool.Buf
}

type dsEqPlan struct {
	alt  broadcast.Message
	side []uint8 // per peer: 0 original, 1 other value, 2 both, 3 neither
}

func newDSEquivocate(*Ctx) Behaviour {
	return &dsEquivocate{plans: map[broadcast.Instance]*dsEqPlan{}}
}

func (b *dsEquivocate) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	if !isOwnRelay(c, m) || m.Flags&broadcast.HasPayload == 0 {
		c.Send(to, m)
		return
	}
	pl := b.plans[m.Instance]
	if pl == nil {
		data := make([]byte, m.Payload.Len())
		m.Payload.CopyTo(data)
		data[0] ^= 0xFF
		d := broadcast.DigestOfBytes(data)
		body, err := dolevstrong.CoalitionProof(m.Instance, d, dsCoalition(c)[:1])
		if err != nil {
			c.Send(to, m)
			return
		}
		buf := c.NewPayload(data)
		b.bufs = append(b.bufs, buf)
		pl = &dsEqPlan{alt: *m, side: make([]uint8, c.N())}
		pl.alt.Body = body
		pl.alt.SetPayload(buf, d)
		for j := range pl.side {
			pl.side[j] = uint8(c.Rand().IntN(4))
		}
		b.plans[m.Instance] = pl
	}
	switch pl.side[to] {
	case 0:
		c.Send(to, m)
	case 1:
		c.Send(to, &pl.alt)
	case 2:
		c.Send(to, &pl.alt)
		c.Send(to, m)
	}
}

func (b *dsEquivocate) Close() {
	for _, p := range b.bufs {
		p.Release()
	}
	b.bufs = nil
}

// --- ds-late ---

type dsLate struct {
	done map[broadcast.Instance]bool
}

func newDSLate(*Ctx) Behaviour { return &dsLate{done: map[broadcast.Instance]bool{}} }

func (b *dsLate) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	if !isOwnRelay(c, m) {
		c.Send(to, m)
		return
	}
	if b.done[m.Instance] {
		return // the original round-1 message never leaves
	}
	b.done[m.Instance] = true
	coalition := dsCoalition(c)
	rounds := c.F() + 1
	rng := c.Rand()
	k := 1 + rng.IntN(rounds)
	if rounds >= 2 && rng.IntN(2) == 0 {
		k = rounds - rng.IntN(2) // the last two rounds
	}
	signers := min(k, len(coalition))
	if signers > 1 && rng.IntN(4) == 0 {
		signers-- // one signature short: stale
	}
	body, err := dolevstrong.CoalitionProof(m.Instance, m.Digest, coalition[:signers])
	if err != nil {
		return
	}
	msg := *m
	msg.Body = body
	msg.Round = uint32(k)
	if rng.IntN(2) == 0 {
		msg = stripped(&msg)
	}
	at := roundStart(c, m.Instance.Seq, k)
	if rng.IntN(2) == 0 {
		at += c.RoundDuration() - 1 // the very edge of round k
	} else {
		at += time.Duration(rng.Int64N(int64(c.RoundDuration())))
	}
	sent := false
	for j := range c.N() {
		id := broadcast.NodeID(j)
		if id == c.Self() || !c.e.nodes[j].correct {
			continue
		}
		if rng.IntN(2) == 0 || (!sent && j == c.N()-1) {
			c.SendNotBefore(id, &msg, at)
			sent = true
		}
	}
}

// --- ds-partial ---

type dsPartial struct {
	reach       []bool
	payload     bool
	refuseFetch bool
}

func newDSPartial(c *Ctx) Behaviour {
	return &dsPartial{reach: randomHalf(c), payload: c.Rand().IntN(2) == 0, refuseFetch: c.Rand().IntN(2) == 0}
}

func (b *dsPartial) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	switch {
	case isOwnRelay(c, m):
		if !b.reach[to] {
			return
		}
		if !b.payload {
			s := stripped(m)
			c.Send(to, &s)
			return
		}
	case m.Type == broadcast.TypePayload && b.refuseFetch:
		return
	}
	c.Send(to, m)
}

// --- ds-relay ---

type dsRelay struct {
	keep        []bool
	strip       bool
	refuseFetch bool
}

func newDSRelay(c *Ctx) Behaviour {
	return &dsRelay{keep: randomHalf(c), strip: c.Rand().IntN(2) == 0, refuseFetch: c.Rand().IntN(2) == 0}
}

func (b *dsRelay) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	switch {
	case m.Protocol == broadcast.ProtoDolevStrong && m.Type == dolevstrong.TypeRelay && m.Instance.Origin != c.Self():
		if !b.keep[to] {
			return
		}
		r := c.RoundDuration()
		edge := (c.Now()/r+1)*r - 1
		if b.strip {
			s := stripped(m)
			c.SendNotBefore(to, &s, edge)
			return
		}
		c.SendNotBefore(to, m, edge)
		return
	case m.Type == broadcast.TypePayload && b.refuseFetch:
		return
	}
	c.Send(to, m)
}
