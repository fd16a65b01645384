package link

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/goutils/syncutil"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
)

// DeadBackoff is the number of consecutive retransmission timeouts
// (about 10+20+40+80+160 ms at the default timeouts) after which a peer
// counts as silent.
const DeadBackoff = 5

// LiveQueueFactor is how much further than MaxQueue a live peer's queue may
// grow.
const LiveQueueFactor = 8

// ErrBacklog is returned by Send when a peer's send queue is full: the peer
// has stopped acknowledging (or is slower than the sender) and the link
// bounds the memory it spends on it. The message is not sent to that peer.
var ErrBacklog = errors.New("link: peer send queue full")

// DefaultMaxPayload is Config.MaxPayload's default, 8 MiB: what the
// default frame pools carry (8 MiB arrives over the default UDP pool and
// AF_XDP UMEM, held frames rehomed as they arrive); a larger payload is
// refused at the sender, naming the limit. Raise it, with the pools, for
// larger payloads (at most the decoder's Limits.MaxPayload, 64 MiB).
const DefaultMaxPayload = 8 << 20

// ErrTooLarge is returned by Send for a payload larger than
// Config.MaxPayload; the error names the limit.
var ErrTooLarge = errors.New("link: payload exceeds the link's maximum")

// DefaultRecvRate and DefaultRecvByteRate are the default receive
// capacity of a node (Config.RecvRate, Config.RecvByteRate), shared by its
// peers.
const (
	DefaultRecvRate     = 16384
	DefaultRecvByteRate = 32 << 20
)

// RefusalLogInterval is the least time between two log lines about one
// peer's refused data (frames over its quota, expired partial messages):
// the counters count every refusal, the log says that they happen.
const RefusalLogInterval = time.Second

