package wireadv

import (
	"fmt"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/pbft"
)

// Bounds of the protocol side's memory.
const (
	// maxTargets is how many fetchable digests fetch-flood remembers.
	maxTargets = 1024
	// maxHistory is how many of its own messages replay keeps.
	maxHistory = 256
	// futureBytes is the payload of each future-view PRE-PREPARE.
	futureBytes = 96 << 10
	// futureSpan is how many sequence numbers future-view cycles through:
	// within PBFT's default window (64), and futureSpan × futureBytes
	// exceeds its default FutureQuota (4 MiB).
	futureSpan = 60
	// largeEvery is how often partial-large starts a large broadcast:
	// through the in-order link a peer has one partial message at a time
	// at a receiver, so more would only pile up in its own queue.
	largeEvery = 250 * time.Millisecond
	// futureEvery is how often future-view sends its PRE-PREPAREs (24 MB/s
	// to each peer at one per tick).
	futureEvery = 4 * time.Millisecond
	// tickEvery is the load's clock: injections happen once per tick.
	tickEvery = time.Millisecond
)

// protocol is the Byzantine node's state machine: the behaviour's
// injections, on top of the cluster's protocol when the behaviour needs it.
type protocol struct {
	a      *Adversary
	p      broadcast.Params
	id     broadcast.ProtocolID
	inner  broadcast.Protocol // nil: takes part in nothing
	signer pbft.Signer        // future-view's certificate signer (its own key)
	rnd    rng

	now             time.Duration
	ticked          bool
	startAt, endAt  time.Duration
	announced, done bool
	largeDue        time.Duration // the next large broadcast or future PRE-PREPARE

	targets []broadcast.Header // fetchable digests, a ring
	tnext   int
	view    uint32 // highest view seen (PBFT)
	maxSeq  uint64 // highest sequence number seen (PBFT)
	fseq    uint64 // future-view's counter

	history []broadcast.Message // its own messages, deep copies, a ring
	hnext   int

	out []broadcast.Outbound
	// template is random content that distinct copies: a counter in its
	// first bytes makes each payload distinct without generating it anew.
	template []byte
	copies   uint64
}

func (a *Adversary) newProtocol(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
	pr := &protocol{a: a, p: p, id: a.opts.Inner.ID, rnd: rng(a.opts.Seed | 1)}
	if a.opts.Behaviour.runsProtocol() {
		in, err := a.opts.Inner.New(p, env)
		if err != nil {
			return nil, fmt.Errorf("wireadv: the cluster's protocol: %w", err)
		}
		pr.inner = in
	}
	if a.opts.Behaviour == FutureView {
		s, err := pbft.NewEd25519Signer(env.Keys)
		if err != nil {
			return nil, fmt.Errorf("wireadv: %s: %w", FutureView, err)
		}
		pr.signer = s
	}
	return pr, nil
}

// Step records what the behaviour feeds on (digests to fetch, the view)
// and passes the message to the cluster's protocol, if it runs.
func (pr *protocol) Step(from broadcast.NodeID, m *broadcast.Message) error {
	if pr.id == broadcast.ProtoPBFT {
		pr.view = max(pr.view, m.Round)
		if m.Type != pbft.TypeCheckpoint {
			pr.maxSeq = max(pr.maxSeq, m.Instance.Seq)
		}
	}
	if pr.a.opts.Behaviour == FetchFlood && m.Type != broadcast.TypeFetch && m.Type != broadcast.TypePayload {
		pr.record(m)
	}
	if pr.inner != nil {
		return pr.inner.Step(from, m)
	}
	return nil
}

// record remembers m's digest (and, for a PRE-PREPARE, its requests'
// digests) as a FETCH header.
func (pr *protocol) record(m *broadcast.Message) {
	add := func(h broadcast.Header) {
		if len(pr.targets) < maxTargets {
			pr.targets = append(pr.targets, h)
			return
		}
		pr.targets[pr.tnext] = h
		pr.tnext = (pr.tnext + 1) % maxTargets
	}
	if m.Digest.IsZero() {
		return
	}
	if pr.id != broadcast.ProtoPBFT {
		// Bracha answers a FETCH that names the instance, layout and
		// payload length of a candidate it holds.
		add(broadcast.Header{Instance: m.Instance, Round: m.Round, Digest: m.Digest, PayloadLen: m.PayloadLen})
		return
	}
	add(broadcast.Header{Digest: m.Digest})
	if m.Type == pbft.TypePrePrepare {
		if es, err := pbft.PrePrepareEntries(m, pr.p.N); err == nil {
			for _, e := range es {
				add(broadcast.Header{Digest: e.Op})
			}
		}
	}
}

