package link

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
)

// entry is one data frame in the retransmit buffer or the send queue: the
// link header and onecast prefix (or fragment header) bytes, and a retained
// reference to the payload chunk the frame carries. Its payload reference is
// released when the peer acknowledges the frame.
type entry struct {
	seq    uint64
	kind   Kind   // KindData or KindPrefix
	hdr    []byte // HeaderSize bytes of link header, then the onecast prefix (or a piece of it)
	body   bufpool.Buf
	sentAt time.Time
	xmits  int
	sacked bool
}

// deque is a growable ring of entries.
type deque struct {
	buf  []*entry
	head int
	n    int
}

func (q *deque) len() int { return q.n }

func (q *deque) grow() {
	nb := make([]*entry, max(16, 2*len(q.buf)))
	for i := range q.n {
		nb[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = nb, 0
}

func (q *deque) push(e *entry) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)%len(q.buf)] = e
	q.n++
}

func (q *deque) pushFront(e *entry) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.head = (q.head - 1 + len(q.buf)) % len(q.buf)
	q.buf[q.head] = e
	q.n++
}

func (q *deque) pop() *entry {
	e := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return e
}

// reassembly is the message being put together from fragments. Frames of
// a stream are handed up in order and a message's fragments are consecutive
// in it, so one reassembly per peer is all there is: it holds at most half
// of Config.PeerFrames frames (zero-copy) or, for a larger message, a heap
// buffer that grows with the bytes received, up to Config.MaxPayload.
type reassembly struct {
	active bool
	msg    broadcast.Message // header, and Body/Auth on prefix
	prefix []byte            // a copy of the first frame's body and authenticator
	parts  []bufpool.Buf     // one per frame: the payload window, owning the frame
	// heap, when not nil, receives the payload instead of parts: the
	// message needs more frames than the peer's quota lends a reassembly,
	// so each chunk is copied here and its frame released at once.
	heap []byte
	got  uint32
	next uint16
	// touched is when the message last made progress, or the link last
	// waited on itself rather than on the sender (Config.PartialTimeout).
	touched time.Time
	// skip names a payload stripped from its first frame, whose
	// continuation frames are consumed without reassembly.
	skip       bool
	skipDigest broadcast.Digest
	// spill holds the pieces of a spilt prefix received so far (a copy:
	// prefixes are small next to payloads, and rare when they spill), and
	// spillLen the prefix's size, known from its first piece.
	spill    []byte
	spillLen int
}

func (r *reassembly) abort() {
	r.spill, r.spillLen = nil, 0
	r.heap = nil
	for i := range r.parts {
		r.parts[i].Release()
		r.parts[i] = bufpool.Buf{}
	}
	r.parts = r.parts[:0]
	r.active = false
	r.msg = broadcast.Message{}
	r.prefix = nil
	r.got, r.next = 0, 0
}

// peer is the link's state with one other node: the stream to it and the
// stream from it. Everything is under mu.
type peer struct {
	l  *Link
	id broadcast.NodeID
	mu sync.Mutex

	// epoch is the peer's incarnation, 0 until first heard from.
	epoch        uint64
	probeAt      time.Time
	probeBackoff int

	// Send stream: entries [una, nxt) are in flight in ring[seq % Window];
	// queue holds entries waiting for the window or for the peer's epoch.
	queue    deque
	ring     []*entry
	una, nxt uint64
	// peerCredit is the frames the peer accepts in flight (its latest
	// Header.Window); the send window is the smaller of it and Window.
	peerCredit uint32
	srtt       time.Duration
	rttvar     time.Duration
	haveRTT    bool
	minRTT     time.Duration
	backoff    int

	framesSent, retransmits uint64

	// Receive stream: frames ≥ rcvNxt wait in rcvRing[seq % Window] until
	// the frames before them arrive.
	rcvRing []bufpool.Buf
	rcvNxt  uint64
	rcvHigh uint64
	ackOwed int
	ackNow  bool
	ackBuf  [HeaderSize]byte
	// ringHeld counts the frames in rcvRing: with the reassembly's parts,
	// what the peer holds of the conduit's frames (Config.PeerFrames).
	ringHeld int

	re reassembly

	quotaDrops, partialsExpired uint64
	refusalLogAt                time.Time // last log line about a refusal

	// rate is the peer's receive budget (Config.RecvRate), rateDeferred
	// the frames it held back.
	rate         rateLimit
	rateDeferred uint64
	// quickAckAt is when a duplicate or misaddressed frame last got an
	// ack at once: more of them within a Tick wait for the timer, so that
	// replayed frames cannot make the node send one ack each.
	quickAckAt time.Time

	// pending counts the peer's messages in the link's receive queue,
	// at most recvShare.
	pending atomic.Int64
}

