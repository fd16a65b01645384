package dolevstrong

import (
	"fmt"
	"slices"
	"time"

	"github.com/cloudflare/circl/sign/bls"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/internal/mutant"
)

// TypeRelay is Dolev–Strong's one message type: a value (or its digest) and
// the proof that a set of nodes, the sender first, signed it. Header.Round
// is the sender's round number of the instance when it sent the relay.
// Fetches use the shared broadcast.TypeFetch and broadcast.TypePayload.
const TypeRelay broadcast.MsgType = 1

// TypeName names a Dolev–Strong message type, for reports.
func TypeName(t broadcast.MsgType) string {
	switch t {
	case TypeRelay:
		return "relay"
	case broadcast.TypeFetch:
		return "fetch"
	case broadcast.TypePayload:
		return "payload"
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// DefaultRoundDuration is Δ when the configuration leaves it zero: safe
// (RoundFor digest mode) for the simulator's default delivery bound of
// 100 ms. Deployments set Δ from measured latency with RoundFor.
const DefaultRoundDuration = 300 * time.Millisecond

// MaxValues is the number of distinct values per instance a node accepts
// and relays: two are enough to know the sender equivocated (the output is
// then ⊥), so a third is never relayed.
const MaxValues = 2

// Config configures one node.
type Config struct {
	broadcast.Params
	// Store holds the node's payloads. Required.
	Store *broadcast.PayloadStore
	// Keys are the node's Ed25519 keys, for signature chains. Required
	// unless BLS is set.
	Keys *broadcast.Keyring
	// BLS, when set, selects the aggregate variant: every relay carries one
	// BLS aggregate signature and a signer bitmap instead of a chain.
	BLS *BLSKeyring
	// RoundDuration is Δ, the length of a round: in full mode the bound on
	// one message's delay, in digest mode on a relay plus a fetch round trip
	// (3 message delays). Default DefaultRoundDuration.
	RoundDuration time.Duration
	// MaxDigests bounds the distinct digests one instance tracks (a
	// Byzantine sender can sign any number). Default 2 + 2n.
	MaxDigests int
	// ClockOffset is added to every Tick's time: rounds are slots of a
	// clock common to the cluster, and a driver whose clock starts at its
	// own start (the node runner's time since start) sets the offset from
	// that start to the cluster's epoch. See also Node.SetClockOffset.
	ClockOffset time.Duration
	// UnsafeRounds, when positive, runs that many rounds instead of f+1. It
	// exists so that tests can show that f rounds are not enough; never set
	// it otherwise.
	UnsafeRounds int
	// Mutations seeds bugs for the mutation check (package internal/mutant).
	// For tests only: the zero Set is the correct protocol.
	Mutations mutant.Set
	// UnsafeCountChainEntries, when set, decodes chains that repeat a
	// signer and counts a chain's entries instead of its distinct signers
	// (unsafe.go). It exists so that tests can show the simulator's
	// adversaries catch that bug; never set it otherwise.
	UnsafeCountChainEntries bool
	// UnsafeAcceptOneShort, when set, accepts a relay whose proof is one
	// signature short of its round (unsafe.go): the off-by-one the
	// simulator's ds-edge adversary must expose. Never set it otherwise.
	UnsafeAcceptOneShort bool
}

// Stats are a node's protocol counters.
type Stats struct {
	Instances uint64 // instances decided
	Bottoms   uint64 // of which decided ⊥ (the sender equivocated)
	Relays    uint64 // relay messages sent (one per destination set)
	Signs     uint64 // statements signed
	Verifies  uint64 // signature verifications (Ed25519 signatures or BLS aggregates)
	Fetches   uint64 // fetches sent
	Served    uint64 // fetches answered
	Early     uint64 // relays for an instance that has not started, ignored
	Late      uint64 // messages for an instance that has ended, ignored
	Stale     uint64 // relays whose proof is shorter than the round needs
	Dropped   uint64 // relays for digests beyond MaxDigests or after ⊥, ignored
	Rejected  uint64 // messages held until the first Tick and then rejected
}

// Node is one node's Dolev–Strong state machine, for every instance at
// once: its own broadcasts and every other origin's. It implements
// broadcast.Protocol.
type Node struct {
	n, f       int
	self       broadcast.NodeID
	mode       broadcast.Mode
	rounds     int
	delta      time.Duration
	maxDigests int
	store      *broadcast.PayloadStore
	sch        scheme
	muts       mutant.Set // Config.Mutations

	now      time.Duration // common clock: last Tick + offset
	ticked   bool          // a Tick has come: now is meaningful
	early    []heldMessage // messages stepped before the first Tick
	offset   time.Duration
	nextSlot uint64 // first slot this node's next own instance may start in
	queued   []queuedSubmit
	insts    map[broadcast.Instance]*instance

	out  []broadcast.Outbound
	dels []broadcast.Delivery
	// spare slices, swapped with out and dels by Ready.
	outSpare  []broadcast.Outbound
	delsSpare []broadcast.Delivery

	stats Stats

	unsafeEntries  bool // Config.UnsafeCountChainEntries
	unsafeOneShort bool // Config.UnsafeAcceptOneShort
}

var _ broadcast.Protocol = (*Node)(nil)

// maxEarlyMessages bounds the messages a node keeps before its first Tick.
const maxEarlyMessages = 1024

// heldMessage is a message that arrived before the node knew the time: its
// own copy of the body and a reference to the payload.
type heldMessage struct {
	from broadcast.NodeID
	msg  broadcast.Message
}

type queuedSubmit struct {
	slot   uint64
	digest broadcast.Digest
	length int
}

// instance is one broadcast in progress.
type instance struct {
	id       broadcast.Instance
	end      time.Duration // decision time: end of the last round
	digests  map[broadcast.Digest]*value
	accepted []broadcast.Digest // in acceptance order, at most MaxValues
}

// value is what a node knows about one digest of one instance.
type value struct {
	digest   broadcast.Digest
	stmt     []byte
	proof    proof
	length   int
	held     bool // payload held (and pinned) in the store
	accepted bool
	asked    []bool // fetch sent to node i (digest not held yet)
	entries  int    // longest verified chain seen (UnsafeCountChainEntries only)
	served   []bool // payload sent to node i in answer to a fetch
}

// New builds a node from cfg.
func New(cfg Config) (*Node, error) {
	if err := cfg.Params.Validate(func(f int) int { return f + 1 }); err != nil {
		return nil, fmt.Errorf("dolevstrong: %w", err)
	}
	if cfg.Store == nil {
		return nil, fmt.Errorf("dolevstrong: Store is required")
	}
	if cfg.RoundDuration < 0 {
		return nil, fmt.Errorf("dolevstrong: RoundDuration %v is negative", cfg.RoundDuration)
	}
	if cfg.UnsafeRounds < 0 {
		return nil, fmt.Errorf("dolevstrong: UnsafeRounds %d is negative", cfg.UnsafeRounds)
	}
	p := &Node{n: cfg.N, f: cfg.F, self: cfg.Self, mode: cfg.Mode, rounds: cfg.F + 1 - cfg.Mutations.Bit(mutant.DSRoundsF), muts: cfg.Mutations,
		delta: cfg.RoundDuration, maxDigests: cfg.MaxDigests, store: cfg.Store, offset: cfg.ClockOffset, now: cfg.ClockOffset,
		insts: map[broadcast.Instance]*instance{}}
	if cfg.UnsafeRounds > 0 {
		p.rounds = cfg.UnsafeRounds
	}
	p.unsafeEntries, p.unsafeOneShort = cfg.UnsafeCountChainEntries, cfg.UnsafeAcceptOneShort
	if p.delta == 0 {
		p.delta = DefaultRoundDuration
	}
	if p.maxDigests <= 0 {
		p.maxDigests = MaxValues + 2*cfg.N
	}
	if cfg.BLS != nil {
		if cfg.BLS.Self != cfg.Self || len(cfg.BLS.pubs) != cfg.N {
			return nil, fmt.Errorf("dolevstrong: BLS keyring of node %v with %d keys for node %v of %d", cfg.BLS.Self, len(cfg.BLS.pubs), cfg.Self, cfg.N)
		}
		p.sch = &blsScheme{k: cfg.BLS, verifies: &p.stats.Verifies}
	} else {
		ed, err := newEdScheme(cfg.Keys, cfg.N, &p.stats.Verifies)
		if err != nil {
			return nil, err
		}
		if cfg.Keys.Self != cfg.Self {
			return nil, fmt.Errorf("dolevstrong: keyring of node %v given to node %v", cfg.Keys.Self, cfg.Self)
		}
		p.sch = ed
	}
	return p, nil
}

// Rounds is the number of synchronous rounds an instance runs (f+1).
func (p *Node) Rounds() int { return p.rounds }

// RoundDuration is Δ.
func (p *Node) RoundDuration() time.Duration { return p.delta }

// Stats returns the node's counters.
func (p *Node) Stats() Stats { return p.stats }

// slot is the index of the Δ-long slot that holds t.
func (p *Node) slot(t time.Duration) uint64 { return uint64(t / p.delta) }

// roundOf is instance seq's round number at the node's current time: 1 in
// the slot the instance starts in, rounds+1 once it has ended, and 0 more
// than one slot before it starts. A message one slot early counts as round
// 1: it tolerates a receiver whose clock has not yet passed the boundary
// the sender started at (skew, or a tick not yet delivered), and it is no
// more than a Byzantine sender could achieve by sending at the boundary.
func (p *Node) roundOf(seq uint64) int {
	cur := p.slot(p.now)
	if seq > cur {
		if seq == cur+1 {
			return 1
		}
		return 0
	}
	if cur-seq >= uint64(p.rounds) {
		return p.rounds + 1
	}
	return int(cur-seq) + 1
}

// Submit broadcasts payload as a new instance of this node, taking the
// reference. The instance's sequence number is the slot its first round
// runs in: the slot after the node's clock (Submit cannot know how far into
// the current slot the real time is, so it waits for the next boundary,
// where the value goes out at the Tick), and never a slot an earlier
// instance of this node started in.
func (p *Node) Submit(payload bufpool.Buf) error {
	defer payload.Release()
	d := broadcast.DigestOf(payload)
	if err := p.store.Put(p.self, d, payload); err != nil {
		return fmt.Errorf("dolevstrong: store own value: %w", err)
	}
	if !p.store.Pin(d) {
		return fmt.Errorf("dolevstrong: own value %v evicted before it was pinned", d)
	}
	slot := max(p.slot(p.now)+1, p.nextSlot)
	p.nextSlot = slot + 1
	p.queued = append(p.queued, queuedSubmit{slot: slot, digest: d, length: payload.Len()})
	return nil
}

// start runs round 1 of an own instance: sign, accept, send the value to
// everyone. The value's pin (taken by Submit) passes to the instance.
func (p *Node) start(q queuedSubmit) {
	id := broadcast.Instance{Origin: p.self, Seq: q.slot}
	in := p.instance(id)
	v := p.value(in, q.digest)
	v.held, v.length = true, q.length
	p.tryAccept(in, v)
}

func (p *Node) instance(id broadcast.Instance) *instance {
	in := p.insts[id]
	if in == nil {
		in = &instance{id: id, end: time.Duration(id.Seq+uint64(p.rounds)) * p.delta,
			digests: map[broadcast.Digest]*value{}}
		p.insts[id] = in
	}
	return in
}

func (p *Node) value(in *instance, d broadcast.Digest) *value {
	v := in.digests[d]
	if v == nil {
		v = &value{digest: d, stmt: Statement(in.id, d), proof: p.sch.newProof(p.n),
			asked: make([]bool, p.n), served: make([]bool, p.n)}
		in.digests[d] = v
	}
	return v
}

// Step consumes one message. It borrows m.
func (p *Node) Step(from broadcast.NodeID, m *broadcast.Message) error {
	if m.Protocol != broadcast.ProtoDolevStrong {
		return broadcast.Reject(broadcast.ReasonProtocol, "dolevstrong got a %v message", m.Protocol)
	}
	if int(from) >= p.n || from == p.self {
		return broadcast.Reject(broadcast.ReasonSender, "message from %v in a cluster of %d (self %v)", from, p.n, p.self)
	}
	if int(m.Instance.Origin) >= p.n {
		return broadcast.Reject(broadcast.ReasonBody, "instance origin %v outside the cluster of %d", m.Instance.Origin, p.n)
	}
	if !p.ticked {
		// The node does not know the time yet (a driver that ticks a node
		// only once it has asked for it): which round this message belongs
		// to is unknown, so it waits for the first Tick.
		if len(p.early) < maxEarlyMessages {
			c := *m
			c.Body = append([]byte(nil), m.Body...)
			c.Auth = nil
			c.Payload = m.Payload.Retain()
			p.early = append(p.early, heldMessage{from: from, msg: c})
		}
		return nil
	}
	switch m.Type {
	case TypeRelay:
		return p.onRelay(from, m)
	case broadcast.TypeFetch:
		p.onFetch(from, m)
		return nil
	case broadcast.TypePayload:
		return p.onPayload(from, m)
	}
	return broadcast.Reject(broadcast.ReasonType, "dolevstrong type %d", m.Type)
}

// completePayload returns m's payload if the message carries all of it.
func completePayload(m *broadcast.Message) (bufpool.Buf, bool) {
	if m.Flags&broadcast.HasPayload == 0 || m.Flags&broadcast.Fragment != 0 || uint32(m.Payload.Len()) != m.PayloadLen {
		return bufpool.Buf{}, false
	}
	return m.Payload, true
}

func (p *Node) onRelay(from broadcast.NodeID, m *broadcast.Message) error {
	r := p.roundOf(m.Instance.Seq)
	switch {
	case r == 0:
		p.stats.Early++
		return nil
	case r > p.rounds:
		p.stats.Late++
		return nil
	}
	body, err := p.decodeRelayBody(m.Body)
	if err != nil {
		return err
	}
	if !slices.Contains(body.Signers, m.Instance.Origin) && !p.muts.Has(mutant.DSNoOriginSig) {
		return broadcast.Reject(broadcast.ReasonBody, "relay of %v lacks its sender's signature", m.Instance)
	}
	in := p.instance(m.Instance)
	v := in.digests[m.Digest]
	if v == nil {
		if len(in.accepted) >= MaxValues || len(in.digests) >= p.maxDigests {
			p.stats.Dropped++
			return nil
		}
		v = p.value(in, m.Digest)
	}
	payload, hasPayload := completePayload(m)
	if v.accepted {
		if hasPayload {
			p.store.CountDuplicate(payload.Len())
		}
		return nil
	}
	if err := v.proof.absorb(v.stmt, &body); err != nil {
		if v.proof.count() == 0 && !v.held {
			delete(in.digests, m.Digest) // forget a digest nobody signed
		}
		return err
	}
	p.noteEntries(v, &body)
	if err := p.hold(from, v, payload, hasPayload); err != nil {
		return err
	}
	if !v.held && !v.asked[from] {
		v.asked[from] = true
		p.fetch(from, in, v)
	}
	p.tryAccept(in, v)
	return nil
}

// hold makes v's payload held and pinned: from the message, if it carries
// the payload, or from the store, if another instance already holds it.
func (p *Node) hold(from broadcast.NodeID, v *value, payload bufpool.Buf, has bool) error {
	if v.held {
		if has {
			p.store.CountDuplicate(payload.Len())
		}
		return nil
	}
	if has {
		if err := p.put(from, v.digest, payload); err != nil {
			return err
		}
	}
	if p.store.Pin(v.digest) {
		buf, _ := p.store.Get(v.digest)
		v.held, v.length = true, buf.Len()
		buf.Release()
	}
	return nil
}

// fetch asks `to`, which vouched for v's digest, for its payload.
func (p *Node) fetch(to broadcast.NodeID, in *instance, v *value) {
	p.stats.Fetches++
	p.out = append(p.out, broadcast.Outbound{To: to, Msg: broadcast.Message{Header: broadcast.Header{
		Protocol: broadcast.ProtoDolevStrong, Type: broadcast.TypeFetch, Instance: in.id,
		Round: uint32(p.roundOf(in.id.Seq)), Digest: v.digest}}})
}

func (p *Node) onFetch(from broadcast.NodeID, m *broadcast.Message) {
	in := p.insts[m.Instance]
	if in == nil {
		p.stats.Late++
		return
	}
	v := in.digests[m.Digest]
	if v == nil || !v.held || v.served[from] {
		return
	}
	buf, ok := p.store.Get(v.digest)
	if !ok {
		return
	}
	v.served[from] = true
	p.stats.Served++
	msg := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoDolevStrong,
		Type: broadcast.TypePayload, Instance: in.id, Round: uint32(p.roundOf(in.id.Seq))}}
	msg.SetPayload(buf, v.digest)
	p.out = append(p.out, broadcast.Outbound{To: from, Msg: msg})
}

