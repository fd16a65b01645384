package bracha

import (
	"errors"
	"fmt"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/broadcast/quorum"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/internal/mutant"
)

// ErrEmptyPayload is returned by Submit for a payload of no bytes.
var ErrEmptyPayload = errors.New("bracha: empty payload")

// Stats are a node's protocol counters (the driver's broadcast.Metrics
// count traffic; these count what the protocol decided).
type Stats struct {
	Broadcasts  uint64 // instances this node originated
	Delivered   uint64 // instances delivered
	Payloads    uint64 // application payloads delivered
	Equivocated uint64 // second SENDs for one instance, ignored
	DupVotes    uint64 // second ECHO or READY from one node, ignored
	Late        uint64 // messages for instances already finished
	Rejected    uint64 // messages refused with an error

	FetchesSent     uint64 // FETCH requests sent
	FetchRetries    uint64 // FETCHes sent after a timeout or a bad answer
	PayloadsFetched uint64 // PAYLOAD answers accepted
	BadPayloads     uint64 // PAYLOAD answers whose bytes missed the digest
	Unsolicited     uint64 // PAYLOAD answers from peers never asked, or not needed
	Served          uint64 // PAYLOAD answers sent
	ServedBytes     uint64 // payload bytes in them
	ServeDenied     uint64 // FETCHes refused by the rate limit or the per-instance limit
	ServeUnknown    uint64 // FETCHes for a payload this node does not hold

	// SendsExpired counts SEND payloads unpinned after Config.SendExpiry
	// without delivery; SendsRefetched the SENDs whose payload was not
	// held when they were processed (cut in the kernel, evicted since) and
	// was fetched from the origin before this node echoed.
	SendsExpired, SendsRefetched uint64

	Live     int // instances tracked now (undelivered or retained)
	Retained int // delivered instances kept to answer FETCH
	Backlog  int // own batches waiting for in-flight room
}

// candidate is one (digest, length, layout) that some message of an
// instance named, with its votes.
type candidate struct {
	digest  broadcast.Digest
	plen    uint32
	layout  uint32
	echoes  int
	readies int
	pinned  bool // this instance holds one pin on digest in the store
}

// instance is the state of one (origin, seq). Its size is bounded: every
// node casts at most one ECHO and one READY, and only the origin's first
// SEND counts, so it has at most 2n+1 candidates.
type instance struct {
	id    broadcast.Instance
	cands []candidate
	// echoVote[j], readyVote[j]: 1 + index of the candidate node j voted
	// for, 0 when j has not voted.
	echoVote, readyVote []int16
	gotSend             bool
	echoed, readied     bool
	delivered           bool
	target              int   // candidate to deliver (2f+1 READYs), or -1
	sendCand            int   // candidate the origin's SEND named, or -1
	sendCharge          int64 // bytes charged to the origin's MaxOriginBytes
	sendPinnedAt        time.Duration

	// FETCH state (requester side).
	fetching      bool    // wants the payload: active, or waiting for a slot
	fetchActive   bool    // holds one of MaxFetching slots
	fetchRounds   int     // rounds over the vouchers completed: the backoff
	asked         []uint8 // per peer: askedRound, askedEver bits
	fetchDeadline time.Duration
	lastAsked     int16 // the peer of the latest FETCH, or -1
	// served[j]: how often peer j was sent this instance's payload.
	served []uint8

	retireAt time.Duration
}

func (in *instance) find(d broadcast.Digest, plen, layout uint32) int {
	for i := range in.cands {
		c := &in.cands[i]
		if c.digest == d && c.plen == plen && c.layout == layout {
			return i
		}
	}
	return -1
}

// originState tracks which of one origin's instances are finished: every
// seq below floor, and those marked in done, a ring of Window bits over
// [floor, floor+Window).
type originState struct {
	floor       uint64
	done        []uint64
	pinnedBytes int64 // payload bytes of SENDs pinned for undelivered instances
}