// Config configures a Link.
type Config struct {
	// Self is this node's ID and N the number of nodes (IDs 0 … N-1).
	Self broadcast.NodeID
	N    int
	// Conduit carries the link's datagrams. Required. The link owns it and
	// closes it.
	Conduit netio.Conduit
	// Window is the number of frames in flight per peer, unacknowledged
	// (default 512, at most 65536), and the span of sequence numbers the
	// receive reorder window covers. The peer's credit (PeerFrames/2) may
	// cap the frames in flight lower; what a receiver holds per peer is
	// bounded by PeerFrames, not by Window. In the loopback cluster 256 frames cut the throughput of
	// 64 KiB payloads by ten; under 5 % loss, wider windows recover more
	// slowly (selective acks cover 64 frames past the first gap).
	Window int
	// MaxQueue bounds the frames waiting for the window for a peer that is
	// silent (not heard from, or backed off DeadBackoff times): a Send
	// beyond it fails with ErrBacklog (default 8192). A live peer's queue
	// may grow to LiveQueueFactor × MaxQueue: dropping a message to a live
	// peer would cost the protocol its liveness, so the runner slows the
	// application down instead (Congested) and the queue drains.
	MaxQueue int
	// RecvQueue bounds the messages received and not yet taken by Recv
	// (default 4096). When it is full, frames stay unacknowledged and the
	// senders' windows close: flow control end to end. One peer's messages
	// may take RecvQueue/(N-1) slots at most, so that a peer flooding
	// messages the application is slow to take never fills the queue for
	// the others; its own frames wait in its reorder window meanwhile.
	RecvQueue int
	// RTOInit, RTOMin and RTOMax bound the retransmission timeout (defaults
	// 50 ms, 10 ms, 1 s). The timeout adapts to the measured round trip
	// (RFC 6298) and doubles on each timeout up to RTOMax.
	RTOInit, RTOMin, RTOMax time.Duration
	// Tick is the period of the timer that sends delayed acks, probes and
	// retransmissions (default 1 ms).
	Tick time.Duration
	// AckEvery sends an ack at once after this many in-order frames
	// (default 4); fewer are acknowledged within Tick, or piggybacked on data.
	AckEvery int
	// Limits bound what the decoder accepts (default broadcast.DefaultLimits).
	// Its MaxPayload is lowered to Config.MaxPayload.
	Limits *broadcast.Limits
	// MaxPayload is the largest payload the link carries, in bytes
	// (default DefaultMaxPayload, 8 MiB; at most Limits.MaxPayload). Send
	// refuses a larger one with ErrTooLarge, and a first frame that
	// announces a larger one is rejected. Whatever the frame pool, a
	// payload up to MaxPayload arrives: one that needs more frames than
	// half of PeerFrames is received into a heap buffer (one counted copy,
	// Stats.HeapCopiedBytes), so that a large message never waits for
	// frames the pool cannot give.
	MaxPayload int
	// PeerFrames is the most conduit frames the link holds for one peer
	// (default: the conduit's frame pool / (2N), at least 64; 2 × Window
	// when the conduit does not expose its pool): half for its reorder
	// window, half for its partly received message. The window's half is
	// the peer's credit, announced in every header (Header.Window), and a
	// correct sender keeps that few frames in flight; a frame beyond it
	// that is not next in the stream is dropped and counted
	// (Stats.QuotaDrops), and the peer retransmits it. The frame next in
	// order is always taken, so a peer's stream never stalls on its own
	// quota, and what N-1 peers hold stays under half the pool, whatever
	// f of them send. A message needing more frames than the other half is
	// received into the heap (MaxPayload). See the package doc's resource
	// table.
	PeerFrames int
	// PartialTimeout drops a partly received message (a fragmented
	// payload, a spilt prefix) that made no progress for this long while
	// the link waited on its sender, and counts it (Stats.PartialsExpired).
	// Default 10 s.
	PartialTimeout time.Duration
	// RecvRate and RecvByteRate are the node's receive capacity, in
	// messages and bytes per second, of which each of the N-1 peers is
	// owed a fair share (default 16384 messages and 32 MiB per second; a
	// negative RecvRate: no receive rate at all). A peer's messages are handed up at most at
	// RateFactor times the rate of the median peer over the last
	// RateInterval, and never held below that fair share: a peer that
	// sends faster has its frames held in its reorder window,
	// unacknowledged, before anything decodes or verifies them, so its
	// window closes and it slows to its budget (Stats.RateDeferred). The
	// limit is checked before a message is decoded, authenticated or
	// stepped: one refused frame costs a header read. See the package
	// doc's resource table.
	RecvRate     int
	RecvByteRate int64
	// RateFactor is how many times the median peer's rate a peer may send
	// before it is held back (default 2; at least 1).
	RateFactor float64
	// Metrics, when set, receives user-space copies on the receive path and
	// rejected frames.
	Metrics *broadcast.Metrics
	// Epoch names this incarnation; it must grow across restarts of a node
	// (default: the current time in nanoseconds).
	Epoch uint64
	// Logger receives the link's logs (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) fill() error {
	if c.Window == 0 {
		c.Window = 512
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 8192
	}
	if c.RecvQueue == 0 {
		c.RecvQueue = 4096
	}
	if c.RTOInit == 0 {
		c.RTOInit = 50 * time.Millisecond
	}
	if c.RTOMin == 0 {
		c.RTOMin = 10 * time.Millisecond
	}
	if c.RTOMax == 0 {
		c.RTOMax = time.Second
	}
	if c.Tick == 0 {
		c.Tick = time.Millisecond
	}
	if c.AckEvery == 0 {
		c.AckEvery = 4
	}
	if c.Limits == nil {
		c.Limits = &broadcast.DefaultLimits
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = int(min(DefaultMaxPayload, int64(c.Limits.MaxPayload)))
	}
	if c.PartialTimeout == 0 {
		c.PartialTimeout = 10 * time.Second
	}
	if c.RecvRate == 0 {
		c.RecvRate = DefaultRecvRate
	}
	if c.RecvByteRate == 0 {
		c.RecvByteRate = DefaultRecvByteRate
	}
	if c.RateFactor == 0 {
		c.RateFactor = 2
	}
	if c.Epoch == 0 {
		c.Epoch = uint64(time.Now().UnixNano())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Conduit == nil:
		return errors.New("link: Config.Conduit is required")
	case c.N <= 0:
		return fmt.Errorf("link: Config.N must be positive, got %d", c.N)
	case int(c.Self) >= c.N:
		return fmt.Errorf("link: Config.Self %d outside the cluster of %d", c.Self, c.N)
	case c.Window < 1 || c.Window > 1<<16:
		return fmt.Errorf("link: Config.Window %d outside [1, 65536]", c.Window)
	case c.MaxQueue < 1:
		return fmt.Errorf("link: Config.MaxQueue must be positive, got %d", c.MaxQueue)
	case c.RecvQueue < 1:
		return fmt.Errorf("link: Config.RecvQueue must be positive, got %d", c.RecvQueue)
	case c.RTOMin <= 0 || c.RTOMax < c.RTOMin || c.RTOInit < c.RTOMin || c.RTOInit > c.RTOMax:
		return fmt.Errorf("link: Config.RTOMin %v ≤ RTOInit %v ≤ RTOMax %v does not hold", c.RTOMin, c.RTOInit, c.RTOMax)
	case c.Conduit.MTU() < HeaderSize+broadcast.HeaderSize+64:
		return fmt.Errorf("link: conduit MTU %d is too small for the link and onecast headers", c.Conduit.MTU())
	case c.MaxPayload < 1 || int64(c.MaxPayload) > int64(c.Limits.MaxPayload):
		return fmt.Errorf("link: Config.MaxPayload %d outside [1, Limits.MaxPayload %d]", c.MaxPayload, c.Limits.MaxPayload)
	case c.PartialTimeout < 0:
		return fmt.Errorf("link: Config.PartialTimeout must not be negative, got %v", c.PartialTimeout)
	case c.RateFactor < 1:
		return fmt.Errorf("link: Config.RateFactor must be at least 1, got %v", c.RateFactor)
	case c.RecvRate > 0 && c.RecvByteRate <= 0:
		return fmt.Errorf("link: Config.RecvByteRate must be positive with a RecvRate, got %d", c.RecvByteRate)
	}
	if frags := (c.MaxPayload + chunkRoom(c.Conduit.MTU()) - 1) / chunkRoom(c.Conduit.MTU()); frags >= 1<<16 {
		return fmt.Errorf("link: Config.MaxPayload %d needs %d fragments at MTU %d, more than 65535", c.MaxPayload, frags, c.Conduit.MTU())
	}
	if int64(c.MaxPayload) < int64(c.Limits.MaxPayload) {
		lim := *c.Limits
		lim.MaxPayload = uint32(c.MaxPayload)
		c.Limits = &lim
	}
	if c.PeerFrames == 0 {
		c.PeerFrames = 2 * c.Window
		if fp, ok := c.Conduit.(framePool); ok && fp.Pool() != nil {
			c.PeerFrames = max(64, fp.Pool().Frames()/(2*c.N))
		}
	}
	if c.PeerFrames < 1 {
		return fmt.Errorf("link: Config.PeerFrames must be positive, got %d", c.PeerFrames)
	}
	return nil
}