func (p *Node) onPayload(from broadcast.NodeID, m *broadcast.Message) error {
	payload, ok := completePayload(m)
	if !ok {
		return broadcast.Reject(broadcast.ReasonLength, "payload message without its whole payload")
	}
	in := p.insts[m.Instance]
	if in == nil {
		p.stats.Late++
		return nil
	}
	v := in.digests[m.Digest]
	if v == nil || !v.asked[from] {
		return nil // unsolicited
	}
	if err := p.hold(from, v, payload, true); err != nil {
		return err
	}
	p.tryAccept(in, v)
	return nil
}

// tryAccept accepts v if the node holds its payload and a proof at least
// as long as the current round number, in a round of the instance; on
// acceptance before the last round it signs and relays. Holding the payload
// is part of acceptance: a node signs only what it can hand to whoever
// fetches it.
func (p *Node) tryAccept(in *instance, v *value) {
	if v.accepted || !v.held || len(in.accepted) >= MaxValues-p.muts.Bit(mutant.DSOneValue) {
		return
	}
	r := p.roundOf(in.id.Seq)
	if r < 1 || r > p.rounds {
		return
	}
	self := p.self == in.id.Origin
	if !self && p.proofCount(v) < r-p.muts.Bit(mutant.DSShortChain) {
		p.stats.Stale++
		return
	}
	v.accepted = true
	in.accepted = append(in.accepted, v.digest)
	// The origin sends in round 1 whatever the number of rounds; others
	// relay what they accept before the last round.
	if (!self && r >= p.rounds-p.muts.Bit(mutant.DSNoRelayRoundF)) || v.proof.has(p.self) {
		return
	}
	p.stats.Signs++
	v.proof.addOwn(p.self, p.sch.sign(v.stmt))
	p.relay(in, v, r)
}

