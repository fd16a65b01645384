package sim

import (
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Generic adversaries built on Adversary: they work on every protocol's
// messages (Bracha's SEND, ECHO and READY, PBFT's votes, Dolev–Strong's
// relays) without knowing their bodies.

// --- splitvote ---

// newSplitVote sends every message to exactly a random subset of peers,
// drawn per message: one, f, f+1 or 2f of them (splitSize), and holds a
// third of the messages to the edge of the round.
func newSplitVote(*Ctx) Behaviour {
	return NewAdversary(tacticFunc(func(c *Ctx, m *broadcast.Message) *Plan {
		p := NewPlan(c.N())
		var at = c.Now()
		if c.Rand().IntN(3) == 0 {
			at = roundEdge(c)
		}
		for _, j := range randomPeers(c, splitSize(c)) {
			p.Original(j, at)
		}
		return p
	}))
}

// --- equivocate-each ---

// eachVersion is one alternative version of a payload.
type eachVersion struct {
	d   broadcast.Digest
	buf bufpool.Buf
}

// equivocateEach shows each peer its own version of every payload (the
// original or one of two others) and keeps showing it that version: in
// every later message naming the original digest, the peer sees its
// version's digest.
type equivocateEach struct {
	versions map[broadcast.Digest][]eachVersion // original digest → alternatives
	choice   map[broadcast.Digest][]uint8       // original digest → version per peer (0: original)
}

const eachVersions = 2

func newEquivocateEach(*Ctx) Behaviour {
	t := &equivocateEach{versions: map[broadcast.Digest][]eachVersion{}, choice: map[broadcast.Digest][]uint8{}}
	return NewAdversary(t)
}

func (t *equivocateEach) Plan(c *Ctx, m *broadcast.Message) *Plan {
	if m.Digest.IsZero() {
		return nil
	}
	full := m.Flags&broadcast.HasPayload != 0 && m.PayloadLen > 0 && m.Payload.Len() == int(m.PayloadLen)
	vs, known := t.versions[m.Digest]
	if !known {
		if !full || len(t.versions) >= 64 {
			return nil
		}
		data := make([]byte, m.Payload.Len())
		m.Payload.CopyTo(data)
		for k := range eachVersions {
			alt := append([]byte(nil), data...)
			alt[len(alt)-1-k%len(alt)] ^= byte(0x5A + k)
			vs = append(vs, eachVersion{d: broadcast.DigestOfBytes(alt), buf: c.NewPayload(alt)})
		}
		t.versions[m.Digest] = vs
		ch := make([]uint8, c.N())
		for j := range ch {
			ch[j] = uint8(c.Rand().IntN(eachVersions + 1))
		}
		t.choice[m.Digest] = ch
	}
	ch := t.choice[m.Digest]
	p := NewPlan(c.N())
	for _, j := range peers(c) {
		if ch[j] == 0 {
			p.Original(j, 0)
			continue
		}
		v := vs[ch[j]-1]
		mm := clone(m)
		mm.Digest = v.d
		if m.Flags&broadcast.HasPayload != 0 {
			mm.SetPayload(p.Hold(v.buf.Retain()), v.d)
		}
		p.Give(j, &mm, 0)
	}
	return p
}

func (t *equivocateEach) Close() {
	for _, vs := range t.versions {
		for _, v := range vs {
			v.buf.Release()
		}
	}
	clear(t.versions)
}

// --- impersonate ---

// newImpersonate sends, besides each message of its own instances, a copy
// in another origin's name (Instance.Origin), with a different payload when
// it carries one, to a random half of its peers: a SEND only the named
// origin may send, which the receivers must refuse.
func newImpersonate(*Ctx) Behaviour {
	return NewAdversary(tacticFunc(func(c *Ctx, m *broadcast.Message) *Plan {
		if m.Instance.Origin != c.Self() || c.N() < 2 {
			return nil
		}
		p := NewPlan(c.N())
		victim := randomPeers(c, 1)[0]
		mm := clone(m)
		mm.Instance.Origin = victim
		if m.Flags&broadcast.HasPayload != 0 && m.Payload.Len() > 0 && m.Payload.Len() == int(m.PayloadLen) {
			data := make([]byte, m.Payload.Len())
			m.Payload.CopyTo(data)
			data[0] ^= 0xFF
			d := broadcast.DigestOfBytes(data)
			mm.SetPayload(p.Hold(c.NewPayload(data)), d)
		}
		forged := randomPeers(c, (c.N()-1+1)/2)
		for _, j := range peers(c) {
			p.Original(j, 0)
		}
		for _, j := range forged {
			if j != victim {
				p.Give(j, &mm, 0)
			}
		}
		return p
	}))
}