// chunkRoom is the payload bytes one continuation frame carries at mtu.
func chunkRoom(mtu int) int { return mtu - HeaderSize - broadcast.HeaderSize }

// framePool is implemented by conduits that receive into a bufpool.Pool:
// the link sizes its per-peer frame quota from it.
type framePool interface{ Pool() *bufpool.Pool }

// Stats are a link's counters, summed over its peers.
type Stats struct {
	// MessagesSent counts Send calls accepted; FramesSent the data frames
	// they became (fragments included), first transmissions only.
	MessagesSent, FramesSent uint64
	// Fragments counts continuation frames sent; SpiltPrefixes the
	// messages whose prefix was sent in KindPrefix pieces.
	Fragments, SpiltPrefixes uint64
	// Retransmits counts data frames sent again: after a timeout or on a
	// gap in the selective acks.
	Retransmits uint64
	// Timeouts counts retransmission timeouts.
	Timeouts uint64
	// AcksSent counts ack-only frames (acks and probes).
	AcksSent uint64
	// FramesReceived counts data frames received; Duplicates the ones
	// suppressed because they had been received before; OutOfOrder the ones
	// held for a gap; BeyondWindow the ones dropped beyond the window.
	FramesReceived, Duplicates, OutOfOrder, BeyondWindow uint64
	// MessagesReceived counts messages handed to Recv; Reassembled the ones
	// put together from fragments.
	MessagesReceived, Reassembled uint64
	// Backlogged counts Send calls refused with ErrBacklog.
	Backlogged uint64
	// Queued is the frames waiting for a peer's window now, summed over
	// the peers (a gauge, not a counter).
	Queued int
	// Rejected counts frames refused as malformed.
	Rejected uint64
	// Restarts counts peers seen to restart (a new epoch).
	Restarts uint64
	// RecvCopiedPayload counts payload bytes the conduit copied into user
	// memory on receive (0 on a zero-copy conduit).
	RecvCopiedPayload uint64

	// Budget refusals and the copies budgets cost (see the package doc's
	// resource table).

	// QuotaDrops counts frames dropped because their peer held
	// Config.PeerFrames frames already (the peer retransmits them).
	QuotaDrops uint64
	// PartialsExpired counts partly received messages dropped after
	// Config.PartialTimeout without progress.
	PartialsExpired uint64
	// TooLarge counts Send calls refused with ErrTooLarge.
	TooLarge uint64
	// HeapReassembled counts messages received into a heap buffer because
	// they needed more frames than half of Config.PeerFrames;
	// HeapCopiedBytes the payload bytes copied there (also in
	// Metrics.CopiedBytes).
	HeapReassembled, HeapCopiedBytes uint64
	// RateDeferred counts frames held back because their peer had used
	// its receive rate (Config.RecvRate): each such frame once.
	RateDeferred uint64
}