// relay sends v with a proof of r+1 signatures (or all it has, for an
// aggregate) to everyone. The origin's relay (round 1) carries the payload
// in both modes; others carry it only in full mode.
func (p *Node) relay(in *instance, v *value, r int) {
	p.stats.Relays++
	msg := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoDolevStrong,
		Type: TypeRelay, Instance: in.id, Round: uint32(r), Digest: v.digest, PayloadLen: uint32(v.length)}}
	msg.Body = v.proof.appendRelay(nil, p.n, in.id.Origin, p.self, r+1)
	if p.mode == broadcast.ModeFull || in.id.Origin == p.self {
		if buf, ok := p.store.Get(v.digest); ok {
			msg.SetPayload(buf, v.digest)
		}
	}
	p.out = append(p.out, broadcast.Outbound{To: broadcast.Everyone, Msg: msg})
}

// lateStart is how far past its slot's boundary an own instance may still
// start: a Tick that comes later than that (a driver that had not ticked
// the node yet, a late timer) moves the instance to the next slot, since
// a round-1 message sent late in its round may arrive in round 2, where a
// single signature is too short. Δ must absorb the rest (RoundFor).
func (p *Node) lateStart() time.Duration { return p.delta / 16 }

// startQueued starts the own instances whose slot has come, and moves to
// the next slot those whose boundary passed too long ago.
func (p *Node) startQueued() {
	cur := p.slot(p.now)
	for len(p.queued) > 0 && p.queued[0].slot <= cur {
		q := p.queued[0]
		if q.slot == cur && p.now-time.Duration(cur)*p.delta <= p.lateStart() {
			p.queued = p.queued[1:]
			p.start(q)
			continue
		}
		// Too late for its slot: every queued instance moves on, in order.
		next := cur + 1
		for i := range p.queued {
			if p.queued[i].slot < next {
				p.queued[i].slot = next
			}
			next = p.queued[i].slot + 1
		}
		p.nextSlot = max(p.nextSlot, next)
		return
	}
}