// Tick advances the clock, opens and closes the load window and injects
// this tick's messages.
func (pr *protocol) Tick(now time.Duration) {
	pr.now = now
	if !pr.ticked {
		pr.ticked = true
		pr.startAt = now + pr.a.opts.Delay
		pr.endAt = pr.startAt + pr.a.opts.Duration
	}
	if pr.inner != nil {
		pr.inner.Tick(now)
	}
	active := now >= pr.startAt && now < pr.endAt && !pr.done
	pr.a.active.Store(active)
	if !active {
		if now >= pr.endAt && !pr.done {
			pr.done = true
			pr.a.opts.Logger.Info("wireadv: load ended", "behaviour", pr.a.opts.Behaviour, "stats", pr.a.Stats())
		}
		return
	}
	if !pr.announced {
		pr.announced = true
		pr.a.opts.Logger.Info("wireadv: load started", "behaviour", pr.a.opts.Behaviour, "node", pr.p.Self)
	}
	pr.inject()
}

func (pr *protocol) inject() {
	a := pr.a
	if a.opts.Backlog != nil && a.opts.Backlog() > a.opts.MaxBacklog {
		a.paused.Add(1)
		return // the link's queues are full: the peers take no more now
	}
	switch a.opts.Behaviour {
	case FetchFlood:
		if len(pr.targets) == 0 {
			return
		}
		for range a.take(a.opts.PerTick, &a.injected) {
			h := pr.targets[int(pr.rnd.next()%uint64(len(pr.targets)))]
			h.Protocol, h.Type, h.Sender = pr.id, broadcast.TypeFetch, pr.p.Self
			if pr.id == broadcast.ProtoPBFT {
				h.Round = pr.view
			}
			pr.out = append(pr.out, broadcast.Outbound{To: broadcast.Everyone, Msg: broadcast.Message{Header: h}})
		}
	case HeldSpray:
		for range a.take(a.opts.PerTick, &a.injected) {
			_ = pr.inner.Submit(bufpool.Wrap(pr.distinct(a.opts.SprayBytes)))
		}
	case PartialLarge:
		if pr.now < pr.largeDue {
			return
		}
		pr.largeDue = pr.now + largeEvery
		for range a.take(a.opts.PerTick, &a.injected) {
			_ = pr.inner.Submit(bufpool.Wrap(pr.distinct(a.opts.LargeBytes)))
		}
	case FutureView:
		if pr.now < pr.largeDue {
			return
		}
		pr.largeDue = pr.now + futureEvery
		for range a.take(a.opts.PerTick, &a.injected) {
			pr.out = append(pr.out, broadcast.Outbound{To: broadcast.Everyone, Msg: pr.futurePrePrepare()})
		}
	case Replay:
		if len(pr.history) == 0 {
			return
		}
		for range a.take(a.opts.PerTick, &a.injected) {
			old := pr.history[int(pr.rnd.next()%uint64(len(pr.history)))]
			m := broadcast.Message{Header: old.Header, Body: old.Body}
			if old.Flags&broadcast.HasPayload != 0 {
				m.Payload = old.Payload.Retain()
			}
			pr.out = append(pr.out, broadcast.Outbound{To: broadcast.Everyone, Msg: m})
		}
	}
}

