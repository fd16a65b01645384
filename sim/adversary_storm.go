package sim

import (
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/pbft"
)

// --- pbft-viewchange-storm ---

// vcStorm is a replica that keeps asking for a view nobody is in: as soon
// as it learns of view v (from its core, or from a PRE-PREPARE, vote,
// VIEW-CHANGE or NEW-VIEW for v it receives) it sends every peer a
// VIEW-CHANGE for v+1, and then, every storm period, one for the view after
// the last it asked for — faster than a view can be installed. Each is
// signed with its own key and carries nothing (no stable checkpoint, no
// certificate): valid, so receivers record it. It never sends a PREPARE or
// COMMIT, so that every quorum needs all the correct replicas; the rest of
// what its core sends leaves unchanged.
//
// One VIEW-CHANGE is one replica: a correct replica joins a view change
// only on f+1 of them (Castro & Liskov, TOCS 2002, §4.5.2), so the storm
// alone moves nobody. A replica that joins on f (mutant pbft-join-f, with
// f = 1) is dragged into every view the storm asks for, abandons each view
// before its NEW-VIEW arrives, and the cluster never settles in a view again.
type vcStorm struct {
	signer pbft.Signer
	known  uint32        // highest view learnt
	asked  uint32        // view of the last storm VIEW-CHANGE (0: none yet)
	sentAt time.Duration // when it was last sent
}

func newPBFTViewChangeStorm(c *Ctx) Behaviour { return &vcStorm{signer: pbftSigner(c)} }

// stormPeriod is how often the storm asks for one view more: well under
// the few network latencies a view change takes to complete.
func stormPeriod(c *Ctx) time.Duration { return c.Delta() / 50 }

func (b *vcStorm) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	if m.Protocol != broadcast.ProtoPBFT || (m.Type != pbft.TypePrepare && m.Type != pbft.TypeCommit) {
		c.Send(to, m) // its votes it keeps: every quorum needs all the correct replicas
	}
	b.storm(c)
}

func (b *vcStorm) Inbound(c *Ctx, _ broadcast.NodeID, m *broadcast.Message) bool {
	if m.Protocol == broadcast.ProtoPBFT {
		switch m.Type {
		case pbft.TypePrePrepare, pbft.TypePrepare, pbft.TypeCommit, pbft.TypeNewView, pbft.TypeViewChange:
			// Only views some replica is in or asks for; a far-future view
			// a Byzantine peer names is not followed beyond one step.
			if m.Round <= max(b.known, b.asked)+1 {
				b.known = max(b.known, m.Round)
			}
		}
	}
	b.storm(c)
	return true
}

// storm sends VIEW-CHANGE(known+1) if it has not asked for that view yet,
// or the next view after the last it asked for once a storm period passed.
func (b *vcStorm) storm(c *Ctx) {
	if core := pbftCore(c); core != nil {
		b.known = max(b.known, core.View())
	}
	next := b.known + 1
	if next <= b.asked {
		if c.Now()-b.sentAt < stormPeriod(c) {
			return
		}
		next = b.asked + 1
	}
	if next == 0 {
		return // the last view
	}
	b.asked, b.sentAt = next, c.Now()
	m, content := pbft.ForgeViewChange(&pbft.ViewChange{NewView: next}, b.signer)
	m.SetPayload(c.NewPayload(content), m.Digest)
	for _, j := range peers(c) {
		c.Send(j, &m)
	}
	m.Payload.Release()
}
