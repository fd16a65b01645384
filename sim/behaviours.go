package sim

import (
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Behaviours returns the built-in Byzantine behaviours.
func Behaviours() []BehaviourSpec {
	return []BehaviourSpec{
		{"crash", "runs correctly, then stops sending and receiving at a random time", newCrash},
		{"silent", "never sends anything", func(*Ctx) Behaviour { return &crash{at: 0} }},
		{"equivocate", "shows half of its peers a different payload (and digest) in every message", newEquivocate},
		{"subset", "sends only to a fixed random subset of its peers", newSubset},
		{"wrongdigest", "replaces the digest of half its messages with a random one", func(*Ctx) Behaviour { return wrongDigest{} }},
		{"corrupt", "flips a byte of the payload of half its messages, keeping the digest", func(*Ctx) Behaviour { return corrupt{} }},
		{"replay", "re-sends old messages (its own and, under its own name, others') to random peers", newReplay},
		{"flood", "sends every payload several times, attaches payloads to digest-only messages, pushes unsolicited PAYLOADs", newFlood},
		{"delay", "holds every message to the edge of its round (arrival just before the round or Δ ends)", func(*Ctx) Behaviour { return delayEdge{} }},
		{"twins", "two correct cores share one identity and keys, each talking to its own half of the peers", newTwins},
		{"mutate", "small-scope mutation of a few messages' round, instance, digest or type (ByzzFuzz)", newMutate},
		{"splitvote", "sends each message to exactly one, f, f+1 or 2f peers drawn per message; a third held to the round's edge", newSplitVote},
		{"equivocate-each", "shows each peer its own version of every payload (one of three) and names that version's digest in all its later votes", newEquivocateEach},
		{"impersonate", "also sends its instances' messages in another origin's name (a SEND only that origin may send), with another payload", newImpersonate},
		{"twins-rounds", "Twins: two cores share one identity; each time slice a new partition of the peers between them and of the correct nodes (before GST)", newTwinsSampled},
	}
}

// --- crash / silent ---

type crash struct{ at time.Duration }

func newCrash(c *Ctx) Behaviour {
	horizon := max(c.e.cfg.Net.GST, c.e.cfg.Workload.Spread) + 4*c.Delta()
	return &crash{at: time.Duration(c.Rand().Int64N(int64(horizon)))}
}

func (b *crash) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	if c.Now() < b.at {
		c.Send(to, m)
	}
}

func (b *crash) Inbound(c *Ctx, _ broadcast.NodeID, _ *broadcast.Message) bool { return c.Now() < b.at }

// --- equivocate ---

type altPayload struct {
	d   broadcast.Digest
	buf bufpool.Buf // held until Close
}

type equivocate struct {
	other []bool // other[j]: peer j is shown the other version
	alt   map[broadcast.Digest]altPayload
}

// randomHalf splits the peers of self in two non-empty halves (when there
// are at least two peers).
func randomHalf(c *Ctx) []bool {
	n := c.N()
	side := make([]bool, n)
	perm := c.Rand().Perm(n)
	k := 1 + c.Rand().IntN(max(n-2, 1))
	cnt := 0
	for _, j := range perm {
		if broadcast.NodeID(j) != c.Self() && cnt < k {
			side[j] = true
			cnt++
		}
	}
	return side
}

func newEquivocate(c *Ctx) Behaviour {
	return &equivocate{other: randomHalf(c), alt: map[broadcast.Digest]altPayload{}}
}

// flipDigest is a digest that names no payload anyone has.
func flipDigest(d broadcast.Digest) broadcast.Digest {
	d[0] ^= 0xA5
	d[31] ^= 0x5A
	return d
}