func (o *originState) isDone(seq uint64, w int) bool {
	if seq < o.floor {
		return true
	}
	if seq-o.floor >= uint64(w) {
		return false
	}
	i := seq % uint64(w)
	return o.done[i/64]&(1<<(i%64)) != 0
}

func (o *originState) markDone(seq uint64, w int) {
	if seq < o.floor || seq >= o.floor+uint64(w) {
		return
	}
	i := seq % uint64(w)
	o.done[i/64] |= 1 << (i % 64)
	for {
		j := o.floor % uint64(w)
		if o.done[j/64]&(1<<(j%64)) == 0 {
			return
		}
		o.done[j/64] &^= 1 << (j % 64)
		o.floor++
	}
}

type sealed struct {
	buf    bufpool.Buf
	digest broadcast.Digest
	layout uint32
}

type bucket struct {
	tokens int64
	last   time.Duration
}

// Node is one node's Bracha reliable broadcast, as a pure state machine
// (broadcast.Protocol). It runs any number of concurrent instances, keyed by
// (origin, sequence). Methods are not safe for concurrent use.
type Node struct {
	cfg               Config
	n, f              int
	self              broadcast.NodeID
	echoQ, ampQ, delQ int
	store             *broadcast.PayloadStore
	ownStore          bool
	now               time.Duration
	closed            bool

	origins []originState
	insts   map[broadcast.Instance]*instance
	free    []*instance

	// Origin side.
	nextSeq      uint64
	inFlight     int
	pending      []bufpool.Buf // payloads of the batch being filled
	pendingSince time.Duration
	backlog      []sealed

	fetching      []*instance // instances that want their payload
	activeFetches int         // of which hold a slot
	retired       []*instance // delivered instances kept for FETCH, oldest first
	retHead       int
	retiredBytes  int64

	serve   []bucket // per peer: the FETCH answer budget
	strikes []uint32 // per peer: FETCHes it failed to answer well

	// chargedSends counts instances with a SEND charge; sendExpiryAt is
	// the earliest time one of them may expire (Config.SendExpiry).
	chargedSends int
	sendExpiryAt time.Duration

	out, outSpare   []broadcast.Outbound
	dels, delsSpare []broadcast.Delivery
	spans           []span

	stats Stats
}

var _ broadcast.Protocol = (*Node)(nil)

// New builds a node from cfg; it returns an error naming the bad field.
func New(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	nd := &Node{
		cfg: cfg, n: cfg.N, f: cfg.F, self: cfg.Self,
		echoQ: quorum.BrachaEcho(cfg.N, cfg.F) - cfg.Mutations.Bit(mutant.BrachaEchoQuorum),
		ampQ:  quorum.BrachaReadyAmplify(cfg.F) - cfg.Mutations.Bit(mutant.BrachaReadyAmplify),
		delQ:  quorum.BrachaDeliver(cfg.F) - cfg.Mutations.Bit(mutant.BrachaDeliverQuorum),
		store: cfg.Store,
		insts: make(map[broadcast.Instance]*instance),
	}
	if cfg.UnsafeEchoQuorum > 0 {
		nd.echoQ = cfg.UnsafeEchoQuorum
	}
	if nd.store == nil {
		nd.store = broadcast.NewPayloadStore(broadcast.StoreConfig{})
		nd.ownStore = true
	}
	words := (cfg.Window + 63) / 64
	nd.origins = make([]originState, cfg.N)
	for i := range nd.origins {
		nd.origins[i].done = make([]uint64, words)
	}
	nd.strikes = make([]uint32, cfg.N)
	nd.serve = make([]bucket, cfg.N)
	for i := range nd.serve {
		nd.serve[i].tokens = cfg.ServeBurst
	}
	return nd, nil
}

// Store returns the node's payload store.
func (nd *Node) Store() *broadcast.PayloadStore { return nd.store }

