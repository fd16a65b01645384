package broadcast

import (
	"sort"
	"sync/atomic"
)

// typeSlots maps a message type to a counter slot: protocol types 0–31, the
// shared types 0xF0–0xFF, and one slot for anything else.
const typeSlots = 32 + 16 + 1

func slotOf(t MsgType) int {
	switch {
	case t < 32:
		return int(t)
	case t >= 0xF0:
		return 32 + int(t-0xF0)
	}
	return typeSlots - 1
}

func typeOfSlot(s int) MsgType {
	switch {
	case s < 32:
		return MsgType(s)
	case s < 48:
		return MsgType(0xF0 + s - 32)
	}
	return 0xEF
}

// Traffic counts one direction of one message type.
type Traffic struct {
	Messages     atomic.Uint64
	HeaderBytes  atomic.Uint64 // header, body and authenticator
	PayloadBytes atomic.Uint64
}

func (t *Traffic) add(m *Message) {
	t.Messages.Add(1)
	t.HeaderBytes.Add(uint64(m.PrefixLen()))
	t.PayloadBytes.Add(uint64(m.Payload.Len()))
}

// Metrics are one node's application-level counters: traffic per protocol
// and message type, deliveries, rejections, and user-space payload copies.
// The zero value is ready; it is safe for concurrent use.
//
// The headline figures derive from them: the payload duplication factor is
// payload bytes received ÷ payload bytes delivered from other nodes, and the
// wire factor is all message bytes received ÷ the same. The physical limit of
// both is 1.0.
type Metrics struct {
	sent, recv [numProtocols][typeSlots]Traffic

	Deliveries     atomic.Uint64
	DeliveredBytes atomic.Uint64
	// RemoteDeliveredBytes counts payload bytes delivered whose origin is
	// another node: the denominator of the duplication factors.
	RemoteDeliveredBytes atomic.Uint64
	// Copies and CopiedBytes count user-space copies of payload bytes that
	// the transports and drivers make (bufpool counts its own).
	Copies      atomic.Uint64
	CopiedBytes atomic.Uint64
	// StrippedBytes counts payload bytes removed before reaching user space
	// (by the kernel's dedup program).
	StrippedBytes atomic.Uint64

	Rejects RejectCounters
}

// CountSent records a message sent (once per destination).
func (mt *Metrics) CountSent(m *Message) {
	mt.sent[m.Protocol%numProtocols][slotOf(m.Type)].add(m)
}

// CountReceived records a message received.
func (mt *Metrics) CountReceived(m *Message) {
	mt.recv[m.Protocol%numProtocols][slotOf(m.Type)].add(m)
}

// CountDelivery records a delivery of n payload bytes; remote says whether
// the payload's origin is another node.
func (mt *Metrics) CountDelivery(n int, remote bool) {
	mt.Deliveries.Add(1)
	mt.DeliveredBytes.Add(uint64(n))
	if remote {
		mt.RemoteDeliveredBytes.Add(uint64(n))
	}
}

// CountCopy records a user-space copy of n payload bytes.
func (mt *Metrics) CountCopy(n int) {
	mt.Copies.Add(1)
	mt.CopiedBytes.Add(uint64(n))
}

// TypeTraffic is one row of a metrics snapshot.
type TypeTraffic struct {
	Protocol                                   ProtocolID
	Type                                       MsgType
	SentMessages, SentHeaderBytes, SentPayload uint64
	RecvMessages, RecvHeaderBytes, RecvPayload uint64
}

// Snapshot is a plain copy of Metrics.
type Snapshot struct {
	Types                []TypeTraffic // non-zero rows, by protocol then type
	Deliveries           uint64
	DeliveredBytes       uint64
	RemoteDeliveredBytes uint64
	Copies, CopiedBytes  uint64
	StrippedBytes        uint64
	Rejects              map[string]uint64
}

