package characterize

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/onecast/onecast/bench/dupscope"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// TypeDup is one message type's share of what correct nodes received,
// split by why each copy of an application value arrived.
type TypeDup struct {
	Type string
	// Messages and PayloadBytes are every message of the type received by a
	// correct node and the payload bytes they carried; PayloadMessages
	// those that carried payload bytes.
	Messages, PayloadMessages int
	PayloadBytes              int64
	// Value bytes found in the payloads (the values the application
	// submitted, located by content even inside a batch): FirstBytes are a
	// value's first copy at a node (the copy it needs); WithinBytes copies
	// beyond the first in the same message type (within a round);
	// BetweenBytes the first copy in a later type (between rounds). At a
	// value's origin there is no first copy: it holds the value already.
	FirstBytes, WithinBytes, BetweenBytes int64
	// OtherBytes are payload bytes that are no submitted value (batch
	// framing, replies).
	OtherBytes int64
}

// reception is one message a node's protocol was handed.
type reception struct {
	to      broadcast.NodeID
	typ     broadcast.MsgType
	round   uint32
	content [32]byte
	payload int
}

// recorder collects, for one simulator run, what every node submitted and
// received, by content. The simulator builds the nodes with recorded
// Spec.New; the wrapper passes everything through unchanged.
type recorder struct {
	mu       sync.Mutex
	recs     []reception
	contents map[[32]byte][]byte
	held     []reception // submits: to = the submitting node
	// roundOf, when set, says which round a message belongs to (default:
	// its header's Round).
	roundOf func(n int, m *broadcast.Message) uint32
}

func newRecorder() *recorder { return &recorder{contents: map[[32]byte][]byte{}} }

func (r *recorder) content(p bufpool.Buf) [32]byte {
	b := p.Bytes()
	h := sha256.Sum256(b)
	if _, ok := r.contents[h]; !ok {
		r.contents[h] = append([]byte(nil), b...)
	}
	return h
}

// spec wraps s so that every instance records into r.
func (r *recorder) spec(s broadcast.Spec) broadcast.Spec {
	inner := s.New
	s.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		proto, err := inner(p, env)
		if err != nil {
			return nil, err
		}
		return &recorded{Protocol: proto, self: p.Self, n: p.N, r: r}, nil
	}
	return s
}

// recorded is a protocol instance whose inputs are recorded.
type recorded struct {
	broadcast.Protocol
	self broadcast.NodeID
	n    int
	r    *recorder
}

func (w *recorded) Step(from broadcast.NodeID, m *broadcast.Message) error {
	w.r.mu.Lock()
	rec := reception{to: w.self, typ: m.Type, round: uint32(m.Round), payload: m.Payload.Len()}
	if w.r.roundOf != nil {
		rec.round = w.r.roundOf(w.n, m)
	}
	if rec.payload > 0 {
		rec.content = w.r.content(m.Payload)
	}
	w.r.recs = append(w.r.recs, rec)
	w.r.mu.Unlock()
	return w.Protocol.Step(from, m)
}

func (w *recorded) Submit(p bufpool.Buf) error {
	w.r.mu.Lock()
	if p.Len() > 0 {
		w.r.held = append(w.r.held, reception{to: w.self, content: w.r.content(p), payload: p.Len()})
	}
	w.r.mu.Unlock()
	return w.Protocol.Submit(p)
}

func (w *recorded) Tick(now time.Duration) { w.Protocol.Tick(now) }
func (w *recorded) Ready() broadcast.Ready { return w.Protocol.Ready() }

// Close closes the inner protocol when it has a Close.
func (w *recorded) Close() {
	if c, ok := w.Protocol.(interface{ Close() }); ok {
		c.Close()
	}
}

// classify splits the receptions of correct nodes by message type and, for
// each submitted value found in a payload, by first / within-round /
// between-round copy. byRound makes the header's round part of the type
// (Dolev–Strong, whose one message type "relay" runs f+1 rounds).
func (r *recorder) classify(typeName func(broadcast.MsgType) string, byzantine map[broadcast.NodeID]bool, byRound bool) ([]TypeDup, error) {
	// The values are what the nodes submitted.
	var values [][]byte
	valueOf := map[[32]byte]int{}
	for _, h := range r.held {
		if _, ok := valueOf[h.content]; !ok {
			valueOf[h.content] = len(values)
			values = append(values, r.contents[h.content])
		}
	}
	// Which values each distinct payload contains.
	inside := map[[32]byte][]int{}
	if len(values) > 0 {
		m, err := dupscope.NewMatcher(values)
		if err != nil {
			return nil, err
		}
		for h, b := range r.contents {
			m.Copies(b, func(v, _ int) { inside[h] = append(inside[h], v) })
		}
	}
	type key struct {
		to    broadcast.NodeID
		value int
	}
	// A round is a message type, or (byRound) a type and a round number.
	type round struct {
		typ broadcast.MsgType
		n   uint32
	}
	seen := map[key]map[round]bool{}
	heldRound := round{typ: 0xEF, n: ^uint32(0)}
	for _, h := range r.held {
		seen[key{h.to, valueOf[h.content]}] = map[round]bool{heldRound: true}
	}
	idx := map[round]int{}
	var out []TypeDup
	for _, rc := range r.recs {
		if byzantine[rc.to] {
			continue
		}
		rd := round{typ: rc.typ}
		name := typeName(rc.typ)
		if byRound {
			rd.n = rc.round
			name = fmt.Sprintf("%s r%d", name, rc.round)
		}
		i, ok := idx[rd]
		if !ok {
			i = len(out)
			idx[rd] = i
			out = append(out, TypeDup{Type: name})
		}
		d := &out[i]
		d.Messages++
		if rc.payload == 0 {
			continue
		}
		d.PayloadMessages++
		d.PayloadBytes += int64(rc.payload)
		var valueBytes int64
		for _, v := range inside[rc.content] {
			n := int64(len(values[v]))
			valueBytes += n
			k := key{rc.to, v}
			types := seen[k]
			switch {
			case types == nil:
				seen[k] = map[round]bool{rd: true}
				d.FirstBytes += n
			case types[rd]:
				d.WithinBytes += n
			default:
				types[rd] = true
				d.BetweenBytes += n
			}
		}
		d.OtherBytes += max(0, int64(rc.payload)-valueBytes)
	}
	return out, nil
}