// Stats returns a snapshot of the node's counters.
func (nd *Node) Stats() Stats {
	s := nd.stats
	s.Live = len(nd.insts)
	s.Retained = len(nd.retired) - nd.retHead
	s.Backlog = len(nd.backlog)
	return s
}

// Broadcast submits one application payload for reliable broadcast; it
// is Submit under the name the API speaks.
func (nd *Node) Broadcast(payload bufpool.Buf) error { return nd.Submit(payload) }

// Submit takes payload's reference and adds it to the batch being filled;
// a full batch (Config.Batch payloads) starts an instance at once. On error
// the reference is released.
func (nd *Node) Submit(payload bufpool.Buf) error {
	switch {
	case nd.closed:
		payload.Release()
		return errors.New("bracha: submit to a closed node")
	case payload.Len() == 0:
		payload.Release()
		return ErrEmptyPayload
	case uint64(payload.Len()) > uint64(nd.cfg.MaxPayload):
		n := payload.Len()
		payload.Release()
		return fmt.Errorf("bracha: payload of %d bytes exceeds MaxPayload %d", n, nd.cfg.MaxPayload)
	}
	if len(nd.pending) == 0 {
		nd.pendingSince = nd.now
	}
	nd.pending = append(nd.pending, payload)
	if len(nd.pending) >= nd.cfg.Batch {
		return nd.Flush()
	}
	return nil
}

// Flush seals the batch being filled, however small, into an instance.
func (nd *Node) Flush() error {
	if len(nd.pending) == 0 {
		return nil
	}
	var s sealed
	if len(nd.pending) == 1 {
		s = sealed{buf: nd.pending[0], layout: LayoutSingle}
	} else {
		b, err := EncodeBatch(nd.cfg.Pool, nd.pending)
		for _, p := range nd.pending {
			p.Release()
		}
		clear(nd.pending)
		nd.pending = nd.pending[:0]
		if err != nil {
			return err
		}
		if uint64(b.Len()) > uint64(nd.cfg.MaxPayload) {
			n := b.Len()
			b.Release()
			return fmt.Errorf("bracha: batch of %d bytes exceeds MaxPayload %d", n, nd.cfg.MaxPayload)
		}
		s = sealed{buf: b, layout: LayoutBatch}
	}
	clear(nd.pending)
	nd.pending = nd.pending[:0]
	s.digest = broadcast.DigestOf(s.buf)
	if nd.inFlight >= nd.cfg.MaxInFlight || len(nd.backlog) > 0 {
		nd.backlog = append(nd.backlog, s)
		return nil
	}
	return nd.start(s)
}

// start runs the origin's part of a new instance: SEND to everyone, and the
// origin's own ECHO. It takes s.buf's reference.
func (nd *Node) start(s sealed) error {
	if err := nd.store.PutOwn(nd.self, s.digest, s.buf); err != nil {
		s.buf.Release()
		return fmt.Errorf("bracha: store own payload: %w", err)
	}
	id := broadcast.Instance{Origin: nd.self, Seq: nd.nextSeq}
	nd.nextSeq++
	in := nd.newInstance(id)
	nd.insts[id] = in
	in.cands = append(in.cands, candidate{digest: s.digest, plen: uint32(s.buf.Len()), layout: s.layout})
	if nd.store.Pin(s.digest) {
		in.cands[0].pinned = true
	}
	in.gotSend = true
	nd.inFlight++
	nd.stats.Broadcasts++

	var m broadcast.Message
	nd.header(&m, TypeSend, in, &in.cands[0])
	m.SetPayload(s.buf, s.digest)
	nd.out = append(nd.out, broadcast.Outbound{To: broadcast.Everyone, Msg: m})
	nd.vote(in, 0, TypeEcho)
	nd.progress(in, 0)
	return nil
}

func (nd *Node) header(m *broadcast.Message, t broadcast.MsgType, in *instance, c *candidate) {
	m.Protocol = broadcast.ProtoBracha
	m.Type = t
	m.Sender = nd.self
	m.Instance = in.id
	m.Round = c.layout
	m.Digest = c.digest
	m.PayloadLen = c.plen
}