// recvShare is the most receive-queue slots one peer's messages may take.
func (p *peer) recvShare() int64 { return int64(max(1, p.l.cfg.RecvQueue/max(1, p.l.cfg.N-1))) }

// credit is the frames the peer may have in flight to this node, and the
// most its reorder window holds: the half of its frame quota that its
// partial message (at most the other half) cannot take. Every frame the
// window holds is in flight past the sender's cumulative ack, so a sender
// that keeps within the credit (Header.Window) never exceeds the quota.
func (p *peer) credit() int { return max(p.l.cfg.PeerFrames-p.l.cfg.PeerFrames/2, 1) }

// heldFrames is the conduit frames the link holds for the peer now.
func (p *peer) heldFrames() int { return p.ringHeld + len(p.re.parts) }

// refused logs a refusal of the peer's data, at most once per
// RefusalLogInterval; the caller has counted it.
func (p *peer) refused(now time.Time, what string, args ...any) {
	if now.Sub(p.refusalLogAt) < RefusalLogInterval {
		return
	}
	p.refusalLogAt = now
	p.l.log.Warn(what, append([]any{"peer", p.id, "held_frames", p.heldFrames(), "peer_frames", p.l.cfg.PeerFrames,
		"quota_drops", p.quotaDrops, "partials_expired", p.partialsExpired, "rate_deferred", p.rateDeferred}, args...)...)
}

// ackSoon asks for an ack of the receive stream's state after a frame
// that needs one but brings nothing new (a duplicate, a frame beyond the
// window, a frame for another incarnation): at once at most once per
// Tick, else with the next tick, so that a flood of replayed frames costs
// the node at most one ack per Tick.
func (p *peer) ackSoon(now time.Time) {
	if now.Sub(p.quickAckAt) >= p.l.cfg.Tick {
		p.quickAckAt = now
		p.ackNow = true
		return
	}
	p.ackOwed = max(p.ackOwed, 1)
}

func newPeer(l *Link, id broadcast.NodeID) *peer {
	p := &peer{l: l, id: id, ring: make([]*entry, l.cfg.Window), rcvRing: make([]bufpool.Buf, l.cfg.Window),
		una: 1, nxt: 1, rcvNxt: 1}
	if l.cfg.RecvRate > 0 {
		msgs, bytes := l.cfg.rateFloor()
		p.rate.msgs.set(msgs, rateBurstMsgs)
		p.rate.bytes.set(bytes, float64(rateBurstMsgs*l.mtu))
	}
	return p
}

// maxResendShift bounds the doubling of the fast-retransmit threshold of
// a frame sent again and again (2^8 × FastRetransmitMin ≈ 0.5 s; the
// retransmission timeout covers the rest).
const maxResendShift = 8

// FastRetransmitMin is the least time between two sends of a frame that
// selective acks show missing: enough to ride out reordering on the path.
const FastRetransmitMin = 2 * time.Millisecond

// silent reports whether the peer has not been heard from yet, or has let
// DeadBackoff timeouts pass without acknowledging anything.
func (p *peer) silent() bool { return p.epoch == 0 || p.backoff >= DeadBackoff }

// queueLimit is the most frames the send queue may hold now.
func (p *peer) queueLimit() int {
	if p.silent() {
		return p.l.cfg.MaxQueue
	}
	return LiveQueueFactor * p.l.cfg.MaxQueue
}

// rto is the current retransmission timeout, backoff included.
func (p *peer) rto() time.Duration {
	c := &p.l.cfg
	base := c.RTOInit
	if p.haveRTT {
		base = min(max(p.srtt+4*p.rttvar, c.RTOMin), c.RTOMax)
	}
	return min(base<<min(p.backoff, 16), c.RTOMax)
}

