package netio_test

import (
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// echoProto is a tiny protocol for runner tests: Submit broadcasts the
// payload (type 1); a receiver checks its digest, delivers it and answers
// with an ack (type 2, digest only); the origin delivers its own payload once
// every other node acked. While acks are missing it asks to be woken every
// 10 ms and counts the ticks.
type echoProto struct {
	self    broadcast.NodeID
	n       int
	seq     uint64
	pending map[uint64]*echoPending
	now     time.Duration
	ticks   int
	rd      broadcast.Ready
}

type echoPending struct {
	payload bufpool.Buf
	acks    map[broadcast.NodeID]bool
}

const (
	echoData broadcast.MsgType = 1
	echoAck  broadcast.MsgType = 2
)

func newEcho(self broadcast.NodeID, n int) *echoProto {
	return &echoProto{self: self, n: n, pending: map[uint64]*echoPending{}}
}

func (e *echoProto) Submit(p bufpool.Buf) error {
	e.seq++
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: echoData,
		Instance: broadcast.Instance{Origin: e.self, Seq: e.seq}}}
	d := broadcast.DigestOf(p)
	e.pending[e.seq] = &echoPending{payload: p.Retain(), acks: map[broadcast.NodeID]bool{}}
	m.SetPayload(p, d)
	e.rd.Messages = append(e.rd.Messages, broadcast.Outbound{To: broadcast.Everyone, Msg: m})
	return nil
}

func (e *echoProto) Step(from broadcast.NodeID, m *broadcast.Message) error {
	switch m.Type {
	case echoData:
		if m.Flags&broadcast.HasPayload == 0 || broadcast.DigestOf(m.Payload) != m.Digest {
			return broadcast.Reject(broadcast.ReasonDigestMismatch, "echo payload from %v", from)
		}
		e.rd.Deliveries = append(e.rd.Deliveries, broadcast.Delivery{Instance: m.Instance, Digest: m.Digest, Payload: m.Payload.Retain()})
		ack := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: echoAck,
			Instance: m.Instance, Digest: m.Digest, PayloadLen: m.PayloadLen}}
		e.rd.Messages = append(e.rd.Messages, broadcast.Outbound{To: from, Msg: ack})
	case echoAck:
		p := e.pending[m.Instance.Seq]
		if m.Instance.Origin != e.self || p == nil {
			return nil
		}
		p.acks[from] = true
		if len(p.acks) == e.n-1 {
			e.rd.Deliveries = append(e.rd.Deliveries, broadcast.Delivery{Instance: m.Instance, Digest: m.Digest, Payload: p.payload})
			delete(e.pending, m.Instance.Seq)
		}
	default:
		return broadcast.Reject(broadcast.ReasonType, "echo type %d", m.Type)
	}
	return nil
}

func (e *echoProto) Tick(now time.Duration) {
	if len(e.pending) > 0 && now >= e.rd.NextWake {
		e.ticks++
	}
	e.now = now
}

func (e *echoProto) Ready() broadcast.Ready {
	rd := e.rd
	e.rd = broadcast.Ready{}
	if len(e.pending) > 0 {
		rd.NextWake = e.now + 10*time.Millisecond
		e.rd.NextWake = rd.NextWake
	}
	return rd
}

// release drops the payloads still pending.
func (e *echoProto) release() {
	for _, p := range e.pending {
		p.payload.Release()
	}
	e.pending = nil
}
