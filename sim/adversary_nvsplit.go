package sim

import (
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/pbft"
)

// pbftNewViewToOne is a new primary that splits the correct replicas
// across views: it withholds its own VIEW-CHANGEs, hands each NEW-VIEW it
// builds to one correct replica only — preferably one that did not ask for
// the view, so the others still lack 2f+1 VIEW-CHANGEs for it — and then
// orders nothing in that view. The replica it chose enters the view and,
// with nothing ordered, moves on towards the next; the others wait for a
// view quorum that nobody will complete unless a replica that entered the
// view hands its NEW-VIEW on (pbft relayNewView). It caught the
// pbft-no-newview-relay mutant, the stall of sim seed 635998.
type pbftNewViewToOne struct {
	asked  map[uint32][]bool // per view, who sent this node VIEW-CHANGE for it
	silent map[uint32]bool   // views whose NEW-VIEW went out: order nothing there
}

func newPBFTNewViewToOne(c *Ctx) Behaviour {
	return &pbftNewViewToOne{asked: map[uint32][]bool{}, silent: map[uint32]bool{}}
}

func (b *pbftNewViewToOne) Inbound(c *Ctx, from broadcast.NodeID, m *broadcast.Message) bool {
	if m.Type == pbft.TypeViewChange {
		a := b.asked[m.Round]
		if a == nil {
			a = make([]bool, c.N())
			b.asked[m.Round] = a
		}
		a[from] = true
	}
	return true
}

func (b *pbftNewViewToOne) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	switch m.Type {
	case pbft.TypeViewChange:
		return // withheld: nobody but this node's own NEW-VIEW counts it
	case pbft.TypeNewView:
		if to == b.target(c, m.Round) {
			c.Send(to, m)
		}
		b.silent[m.Round] = true
		return
	case pbft.TypePrePrepare, pbft.TypePrepare, pbft.TypeCommit:
		if b.silent[m.Round] {
			return
		}
	}
	c.Send(to, m)
}

// target picks the replica that gets view v's NEW-VIEW: the lowest-numbered
// other replica that did not ask for v, else the lowest other one.
func (b *pbftNewViewToOne) target(c *Ctx, v uint32) broadcast.NodeID {
	asked := b.asked[v]
	first := broadcast.NodeID(0)
	if first == c.Self() {
		first = 1
	}
	for i := range c.N() {
		id := broadcast.NodeID(i)
		if id != c.Self() && (asked == nil || !asked[i]) {
			return id
		}
	}
	return first
}