// PeerStats describe the link with one peer.
type PeerStats struct {
	Epoch                   uint64
	FramesSent, Retransmits uint64
	InFlight, Queued        int
	RTO, SRTT               time.Duration
	Backoff                 int
	// HeldFrames is the conduit frames held for the peer now (reorder
	// window and partial message), at most Config.PeerFrames (plus the one
	// frame next in order); PartialBytes the payload bytes of its partly
	// received message.
	HeldFrames, PartialBytes int
	// QuotaDrops and PartialsExpired are the peer's share of the Stats
	// counters of the same names.
	QuotaDrops, PartialsExpired uint64
	// RateDeferred is the peer's share of Stats.RateDeferred; RateMsgs and
	// RateBytes its receive rate now (messages and bytes per second; 0:
	// no limit).
	RateDeferred        uint64
	RateMsgs, RateBytes float64
	// Pending is the peer's messages handed up and not yet taken by Recv,
	// at most RecvQueue/(N-1).
	Pending int
}

// Link is a reliable, ordered, duplicate-free netio.Transport on a Conduit.
//
// Each ordered pair of nodes has a stream of data frames numbered from 1.
// The receiver acknowledges with a cumulative ack and a 64-bit selective-ack
// bitmap, piggybacked on its own data or in ack-only frames; the sender
// keeps each unacknowledged frame in a retransmit buffer (the link and
// onecast prefix bytes, and a retained reference to the payload, never a
// copy of it) and resends it after an adaptive timeout or when selective
// acks show a gap. At most Window frames are in flight; more wait in a
// bounded queue. A peer that stops acknowledging is backed off
// exponentially and probed with one frame per timeout.
//
// A message whose prefix and payload exceed the conduit's MTU is sent as a
// first frame (header, body, authenticator, first chunk) and continuation
// frames (header with Fragment set, a chunk); the receiver links the chunks'
// frames into one chain without copying.
//
// Restarts: every frame carries the sender's epoch and the receiver's epoch
// as the sender knows it. A node sends no data to a peer until it knows the
// peer's epoch (a probe and its answer); frames for an older epoch are
// dropped and answered. When a peer shows a new epoch, both streams with it
// start over: frames not yet acknowledged by the old incarnation are sent
// again, renumbered, to the new one.
type Link struct {
	cfg     Config
	conduit netio.Conduit
	log     *slog.Logger
	peers   []*peer
	copies  bool
	mtu     int

	inbound  chan netio.Inbound
	reserved atomic.Int64
	stopper  *syncutil.Stopper
	done     chan struct{}
	closed   atomic.Bool
	closeMu  sync.Mutex

	// Retransmit-buffer entries are recycled through a free list: they are
	// taken on the sending goroutine and freed on the receiving one, which
	// a sync.Pool serves poorly.
	freeMu  sync.Mutex
	freeEnt []*entry

	messagesSent, framesSent, fragments, retransmits, timeouts, acksSent atomic.Uint64
	framesRecv, dups, ooo, beyond, messagesRecv, reassembled             atomic.Uint64
	backlogged, rejected, restarts, copiedPayload, spilt                 atomic.Uint64
	quotaDrops, partialsExpired, tooLarge, heapReassembled, heapCopied   atomic.Uint64
	rateDeferred                                                         atomic.Uint64
}

var _ netio.Transport = (*Link)(nil)

