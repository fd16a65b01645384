package sim

import (
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// This file is the simulator's general adversary: a Behaviour that takes
// full control of its node's messages. For every message its core sends, a
// Tactic draws once a Plan — for each recipient, whether it gets the
// message, which version (another digest, payload, view, sequence number,
// certificate: rewritten and re-signed with the node's own key), and when it
// may arrive at the earliest (SendNotBefore). Plans are keyed by the
// message's (type, instance, round, digest), so a core's retransmission of
// a message gets the same treatment and cannot undo a split.

// Out is one message a recipient gets in place of the core's.
type Out struct {
	// Msg is the message sent; nil sends the core's message unchanged.
	// The plan owns any payload reference it holds.
	Msg *broadcast.Message
	// At holds the arrival back to at least this virtual time (0: none).
	At time.Duration
}

// Plan is what an adversary does with one message of its core: To[j] are
// the messages recipient j gets (none: j gets nothing).
type Plan struct {
	To   [][]Out
	held []bufpool.Buf
}

// NewPlan returns a plan for n recipients that sends nothing.
func NewPlan(n int) *Plan { return &Plan{To: make([][]Out, n)} }

// Original gives recipient j the core's message unchanged (held to at).
func (p *Plan) Original(j broadcast.NodeID, at time.Duration) { p.To[j] = append(p.To[j], Out{At: at}) }

// Give gives recipient j message m (held to at). The plan keeps m; if m
// carries a payload the plan must own a reference to it (see Hold).
func (p *Plan) Give(j broadcast.NodeID, m *broadcast.Message, at time.Duration) {
	p.To[j] = append(p.To[j], Out{Msg: m, At: at})
}

// GiveCopy gives recipient j a copy of m that the plan owns (body,
// authenticator and a payload reference of its own), for a message whose
// owner may change or release it later.
func (p *Plan) GiveCopy(j broadcast.NodeID, m *broadcast.Message, at time.Duration) {
	c := clone(m)
	if m.Flags&broadcast.HasPayload != 0 {
		c.SetPayload(p.Hold(m.Payload.Retain()), m.Digest)
	}
	p.Give(j, &c, at)
}

// Hold makes the plan own the payload reference b (released with the
// plan) and returns it.
func (p *Plan) Hold(b bufpool.Buf) bufpool.Buf {
	p.held = append(p.held, b)
	return b
}

func (p *Plan) release() {
	for _, b := range p.held {
		b.Release()
	}
	p.held = nil
}

// Tactic decides what an Adversary does with each message of its core.
type Tactic interface {
	// Plan is called once per distinct message (type, instance, round,
	// digest) the core sends, with the first copy; nil lets the message
	// through unchanged, to everyone, for good. It borrows m.
	Plan(c *Ctx, m *broadcast.Message) *Plan
}

// planKey identifies a message for its plan.
type planKey struct {
	core  int
	typ   broadcast.MsgType
	in    broadcast.Instance
	round uint32
	d     broadcast.Digest
}

// maxPlans bounds the plans an Adversary keeps; the oldest go first.
const maxPlans = 512

// Adversary is a Behaviour driven by a Tactic. If the tactic also
// implements InboundFilter or Closer, the adversary passes those on.
type Adversary struct {
	tactic Tactic
	plans  map[planKey]*Plan
	order  []planKey
	next   int
}

// NewAdversary returns an adversary carrying out t's plans.
func NewAdversary(t Tactic) *Adversary {
	return &Adversary{tactic: t, plans: map[planKey]*Plan{}}
}

// Outbound implements Behaviour.
func (a *Adversary) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	k := planKey{core: c.Core(), typ: m.Type, in: m.Instance, round: m.Round, d: m.Digest}
	p, ok := a.plans[k]
	if !ok {
		p = a.tactic.Plan(c, m)
		a.keep(k, p)
	}
	if p == nil {
		c.Send(to, m)
		return
	}
	if int(to) >= len(p.To) {
		return
	}
	for _, o := range p.To[to] {
		msg := m
		if o.Msg != nil {
			msg = o.Msg
		}
		if o.At > c.Now() {
			c.SendNotBefore(to, msg, o.At)
		} else {
			c.Send(to, msg)
		}
	}
}