// vote sends this node's ECHO or READY for candidate ci and counts it.
func (nd *Node) vote(in *instance, ci int, t broadcast.MsgType) {
	c := &in.cands[ci]
	var m broadcast.Message
	nd.header(&m, t, in, c)
	if nd.cfg.Mode == broadcast.ModeFull && nd.pin(in, ci) {
		if b, ok := nd.store.Get(c.digest); ok {
			m.SetPayload(b, c.digest)
		}
	}
	nd.out = append(nd.out, broadcast.Outbound{To: broadcast.Everyone, Msg: m})
	if t == TypeEcho {
		in.echoed = true
		in.echoVote[nd.self] = int16(ci + 1)
		c.echoes++
	} else {
		in.readied = true
		in.readyVote[nd.self] = int16(ci + 1)
		c.readies++
	}
}

// pin makes instance in hold candidate ci's payload in the store, if the
// store has it. It reports whether the instance holds it.
func (nd *Node) pin(in *instance, ci int) bool {
	c := &in.cands[ci]
	if !c.pinned && nd.store.Pin(c.digest) {
		c.pinned = true
	}
	return c.pinned
}

// progress applies Bracha's thresholds to candidate ci after a vote.
func (nd *Node) progress(in *instance, ci int) {
	c := &in.cands[ci]
	if !in.readied && (c.echoes >= nd.echoQ || c.readies >= nd.ampQ) {
		nd.vote(in, ci, TypeReady)
	}
	if !in.delivered && in.target < 0 && c.readies >= nd.delQ {
		in.target = ci
	}
	if !in.delivered && in.target == ci {
		if nd.pin(in, ci) {
			nd.deliver(in)
		} else {
			nd.startFetch(in)
		}
	}
}

// Step consumes one message from `from`; it borrows m. A bad message
// returns a *broadcast.RejectError and changes nothing.
func (nd *Node) Step(from broadcast.NodeID, m *broadcast.Message) error {
	if err := nd.check(from, m); err != nil {
		nd.stats.Rejected++
		return err
	}
	var err error
	switch m.Type {
	case broadcast.TypeFetch:
		nd.onFetch(from, m)
	case broadcast.TypePayload:
		err = nd.onPayload(from, m)
	default:
		err = nd.onProtocol(from, m)
	}
	if err != nil {
		nd.stats.Rejected++
		nd.cfg.Logger.Debug("bracha: rejected message", "node", nd.self, "from", from, "type", TypeName(m.Type), "instance", m.Instance, "err", err)
	}
	return err
}

// check validates what every message must satisfy, before any state is
// touched.
func (nd *Node) check(from broadcast.NodeID, m *broadcast.Message) error {
	switch {
	case m.Protocol != broadcast.ProtoBracha:
		return broadcast.Reject(broadcast.ReasonProtocol, "bracha got a %v message", m.Protocol)
	case int(from) >= nd.n || from == nd.self:
		return broadcast.Reject(broadcast.ReasonSender, "message from %v to %v in a cluster of %d", from, nd.self, nd.n)
	case m.Sender != from:
		return broadcast.Reject(broadcast.ReasonSender, "header sender %v on a message from %v", m.Sender, from)
	case int(m.Instance.Origin) >= nd.n:
		return broadcast.Reject(broadcast.ReasonSender, "instance origin %v outside the cluster of %d", m.Instance.Origin, nd.n)
	case m.BodyLen != 0 || len(m.Body) != 0:
		return broadcast.Reject(broadcast.ReasonBody, "bracha messages have no body, got %d bytes", len(m.Body))
	case m.Flags&broadcast.Fragment != 0:
		return broadcast.Reject(broadcast.ReasonFlags, "a fragment reached the protocol")
	case m.Round > LayoutBatch:
		return broadcast.Reject(broadcast.ReasonBody, "unknown payload layout %d", m.Round)
	case m.PayloadLen > nd.cfg.MaxPayload:
		return broadcast.Reject(broadcast.ReasonLength, "payload length %d exceeds %d", m.PayloadLen, nd.cfg.MaxPayload)
	case m.Flags&broadcast.HasPayload != 0 && uint64(m.Payload.Len()) != uint64(m.PayloadLen):
		return broadcast.Reject(broadcast.ReasonLength, "%d payload bytes for a payload of %d", m.Payload.Len(), m.PayloadLen)
	case m.Digest.IsZero():
		return broadcast.Reject(broadcast.ReasonBody, "no digest")
	}
	switch m.Type {
	case TypeSend, TypeEcho, TypeReady, broadcast.TypeFetch, broadcast.TypePayload:
		return nil
	}
	return broadcast.Reject(broadcast.ReasonType, "bracha has no message type %d", m.Type)
}