// sampleRTT folds a round-trip sample in (RFC 6298).
func (p *peer) sampleRTT(r time.Duration) {
	if p.minRTT == 0 || r < p.minRTT {
		p.minRTT = r
	}
	if !p.haveRTT {
		p.srtt, p.rttvar, p.haveRTT = r, r/2, true
		return
	}
	d := p.srtt - r
	if d < 0 {
		d = -d
	}
	p.rttvar = (3*p.rttvar + d) / 4
	p.srtt = (7*p.srtt + r) / 8
}

// putHeader writes the link header of a frame to the peer, with the
// current acknowledgement state of the reverse stream.
func (p *peer) putHeader(b []byte, kind Kind, seq uint64) {
	h := Header{Kind: kind, SrcEpoch: p.l.cfg.Epoch, DstEpoch: p.epoch, Seq: seq, Ack: p.rcvNxt - 1,
		Window: uint32(p.credit())}
	if p.rcvHigh > p.rcvNxt {
		w := uint64(len(p.rcvRing))
		for i := uint64(0); i < SACKBits; i++ {
			s := p.rcvNxt + 1 + i
			if s > p.rcvHigh {
				break
			}
			if !p.rcvRing[s%w].IsZero() {
				h.SACK |= 1 << i
			}
		}
	}
	h.Put(b)
	p.ackOwed, p.ackNow = 0, false
}

// transmit sends e (a first transmission or a retransmission).
func (p *peer) transmit(e *entry, now time.Time) {
	p.putHeader(e.hdr[:HeaderSize], e.kind, e.seq)
	if err := p.l.conduit.Send(p.id, e.hdr, e.body); err != nil {
		p.l.log.Debug("send failed", "to", p.id, "seq", e.seq, "err", err)
	}
	if e.xmits > 0 {
		p.l.retransmits.Add(1)
		p.retransmits++
	} else {
		p.l.framesSent.Add(1)
		p.framesSent++
	}
	e.xmits++
	e.sentAt = now
}

// sendAck sends an ack-only frame.
func (p *peer) sendAck() {
	p.putHeader(p.ackBuf[:], KindAck, 0)
	if err := p.l.conduit.Send(p.id, p.ackBuf[:], bufpool.Buf{}); err != nil {
		p.l.log.Debug("ack send failed", "to", p.id, "err", err)
	}
	p.l.acksSent.Add(1)
}

// probe announces this incarnation to a peer whose epoch is unknown.
func (p *peer) probe(now time.Time) {
	p.sendAck()
	p.probeAt = now.Add(min(p.l.cfg.RTOInit<<min(p.probeBackoff, 16), p.l.cfg.RTOMax))
	p.probeBackoff++
}

// fill moves queued entries into the window and sends them.
func (p *peer) fill(now time.Time) {
	if p.epoch == 0 {
		return
	}
	w := uint64(len(p.ring))
	inFlight := min(w, max(uint64(p.peerCredit), 1))
	for p.nxt-p.una < inFlight && p.queue.len() > 0 {
		e := p.queue.pop()
		e.seq = p.nxt
		p.nxt++
		p.ring[e.seq%w] = e
		p.transmit(e, now)
	}
}

// tick runs the peer's timers.
func (p *peer) tick(now time.Time) {
	if p.l.closed.Load() {
		return
	}
	if p.epoch == 0 {
		if !now.Before(p.probeAt) {
			p.probe(now)
		}
		return
	}
	// Hand up what waited for the receive queue or the peer's rate first,
	// so that the ack below tells the peer its window opened.
	if next := p.rcvNxt; p.deliver(now) > next {
		p.ackNow = true
	}
	if p.ackOwed > 0 || p.ackNow {
		p.sendAck()
	}
	p.expirePartial(now)
	if p.una < p.nxt {
		w := uint64(len(p.ring))
		oldest := p.ring[p.una%w]
		rto := p.rto()
		if now.Sub(oldest.sentAt) >= rto {
			p.l.timeouts.Add(1)
			p.backoff++
			// Resend the oldest frame only: if the peer is alive its ack,
			// with selective acks, shows what else is missing; if it is
			// silent, it is probed with one frame per timeout, the timeout
			// doubling each time.
			p.transmit(oldest, now)
		}
	}
}

