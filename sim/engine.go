package sim

import (
	"container/heap"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

type evKind uint8

const (
	evMsg    evKind = iota + 1 // a message arrives at `to`
	evTick                     // node `to`'s core wants a Tick at `at`
	evSubmit                   // the application at `to` submits a payload
)

// event is one entry of the queue. Events are recycled through a free list;
// a message event owns one reference to msg.Payload and its own copies of
// Body and Auth (body and auth keep their capacity across reuse).
type event struct {
	at   time.Duration
	seq  uint64
	kind evKind
	core uint8
	from broadcast.NodeID
	to   broadcast.NodeID
	msg  broadcast.Message
	body []byte
	auth []byte
	idx  int           // submission index, for evSubmit
	wake time.Duration // the NextWake an evTick answers
}

// eventQueue is a container/heap of events ordered by (at, seq): the seq
// makes the order total, so that equal times never depend on the heap's
// internals.
type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// simNode is one node of the run: one core, or two for twins.
type simNode struct {
	id      broadcast.NodeID
	correct bool
	name    string // behaviour name, "" when correct
	cores   []broadcast.Protocol
	stores  []*broadcast.PayloadStore
	wake    []time.Duration
	metrics broadcast.Metrics
	byz     Behaviour
	inbound InboundFilter
	twins   Twinned
	ctx     Ctx
}

// partition is one episode: side[i] says which part node i is in; a node
// on sideAll is in every part (a twin whose cores cut their links
// themselves).
type partition struct {
	from, to time.Duration
	side     []uint8
}

const sideAll = 255

type link struct {
	busy time.Duration // the link is serializing until then
}

// engine is one run's state.
type engine struct {
	cfg   Config
	seed  uint64
	rng   *rand.Rand
	now   time.Duration
	seq   uint64
	queue eventQueue
	free  []*event
	nodes []*simNode
	links []link
	parts []partition
	sched *scheduler      // nil without a Schedule
	stop  <-chan struct{} // closed: the run is abandoned (a cancelled sweep)

	checkers []Checker
	res      *Result
	trace    io.Writer
	hash     uint64
	subs     []submission
}

type submission struct {
	node broadcast.NodeID
	k    int
}

func (e *engine) newEvent(kind evKind, at time.Duration) *event {
	var ev *event
	if n := len(e.free); n > 0 {
		ev = e.free[n-1]
		e.free = e.free[:n-1]
	} else {
		ev = &event{}
	}
	ev.kind, ev.at, ev.seq = kind, at, e.seq
	e.seq++
	return ev
}

func (e *engine) push(ev *event) { heap.Push(&e.queue, ev) }

func (e *engine) recycle(ev *event) {
	body, auth := ev.body[:0], ev.auth[:0]
	*ev = event{body: body, auth: auth}
	e.free = append(e.free, ev)
}

func (e *engine) wrap(data []byte) bufpool.Buf {
	if e.cfg.Pool != nil {
		return e.cfg.Pool.Wrap(data)
	}
	return bufpool.Wrap(data)
}

// latency draws one propagation delay.
func (e *engine) latency() time.Duration {
	nw := &e.cfg.Net
	d := nw.MinLatency
	if nw.Jitter > 0 {
		x := e.rng.ExpFloat64()
		if x > 20 {
			x = 20
		}
		d += time.Duration(x * float64(nw.Jitter))
	}
	return d
}

// send puts m from `from` to `to` on the network, after notBefore. It
// borrows m: the event takes its own payload reference and copies body and
// authenticator. The sender field is always set to `from` (links are
// authentic).
func (e *engine) send(from, to broadcast.NodeID, m *broadcast.Message, notBefore time.Duration) {
	n := e.cfg.N
	if int(to) >= n || to == from {
		return
	}
	src := e.nodes[from]
	m.Sender = from
	src.metrics.CountSent(m)
	nw := &e.cfg.Net
	size := m.WireLen()
	e.res.WireBytes += uint64(size)

	l := &e.links[int(from)*n+int(to)]
	var ser time.Duration
	if nw.Bandwidth > 0 {
		ser = time.Duration(int64(size) * int64(time.Second) / nw.Bandwidth)
	}
	start := max(e.now, l.busy)
	l.busy = start + ser
	at := l.busy + e.latency()
	if nw.Loss > 0 {
		for tries := 0; tries < 16 && e.rng.Float64() < nw.Loss; tries++ {
			// The reliable link notices the loss and retransmits.
			l.busy += ser
			at += nw.RTO + ser
			e.res.Retransmits++
			e.res.WireBytes += uint64(size)
		}
	}
	if nw.Reorder > 0 && e.rng.Float64() < nw.Reorder {
		at += time.Duration(e.rng.Int64N(int64(10*(nw.MinLatency+nw.Jitter)) + 1))
		e.res.Reordered++
	}
	at = e.heldByPartitions(from, to, at)
	if e.sched != nil {
		at = e.sched.hold(e, from, to, m, at)
	}
	if src.correct {
		at = min(at, max(e.now, nw.GST)+nw.Delta)
	}
	at = max(at, notBefore, e.now)
	e.enqueueMsg(from, to, m, at)
	if nw.Duplicate > 0 && e.rng.Float64() < nw.Duplicate {
		e.res.Duplicated++
		e.res.WireBytes += uint64(size)
		dup := at + e.latency()
		if src.correct {
			dup = min(dup, max(e.now, nw.GST)+nw.Delta)
		}
		e.enqueueMsg(from, to, m, dup)
	}
}

func (e *engine) enqueueMsg(from, to broadcast.NodeID, m *broadcast.Message, at time.Duration) {
	ev := e.newEvent(evMsg, at)
	ev.from, ev.to = from, to
	ev.msg.Header = m.Header
	ev.body = append(ev.body[:0], m.Body...)
	ev.auth = append(ev.auth[:0], m.Auth...)
	if len(m.Body) > 0 {
		ev.msg.Body = ev.body
	}
	if len(m.Auth) > 0 {
		ev.msg.Auth = ev.auth
	}
	ev.msg.Payload = m.Payload.Retain()
	e.push(ev)
}

// heldByPartitions moves an arrival time past every partition episode that
// separates from and to at that time.
func (e *engine) heldByPartitions(from, to broadcast.NodeID, at time.Duration) time.Duration {
	for moved := true; moved; {
		moved = false
		for i := range e.parts {
			p := &e.parts[i]
			if at >= p.from && at < p.to && p.side[from] != p.side[to] && p.side[from] != sideAll && p.side[to] != sideAll {
				at = p.to + e.latency()
				moved = true
			}
		}
	}
	return at
}

// flush carries out what core `core` of nd asks for.
func (e *engine) flush(nd *simNode, core int) {
	p := nd.cores[core]
	rd := p.Ready()
	for i := range rd.Messages {
		out := &rd.Messages[i]
		out.Msg.Sender = nd.id
		if out.To == broadcast.Everyone {
			for j := range e.cfg.N {
				if broadcast.NodeID(j) != nd.id {
					e.emit(nd, core, broadcast.NodeID(j), &out.Msg)
				}
			}
		} else {
			e.emit(nd, core, out.To, &out.Msg)
		}
		out.Msg.Payload.Release()
	}
	for i := range rd.Deliveries {
		d := &rd.Deliveries[i]
		if nd.correct {
			nd.metrics.CountDelivery(d.Payload.Len(), d.Instance.Origin != nd.id)
			for _, c := range e.checkers {
				c.Delivered(nd.id, d, e.now)
			}
			e.res.Deliveries++
			e.hashDelivery(nd.id, d)
		}
		if e.trace != nil {
			fmt.Fprintf(e.trace, "%12v deliver %v core%d %v[%d] %v (%d B)\n", e.now, nd.id, core, d.Instance, d.Index, d.Digest, d.Payload.Len())
		}
		d.Payload.Release()
	}
	e.setWake(nd, core, rd.NextWake)
}

func (e *engine) setWake(nd *simNode, core int, w time.Duration) {
	if w == nd.wake[core] {
		return
	}
	nd.wake[core] = w
	if w == 0 {
		return
	}
	ev := e.newEvent(evTick, max(w, e.now))
	ev.to, ev.core, ev.wake = nd.id, uint8(core), w
	e.push(ev)
}

func (e *engine) emit(nd *simNode, core int, to broadcast.NodeID, m *broadcast.Message) {
	if nd.byz != nil {
		nd.ctx.core = core
		nd.byz.Outbound(&nd.ctx, to, m)
		return
	}
	e.send(nd.id, to, m, 0)
}

func (e *engine) handle(ev *event) {
	nd := e.nodes[ev.to]
	switch ev.kind {
	case evMsg:
		m := &ev.msg
		m.Sender = ev.from
		e.res.Messages++
		e.hashMsg(ev)
		if e.trace != nil {
			fmt.Fprintf(e.trace, "%12v %v→%v %s %v r%d %v flags=%d %dB\n", e.now, ev.from, ev.to, e.typeName(m.Type), m.Instance, m.Round, m.Digest, m.Flags, m.Payload.Len())
		}
		nd.metrics.CountReceived(m)
		core := 0
		if nd.twins != nil {
			core = nd.twins.Route(ev.from)
		}
		if nd.inbound == nil || nd.inbound.Inbound(&nd.ctx, ev.from, m) {
			if err := nd.cores[core].Step(ev.from, m); err != nil {
				nd.metrics.Rejects.Count(err)
				e.res.Rejected++
			}
			e.flush(nd, core)
		}
		m.Payload.Release()
	case evTick:
		c := int(ev.core)
		if nd.wake[c] != ev.wake {
			return // superseded
		}
		nd.wake[c] = 0
		nd.cores[c].Tick(e.now)
		e.flush(nd, c)
	case evSubmit:
		e.submit(nd, ev.idx)
	}
}

func (e *engine) typeName(t broadcast.MsgType) string {
	if e.cfg.Spec.TypeName != nil {
		return e.cfg.Spec.TypeName(t)
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// payloadBytes makes the k-th payload of node o: a header naming the run,
// origin and index, then bytes from the run's RNG. variant > 0 gives a
// different payload for the same slot (a twin's).
func (e *engine) payloadBytes(o broadcast.NodeID, k, variant int) []byte {
	b := make([]byte, max(e.cfg.Workload.PayloadSize, 24))
	put := func(off int, v uint64) {
		for i := range 8 {
			b[off+i] = byte(v >> (8 * i))
		}
	}
	put(0, e.seed)
	put(8, uint64(o)<<32|uint64(k))
	put(16, uint64(variant))
	for i := 24; i < len(b); i += 8 {
		v := e.rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b[:e.cfg.Workload.PayloadSize:e.cfg.Workload.PayloadSize]
}

func (e *engine) submit(nd *simNode, k int) {
	for c := range nd.cores {
		data := e.payloadBytes(nd.id, k, c)
		if nd.correct {
			d := broadcast.DigestOfBytes(data)
			for _, ch := range e.checkers {
				ch.Submitted(nd.id, d, e.now)
			}
		}
		if e.trace != nil {
			fmt.Fprintf(e.trace, "%12v submit %v core%d #%d %v\n", e.now, nd.id, c, k, broadcast.DigestOfBytes(data))
		}
		if err := nd.cores[c].Submit(e.wrap(data)); err != nil {
			e.res.SubmitErrors++
			if nd.correct {
				e.res.Violations = append(e.res.Violations, Violation{"submit", nd.id, fmt.Sprintf("correct node refused payload #%d: %v", k, err)})
			}
		}
		e.flush(nd, c)
	}
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func (e *engine) mix(v uint64) {
	h := (e.hash ^ v) * fnvPrime
	e.hash = h ^ h>>29
}

func (e *engine) mixDigest(d *broadcast.Digest) {
	e.mix(uint64(d[0]) | uint64(d[1])<<8 | uint64(d[2])<<16 | uint64(d[3])<<24 | uint64(d[4])<<32 | uint64(d[5])<<40 | uint64(d[6])<<48 | uint64(d[7])<<56)
}

func (e *engine) hashMsg(ev *event) {
	m := &ev.msg
	e.mix(uint64(ev.at))
	e.mix(uint64(ev.from)<<32 | uint64(ev.to))
	e.mix(uint64(m.Type)<<56 | uint64(m.Flags)<<48 | uint64(m.Round))
	e.mix(uint64(m.Instance.Origin)<<48 ^ m.Instance.Seq)
	e.mix(uint64(m.Payload.Len()))
	e.mixDigest(&m.Digest)
}

func (e *engine) hashDelivery(node broadcast.NodeID, d *broadcast.Delivery) {
	e.mix(uint64(e.now))
	e.mix(1<<63 | uint64(node))
	e.mix(uint64(d.Instance.Origin)<<48 ^ d.Instance.Seq ^ uint64(d.Index)<<40)
	e.mixDigest(&d.Digest)
}