// copier is implemented by conduits that copy received bytes into user
// memory (kernel sockets).
type copier interface{ RecvCopies() bool }

// buffered is implemented by conduits that receive in batches: Buffered
// says how many datagrams Recv returns without a system call.
type buffered interface{ Buffered() int }

// passHandler is implemented by conduits whose receive loop can run the
// link on each receive pass in its own goroutine (the AF_XDP conduit).
type passHandler interface {
	OnPass(fn func([]netio.Datagram))
}

// batchReceiver is implemented by conduits that hand up a receive pass at
// a time (the AF_XDP conduit): RecvBatch appends the pass to dst.
type batchReceiver interface {
	RecvBatch(ctx context.Context, dst []netio.Datagram) ([]netio.Datagram, error)
}

// New builds a link on cfg.Conduit and starts its receive and timer loops.
func New(cfg Config) (*Link, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	l := &Link{cfg: cfg, conduit: cfg.Conduit, mtu: cfg.Conduit.MTU(),
		log:     cfg.Logger.With("link", cfg.Self, "epoch", cfg.Epoch),
		inbound: make(chan netio.Inbound, cfg.RecvQueue), stopper: syncutil.NewStopper(), done: make(chan struct{})}
	if c, ok := cfg.Conduit.(copier); ok {
		l.copies = c.RecvCopies()
	}
	for i := range cfg.N {
		if broadcast.NodeID(i) == cfg.Self {
			l.peers = append(l.peers, nil)
			continue
		}
		l.peers = append(l.peers, newPeer(l, broadcast.NodeID(i)))
	}
	// Announce this incarnation at once, so that first contact costs one
	// round trip before the first message rather than a probe period.
	now := time.Now()
	for _, p := range l.peers {
		if p != nil {
			p.mu.Lock()
			p.probe(now)
			p.mu.Unlock()
		}
	}
	_ = l.conduit.Flush()
	l.stopper.RunWorker(l.recvLoop)
	l.stopper.RunWorker(l.timerLoop)
	return l, nil
}

// Epoch returns this incarnation's epoch.
func (l *Link) Epoch() uint64 { return l.cfg.Epoch }

// Conduit returns the conduit the link runs on.
func (l *Link) Conduit() netio.Conduit { return l.conduit }