// expirePartial drops the peer's partly received message when it made no
// progress for Config.PartialTimeout. Time spent with the next frame in
// hand (the receive queue full: this node's delay, not the peer's) does not
// count.
func (p *peer) expirePartial(now time.Time) {
	r := &p.re
	if !r.active && r.spillLen == 0 {
		return
	}
	if !p.rcvRing[p.rcvNxt%uint64(len(p.rcvRing))].IsZero() || r.touched.IsZero() {
		r.touched = now
		return
	}
	if now.Sub(r.touched) < p.l.cfg.PartialTimeout {
		return
	}
	p.l.partialsExpired.Add(1)
	p.partialsExpired++
	p.refused(now, "link: partial message from peer expired", "payload_bytes", r.got, "payload_len", r.msg.PayloadLen,
		"idle", now.Sub(r.touched))
	r.abort()
}

// onAck processes the acknowledgement state of a frame from the peer.
func (p *peer) onAck(h *Header, now time.Time) {
	w := uint64(len(p.ring))
	if h.Ack >= p.nxt {
		return // acknowledges frames never sent: not from this stream
	}
	if h.Ack >= p.una {
		for s := p.una; s <= h.Ack; s++ {
			e := p.ring[s%w]
			p.ring[s%w] = nil
			// Sample the round trip on the newest frame acknowledged, if it
			// was sent once (Karn) and not acknowledged selectively
			// before: a frame that waited behind a gap measures the
			// recovery, not the path, and would inflate the timeout.
			if s == h.Ack && e.xmits == 1 && !e.sacked {
				p.sampleRTT(now.Sub(e.sentAt))
			}
			p.l.freeEntry(e)
		}
		p.una = h.Ack + 1
		p.backoff = 0
	}
	if h.SACK == 0 || h.Ack+1 < p.una {
		// No selective acks, or stale ones (a reordered or replayed
		// frame): only the current cumulative ack's bitmap drives
		// retransmissions, so that old frames sent again cannot make
		// this node resend what the peer has.
		return
	}
	var highest uint64
	for i := uint64(0); i < SACKBits; i++ {
		if h.SACK&(1<<i) == 0 {
			continue
		}
		s := h.Ack + 2 + i
		if s >= p.una && s < p.nxt {
			e := p.ring[s%w]
			if !e.sacked && e.xmits == 1 {
				p.sampleRTT(now.Sub(e.sentAt))
			}
			e.sacked = true
			highest = s
		}
	}
	// Gaps below the highest selectively acknowledged frame are losses:
	// resend each, at most once per threshold. The threshold follows the
	// path's least round trip, not the smoothed one: with a wide window the
	// smoothed round trip grows with the link's own queueing, and repairs
	// that wait for it stall the in-order stream behind every gap.
	// Each further resend of one frame waits twice as long: a frame the
	// peer holds without acknowledging it (its receive queue or its rate
	// for this node is full) is not resent on every ack meanwhile.
	thresh := max(2*p.minRTT, FastRetransmitMin)
	for s := p.una; s < highest; s++ {
		if e := p.ring[s%w]; !e.sacked && now.Sub(e.sentAt) >= thresh<<min(max(e.xmits-1, 0), maxResendShift) {
			p.transmit(e, now)
		}
	}
}