func hasPayload(m *broadcast.Message) bool { return m.Flags&broadcast.HasPayload != 0 }

// lookup returns the live instance id, creating it if create is set. It
// returns nil and no error for an instance already finished, and a
// ReasonQuota rejection for one beyond the origin's window.
func (nd *Node) lookup(id broadcast.Instance, create bool) (*instance, error) {
	o := &nd.origins[id.Origin]
	if o.isDone(id.Seq, nd.cfg.Window) {
		return nil, nil
	}
	if id.Seq-o.floor >= uint64(nd.cfg.Window) {
		return nil, broadcast.Reject(broadcast.ReasonQuota, "instance %v beyond the window [%d, %d)", id, o.floor, o.floor+uint64(nd.cfg.Window))
	}
	in := nd.insts[id]
	if in == nil && create {
		in = nd.newInstance(id)
		nd.insts[id] = in
	}
	return in, nil
}

// onProtocol handles SEND, ECHO and READY. Everything that can refuse the
// message is checked before any state changes.
func (nd *Node) onProtocol(from broadcast.NodeID, m *broadcast.Message) error {
	if m.Type == TypeSend {
		if from != m.Instance.Origin && !nd.cfg.Mutations.Has(mutant.BrachaSendFromAnyone) {
			return broadcast.Reject(broadcast.ReasonSender, "SEND for %v from %v", m.Instance, from)
		}
		if !hasPayload(m) && m.Flags&broadcast.Stripped == 0 {
			return broadcast.Reject(broadcast.ReasonLength, "SEND for %v without payload", m.Instance)
		}
	}
	in, err := nd.lookup(m.Instance, false)
	if err != nil {
		return err
	}
	if in == nil && nd.origins[m.Instance.Origin].isDone(m.Instance.Seq, nd.cfg.Window) || in != nil && in.delivered {
		nd.stats.Late++
		nd.countDup(m)
		return nil
	}
	ci := -1
	if in != nil {
		switch {
		case m.Type == TypeSend && in.gotSend:
			nd.stats.Equivocated++
			nd.countDup(m)
			return nil
		case (m.Type == TypeEcho && in.echoVote[from] != 0 || m.Type == TypeReady && in.readyVote[from] != 0) && !nd.cfg.Mutations.Has(mutant.BrachaDoubleVote):
			nd.stats.DupVotes++
			nd.countDup(m)
			return nil
		}
		ci = in.find(m.Digest, m.PayloadLen, m.Round)
	}
	if o := &nd.origins[m.Instance.Origin]; m.Type == TypeSend && o.pinnedBytes+int64(m.PayloadLen) > nd.cfg.MaxOriginBytes {
		return broadcast.Reject(broadcast.ReasonQuota, "origin %v has %d bytes pinned, SEND of %d more refused", m.Instance.Origin, o.pinnedBytes, m.PayloadLen)
	}
	// Store the payload before counting anything: a payload that misses its
	// digest voids the whole message.
	if hasPayload(m) {
		if ci >= 0 && in.cands[ci].pinned {
			nd.store.CountDuplicate(m.Payload.Len())
		} else if err := nd.put(mutant.BrachaPayloadDigest, from, m.Digest, m.Payload); err != nil {
			return err
		}
	}
	if m.Type == TypeSend && m.Round == LayoutBatch {
		if b, ok := nd.store.Get(m.Digest); ok {
			nd.spans, err = decodeBatch(b, nd.cfg.MaxBatch, nd.spans[:0])
			b.Release()
			if err != nil {
				return err
			}
		}
	}
	if in == nil {
		in, _ = nd.lookup(m.Instance, true)
	}
	if ci < 0 {
		in.cands = append(in.cands, candidate{digest: m.Digest, plen: m.PayloadLen, layout: m.Round})
		ci = len(in.cands) - 1
	}
	c := &in.cands[ci]
	switch m.Type {
	case TypeSend:
		in.gotSend = true
		in.sendCand = ci
		if !nd.echoSend(in) && !c.pinned {
			// Stripped on the way in because the payload was held, and
			// evicted since (or evicted by a quota at once): fetch it from
			// the origin, which just sent it, and echo when it is back.
			nd.stats.SendsRefetched++
			nd.startFetch(in)
		}
	case TypeEcho:
		in.echoVote[from] = int16(ci + 1)
		c.echoes++
	case TypeReady:
		in.readyVote[from] = int16(ci + 1)
		c.readies++
	}
	if ci == in.sendCand && !in.echoed && nd.echoSend(in) && in.fetching && in.target < 0 {
		nd.stopFetch(in) // a vote brought the SEND's payload back
	}
	nd.progress(in, ci)
	return nil
}

