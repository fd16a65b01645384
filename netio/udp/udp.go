package udp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
)

// DefaultMTU is the largest datagram sent by default: an Ethernet MTU of
// 1500 less the IPv4 and UDP headers.
const DefaultMTU = 1472

// DefaultBatch is the default number of datagrams per recvmmsg / sendmmsg.
const DefaultBatch = 32

// Fault injects the network's misbehaviour on the receive side, for tests:
// each datagram is dropped with probability Loss and otherwise held back
// with probability Reorder and delivered after later datagrams (or after
// MaxHold, whichever comes first). The decisions come from an RNG seeded
// with Seed, so a run with the same arrival order is the same run.
type Fault struct {
	Seed    uint64
	Loss    float64
	Reorder float64
	// MaxHold bounds how long a reordered datagram is held (default 2 ms).
	MaxHold time.Duration
}

// Config configures a Conduit.
type Config struct {
	// Self is this node's ID; Peers[Self] is the address bound.
	Self broadcast.NodeID
	// Peers is every node's address, indexed by NodeID.
	Peers []netip.AddrPort
	// Pool provides the receive frames. Required; its FrameSize must be at
	// least MTU.
	Pool *bufpool.Pool
	// MTU is the largest datagram sent or received (default DefaultMTU, at
	// most 65507).
	MTU int
	// Batch is the number of datagrams per system call (default DefaultBatch).
	Batch int
	// SocketBuffer sets SO_RCVBUF and SO_SNDBUF when positive (default 4 MiB).
	SocketBuffer int
	// Watermark is the number of free pool frames under which the conduit
	// asks the watched PayloadStore (WatchStore) to copy long-held payloads
	// out to the heap and give their frames back, so that payloads a
	// protocol keeps (Bracha answers late fetches from delivered payloads)
	// do not starve the receive path. Default Frames/8; negative disables.
	Watermark int
	// Fault, when set, injects loss and reordering (tests only).
	Fault *Fault
	// Logger receives the conduit's logs (default slog.Default()).
	Logger *slog.Logger
}

// Stats are the UDP conduit's counters beyond netio.ConduitStats.
type Stats struct {
	netio.ConduitStats
	// RecvCalls and SendCalls count recvmmsg and sendmmsg system calls.
	RecvCalls, SendCalls uint64
	// InjectedLoss and InjectedReorder count the Fault option's work.
	InjectedLoss, InjectedReorder uint64
	// UnknownPeer counts datagrams from addresses outside the cluster (and
	// datagrams cut short because they exceeded the MTU).
	UnknownPeer uint64
	// NoFrame counts datagrams dropped because the pool had no free frame.
	NoFrame uint64
	// RehomedPayloads and RehomedBytes count payloads the watched store
	// copied out of the pool because free frames ran under the watermark.
	RehomedPayloads, RehomedBytes uint64
	// SendErrors counts datagrams the kernel refused.
	SendErrors uint64
}

// PeerStats count the traffic with one peer.
type PeerStats struct {
	FramesSent, FramesReceived uint64
	BytesSent, BytesReceived   uint64
}

type peerCounters struct {
	framesSent, framesRecv, bytesSent, bytesRecv atomic.Uint64
}