func (a *Adversary) keep(k planKey, p *Plan) {
	if len(a.order) < maxPlans {
		a.order = append(a.order, k)
	} else {
		old := a.order[a.next]
		if op := a.plans[old]; op != nil {
			op.release()
		}
		delete(a.plans, old)
		a.order[a.next] = k
		a.next = (a.next + 1) % maxPlans
	}
	a.plans[k] = p
}

// Inbound implements InboundFilter (passing everything if the tactic does
// not look at inbound messages).
func (a *Adversary) Inbound(c *Ctx, from broadcast.NodeID, m *broadcast.Message) bool {
	if f, ok := a.tactic.(InboundFilter); ok {
		return f.Inbound(c, from, m)
	}
	return true
}

// Close implements Closer: it releases every plan's payloads and the
// tactic's.
func (a *Adversary) Close() {
	for _, p := range a.plans {
		if p != nil {
			p.release()
		}
	}
	clear(a.plans)
	a.order = nil
	if cl, ok := a.tactic.(Closer); ok {
		cl.Close()
	}
}

// --- helpers for tactics ---

// peers returns every node but self, in order.
func peers(c *Ctx) []broadcast.NodeID {
	out := make([]broadcast.NodeID, 0, c.N()-1)
	for j := range c.N() {
		if broadcast.NodeID(j) != c.Self() {
			out = append(out, broadcast.NodeID(j))
		}
	}
	return out
}

// randomPeers returns k distinct peers of self drawn from the run's RNG.
func randomPeers(c *Ctx, k int) []broadcast.NodeID {
	ps := peers(c)
	c.Rand().Shuffle(len(ps), func(a, b int) { ps[a], ps[b] = ps[b], ps[a] })
	return ps[:min(max(k, 0), len(ps))]
}

// splitSize draws how many peers get a message in a split: exactly one,
// f, f+1 or 2f of them — the thresholds quorum protocols count to.
func splitSize(c *Ctx) int {
	f := max(c.F(), 1)
	switch c.Rand().IntN(4) {
	case 0:
		return 1
	case 1:
		return f
	case 2:
		return f + 1
	}
	return 2 * f
}

// roundEdge is the last instant of the round (Tuning.RoundDuration) or of
// the Δ after now: a message held to it arrives as late as the model lets
// a correct node's message arrive.
func roundEdge(c *Ctx) time.Duration {
	if r := c.e.cfg.Tuning.RoundDuration; r > 0 {
		return (c.Now()/r+1)*r - 1
	}
	return c.Now() + c.Delta() - 1
}

// randomDigest draws a digest that names nothing.
func randomDigest(c *Ctx) broadcast.Digest {
	var d broadcast.Digest
	for i := 0; i < len(d); i += 8 {
		v := c.Rand().Uint64()
		for j := range 8 {
			d[i+j] = byte(v >> (8 * j))
		}
	}
	return d
}

// clone copies m's header, body and authenticator, without its payload
// (PayloadLen still says how long it is, as in a digest-only message): the
// start of a rewritten message a plan keeps.
func clone(m *broadcast.Message) broadcast.Message {
	c := broadcast.Message{Header: m.Header}
	c.Body = append([]byte(nil), m.Body...)
	c.Auth = append([]byte(nil), m.Auth...)
	c.Flags &^= broadcast.HasPayload
	return c
}

// tacticFunc adapts a function to Tactic.
type tacticFunc func(c *Ctx, m *broadcast.Message) *Plan

func (f tacticFunc) Plan(c *Ctx, m *broadcast.Message) *Plan { return f(c, m) }