// Tick advances the clock: own instances whose slot has come start, and
// instances whose last round has ended decide.
func (p *Node) Tick(now time.Duration) {
	now += p.offset
	if now < p.now {
		return
	}
	p.now = now
	if !p.ticked {
		p.ticked = true
		held := p.early
		p.early = nil
		for i := range held {
			if err := p.Step(held[i].from, &held[i].msg); err != nil {
				p.stats.Rejected++
			}
			held[i].msg.Payload.Release()
		}
	}
	p.startQueued()
	var done []*instance
	for _, in := range p.insts {
		if in.end <= now {
			done = append(done, in)
		}
	}
	slices.SortFunc(done, func(a, b *instance) int {
		if a.id.Seq != b.id.Seq {
			return compare(a.id.Seq, b.id.Seq)
		}
		return compare(a.id.Origin, b.id.Origin)
	})
	for _, in := range done {
		p.decide(in)
	}
}

func compare[T uint64 | broadcast.NodeID](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// decide ends an instance: one accepted value is the output, two are ⊥
// (a Delivery with a zero Digest and a zero Payload), none is no output at
// all — every correct node then accepted nothing, so none outputs.
func (p *Node) decide(in *instance) {
	delete(p.insts, in.id)
	switch min(len(in.accepted), MaxValues-p.muts.Bit(mutant.DSDecideFirst)) {
	case 0:
	case 1:
		p.stats.Instances++
		d := in.accepted[0]
		buf, _ := p.store.Get(d)
		p.dels = append(p.dels, broadcast.Delivery{Instance: in.id, Digest: d, Payload: buf})
	default:
		p.stats.Instances++
		p.stats.Bottoms++
		p.dels = append(p.dels, broadcast.Delivery{Instance: in.id})
	}
	for _, v := range in.digests {
		if v.held {
			p.store.Unpin(v.digest)
		}
	}
}

// Ready returns the messages and deliveries accumulated since the last call.
// NextWake is always the next round boundary: a synchronous protocol needs
// its clock ticked every Δ, idle or not, so that it can place any message
// that arrives in its round.
func (p *Node) Ready() broadcast.Ready {
	rd := broadcast.Ready{Messages: p.out, Deliveries: p.dels,
		NextWake: time.Duration(p.slot(p.now)+1)*p.delta - p.offset}
	p.out, p.outSpare = p.outSpare[:0], p.out
	p.dels, p.delsSpare = p.delsSpare[:0], p.dels
	return rd
}

// SetClockOffset sets the offset added to every Tick's time (see
// Config.ClockOffset), for a driver that learns its epoch only when it
// starts. It must be called before the first Tick.
func (p *Node) SetClockOffset(d time.Duration) {
	p.offset = d
	p.now = max(p.now, d)
}

// Sign returns this node's signature on the statement (in, d), exactly as
// it would add it to a relay (an Ed25519 signature or a BLS signature
// share). It exists for Byzantine test doubles and the simulator, which
// build proofs of a coalition's signatures with AppendChain or
// AppendAggregate.
func (p *Node) Sign(in broadcast.Instance, d broadcast.Digest) []byte {
	return p.sch.sign(Statement(in, d))
}

// AggregateBLS adds BLS signatures (compressed G1 points) into one
// aggregate, for test doubles that build aggregate proofs.
func AggregateBLS(sigs ...[]byte) ([]byte, error) {
	agg, err := bls.Aggregate(blsGroup{}, sigs)
	if err != nil {
		return nil, fmt.Errorf("dolevstrong: aggregate: %w", err)
	}
	return agg, nil
}

// Close releases every pin the node's live instances hold, for a driver
// that stops it mid-run.
func (p *Node) Close() {
	for _, in := range p.insts {
		for _, v := range in.digests {
			if v.held {
				p.store.Unpin(v.digest)
			}
		}
	}
	for _, q := range p.queued {
		p.store.Unpin(q.digest)
	}
	for i := range p.early {
		p.early[i].msg.Payload.Release()
	}
	p.early = nil
	p.insts = map[broadcast.Instance]*instance{}
	p.queued = nil
}

// CoalitionProof builds a relay body in which every node of signers signs
// (in, d), in the scheme those nodes use (a chain, or one aggregate). It is
// for Byzantine test doubles and the simulator: a coalition of Byzantine
// nodes pooling their keys.
func CoalitionProof(in broadcast.Instance, d broadcast.Digest, signers []*Node) ([]byte, error) {
	if len(signers) == 0 {
		return nil, fmt.Errorf("dolevstrong: coalition proof without signers")
	}
	ids := make([]broadcast.NodeID, len(signers))
	sigs := make([][]byte, len(signers))
	for i, s := range signers {
		ids[i], sigs[i] = s.self, s.Sign(in, d)
	}
	if _, ok := signers[0].sch.(*blsScheme); ok {
		agg, err := AggregateBLS(sigs...)
		if err != nil {
			return nil, err
		}
		return AppendAggregate(nil, signers[0].n, ids, agg), nil
	}
	return AppendChain(nil, ids, sigs), nil
}

// Self returns the node's identity.
func (p *Node) Self() broadcast.NodeID { return p.self }