func (b *equivocate) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	if !b.other[to] || m.Digest.IsZero() {
		c.Send(to, m)
		return
	}
	mm := *m
	if a, ok := b.alt[m.Digest]; ok {
		mm.Digest = a.d
		if m.Flags&broadcast.HasPayload != 0 {
			mm.Payload = a.buf
		}
	} else if m.Flags&broadcast.HasPayload != 0 && m.Payload.Len() == int(m.PayloadLen) && m.PayloadLen > 0 {
		data := make([]byte, m.Payload.Len())
		m.Payload.CopyTo(data)
		data[len(data)-1] ^= 0xFF
		a := altPayload{d: broadcast.DigestOfBytes(data), buf: c.NewPayload(data)}
		b.alt[m.Digest] = a
		mm.Digest, mm.Payload = a.d, a.buf
	} else {
		mm.Digest = flipDigest(m.Digest)
	}
	c.Send(to, &mm)
}

func (b *equivocate) Close() {
	for _, a := range b.alt {
		a.buf.Release()
	}
	clear(b.alt)
}

// --- subset ---

type subset struct{ keep []bool }

func newSubset(c *Ctx) Behaviour { return &subset{keep: randomHalf(c)} }

func (b *subset) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	if b.keep[to] {
		c.Send(to, m)
	}
}

// --- wrong digest ---

type wrongDigest struct{}

func (wrongDigest) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	if c.Rand().IntN(2) == 0 {
		c.Send(to, m)
		return
	}
	mm := *m
	for i := 0; i < len(mm.Digest); i += 8 {
		v := c.Rand().Uint64()
		for j := range 8 {
			mm.Digest[i+j] = byte(v >> (8 * j))
		}
	}
	c.Send(to, &mm)
}

// --- corrupt payload ---

type corrupt struct{}

func (corrupt) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	if m.Payload.Len() == 0 || c.Rand().IntN(2) == 0 {
		c.Send(to, m)
		return
	}
	data := make([]byte, m.Payload.Len())
	m.Payload.CopyTo(data)
	data[c.Rand().IntN(len(data))] ^= byte(1 + c.Rand().IntN(255))
	mm := *m
	mm.Payload = c.NewPayload(data)
	c.Send(to, &mm)
	mm.Payload.Release()
}

// --- replay ---

// recorded is a message kept for later: its own body copy and payload
// reference.
type recorded struct {
	msg broadcast.Message
}

func record(m *broadcast.Message) recorded {
	r := recorded{msg: *m}
	r.msg.Body = append([]byte(nil), m.Body...)
	r.msg.Auth = append([]byte(nil), m.Auth...)
	r.msg.Payload = m.Payload.Retain()
	return r
}

type replay struct {
	log  []recorded
	next int
}

const replayLog = 32

func newReplay(*Ctx) Behaviour { return &replay{} }

func (b *replay) keep(m *broadcast.Message) {
	r := record(m)
	if len(b.log) < replayLog {
		b.log = append(b.log, r)
		return
	}
	b.log[b.next].msg.Payload.Release()
	b.log[b.next] = r
	b.next = (b.next + 1) % replayLog
}

func (b *replay) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	c.Send(to, m)
	if len(b.log) > 0 && c.Rand().IntN(4) == 0 {
		old := &b.log[c.Rand().IntN(len(b.log))].msg
		c.Send(broadcast.NodeID(c.Rand().IntN(c.N())), old)
	}
	if c.Rand().IntN(4) == 0 {
		b.keep(m)
	}
}

func (b *replay) Inbound(c *Ctx, _ broadcast.NodeID, m *broadcast.Message) bool {
	if c.Rand().IntN(4) == 0 {
		b.keep(m)
	}
	return true
}

func (b *replay) Close() {
	for i := range b.log {
		b.log[i].msg.Payload.Release()
	}
	b.log = nil
}

// --- flood ---

type flood struct {
	payloads map[broadcast.Digest]bufpool.Buf // held until Close
}

const floodKeep = 64

func newFlood(*Ctx) Behaviour { return &flood{payloads: map[broadcast.Digest]bufpool.Buf{}} }

func (b *flood) learn(m *broadcast.Message) {
	if m.Flags&broadcast.HasPayload == 0 || m.Payload.Len() != int(m.PayloadLen) || len(b.payloads) >= floodKeep {
		return
	}
	if _, ok := b.payloads[m.Digest]; !ok {
		b.payloads[m.Digest] = m.Payload.Retain()
	}
}