// futurePrePrepare forges a PRE-PREPARE, signed with the node's own key,
// for a view ahead of the cluster's in which this node is the primary,
// ordering one request whose bytes it carries.
func (pr *protocol) futurePrePrepare() broadcast.Message {
	n := uint32(pr.p.N)
	self := uint32(pr.p.Self)
	base := pr.view + 1
	v := base + (self+n-base%n)%n         // the first view ≥ base this node leads
	v += n * uint32(pr.fseq/futureSpan%4) // each pass over the span a newer view, which replaces the last
	seq := pr.maxSeq + 1 + pr.fseq%futureSpan
	pr.fseq++
	payload := pr.distinct(futureBytes)
	e := pbft.Entry{Client: pr.p.Self, Timestamp: pr.fseq, Op: broadcast.DigestOfBytes(payload), Len: uint32(len(payload))}
	m := pbft.ForgePrePrepare(v, seq, []pbft.Entry{e}, pr.signer)
	m.Sender = pr.p.Self
	m.Payload = bufpool.Wrap(payload)
	m.Flags |= broadcast.HasPayload
	m.PayloadLen = uint32(len(payload))
	return m
}

// distinct returns n bytes no earlier call returned: the template with
// a counter in front.
func (pr *protocol) distinct(n int) []byte {
	if len(pr.template) < n {
		pr.template = pr.rnd.bytes(n)
	}
	b := make([]byte, n)
	copy(b, pr.template)
	pr.copies++
	// The counter has its top bit set: never the number of a bench payload
	// (the bench reads the first 8 bytes as one), so the bench does not
	// count the adversary's payloads as its own.
	for i := 0; i < 8 && i < n; i++ {
		b[i] = byte((pr.copies | 1<<63) >> (8 * i))
	}
	if n > 8 {
		b[8] = byte(pr.rnd.next()) // and apart from the template's own first bytes
	}
	return b
}

// Submit passes an application payload to the cluster's protocol, or
// drops it.
func (pr *protocol) Submit(p bufpool.Buf) error {
	if pr.inner != nil {
		return pr.inner.Submit(p)
	}
	p.Release()
	return nil
}

// Ready returns the cluster protocol's work and the injections.
func (pr *protocol) Ready() broadcast.Ready {
	var rd broadcast.Ready
	if pr.inner != nil {
		rd = pr.inner.Ready()
		if pr.a.opts.Behaviour == Replay {
			for i := range rd.Messages {
				pr.remember(&rd.Messages[i].Msg)
			}
		}
	}
	if len(pr.out) > 0 {
		msgs := make([]broadcast.Outbound, 0, len(rd.Messages)+len(pr.out))
		msgs = append(append(msgs, rd.Messages...), pr.out...)
		rd.Messages = msgs
		pr.out = pr.out[:0]
	}
	if pr.ticked && pr.now < pr.endAt && !pr.done {
		wake := max(pr.now, pr.startAt) + tickEvery
		if rd.NextWake == 0 || wake < rd.NextWake {
			rd.NextWake = wake
		}
	}
	return rd
}

// remember keeps a deep copy of one of its own messages for replay.
func (pr *protocol) remember(m *broadcast.Message) {
	c := broadcast.Message{Header: m.Header, Body: append([]byte(nil), m.Body...)}
	if m.Flags&broadcast.HasPayload != 0 {
		c.Payload = bufpool.Wrap(flatten(m.Payload))
	}
	if len(pr.history) < maxHistory {
		pr.history = append(pr.history, c)
		return
	}
	pr.history[pr.hnext].Payload.Release()
	pr.history[pr.hnext] = c
	pr.hnext = (pr.hnext + 1) % maxHistory
}

// Close releases the cluster protocol's resources and the replay history.
func (pr *protocol) Close() {
	if cl, ok := pr.inner.(interface{ Close() }); ok {
		cl.Close()
	}
	for i := range pr.history {
		pr.history[i].Payload.Release()
	}
	pr.history = nil
	pr.a.active.Store(false)
}

// flatten copies b's bytes into one slice.
func flatten(b bufpool.Buf) []byte {
	out := make([]byte, 0, b.Len())
	for seg := range b.Segments() {
		out = append(out, seg...)
	}
	return out
}

// rng is a xorshift64 generator: content that needs to be distinct, not
// secret.
type rng uint64

func (r *rng) next() uint64 {
	x := uint64(*r)
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*r = rng(x)
	return x
}

// bytes returns n pseudo-random bytes.
func (r *rng) bytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		x := r.next()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return b
}