// echoSend pins the payload of the candidate the origin's SEND named,
// charges it to the origin, and echoes it, once the payload is held. It
// reports whether the node echoed now.
func (nd *Node) echoSend(in *instance) bool {
	if !in.gotSend || in.echoed || in.sendCand < 0 || in.delivered {
		return false
	}
	c := &in.cands[in.sendCand]
	if !c.pinned && !nd.store.Has(c.digest) {
		return false
	}
	if in.sendCharge == 0 {
		o := &nd.origins[in.id.Origin]
		if o.pinnedBytes+int64(c.plen) > nd.cfg.MaxOriginBytes {
			return false
		}
		if !nd.pin(in, in.sendCand) {
			return false
		}
		nd.chargeSend(in, int64(c.plen))
	}
	nd.vote(in, in.sendCand, TypeEcho)
	return true
}

// chargeSend charges an instance's pinned SEND to its origin, until
// delivery or Config.SendExpiry.
func (nd *Node) chargeSend(in *instance, n int64) {
	in.sendCharge = n
	in.sendPinnedAt = nd.now
	nd.origins[in.id.Origin].pinnedBytes += n
	nd.chargedSends++
	if at := nd.now + nd.cfg.SendExpiry; nd.sendExpiryAt == 0 || at < nd.sendExpiryAt {
		nd.sendExpiryAt = at
	}
}

// unchargeSend gives an instance's SEND charge back to its origin.
func (nd *Node) unchargeSend(in *instance) {
	if in.sendCharge == 0 {
		return
	}
	nd.origins[in.id.Origin].pinnedBytes -= in.sendCharge
	in.sendCharge = 0
	nd.chargedSends--
	if nd.chargedSends == 0 {
		nd.sendExpiryAt = 0
	}
}

// expireSends unpins the SENDs of undelivered instances pinned
// Config.SendExpiry ago or more.
func (nd *Node) expireSends() {
	if nd.sendExpiryAt == 0 || nd.sendExpiryAt > nd.now {
		return
	}
	next := time.Duration(0)
	for _, in := range nd.insts {
		if in.sendCharge == 0 {
			continue
		}
		at := in.sendPinnedAt + nd.cfg.SendExpiry
		if at > nd.now {
			if next == 0 || at < next {
				next = at
			}
			continue
		}
		nd.unchargeSend(in)
		if c := &in.cands[in.sendCand]; c.pinned && !in.delivered {
			c.pinned = false
			nd.store.Unpin(c.digest)
		}
		nd.stats.SendsExpired++
		nd.cfg.Logger.Debug("bracha: pinned SEND expired", "node", nd.self, "instance", in.id)
	}
	nd.sendExpiryAt = next
}