// Send queues m for node `to` and transmits it as far as the window allows.
// It borrows m: the retransmit buffer copies the prefix (header, body,
// authenticator) and retains m.Payload until the peer acknowledges every
// frame of it. Call Flush to push the queued datagrams to the wire.
func (l *Link) Send(to broadcast.NodeID, m *broadcast.Message) error {
	if l.closed.Load() {
		return netio.ErrClosed
	}
	if int(to) >= len(l.peers) || l.peers[to] == nil {
		return fmt.Errorf("link: send to %v: not a peer of %v", to, l.cfg.Self)
	}
	if m.Flags&broadcast.HasPayload != 0 && uint32(m.Payload.Len()) != m.PayloadLen {
		return fmt.Errorf("link: send to %v: message carries %d of %d payload bytes", to, m.Payload.Len(), m.PayloadLen)
	}
	if m.Flags&broadcast.Fragment != 0 {
		return fmt.Errorf("link: send to %v: the Fragment flag belongs to the link", to)
	}
	room := l.mtu - HeaderSize
	prefix := m.PrefixLen()
	plen := m.Payload.Len()
	if plen > l.cfg.MaxPayload || int64(m.PayloadLen) > int64(l.cfg.MaxPayload) {
		l.tooLarge.Add(1)
		return fmt.Errorf("link: send to %v: payload of %d bytes exceeds Config.MaxPayload of %d bytes: %w",
			to, max(plen, int(m.PayloadLen)), l.cfg.MaxPayload, ErrTooLarge)
	}
	// A prefix too large for one frame (a PRE-PREPARE with a large batch, a
	// view change with many certificates) is spilt into KindPrefix pieces;
	// its payload then travels in continuation frames only.
	spill := prefix+min(plen, 1) > room // a first frame needs a payload byte if the message has any
	pieces, pieceRoom := 0, room-PieceHeaderSize
	if spill {
		if most := maxPrefix(*l.cfg.Limits); prefix > most {
			return fmt.Errorf("link: send to %v: prefix of %d bytes exceeds %d", to, prefix, most)
		}
		pieces = (prefix + pieceRoom - 1) / pieceRoom
	}
	frames := 1
	first := min(plen, room-prefix) // payload bytes in the first frame
	if spill {
		frames, first = pieces, 0
	}
	if plen > first {
		chunk := room - broadcast.HeaderSize
		frames += (plen - first + chunk - 1) / chunk
		if frames-pieces > 1<<16 {
			return fmt.Errorf("link: send to %v: payload of %d bytes needs %d fragments", to, plen, frames)
		}
	}
	p := l.peers[to]
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.closed.Load() {
		return netio.ErrClosed
	}
	if limit := p.queueLimit(); p.queue.len()+frames > limit {
		l.backlogged.Add(1)
		return fmt.Errorf("link: send to %v (%d frames queued): %w", to, p.queue.len(), ErrBacklog)
	}
	// First frame: link header | onecast prefix, body = first chunk.
	e := l.newEntry()
	var err error
	if e.hdr, err = broadcast.AppendPrefix(e.hdr, m); err != nil {
		l.freeEntry(e)
		return fmt.Errorf("link: send to %v: %w", to, err)
	}
	if spill {
		// Pieces: link header | piece header | up to pieceRoom prefix bytes.
		pre := e.hdr[HeaderSize:]
		for off := 0; off < len(pre); off += pieceRoom {
			n := min(pieceRoom, len(pre)-off)
			pe := l.newEntry()
			pe.kind = KindPrefix
			pe.hdr = append(pe.hdr, PieceMarker, 0, 0, 0)
			pe.hdr = binary.LittleEndian.AppendUint32(pe.hdr, uint32(off))
			pe.hdr = append(pe.hdr, pre[off:off+n]...)
			p.queue.push(pe)
		}
		l.spilt.Add(1)
		l.freeEntry(e)
	} else {
		if first > 0 {
			e.body = m.Payload.Slice(0, first).Retain()
		}
		p.queue.push(e)
	}
	if plen > first {
		h := m.Header
		h.Flags = broadcast.HasPayload | broadcast.Fragment
		h.BodyLen, h.AuthLen = 0, 0
		chunk := room - broadcast.HeaderSize
		for off, idx := first, 1; off < plen; off, idx = off+chunk, idx+1 {
			n := min(chunk, plen-off)
			h.FragIndex = uint16(idx)
			h.FragOffset = uint32(off)
			f := l.newEntry()
			f.hdr = f.hdr[:HeaderSize+broadcast.HeaderSize]
			h.Put(f.hdr[HeaderSize:])
			f.body = m.Payload.Slice(off, n).Retain()
			p.queue.push(f)
			l.fragments.Add(1)
		}
	}
	l.messagesSent.Add(1)
	p.fill(time.Now())
	return nil
}

// Flush pushes every queued datagram to the wire.
func (l *Link) Flush() error {
	if err := l.conduit.Flush(); err != nil && !errors.Is(err, netio.ErrClosed) {
		return fmt.Errorf("link: flush: %w", err)
	}
	return nil
}

// Recv blocks until a message arrives, ctx ends, or the link closes. The
// caller releases the Inbound.
func (l *Link) Recv(ctx context.Context) (netio.Inbound, error) {
	select {
	case in := <-l.inbound:
		l.taken(in)
		return in, nil
	default:
	}
	select {
	case in := <-l.inbound:
		l.taken(in)
		return in, nil
	case <-ctx.Done():
		return netio.Inbound{}, ctx.Err()
	case <-l.done:
		return netio.Inbound{}, netio.ErrClosed
	}
}

// Close stops the loops, closes the conduit and releases every buffer the
// link holds: retransmit buffers, queued and reordered frames, partial
// reassemblies and undelivered messages.
func (l *Link) Close() error {
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	if l.closed.Swap(true) {
		return nil
	}
	close(l.done)
	err := l.conduit.Close()
	l.stopper.Stop()
	for _, p := range l.peers {
		if p != nil {
			p.mu.Lock()
			p.resetSend(false)
			p.resetRecv()
			p.mu.Unlock()
		}
	}
	for {
		select {
		case in := <-l.inbound:
			in.Release()
			continue
		default:
		}
		break
	}
	if err != nil {
		return fmt.Errorf("link: close conduit: %w", err)
	}
	return nil
}

