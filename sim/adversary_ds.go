package sim

import (
	"slices"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
)

// Dolev–Strong adversaries built on Adversary, signing with the coalition's
// keys (dsCoalition) as the other Dolev–Strong behaviours do: chains that
// repeat a signer, chains naming a signer outside the cluster or a correct
// node whose key the coalition lacks, and chains one signature short shown
// at the very edge of the last round. A correct node refuses all of them;
// the first two are what a verifier that counts chain entries instead of
// distinct members would accept.

// dsChains returns the coalition (dsCoalition) if it signs chains, nil if
// it signs BLS aggregates (whose bitmap cannot repeat or add a signer).
func dsChains(c *Ctx) []*dolevstrong.Node {
	co := dsCoalition(c)
	if len(co) == 0 {
		return nil
	}
	body, err := dolevstrong.CoalitionProof(broadcast.Instance{}, broadcast.Digest{}, co[:1])
	if err != nil || len(body) == 0 || body[0] != dolevstrong.KindChain {
		return nil
	}
	return co
}

// dsAltValue makes another value for the instance of m (its payload with
// the first byte flipped), held by the plan.
func dsAltValue(c *Ctx, p *Plan, m *broadcast.Message) (broadcast.Message, bool) {
	if m.Flags&broadcast.HasPayload == 0 || m.Payload.Len() == 0 || m.Payload.Len() != int(m.PayloadLen) {
		return broadcast.Message{}, false
	}
	data := make([]byte, m.Payload.Len())
	m.Payload.CopyTo(data)
	data[0] ^= 0xFF
	alt := clone(m)
	alt.SetPayload(p.Hold(c.NewPayload(data)), broadcast.DigestOfBytes(data))
	return alt, true
}

// repeatedChain is a chain of length k over (in, d) whose signers are the
// coalition's members, origin first, repeated in turn to reach k.
func repeatedChain(co []*dolevstrong.Node, in broadcast.Instance, d broadcast.Digest, k int) []byte {
	signers := make([]broadcast.NodeID, 0, k)
	sigs := make([][]byte, 0, k)
	for i := range k {
		s := co[i%len(co)]
		signers = append(signers, s.Self())
		sigs = append(sigs, s.Sign(in, d))
	}
	return dolevstrong.AppendChain(nil, signers, sigs)
}

// lastRoundEdge is the last instant of instance seq's last round (f+1).
func lastRoundEdge(c *Ctx, seq uint64) time.Duration {
	return roundStart(c, seq, c.F()+1) + c.RoundDuration() - 1
}

// correctPeers are the peers the run made correct.
func correctPeers(c *Ctx) []broadcast.NodeID {
	var out []broadcast.NodeID
	for _, j := range peers(c) {
		if c.e.nodes[j].correct {
			out = append(out, j)
		}
	}
	return out
}

// --- ds-repeat ---

// planDSRepeat, as sender, sends its value as usual and, to a random part
// of the correct nodes, another value with a chain as long as the last
// round needs whose signers repeat (the coalition, over and over), at the
// edge of the last round or of an earlier one; as relayer, it adds to a
// random peer a copy of each relay with its own signature repeated.
func planDSRepeat(c *Ctx, m *broadcast.Message) *Plan {
	if m.Protocol != broadcast.ProtoDolevStrong || m.Type != dolevstrong.TypeRelay {
		return nil
	}
	co := dsChains(c)
	if co == nil {
		return nil
	}
	p := NewPlan(c.N())
	for _, j := range peers(c) {
		p.Original(j, 0)
	}
	r := c.Rand()
	if !isOwnRelay(c, m) {
		body, err := dolevstrong.DecodeBody(m.Body, c.N())
		if err != nil || len(body.Signers) == 0 {
			return p
		}
		rep := clone(m)
		rep.Body = dolevstrong.AppendChain(nil, append(body.Signers, c.Self()), append(body.Sigs, co[0].Sign(m.Instance, m.Digest)))
		if j := randomPeers(c, 1); len(j) > 0 {
			p.Give(j[0], &rep, 0)
		}
		return p
	}
	alt, ok := dsAltValue(c, p, m)
	if !ok {
		return p
	}
	rounds := c.F() + 1
	k := rounds
	if r.IntN(3) == 0 {
		k = 2 + r.IntN(max(rounds-1, 1))
	}
	k = max(k, len(co)+1) // at least one repeat
	alt.Body = repeatedChain(co, m.Instance, alt.Digest, k)
	alt.Round = uint32(min(k, rounds))
	at := roundStart(c, m.Instance.Seq, min(k, rounds)) + c.RoundDuration() - 1
	for _, j := range correctPeers(c) {
		if r.IntN(2) == 0 {
			p.Give(j, &alt, at)
		}
	}
	return p
}

// --- ds-outsider ---