// Snapshot copies the counters.
func (mt *Metrics) Snapshot() Snapshot {
	s := Snapshot{
		Deliveries: mt.Deliveries.Load(), DeliveredBytes: mt.DeliveredBytes.Load(),
		RemoteDeliveredBytes: mt.RemoteDeliveredBytes.Load(),
		Copies:               mt.Copies.Load(), CopiedBytes: mt.CopiedBytes.Load(),
		StrippedBytes: mt.StrippedBytes.Load(),
		Rejects:       mt.Rejects.Snapshot(),
	}
	for p := range numProtocols {
		for slot := range typeSlots {
			snd, rcv := &mt.sent[p][slot], &mt.recv[p][slot]
			row := TypeTraffic{
				Protocol: ProtocolID(p), Type: typeOfSlot(slot),
				SentMessages: snd.Messages.Load(), SentHeaderBytes: snd.HeaderBytes.Load(), SentPayload: snd.PayloadBytes.Load(),
				RecvMessages: rcv.Messages.Load(), RecvHeaderBytes: rcv.HeaderBytes.Load(), RecvPayload: rcv.PayloadBytes.Load(),
			}
			if row.SentMessages+row.RecvMessages > 0 {
				s.Types = append(s.Types, row)
			}
		}
	}
	sort.Slice(s.Types, func(i, j int) bool {
		if s.Types[i].Protocol != s.Types[j].Protocol {
			return s.Types[i].Protocol < s.Types[j].Protocol
		}
		return s.Types[i].Type < s.Types[j].Type
	})
	return s
}

// Totals sums the rows of a snapshot.
func (s Snapshot) Totals() TypeTraffic {
	var t TypeTraffic
	for _, r := range s.Types {
		t.SentMessages += r.SentMessages
		t.SentHeaderBytes += r.SentHeaderBytes
		t.SentPayload += r.SentPayload
		t.RecvMessages += r.RecvMessages
		t.RecvHeaderBytes += r.RecvHeaderBytes
		t.RecvPayload += r.RecvPayload
	}
	return t
}

// PayloadDupFactor is payload bytes received ÷ payload bytes delivered from
// other nodes; 0 when nothing was delivered.
func (s Snapshot) PayloadDupFactor() float64 {
	if s.RemoteDeliveredBytes == 0 {
		return 0
	}
	return float64(s.Totals().RecvPayload) / float64(s.RemoteDeliveredBytes)
}

// WireFactor is all message bytes received ÷ payload bytes delivered from
// other nodes; 0 when nothing was delivered.
func (s Snapshot) WireFactor() float64 {
	if s.RemoteDeliveredBytes == 0 {
		return 0
	}
	t := s.Totals()
	return float64(t.RecvHeaderBytes+t.RecvPayload) / float64(s.RemoteDeliveredBytes)
}

// Add accumulates another snapshot into s (for cluster-wide sums).
func (s *Snapshot) Add(o Snapshot) {
	idx := map[[2]uint8]int{}
	for i, r := range s.Types {
		idx[[2]uint8{uint8(r.Protocol), uint8(r.Type)}] = i
	}
	for _, r := range o.Types {
		k := [2]uint8{uint8(r.Protocol), uint8(r.Type)}
		i, ok := idx[k]
		if !ok {
			s.Types = append(s.Types, TypeTraffic{Protocol: r.Protocol, Type: r.Type})
			i = len(s.Types) - 1
			idx[k] = i
		}
		t := &s.Types[i]
		t.SentMessages += r.SentMessages
		t.SentHeaderBytes += r.SentHeaderBytes
		t.SentPayload += r.SentPayload
		t.RecvMessages += r.RecvMessages
		t.RecvHeaderBytes += r.RecvHeaderBytes
		t.RecvPayload += r.RecvPayload
	}
	s.Deliveries += o.Deliveries
	s.DeliveredBytes += o.DeliveredBytes
	s.RemoteDeliveredBytes += o.RemoteDeliveredBytes
	s.Copies += o.Copies
	s.CopiedBytes += o.CopiedBytes
	s.StrippedBytes += o.StrippedBytes
	if s.Rejects == nil {
		s.Rejects = map[string]uint64{}
	}
	for k, v := range o.Rejects {
		s.Rejects[k] += v
	}
	sort.Slice(s.Types, func(i, j int) bool {
		if s.Types[i].Protocol != s.Types[j].Protocol {
			return s.Types[i].Protocol < s.Types[j].Protocol
		}
		return s.Types[i].Type < s.Types[j].Type
	})
}