// Congested reports whether the send queue of a live, draining peer holds
// more than a quarter of MaxQueue: the runner then stops taking new
// submissions until the queues drain, so that a fast application slows
// down instead of growing the queues. Only a peer whose acknowledgements
// move counts — one whose oldest frame has timed out since its last ack
// (backoff ≥ 1) is not drained by waiting, and silent peers (see MaxQueue)
// not at all: neither a dead node nor a Byzantine one that receives and
// never acknowledges (bench --byzantine 1:ack-withhold) may stall the
// node's submissions. Such a peer's queue grows to its limit, then Send
// refuses it with ErrBacklog.
func (l *Link) Congested() bool {
	for _, p := range l.peers {
		if p == nil {
			continue
		}
		p.mu.Lock()
		c := !p.silent() && p.backoff == 0 && p.queue.len() > l.cfg.MaxQueue/4
		p.mu.Unlock()
		if c {
			return true
		}
	}
	return false
}

// Stats returns the link's counters.
func (l *Link) Stats() Stats {
	queued := 0
	for _, p := range l.peers {
		if p != nil {
			p.mu.Lock()
			queued += p.queue.len()
			p.mu.Unlock()
		}
	}
	return Stats{Queued: queued,
		MessagesSent: l.messagesSent.Load(), FramesSent: l.framesSent.Load(), Fragments: l.fragments.Load(),
		Retransmits: l.retransmits.Load(), Timeouts: l.timeouts.Load(), AcksSent: l.acksSent.Load(),
		FramesReceived: l.framesRecv.Load(), Duplicates: l.dups.Load(), OutOfOrder: l.ooo.Load(),
		BeyondWindow: l.beyond.Load(), MessagesReceived: l.messagesRecv.Load(), Reassembled: l.reassembled.Load(),
		Backlogged: l.backlogged.Load(), Rejected: l.rejected.Load(), Restarts: l.restarts.Load(),
		RecvCopiedPayload: l.copiedPayload.Load(), SpiltPrefixes: l.spilt.Load(),
		QuotaDrops: l.quotaDrops.Load(), PartialsExpired: l.partialsExpired.Load(), TooLarge: l.tooLarge.Load(),
		HeapReassembled: l.heapReassembled.Load(), HeapCopiedBytes: l.heapCopied.Load(),
		RateDeferred: l.rateDeferred.Load(),
	}
}

// PeerStats returns the state of the link with node id.
func (l *Link) PeerStats(id broadcast.NodeID) PeerStats {
	if int(id) >= len(l.peers) || l.peers[id] == nil {
		return PeerStats{}
	}
	p := l.peers[id]
	p.mu.Lock()
	defer p.mu.Unlock()
	partial := 0
	if p.re.active {
		partial = int(p.re.got)
	}
	return PeerStats{Epoch: p.epoch, FramesSent: p.framesSent, Retransmits: p.retransmits,
		InFlight: int(p.nxt - p.una), Queued: p.queue.len(), RTO: p.rto(), SRTT: p.srtt, Backoff: p.backoff,
		HeldFrames: p.heldFrames(), PartialBytes: partial, QuotaDrops: p.quotaDrops, PartialsExpired: p.partialsExpired,
		RateDeferred: p.rateDeferred, RateMsgs: max(p.rate.msgs.rate, 0), RateBytes: max(p.rate.bytes.rate, 0),
		Pending: int(p.pending.Load())}
}

func (l *Link) newEntry() *entry {
	var e *entry
	l.freeMu.Lock()
	if n := len(l.freeEnt); n > 0 {
		e = l.freeEnt[n-1]
		l.freeEnt[n-1] = nil
		l.freeEnt = l.freeEnt[:n-1]
	}
	l.freeMu.Unlock()
	if e == nil {
		e = &entry{kind: KindData}
	}
	if cap(e.hdr) < HeaderSize {
		e.hdr = make([]byte, HeaderSize, 256)
	}
	e.hdr = e.hdr[:HeaderSize]
	return e
}

func (l *Link) freeEntry(e *entry) {
	e.body.Release()
	e.body = bufpool.Buf{}
	e.seq, e.xmits, e.sacked, e.sentAt, e.kind = 0, 0, false, time.Time{}, KindData
	l.freeMu.Lock()
	l.freeEnt = append(l.freeEnt, e)
	l.freeMu.Unlock()
}