// countDup records payload bytes that arrived for nothing.
func (nd *Node) countDup(m *broadcast.Message) {
	if hasPayload(m) {
		nd.store.CountDuplicate(m.Payload.Len())
	}
}

// deliver hands the target candidate's payload to the application: one
// Delivery per payload of the batch, each a retained view on the one stored
// buffer.
func (nd *Node) deliver(in *instance) {
	c := &in.cands[in.target]
	in.delivered = true
	nd.stopFetch(in)
	b, ok := nd.store.Get(c.digest)
	if ok {
		switch c.layout {
		case LayoutSingle:
			nd.dels = append(nd.dels, broadcast.Delivery{Instance: in.id, Digest: c.digest, Payload: b})
			nd.stats.Payloads++
		case LayoutBatch:
			var err error
			nd.spans, err = decodeBatch(b, nd.cfg.MaxBatch, nd.spans[:0])
			if err != nil {
				// Only a Byzantine quorum gets here; every correct node
				// decides the same way: the instance delivers nothing.
				nd.cfg.Logger.Warn("bracha: delivered batch does not decode", "instance", in.id, "err", err)
			} else {
				for i, s := range nd.spans {
					nd.dels = append(nd.dels, broadcast.Delivery{Instance: in.id, Index: i, Digest: c.digest, Payload: b.Slice(s.off, s.n).Retain()})
				}
				nd.stats.Payloads += uint64(len(nd.spans))
			}
			b.Release()
		}
	}
	nd.stats.Delivered++
	nd.origins[in.id.Origin].markDone(in.id.Seq, nd.cfg.Window)
	nd.unchargeSend(in)
	if in.id.Origin == nd.self {
		nd.inFlight--
		nd.startBacklog()
	}
	if nd.cfg.Retention == 0 {
		nd.collect(in)
		return
	}
	in.retireAt = nd.now + nd.cfg.Retention
	nd.retired = append(nd.retired, in)
	nd.retiredBytes += int64(c.plen)
	for len(nd.retired)-nd.retHead > nd.cfg.MaxRetained || nd.retiredBytes > nd.cfg.MaxRetainedBytes && len(nd.retired)-nd.retHead > 1 {
		nd.popRetired()
	}
}

func (nd *Node) startBacklog() {
	for len(nd.backlog) > 0 && nd.inFlight < nd.cfg.MaxInFlight {
		s := nd.backlog[0]
		nd.backlog[0] = sealed{}
		nd.backlog = nd.backlog[1:]
		if err := nd.start(s); err != nil {
			nd.cfg.Logger.Warn("bracha: backlogged broadcast dropped", "node", nd.self, "err", err)
		}
	}
	if len(nd.backlog) == 0 {
		nd.backlog = nd.backlog[:0:0]
	}
}

func (nd *Node) popRetired() {
	in := nd.retired[nd.retHead]
	nd.retired[nd.retHead] = nil
	nd.retiredBytes -= int64(in.cands[in.target].plen)
	nd.retHead++
	if nd.retHead == len(nd.retired) {
		nd.retired, nd.retHead = nd.retired[:0], 0
	} else if nd.retHead > 1024 && nd.retHead*2 > len(nd.retired) {
		k := copy(nd.retired, nd.retired[nd.retHead:])
		clear(nd.retired[k:])
		nd.retired, nd.retHead = nd.retired[:k], 0
	}
	nd.collect(in)
}