// Conduit is a netio.Conduit on one kernel UDP socket, with batched IO:
// recvmmsg into pool frames (the kernel's copy into user memory is the one
// receive-path copy, counted in RecvCopiedBytes) and sendmmsg from the
// caller's buffers (a header slice and the payload's own segments, gathered
// by the kernel: no user-space copy of payload bytes).
type Conduit struct {
	cfg   Config
	conn  *net.UDPConn
	pc    *ipv4.PacketConn
	peers []*net.UDPAddr
	index map[netip.AddrPort]broadcast.NodeID
	log   *slog.Logger

	// send side, under smu
	smu    sync.Mutex
	out    []ipv4.Message
	outTo  []broadcast.NodeID
	outHdr [][]byte // per slot: a copy of the borrowed hdr
	outBuf []bufpool.Buf
	nOut   int

	// receive side, under rmu (one reader at a time)
	rmu     sync.Mutex
	reader  *batchReader
	inBytes [][]byte
	inBuf   []bufpool.Buf
	scratch []byte
	ready   []netio.Datagram // received, not yet returned
	held    []heldDatagram   // fault injection: reordered datagrams
	rng     *rand.Rand
	watched context.Context // the context whose end interrupts reads
	unwatch func() bool

	closed atomic.Bool
	store  atomic.Pointer[broadcast.PayloadStore]

	framesSent, framesRecv, bytesSent, bytesRecv, recvCopied atomic.Uint64
	dropped, recvCalls, sendCalls, injLoss, injReorder       atomic.Uint64
	unknown, noFrame, sendErrs, rehomed, rehomedBytes        atomic.Uint64
	perPeer                                                  []peerCounters
}

type heldDatagram struct {
	d     netio.Datagram
	until time.Time
	after int // deliver after this many more datagrams
}

var _ netio.Conduit = (*Conduit)(nil)

// New binds the socket of cfg.Self and returns the conduit.
func New(cfg Config) (*Conduit, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.Watermark == 0 && cfg.Pool != nil {
		cfg.Watermark = cfg.Pool.Frames() / 8
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.SocketBuffer == 0 {
		cfg.SocketBuffer = 4 << 20
	}
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("udp: Config.Pool is required")
	case cfg.MTU < 256 || cfg.MTU > 65507:
		return nil, fmt.Errorf("udp: Config.MTU %d outside [256, 65507]", cfg.MTU)
	case cfg.Pool.FrameSize() < cfg.MTU:
		return nil, fmt.Errorf("udp: Config.Pool frame size %d is smaller than Config.MTU %d", cfg.Pool.FrameSize(), cfg.MTU)
	case cfg.Batch < 1 || cfg.Batch > 1024:
		return nil, fmt.Errorf("udp: Config.Batch %d outside [1, 1024]", cfg.Batch)
	case int(cfg.Self) >= len(cfg.Peers):
		return nil, fmt.Errorf("udp: Config.Self %d outside Config.Peers of %d", cfg.Self, len(cfg.Peers))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Conduit{cfg: cfg, index: make(map[netip.AddrPort]broadcast.NodeID, len(cfg.Peers)),
		log: cfg.Logger.With("conduit", "udp", "self", cfg.Self), perPeer: make([]peerCounters, len(cfg.Peers))}
	for i, ap := range cfg.Peers {
		if !ap.IsValid() || ap.Port() == 0 {
			return nil, fmt.Errorf("udp: Config.Peers[%d] = %v is not a valid address and port", i, ap)
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if _, dup := c.index[ap]; dup {
			return nil, fmt.Errorf("udp: Config.Peers[%d] = %v is listed twice", i, ap)
		}
		c.index[ap] = broadcast.NodeID(i)
		c.peers = append(c.peers, net.UDPAddrFromAddrPort(ap))
	}
	conn, err := net.ListenUDP("udp4", c.peers[cfg.Self])
	if err != nil {
		return nil, fmt.Errorf("udp: bind %v: %w", c.peers[cfg.Self], err)
	}
	_ = conn.SetReadBuffer(cfg.SocketBuffer)
	_ = conn.SetWriteBuffer(cfg.SocketBuffer)
	c.conn = conn
	c.pc = ipv4.NewPacketConn(conn)

	c.out = make([]ipv4.Message, cfg.Batch)
	c.outTo = make([]broadcast.NodeID, cfg.Batch)
	c.outHdr = make([][]byte, cfg.Batch)
	c.outBuf = make([]bufpool.Buf, cfg.Batch)
	for i := range c.out {
		c.out[i].Buffers = make([][]byte, 0, 8)
	}
	if c.reader, err = newBatchReader(conn, cfg.Batch); err != nil {
		conn.Close()
		return nil, fmt.Errorf("udp: %w", err)
	}
	c.inBytes = make([][]byte, cfg.Batch)
	c.inBuf = make([]bufpool.Buf, cfg.Batch)
	c.scratch = make([]byte, cfg.MTU)
	if f := cfg.Fault; f != nil {
		if f.MaxHold == 0 {
			f.MaxHold = 2 * time.Millisecond
		}
		c.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x5bd1e995))
	}
	return c, nil
}