// maxPrefix is the largest onecast prefix the link carries: a header, the
// largest body the header can announce, the largest authenticator lim
// accepts.
func maxPrefix(lim broadcast.Limits) int {
	return broadcast.HeaderSize + 0xFFFF + int(lim.MaxAuth)
}

// reject counts a malformed frame.
func (l *Link) reject(from broadcast.NodeID, err error) {
	l.rejected.Add(1)
	if l.cfg.Metrics != nil {
		l.cfg.Metrics.Rejects.Count(err)
	}
	l.log.Debug("frame rejected", "from", from, "err", err)
}

// recvLoop takes datagrams from the conduit and hands them to their peer.
func (l *Link) recvLoop() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.stopper.ShouldStop():
		case <-l.done:
		}
		cancel()
	}()
	if ph, ok := l.conduit.(passHandler); ok {
		// The conduit's receive loop runs the link on each pass itself.
		ph.OnPass(l.onPass)
		<-ctx.Done()
		ph.OnPass(nil)
		return
	}
	if br, ok := l.conduit.(batchReceiver); ok {
		l.recvBatches(ctx, br)
		return
	}
	for {
		d, err := l.conduit.Recv(ctx)
		if err != nil {
			if l.closed.Load() || ctx.Err() != nil || errors.Is(err, netio.ErrClosed) {
				return
			}
			l.log.Warn("conduit receive failed", "err", err)
			continue
		}
		l.dispatch(d, time.Now())
		// Flush what the datagram caused (acks, newly opened window) once
		// the conduit's current batch is consumed.
		if b, ok := l.conduit.(buffered); !ok || b.Buffered() == 0 {
			_ = l.conduit.Flush()
		}
	}
}

// recvBatches is recvLoop over a conduit that hands up a receive pass at a
// time: one call and one clock reading per pass, one Flush after it.
func (l *Link) recvBatches(ctx context.Context, br batchReceiver) {
	batch := make([]netio.Datagram, 0, 256)
	for {
		var err error
		batch, err = br.RecvBatch(ctx, batch[:0])
		if err != nil {
			if l.closed.Load() || ctx.Err() != nil || errors.Is(err, netio.ErrClosed) {
				return
			}
			l.log.Warn("conduit receive failed", "err", err)
			continue
		}
		now := time.Now()
		for i, d := range batch {
			l.dispatch(d, now)
			batch[i] = netio.Datagram{}
		}
		_ = l.conduit.Flush()
	}
}

// onPass runs a receive pass in the conduit's receive loop: each datagram
// to its peer, then one Flush. It takes the datagrams' frames and never
// blocks (a full receive queue leaves frames unacknowledged).
func (l *Link) onPass(pass []netio.Datagram) {
	now := time.Now()
	for _, d := range pass {
		l.dispatch(d, now)
	}
	_ = l.conduit.Flush()
}

// dispatch hands a datagram to its peer. It takes d.Frame.
func (l *Link) dispatch(d netio.Datagram, now time.Time) {
	if int(d.From) >= len(l.peers) || l.peers[d.From] == nil {
		d.Frame.Release()
		return
	}
	l.peers[d.From].receive(d.Frame, now)
}

// timerLoop sends delayed acks, probes and retransmissions, and resumes
// deliveries held back by a full receive queue.
func (l *Link) timerLoop() {
	t := time.NewTicker(l.cfg.Tick)
	defer t.Stop()
	rated := time.Now()
	for {
		select {
		case <-l.stopper.ShouldStop():
			return
		case now := <-t.C:
			if d := now.Sub(rated); d >= RateInterval {
				l.setRates(d)
				rated = now
			}
			for _, p := range l.peers {
				if p != nil {
					p.mu.Lock()
					p.tick(now)
					p.mu.Unlock()
				}
			}
			_ = l.conduit.Flush()
		}
	}
}

// taken gives back the receive-queue slot of a message taken from inbound.
func (l *Link) taken(in netio.Inbound) {
	l.reserved.Add(-1)
	if int(in.From) < len(l.peers) && l.peers[in.From] != nil {
		l.peers[in.From].pending.Add(-1)
	}
}

// tryReserve takes one slot of the receive queue.
func (l *Link) tryReserve() bool {
	if l.reserved.Add(1) > int64(l.cfg.RecvQueue) {
		l.reserved.Add(-1)
		return false
	}
	return true
}