// collect forgets a finished instance: its pins go, its struct is reused.
func (nd *Node) collect(in *instance) {
	for i := range in.cands {
		if in.cands[i].pinned {
			nd.store.Unpin(in.cands[i].digest)
		}
	}
	nd.unchargeSend(in)
	nd.stopFetch(in)
	delete(nd.insts, in.id)
	in.reset()
	nd.free = append(nd.free, in)
}

func (nd *Node) newInstance(id broadcast.Instance) *instance {
	var in *instance
	if k := len(nd.free); k > 0 {
		in = nd.free[k-1]
		nd.free[k-1] = nil
		nd.free = nd.free[:k-1]
	} else {
		in = &instance{
			echoVote:  make([]int16, nd.n),
			readyVote: make([]int16, nd.n),
			asked:     make([]uint8, nd.n),
			served:    make([]uint8, nd.n),
		}
	}
	in.id = id
	in.target = -1
	in.sendCand = -1
	return in
}

func (in *instance) reset() {
	clear(in.cands)
	*in = instance{
		cands:     in.cands[:0],
		echoVote:  in.echoVote,
		readyVote: in.readyVote,
		asked:     in.asked,
		served:    in.served,
	}
	clear(in.echoVote)
	clear(in.readyVote)
	clear(in.asked)
	clear(in.served)
}

// Tick advances the logical clock: FETCH retries, retention and partial
// batches fall due.
func (nd *Node) Tick(now time.Duration) {
	if now > nd.now {
		nd.now = now
	}
	nd.tickFetches()
	nd.expireSends()
	for nd.retHead < len(nd.retired) && nd.retired[nd.retHead].retireAt <= nd.now {
		nd.popRetired()
	}
	if nd.cfg.BatchDelay > 0 && len(nd.pending) > 0 && nd.pendingSince+nd.cfg.BatchDelay <= nd.now {
		if err := nd.Flush(); err != nil {
			nd.cfg.Logger.Warn("bracha: partial batch dropped", "node", nd.self, "err", err)
		}
	}
}

// Ready returns the messages and deliveries accumulated since the last call
// and the next time the node needs a Tick. Each Outbound owns one reference
// to its payload, each Delivery one to its payload. The slices are valid
// until the next call.
func (nd *Node) Ready() broadcast.Ready {
	rd := broadcast.Ready{Messages: nd.out, Deliveries: nd.dels, NextWake: nd.nextWake()}
	clear(nd.outSpare)
	nd.out, nd.outSpare = nd.outSpare[:0], nd.out
	clear(nd.delsSpare)
	nd.dels, nd.delsSpare = nd.delsSpare[:0], nd.dels
	return rd
}

func (nd *Node) nextWake() time.Duration {
	var w time.Duration
	earlier := func(t time.Duration) {
		if t > 0 && (w == 0 || t < w) {
			w = t
		}
	}
	for _, in := range nd.fetching {
		if in.fetchActive || in.fetchDeadline > nd.now {
			earlier(in.fetchDeadline)
		}
	}
	if nd.retHead < len(nd.retired) {
		earlier(nd.retired[nd.retHead].retireAt)
	}
	earlier(nd.sendExpiryAt)
	if nd.cfg.BatchDelay > 0 && len(nd.pending) > 0 {
		earlier(nd.pendingSince + nd.cfg.BatchDelay)
	}
	return w
}

// Close releases everything the node holds: pending and backlogged
// payloads, undelivered output, every pin; and the store, if the node made
// it. The node accepts nothing afterwards.
func (nd *Node) Close() {
	if nd.closed {
		return
	}
	nd.closed = true
	for _, p := range nd.pending {
		p.Release()
	}
	nd.pending = nil
	for _, s := range nd.backlog {
		s.buf.Release()
	}
	nd.backlog = nil
	rd := nd.Ready()
	rd.Release()
	for _, in := range nd.insts {
		nd.collect(in)
	}
	nd.retired, nd.retHead, nd.retiredBytes, nd.fetching = nil, 0, 0, nil
	if nd.ownStore {
		nd.store.Close()
	}
}