// receive processes one datagram from the peer. It takes frame.
func (p *peer) receive(frame bufpool.Buf, now time.Time) {
	l := p.l
	h, err := ParseHeader(frame.Bytes())
	if err != nil {
		l.reject(p.id, err)
		frame.Release()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.closed.Load() {
		frame.Release()
		return
	}
	switch {
	case h.SrcEpoch < p.epoch:
		frame.Release() // from an older incarnation of the peer
		return
	case h.SrcEpoch > p.epoch:
		if p.epoch != 0 {
			l.restarts.Add(1)
			l.log.Info("peer restarted", "peer", p.id, "old_peer_epoch", p.epoch, "peer_epoch", h.SrcEpoch,
				"frames_to_resend", p.nxt-p.una)
			p.resetRecv()
			p.resetSend(true)
		}
		p.epoch = h.SrcEpoch
		p.probeBackoff = 0
	}
	p.peerCredit = h.Window
	if h.DstEpoch != l.cfg.Epoch {
		// A probe, or a frame for an older incarnation of this node: tell
		// the peer who is here now.
		frame.Release()
		p.ackSoon(now)
		if p.ackNow {
			p.sendAck()
		}
		p.fill(now)
		return
	}
	p.onAck(&h, now)
	if h.Kind == KindData || h.Kind == KindPrefix {
		p.onData(h.Seq, frame, now)
	} else {
		frame.Release()
	}
	p.fill(now)
	if p.ackNow || p.ackOwed >= l.cfg.AckEvery {
		p.sendAck()
	}
}

// onData files a data frame in the receive window and hands up what is in
// order. It takes frame. A frame that is not next in order is dropped when
// the peer's reorder window holds its credit already (half of
// Config.PeerFrames): it stays unacknowledged, and the peer sends it
// again. A correct sender keeps within the credit and never sees a drop.
func (p *peer) onData(seq uint64, frame bufpool.Buf, now time.Time) {
	l := p.l
	l.framesRecv.Add(1)
	w := uint64(len(p.rcvRing))
	switch {
	case seq < p.rcvNxt:
		l.dups.Add(1)
		frame.Release()
		p.ackSoon(now) // the sender missed an ack, or the frame is replayed
		return
	case seq >= p.rcvNxt+w:
		l.beyond.Add(1)
		frame.Release()
		p.ackSoon(now)
		return
	}
	slot := seq % w
	if !p.rcvRing[slot].IsZero() {
		l.dups.Add(1)
		frame.Release()
		return
	}
	if seq != p.rcvNxt && p.ringHeld >= p.credit() {
		l.quotaDrops.Add(1)
		p.quotaDrops++
		frame.Release()
		p.refused(now, "link: peer over its frame quota, frames dropped", "seq", seq, "next", p.rcvNxt)
		return
	}
	p.rcvRing[slot] = frame
	p.ringHeld++
	if l.cfg.RecvRate > 0 {
		p.offered(frame.Bytes())
	}
	if seq != p.rcvNxt {
		l.ooo.Add(1)
		// Ack at once when the frame opens a new gap or fills one, so
		// that the sender learns of the loss (or the repair) within a
		// round trip; frames that extend a known gap wait for AckEvery.
		if seq != p.rcvHigh+1 {
			p.ackNow = true
		}
	}
	p.rcvHigh = max(p.rcvHigh, seq)
	p.ackOwed++
	p.deliver(now)
}

// deliver hands up the frames that are next in order, while the receive
// queue has room and the peer's receive rate allows (admit: checked
// before the frame is decoded). It returns the next sequence number it
// waits for.
func (p *peer) deliver(now time.Time) uint64 {
	l := p.l
	w := uint64(len(p.rcvRing))
	for {
		slot := p.rcvNxt % w
		f := p.rcvRing[slot]
		if f.IsZero() || p.pending.Load() >= p.recvShare() || !l.tryReserve() {
			return p.rcvNxt
		}
		if !p.admit(f.Bytes(), p.rcvNxt, now) {
			l.reserved.Add(-1)
			return p.rcvNxt
		}
		p.rcvRing[slot] = bufpool.Buf{}
		p.ringHeld--
		p.rcvNxt++
		if in, ok := p.process(f); ok {
			l.messagesRecv.Add(1)
			p.pending.Add(1)
			l.inbound <- in // a slot is reserved: never blocks
		} else {
			l.reserved.Add(-1)
		}
	}
}

// countCopy records the payload bytes of one received frame as copied when
// the conduit copies.
func (p *peer) countCopy(n int) {
	if !p.l.copies || n == 0 {
		return
	}
	p.l.copiedPayload.Add(uint64(n))
	if m := p.l.cfg.Metrics; m != nil {
		m.CountCopy(n)
	}
}

// process decodes one in-order data frame. It takes f; it returns a
// message when f completes one.
func (p *peer) process(f bufpool.Buf) (netio.Inbound, bool) {
	l := p.l
	frame := f.Slice(HeaderSize, f.Len()-HeaderSize)
	if Kind(f.Bytes()[2]) == KindPrefix {
		return p.piece(f, frame)
	}
	if p.re.spillLen > 0 {
		l.reject(p.id, broadcast.Reject(broadcast.ReasonLength, "prefix from %v cut short after %d of %d bytes",
			p.id, len(p.re.spill), p.re.spillLen))
		p.re.abort()
	}
	b := frame.Bytes()
	if len(b) >= broadcast.HeaderSize && broadcast.Flags(b[broadcast.FlagsOffset])&broadcast.Fragment != 0 {
		return p.continuation(f, frame)
	}
	m, err := broadcast.DecodeFrame(frame, l.cfg.Limits)
	if err != nil {
		l.reject(p.id, err)
		p.re.abort()
		f.Release()
		return netio.Inbound{}, false
	}
	return p.first(m, f)
}

// piece adds one piece of a spilt prefix. It takes f; frame is f's part
// after the link header. When the prefix is complete it is decoded as a
// first frame without payload bytes.
func (p *peer) piece(f, frame bufpool.Buf) (netio.Inbound, bool) {
	l := p.l
	r := &p.re
	b := frame.Bytes()
	defer f.Release()
	fail := func(err error) (netio.Inbound, bool) {
		l.reject(p.id, err)
		r.abort()
		return netio.Inbound{}, false
	}
	if len(b) <= PieceHeaderSize || b[0] != PieceMarker || b[1]|b[2]|b[3] != 0 {
		return fail(broadcast.Reject(broadcast.ReasonMagic, "malformed prefix piece from %v", p.id))
	}
	off := int(binary.LittleEndian.Uint32(b[4:]))
	data := b[PieceHeaderSize:]
	if off == 0 {
		if r.active || r.spillLen > 0 {
			l.reject(p.id, broadcast.Reject(broadcast.ReasonLength, "message from %v cut short by a new prefix", p.id))
			r.abort()
		}
		h, err := broadcast.ParseHeader(data)
		if err != nil {
			return fail(err)
		}
		total := broadcast.HeaderSize + int(h.BodyLen) + int(h.AuthLen)
		if total > maxPrefix(*l.cfg.Limits) || h.Flags&broadcast.Fragment != 0 {
			return fail(broadcast.Reject(broadcast.ReasonLength, "spilt prefix of %d bytes from %v", total, p.id))
		}
		r.spill, r.spillLen = make([]byte, 0, total), total
	} else if r.spillLen == 0 || off != len(r.spill) {
		return fail(broadcast.Reject(broadcast.ReasonLength, "prefix piece at %d from %v, want %d", off, p.id, len(r.spill)))
	}
	if len(data) > r.spillLen-len(r.spill) {
		return fail(broadcast.Reject(broadcast.ReasonLength, "prefix piece from %v runs past the prefix's %d bytes", p.id, r.spillLen))
	}
	r.spill = append(r.spill, data...)
	if len(r.spill) < r.spillLen {
		return netio.Inbound{}, false
	}
	pre := r.spill
	r.spill, r.spillLen = nil, 0
	// The frame decoder refuses a first frame without payload bytes; this
	// one's payload follows in continuations, so decode it as if it had
	// none and restore the flag (not authenticated) after.
	flags := broadcast.Flags(pre[broadcast.FlagsOffset])
	pending := flags&broadcast.HasPayload != 0 && flags&broadcast.Stripped == 0
	if pending {
		pre[broadcast.FlagsOffset] = byte(flags &^ broadcast.HasPayload)
	}
	whole := bufpool.Wrap(pre)
	m, err := broadcast.DecodeFrame(whole, l.cfg.Limits)
	if err != nil {
		whole.Release()
		return fail(err)
	}
	if !pending {
		return p.first(m, whole)
	}
	defer whole.Release() // first keeps a copy of body and authenticator
	if m.PayloadLen == 0 {
		return fail(broadcast.Reject(broadcast.ReasonLength, "spilt prefix from %v with an empty payload", p.id))
	}
	m.Flags = flags
	return p.first(m, bufpool.Buf{})
}

// first handles a decoded message that is not a continuation: whole, or
// the start of a fragmented one. It takes f, the buffer m's views are in.
func (p *peer) first(m broadcast.Message, f bufpool.Buf) (netio.Inbound, bool) {
	l := p.l
	if p.re.active {
		l.reject(p.id, broadcast.Reject(broadcast.ReasonLength, "message from %v cut short after %d of %d payload bytes",
			p.id, p.re.got, p.re.msg.PayloadLen))
		p.re.abort()
	}
	p.re.skip = false
	p.countCopy(m.Payload.Len())
	if m.Flags&broadcast.HasPayload != 0 && uint32(m.Payload.Len()) < m.PayloadLen {
		// The first frame of a fragmented message: keep a copy of its small
		// prefix (body, authenticator), and its payload window, which owns
		// the frame.
		r := &p.re
		pre := make([]byte, len(m.Body)+len(m.Auth))
		copy(pre, m.Body)
		copy(pre[len(m.Body):], m.Auth)
		r.prefix = pre
		r.msg = m
		r.msg.Body, r.msg.Auth = nil, nil
		if len(m.Body) > 0 {
			r.msg.Body = pre[:len(m.Body):len(m.Body)]
		}
		if len(m.Auth) > 0 {
			r.msg.Auth = pre[len(m.Body):]
		}
		r.msg.Payload = bufpool.Buf{}
		r.parts = r.parts[:0]
		r.got = uint32(m.Payload.Len())
		r.next = 1
		r.active = true
		r.touched = time.Time{}
		frames := 1 + (int(m.PayloadLen)-m.Payload.Len()+chunkRoom(l.mtu)-1)/chunkRoom(l.mtu)
		if frames > l.cfg.PeerFrames/2 {
			// More frames than the quota lends a reassembly: receive into
			// the heap, a chunk at a time, so that the message never waits
			// for frames and the pool keeps its frames for everyone else.
			// The buffer grows with what arrives, not with what the first
			// frame announces.
			r.heap = make([]byte, 0, min(int(m.PayloadLen), heapStart))
			r.heap = p.appendHeap(r.heap, m.Payload)
			f.Release()
		} else if !m.Payload.IsZero() { // zero after a spilt prefix
			r.parts = append(r.parts, m.Payload)
		}
		return netio.Inbound{}, false
	}
	if m.Flags&broadcast.Stripped != 0 && m.PayloadLen > 0 {
		p.re.skip, p.re.skipDigest = true, m.Digest
	}
	return netio.NewInbound(p.id, m, f, bufpool.Buf{}), true
}

// continuation adds a continuation frame to the reassembly. It takes f;
// frame is f's onecast part.
func (p *peer) continuation(f, frame bufpool.Buf) (netio.Inbound, bool) {
	l := p.l
	r := &p.re
	b := frame.Bytes()
	if !r.active && r.skip && broadcast.Digest(b[broadcast.DigestOffset:broadcast.DigestOffset+len(broadcast.Digest{})]) == r.skipDigest {
		f.Release() // the tail of a payload stripped on the way in
		return netio.Inbound{}, false
	}
	if r.active && broadcast.Flags(b[broadcast.FlagsOffset])&broadcast.Stripped != 0 &&
		broadcast.Digest(b[broadcast.DigestOffset:broadcast.DigestOffset+len(broadcast.Digest{})]) == r.msg.Digest {
		// The kernel cut this chunk: the digest entered its held set after
		// the message's first frame passed (or its prefix was spilt, which
		// the kernel leaves alone). The payload is held here, so the
		// message goes up stripped, as if its first frame had been cut.
		f.Release()
		msg := r.msg
		msg.Flags = msg.Flags&^broadcast.HasPayload | broadcast.Stripped
		r.abort()
		r.skip, r.skipDigest = true, msg.Digest
		return netio.NewInbound(p.id, msg, bufpool.Buf{}, bufpool.Buf{}), true
	}
	m, err := broadcast.DecodeFrame(frame, l.cfg.Limits)
	if err == nil && !r.active {
		err = broadcast.Reject(broadcast.ReasonFlags, "fragment %d from %v without a first frame", m.FragIndex, p.id)
	}
	if err == nil {
		h := &r.msg.Header
		if m.Digest != h.Digest || m.PayloadLen != h.PayloadLen || m.Sender != h.Sender || m.Instance != h.Instance ||
			m.Protocol != h.Protocol || m.Type != h.Type || m.Round != h.Round {
			err = broadcast.Reject(broadcast.ReasonFlags, "fragment %d from %v does not match its first frame", m.FragIndex, p.id)
		} else if m.FragIndex != r.next || m.FragOffset != r.got {
			err = broadcast.Reject(broadcast.ReasonLength, "fragment %d at %d from %v, want fragment %d at %d",
				m.FragIndex, m.FragOffset, p.id, r.next, r.got)
		}
	}
	if err != nil {
		l.reject(p.id, err)
		r.abort()
		f.Release()
		return netio.Inbound{}, false
	}
	p.countCopy(m.Payload.Len())
	if r.heap == nil && len(r.parts) >= max(1, l.cfg.PeerFrames/2) {
		// More fragments than the first frame's length promised (a sender
		// cutting its payload small): move what is held to the heap.
		r.heap = make([]byte, 0, min(int(r.msg.PayloadLen), heapStart))
		for i, part := range r.parts {
			r.heap = p.appendHeap(r.heap, part)
			part.Release()
			r.parts[i] = bufpool.Buf{}
		}
		r.parts = r.parts[:0]
	}
	n := m.Payload.Len()
	if r.heap != nil {
		r.heap = p.appendHeap(r.heap, m.Payload)
		f.Release()
	} else {
		r.parts = append(r.parts, m.Payload)
	}
	r.got += uint32(n)
	r.next++
	r.touched = time.Time{}
	if r.got < r.msg.PayloadLen {
		return netio.Inbound{}, false
	}
	var chain bufpool.Buf
	if r.heap != nil {
		chain = bufpool.Wrap(r.heap)
		r.heap = nil
		l.heapReassembled.Add(1)
		if mt := l.cfg.Metrics; mt != nil {
			mt.CountCopy(chain.Len())
		}
	} else {
		chain = bufpool.Link(r.parts...)
	}
	msg := r.msg
	msg.Payload = chain
	clear(r.parts)
	r.parts = r.parts[:0]
	r.active = false
	r.msg = broadcast.Message{}
	r.prefix = nil
	l.reassembled.Add(1)
	return netio.NewInbound(p.id, msg, bufpool.Buf{}, chain), true
}

// heapStart is the first capacity of a heap reassembly's buffer, which
// then doubles as bytes arrive: a first frame that announces a large
// payload and is never continued costs little.
const heapStart = 16 << 10

// appendHeap copies b's bytes to the end of buf, the heap buffer of a
// large message, and counts them.
func (p *peer) appendHeap(buf []byte, b bufpool.Buf) []byte {
	for seg := range b.Segments() {
		buf = append(buf, seg...)
	}
	p.l.heapCopied.Add(uint64(b.Len()))
	return buf
}

// resetSend empties the send stream. With requeue, the frames in flight go
// back to the head of the queue, to be renumbered and sent to the peer's
// new incarnation; otherwise every entry is released.
func (p *peer) resetSend(requeue bool) {
	w := uint64(len(p.ring))
	for s := p.nxt; s > p.una; s-- {
		e := p.ring[(s-1)%w]
		p.ring[(s-1)%w] = nil
		if requeue {
			e.seq, e.xmits, e.sacked = 0, 0, false
			p.queue.pushFront(e)
		} else {
			p.l.freeEntry(e)
		}
	}
	if !requeue {
		for p.queue.len() > 0 {
			p.l.freeEntry(p.queue.pop())
		}
	}
	p.una, p.nxt, p.backoff = 1, 1, 0
}

// resetRecv empties the receive stream.
func (p *peer) resetRecv() {
	for i := range p.rcvRing {
		p.rcvRing[i].Release()
		p.rcvRing[i] = bufpool.Buf{}
	}
	p.ringHeld = 0
	p.re.abort()
	p.re.skip = false
	p.rcvNxt, p.rcvHigh, p.ackOwed, p.ackNow = 1, 0, 0, false
}
