package sim

import (
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// relay is a trivial protocol for engine benchmarks: every submitted payload
// goes to everyone, and each receiver relays each message it has not seen a
// fixed number of hops. It checks nothing and delivers once per payload.
type relay struct {
	self broadcast.NodeID
	out  []broadcast.Outbound
	dels []broadcast.Delivery
	seq  uint64
	seen map[broadcast.Instance]int
}

func floodSpec() broadcast.Spec {
	return broadcast.Spec{
		Name: "relay", ID: broadcast.ProtoTest, Class: broadcast.ReliableBroadcast,
		MinN: func(f int) int { return 3*f + 1 },
		New: func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
			return &relay{self: p.Self, seen: map[broadcast.Instance]int{}}, nil
		},
	}
}

func (r *relay) Submit(p bufpool.Buf) error {
	r.seq++
	var m broadcast.Message
	m.Protocol, m.Type = broadcast.ProtoTest, 1
	m.Instance = broadcast.Instance{Origin: r.self, Seq: r.seq}
	m.SetPayload(p, broadcast.DigestOf(p))
	r.dels = append(r.dels, broadcast.Delivery{Instance: m.Instance, Digest: m.Digest, Payload: p.Retain()})
	r.out = append(r.out, broadcast.Outbound{To: broadcast.Everyone, Msg: m})
	return nil
}

func (r *relay) Step(from broadcast.NodeID, m *broadcast.Message) error {
	k := r.seen[m.Instance]
	r.seen[m.Instance] = k + 1
	if k == 0 {
		r.dels = append(r.dels, broadcast.Delivery{Instance: m.Instance, Digest: m.Digest, Payload: m.Payload.Retain()})
	}
	if m.Round < 2 && k < 2 {
		mm := broadcast.Message{Header: m.Header}
		mm.Round++
		mm.Payload = m.Payload.Retain()
		r.out = append(r.out, broadcast.Outbound{To: broadcast.Everyone, Msg: mm})
	}
	return nil
}

func (r *relay) Tick(time.Duration) {}

func (r *relay) Ready() broadcast.Ready {
	rd := broadcast.Ready{Messages: r.out, Deliveries: r.dels}
	r.out, r.dels = r.out[:0], r.dels[:0]
	return rd
}