// WatchStore names the store whose long-held payloads the conduit moves
// out of its pool when free frames run under Config.Watermark.
func (c *Conduit) WatchStore(s *broadcast.PayloadStore) { c.store.Store(s) }

// maybeRehome asks the watched store to give frames back when the pool
// runs low.
func (c *Conduit) maybeRehome() {
	s := c.store.Load()
	if s == nil {
		return
	}
	if n, bytes := s.RehomeBelow(c.cfg.Pool, c.cfg.Watermark, len(c.inBuf)); n > 0 {
		c.rehomed.Add(uint64(n))
		c.rehomedBytes.Add(uint64(bytes))
	}
}

// Pool returns the pool receive frames come from (the link sizes its
// per-peer frame quota from it).
func (c *Conduit) Pool() *bufpool.Pool { return c.cfg.Pool }

// LocalAddr returns the bound address.
func (c *Conduit) LocalAddr() netip.AddrPort { return c.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// MTU returns the largest datagram Send accepts.
func (c *Conduit) MTU() int { return c.cfg.MTU }

// RecvCopies reports that this conduit copies every received byte into
// user memory (the recv system call): the link layer counts the payload
// bytes of each received frame as copied.
func (c *Conduit) RecvCopies() bool { return true }

// Send queues one datagram, hdr followed by body, for node `to`. It borrows
// hdr (copied: it is small) and body (retained until the datagram is
// written). A full batch is flushed at once.
func (c *Conduit) Send(to broadcast.NodeID, hdr []byte, body bufpool.Buf) error {
	if c.closed.Load() {
		return netio.ErrClosed
	}
	if int(to) >= len(c.peers) || to == c.cfg.Self {
		return fmt.Errorf("udp: send to %v: not a peer of %v", to, c.cfg.Self)
	}
	if n := len(hdr) + body.Len(); n > c.cfg.MTU || n == 0 {
		return fmt.Errorf("udp: datagram of %d bytes to %v outside (0, MTU %d]", n, to, c.cfg.MTU)
	}
	c.smu.Lock()
	defer c.smu.Unlock()
	i := c.nOut
	c.outTo[i] = to
	c.outHdr[i] = append(c.outHdr[i][:0], hdr...)
	c.outBuf[i] = body.Retain()
	m := &c.out[i]
	m.Buffers = append(m.Buffers[:0], c.outHdr[i])
	m.Buffers = body.AppendSegments(m.Buffers)
	m.Addr = c.peers[to]
	c.nOut++
	if c.nOut == len(c.out) {
		return c.flushLocked()
	}
	return nil
}

// Flush writes every queued datagram with sendmmsg.
func (c *Conduit) Flush() error {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.flushLocked()
}

func (c *Conduit) flushLocked() error {
	var firstErr error
	done := 0
	for done < c.nOut {
		n, err := c.pc.WriteBatch(c.out[done:c.nOut], 0)
		c.sendCalls.Add(1)
		for k := done; k < done+n; k++ {
			c.countSent(k)
		}
		done += n
		if err != nil {
			if c.closed.Load() {
				firstErr = netio.ErrClosed
				break
			}
			// The datagram at done was refused (for example ECONNREFUSED
			// from an earlier ICMP on loopback): skip it, like a loss.
			c.sendErrs.Add(1)
			if firstErr == nil && !isTransient(err) {
				firstErr = fmt.Errorf("udp: sendmmsg to %v: %w", c.outTo[done], err)
			}
			done++
		}
	}
	for k := 0; k < c.nOut; k++ {
		c.outBuf[k].Release()
		c.outBuf[k] = bufpool.Buf{}
		c.out[k].Buffers = c.out[k].Buffers[:0]
	}
	c.nOut = 0
	return firstErr
}

// isTransient reports a send error the link layer recovers from by
// retransmission: an unreachable peer, a full socket buffer.
func isTransient(err error) bool {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

func (c *Conduit) countSent(k int) {
	n := uint64(len(c.outHdr[k]) + c.outBuf[k].Len())
	c.framesSent.Add(1)
	c.bytesSent.Add(n)
	p := &c.perPeer[c.outTo[k]]
	p.framesSent.Add(1)
	p.bytesSent.Add(n)
}

// Recv returns the next datagram: from the last batch if one is left,
// otherwise from one recvmmsg. It blocks until a datagram arrives, ctx ends
// or the conduit closes. The caller owns the datagram's frame reference.
func (c *Conduit) Recv(ctx context.Context) (netio.Datagram, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.closed.Load() {
			return netio.Datagram{}, netio.ErrClosed
		}
		if d, ok := c.popReady(); ok {
			return d, nil
		}
		if err := ctx.Err(); err != nil {
			return netio.Datagram{}, err
		}
		if err := c.readBatch(ctx); err != nil {
			return netio.Datagram{}, err
		}
	}
}

// Buffered returns the number of received datagrams Recv returns without
// a system call.
func (c *Conduit) Buffered() int {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return len(c.ready)
}

func (c *Conduit) popReady() (netio.Datagram, bool) {
	if len(c.held) > 0 {
		now := time.Now()
		for i, h := range c.held {
			if h.after <= 0 || !now.Before(h.until) {
				c.held = append(c.held[:i], c.held[i+1:]...)
				return h.d, true
			}
		}
	}
	if len(c.ready) == 0 {
		return netio.Datagram{}, false
	}
	d := c.ready[0]
	copy(c.ready, c.ready[1:])
	c.ready[len(c.ready)-1] = netio.Datagram{}
	c.ready = c.ready[:len(c.ready)-1]
	return d, true
}

// readBatch reads up to Batch datagrams with one recvmmsg.
func (c *Conduit) readBatch(ctx context.Context) error {
	c.maybeRehome()
	// Give every slot a frame; with none free, read into scratch and drop,
	// so that acks keep flowing and the sender's retransmission recovers.
	slots := 0
	for i := range c.inBuf {
		if c.inBuf[i].IsZero() {
			b, err := c.cfg.Pool.Get()
			if err != nil {
				break
			}
			c.inBuf[i] = b
		}
		// A frame fresh from the pool is one segment that only this
		// conduit references: the kernel writes into it.
		c.inBytes[i] = c.inBuf[i].Bytes()[:c.cfg.MTU]
		slots++
	}
	if slots == 0 {
		c.inBytes[0] = c.scratch
		slots = 1
	}
	deadline := time.Time{}
	for _, h := range c.held {
		if deadline.IsZero() || h.until.Before(deadline) {
			deadline = h.until
		}
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	c.watch(ctx)
	_ = c.conn.SetReadDeadline(deadline)
	if err := ctx.Err(); err != nil {
		return nil // ended between the caller's check and the deadline
	}
	n, err := c.reader.read(c.inBytes[:slots])
	c.recvCalls.Add(1)
	if err != nil {
		if c.closed.Load() {
			return netio.ErrClosed
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// A hold expired or ctx ended: the caller's loop checks both.
			for i := range c.held {
				c.held[i].after = 0
			}
			return nil
		}
		return fmt.Errorf("udp: recvmmsg: %w", err)
	}
	for i := 0; i < n; i++ {
		size, cut := c.reader.size(i)
		c.framesRecv.Add(1)
		c.bytesRecv.Add(uint64(size))
		c.recvCopied.Add(uint64(size))
		if c.inBuf[i].IsZero() {
			c.noFrame.Add(1)
			c.dropped.Add(1)
			continue
		}
		from, ok := c.index[c.reader.source(i)]
		if !ok || size == 0 || cut {
			c.unknown.Add(1)
			c.dropped.Add(1)
			continue // keep the frame for the next batch
		}
		p := &c.perPeer[from]
		p.framesRecv.Add(1)
		p.bytesRecv.Add(uint64(size))
		frame := c.inBuf[i].Slice(0, size)
		c.inBuf[i] = bufpool.Buf{}
		c.arrive(netio.Datagram{From: from, Frame: frame})
	}
	return nil
}

// watch arranges for ctx's end to interrupt a blocked read, once per
// context rather than once per read (a read is on the hot path).
func (c *Conduit) watch(ctx context.Context) {
	if ctx == c.watched {
		return
	}
	if c.unwatch != nil {
		c.unwatch()
	}
	c.watched = ctx
	c.unwatch = context.AfterFunc(ctx, c.interrupt)
}

// interrupt wakes a blocked read.
func (c *Conduit) interrupt() { _ = c.conn.SetReadDeadline(time.Now()) }

// arrive queues a datagram for Recv, through the fault injector if any.
func (c *Conduit) arrive(d netio.Datagram) {
	for i := range c.held {
		c.held[i].after--
	}
	if f := c.cfg.Fault; f != nil {
		r := c.rng.Float64()
		switch {
		case r < f.Loss:
			c.injLoss.Add(1)
			d.Frame.Release()
			return
		case r < f.Loss+f.Reorder:
			c.injReorder.Add(1)
			c.held = append(c.held, heldDatagram{d: d, until: time.Now().Add(f.MaxHold), after: 1 + c.rng.IntN(4)})
			return
		}
	}
	c.ready = append(c.ready, d)
}

// Stats returns the conduit's wire counters.
func (c *Conduit) Stats() netio.ConduitStats {
	return netio.ConduitStats{
		FramesSent: c.framesSent.Load(), FramesReceived: c.framesRecv.Load(),
		BytesSent: c.bytesSent.Load(), BytesReceived: c.bytesRecv.Load(),
		RecvCopiedBytes: c.recvCopied.Load(), Dropped: c.dropped.Load(),
	}
}

// UDPStats returns every counter of the conduit.
func (c *Conduit) UDPStats() Stats {
	return Stats{ConduitStats: c.Stats(), RecvCalls: c.recvCalls.Load(), SendCalls: c.sendCalls.Load(),
		InjectedLoss: c.injLoss.Load(), InjectedReorder: c.injReorder.Load(),
		UnknownPeer: c.unknown.Load(), NoFrame: c.noFrame.Load(), SendErrors: c.sendErrs.Load(),
		RehomedPayloads: c.rehomed.Load(), RehomedBytes: c.rehomedBytes.Load()}
}

// PeerStats returns the traffic with node id.
func (c *Conduit) PeerStats(id broadcast.NodeID) PeerStats {
	if int(id) >= len(c.perPeer) {
		return PeerStats{}
	}
	p := &c.perPeer[id]
	return PeerStats{FramesSent: p.framesSent.Load(), FramesReceived: p.framesRecv.Load(),
		BytesSent: p.bytesSent.Load(), BytesReceived: p.bytesRecv.Load()}
}

// Close closes the socket and releases every buffer the conduit holds.
func (c *Conduit) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	err := c.conn.Close()
	c.smu.Lock()
	for k := 0; k < c.nOut; k++ {
		c.outBuf[k].Release()
		c.outBuf[k] = bufpool.Buf{}
	}
	c.nOut = 0
	c.smu.Unlock()
	c.rmu.Lock()
	if c.unwatch != nil {
		c.unwatch()
		c.unwatch, c.watched = nil, nil
	}
	for i := range c.inBuf {
		c.inBuf[i].Release()
		c.inBuf[i] = bufpool.Buf{}
	}
	for _, d := range c.ready {
		d.Frame.Release()
	}
	c.ready = nil
	for _, h := range c.held {
		h.d.Frame.Release()
	}
	c.held = nil
	c.rmu.Unlock()
	if err != nil {
		return fmt.Errorf("udp: close: %w", err)
	}
	return nil
}