func (b *flood) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	b.learn(m)
	mm := *m
	if mm.Flags&broadcast.HasPayload == 0 && !mm.Digest.IsZero() {
		if p, ok := b.payloads[mm.Digest]; ok {
			mm.Payload = p
			mm.Flags |= broadcast.HasPayload
			mm.PayloadLen = uint32(p.Len())
		}
	}
	c.Send(to, &mm)
	if mm.Flags&broadcast.HasPayload == 0 {
		return
	}
	for range 1 + c.Rand().IntN(3) {
		c.Send(to, &mm)
	}
	var push broadcast.Message
	push.Protocol = c.Protocol()
	push.Type = broadcast.TypePayload
	push.Instance = mm.Instance
	push.Round = mm.Round
	push.Flags = broadcast.HasPayload
	push.Payload, push.Digest, push.PayloadLen = mm.Payload, mm.Digest, mm.PayloadLen
	c.Send(to, &push)
}

func (b *flood) Inbound(_ *Ctx, _ broadcast.NodeID, m *broadcast.Message) bool {
	b.learn(m)
	return true
}

func (b *flood) Close() {
	for _, p := range b.payloads {
		p.Release()
	}
	clear(b.payloads)
}

// --- delay to the edge of the round ---

type delayEdge struct{}

func (delayEdge) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	var edge time.Duration
	if r := c.e.cfg.Tuning.RoundDuration; r > 0 {
		edge = (c.Now()/r+1)*r - 1
	} else {
		edge = c.Now() + c.Delta() - 1
	}
	c.SendNotBefore(to, m, edge)
}

// --- twins ---

type twins struct {
	side  []bool // side[j]: peer j talks to the second twin
	leaky bool   // both twins talk to every peer
}

func newTwins(c *Ctx) Behaviour {
	return &twins{side: randomHalf(c), leaky: c.Rand().IntN(3) == 0}
}

func (b *twins) Route(from broadcast.NodeID) int {
	if b.side[from] {
		return 1
	}
	return 0
}

func (b *twins) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	if b.leaky || b.Route(to) == c.Core() {
		c.Send(to, m)
	}
}

// --- small-scope mutation (ByzzFuzz) ---

type mutate struct {
	budget  int
	digests []broadcast.Digest
	types   []broadcast.MsgType
}

func newMutate(c *Ctx) Behaviour { return &mutate{budget: 1 + c.Rand().IntN(4)} }

func (b *mutate) learn(m *broadcast.Message) {
	if !m.Digest.IsZero() && len(b.digests) < 16 {
		b.digests = append(b.digests, m.Digest)
	}
	for _, t := range b.types {
		if t == m.Type {
			return
		}
	}
	b.types = append(b.types, m.Type)
}

func (b *mutate) Inbound(_ *Ctx, _ broadcast.NodeID, m *broadcast.Message) bool {
	b.learn(m)
	return true
}

func (b *mutate) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	b.learn(m)
	if b.budget == 0 || c.Rand().IntN(8) != 0 {
		c.Send(to, m)
		return
	}
	b.budget--
	mm := *m
	r := c.Rand()
	delta := func() int { return 1 - 2*r.IntN(2) }
	switch r.IntN(5) {
	case 0:
		mm.Round = uint32(int(mm.Round) + delta())
	case 1:
		mm.Instance.Seq = uint64(int64(mm.Instance.Seq) + int64(delta()))
	case 2:
		mm.Instance.Origin = broadcast.NodeID(r.IntN(c.N()))
	case 3:
		if len(b.digests) > 0 {
			mm.Digest = b.digests[r.IntN(len(b.digests))]
		} else {
			mm.Digest = flipDigest(mm.Digest)
		}
	case 4:
		mm.Type = b.types[r.IntN(len(b.types))]
	}
	c.Send(to, &mm)
}