// planDSOutsider sends each relay as is and, to a random half of its
// peers, a copy whose chain adds a signer outside the cluster, or a
// correct node signed for with a coalition member's key.
func planDSOutsider(c *Ctx, m *broadcast.Message) *Plan {
	if m.Protocol != broadcast.ProtoDolevStrong || m.Type != dolevstrong.TypeRelay {
		return nil
	}
	co := dsChains(c)
	if co == nil {
		return nil
	}
	body, err := dolevstrong.DecodeBody(m.Body, c.N())
	if err != nil {
		return nil
	}
	p := NewPlan(c.N())
	for _, j := range peers(c) {
		p.Original(j, 0)
	}
	r := c.Rand()
	out := broadcast.NodeID(c.N() + r.IntN(3))
	if cp := correctPeers(c); len(cp) > 0 && r.IntN(2) == 0 {
		for _, j := range cp {
			if !slices.Contains(body.Signers, j) {
				out = j
				break
			}
		}
	}
	if slices.Contains(body.Signers, out) {
		return p
	}
	forged := clone(m)
	if m.Flags&broadcast.HasPayload != 0 {
		forged.SetPayload(p.Hold(m.Payload.Retain()), m.Digest)
	}
	forged.Body = dolevstrong.AppendChain(nil, append(body.Signers, out), append(body.Sigs, co[0].Sign(m.Instance, m.Digest)))
	for _, j := range randomPeers(c, (c.N()-1+1)/2) {
		p.Give(j, &forged, 0)
	}
	return p
}

// --- ds-edge ---

// planDSEdge, as sender, sends its value as usual and shows a random half
// of the correct nodes another value at the last instant of the last round,
// with a chain of the coalition's signatures one short of what that round
// needs (a coalition of at most f cannot sign f+1).
func planDSEdge(c *Ctx, m *broadcast.Message) *Plan {
	if !isOwnRelay(c, m) {
		return nil
	}
	co := dsCoalition(c)
	if len(co) == 0 {
		return nil
	}
	p := NewPlan(c.N())
	for _, j := range peers(c) {
		p.Original(j, 0)
	}
	alt, ok := dsAltValue(c, p, m)
	if !ok {
		return p
	}
	rounds := c.F() + 1
	body, err := dolevstrong.CoalitionProof(m.Instance, alt.Digest, co[:max(min(rounds-1, len(co)), 1)])
	if err != nil {
		return p
	}
	alt.Body = body
	alt.Round = uint32(rounds)
	at := lastRoundEdge(c, m.Instance.Seq)
	for _, j := range correctPeers(c) {
		if c.Rand().IntN(2) == 0 {
			p.Give(j, &alt, at)
		}
	}
	return p
}

func newDSRepeat(*Ctx) Behaviour   { return NewAdversary(tacticFunc(planDSRepeat)) }
func newDSOutsider(*Ctx) Behaviour { return NewAdversary(tacticFunc(planDSOutsider)) }
func newDSEdge(*Ctx) Behaviour     { return NewAdversary(tacticFunc(planDSEdge)) }

// --- ds-forge-origin ---

// dsForgeOrigin answers a correct origin's value, the first time it sees
// it, with another value for the same instance, sent at once to every
// correct peer under a chain signed by every coalition member with its own
// real key — and not by the origin, whose key the coalition lacks. A correct
// node refuses a chain without the origin's signature (Dolev & Strong,
// 1983: every accepted chain starts with the sender's); one that accepts
// it (mutant ds-no-origin-sig) accepts and relays two values for a correct
// origin and decides ⊥ instead of the origin's value.
type dsForgeOrigin struct {
	done map[broadcast.Instance]bool
}

func newDSForgeOrigin(*Ctx) Behaviour {
	return &dsForgeOrigin{done: map[broadcast.Instance]bool{}}
}

func (b *dsForgeOrigin) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) { c.Send(to, m) }

func (b *dsForgeOrigin) Inbound(c *Ctx, _ broadcast.NodeID, m *broadcast.Message) bool {
	if m.Protocol != broadcast.ProtoDolevStrong || m.Type != dolevstrong.TypeRelay || b.done[m.Instance] ||
		int(m.Instance.Origin) >= c.N() || !c.e.nodes[m.Instance.Origin].correct {
		return true
	}
	co := dsCoalition(c)
	if len(co) == 0 {
		return true
	}
	p := NewPlan(c.N()) // holds the other value's payload until sent
	defer p.release()
	alt, ok := dsAltValue(c, p, m)
	if !ok {
		return true // digest only: wait for a copy with the payload
	}
	body, err := dolevstrong.CoalitionProof(m.Instance, alt.Digest, co[:min(len(co), c.F())])
	if err != nil {
		return true
	}
	b.done[m.Instance] = true
	alt.Body = body
	for _, j := range correctPeers(c) {
		c.Send(j, &alt)
	}
	return true
}
