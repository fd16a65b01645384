package xdp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	axdp "github.com/asavie/xdp"
	"golang.org/x/sys/unix"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
)

// Peer is where a node is reached on the wire.
type Peer struct {
	MAC  net.HardwareAddr
	Addr netip.AddrPort
}

// Config configures a Conduit.
type Config struct {
	// Ifindex and Queue name the interface and receive queue the socket is
	// bound to, in the network namespace New runs in. Required: Ifindex.
	Ifindex int
	Queue   int
	// Self is this node; MAC and Addr its interface's hardware address and
	// its IPv4 address and onecast UDP port. Required.
	Self broadcast.NodeID
	MAC  net.HardwareAddr
	Addr netip.AddrPort
	// Peers maps every other node to its address. Required.
	Peers map[broadcast.NodeID]Peer

	// Frames and FrameSize shape the UMEM. Default 4096 frames; FrameSize
	// 2048 or 4096, by default the smaller that holds a full frame of the
	// interface's MTU behind the kernel's 256-byte XDP headroom (4096 from
	// an MTU of 1779 up, such as MaxVethMTU).
	Frames, FrameSize int
	// MTU, when positive, caps the datagrams Send accepts (hdr plus body,
	// the UDP payload) below what the interface's MTU and FrameSize allow.
	MTU int
	// RingSize is the number of descriptors of each ring (a power of two).
	// Default 1024.
	RingSize int
	// Watermark is the number of free UMEM frames under which the conduit
	// asks the watched PayloadStore to copy long-held payloads out to the
	// heap and give their frames back. Default Frames/8; negative disables.
	Watermark int
	// LinkHeaderSize is the size of the reliable-link header in front of
	// each onecast header (tells the XDP program where to find it).
	// Default DefaultLinkHeaderSize; NoLinkHeader for bare onecast frames.
	LinkHeaderSize int
	// HeldMax bounds the kernel's map of held digests. Default 65536; each
	// node that supplies payloads may fill HeldMax / (len(Peers)+1) of it
	// (ProgramConfig.Nodes).
	HeldMax int
	// Mode is the XDP attach mode. Default ModeAuto.
	Mode Mode
	// CopySend has Send copy every body into the TX frame. By default a
	// body that lies in this conduit's UMEM (a received payload, or one the
	// application built in Pool()) is referenced by TX descriptors of its
	// own (multi-buffer AF_XDP, XDP_USE_SG), not copied; other bodies are
	// copied, counted in SendCopiedBytes, and Stats.SendCopyFallback says
	// why.
	CopySend bool
	// Checked runs the UMEM pool in checked mode (tests).
	Checked bool
	// Backlog is the number of received datagrams queued for Recv, in
	// batches of up to RecvBatch. Default RingSize.
	Backlog int
	// RecvBatch is the most RX descriptors the receive loop takes in one
	// pass (one ring lock, one hand-off to the consumer). It takes what the
	// ring holds up to this, so batches grow with load. Default 256.
	RecvBatch int
	// BusyPoll, when positive, has the receive loop spin on the RX ring for
	// this long after the last frame before it sleeps in poll(2): lower
	// latency and fewer system calls, paid in CPU time (the bench's
	// xdp-busy transport shows the cost). Default 0: poll at once.
	BusyPoll time.Duration
	// Metrics, when set, receives the payload bytes the kernel stripped or
	// dropped (Metrics.StrippedBytes), read from the program's per-CPU
	// counters every 100 ms and on SyncMetrics.
	Metrics *broadcast.Metrics
	// Logger receives the conduit's logs. Default slog.Default().
	Logger *slog.Logger
}

// Stats are the conduit's counters beyond netio.ConduitStats.
type Stats struct {
	netio.ConduitStats
	// Kernel are the XDP program's counters.
	Kernel KernelCounters
	// Held describe the kernel's map of held digests: entries, the
	// per-supplier quota, the digests it pushed out, refused inserts.
	Held HeldStats
	// Mode is the mode the XDP program runs in.
	Mode Mode
	// ZeroCopy reports whether the socket is bound in zero-copy mode (the
	// NIC writes into UMEM); false means copy mode (the kernel copies each
	// frame into UMEM once, as veth requires).
	ZeroCopy bool
	// Pool are the UMEM pool's counters.
	Pool bufpool.Stats
	// RehomedPayloads and RehomedBytes count payloads the store copied out
	// of UMEM to the heap because free frames ran under the watermark.
	RehomedPayloads, RehomedBytes uint64
	// FillStarved counts refills that found the pool empty.
	FillStarved uint64
	// Rejected counts frames whose Ethernet/IP/UDP headers were bad.
	Rejected uint64
	// TxDropped counts queued frames given up because the TX ring did not
	// drain for a second.
	TxDropped uint64
	// Socket are the AF_XDP socket's kernel statistics.
	Socket unix.XDPStatistics
	// RecvPasses counts receive passes that took at least one RX
	// descriptor (FramesReceived ÷ RecvPasses is the mean batch), Polls the
	// poll(2) calls the receive loop made.
	RecvPasses, Polls uint64
	// TxCalls counts the transmissions (one sendto each) Flush made, TxKicks
	// the extra sendto calls that drained the TX ring past one call's
	// budget: FramesSent ÷ (TxCalls+TxKicks) is the mean TX batch.
	TxCalls, TxKicks uint64
	// SendCopyFallback says why Send copied payload bytes into TX frames
	// (SendCopiedBytes) instead of referencing them; empty when it copied
	// none.
	SendCopyFallback string
	// SendReferencedBytes counts body bytes sent by reference from UMEM
	// (no copy), SendRefDescs the TX descriptors that referenced them.
	SendReferencedBytes, SendRefDescs uint64
	// MultiBuffer reports whether the socket is bound with XDP_USE_SG,
	// NeedWakeup whether with XDP_USE_NEED_WAKEUP.
	MultiBuffer, NeedWakeup bool
	// TxKicksSkipped counts TX kicks left out because the kernel did not
	// ask for one (need_wakeup; never in copy mode), RxWakeups the
	// system calls a busy-polling loop made because the fill ring asked.
	TxKicksSkipped, RxWakeups uint64
}

// Conduit is a netio.Conduit over an AF_XDP socket. See the package doc.
type Conduit struct {
	cfg   Config
	log   *slog.Logger
	prog  *Program
	xsk   *axdp.Socket
	pool  *bufpool.Pool
	umem  []byte
	self  endpoint
	peers map[broadcast.NodeID]*endpoint
	from  []peerAddr // scanned per frame: a cluster has few peers
	mtu   int
	zc    bool
	comp  *compRing

	// mu guards the socket's rings and the frame maps below.
	mu      sync.Mutex
	onRing  []bufpool.Buf // frame index → the Buf of a frame on the fill or TX ring
	pending []axdp.Desc   // queued by Send, not yet on the TX ring
	// txBody holds, per header frame index, the reference on a body its
	// packet's descriptors point into, until the header's completion (the
	// kernel completes all of a packet's descriptors at once).
	txBody  []bufpool.Buf
	bodies  []bufpool.Buf // complete's scratch
	sg      bool          // bound with XDP_USE_SG: Send may reference bodies in UMEM
	nw      bool          // bound with XDP_USE_NEED_WAKEUP: flags says when to kick
	flags   *ringFlags
	noSG    string // why not, when not
	fillBuf []axdp.Desc
	ipID    uint16
	closed  bool // set by teardown: the socket and rings are gone

	store  atomic.Pointer[broadcast.PayloadStore]
	onPass atomic.Pointer[func([]netio.Datagram)]

	rx      chan *rxBatch // batches of received datagrams, one send per RX pass
	free    chan *rxBatch // empty batches for the receive loop
	closing chan struct{}

	recvMu sync.Mutex // Recv's leftover batch (RecvBatch needs none)
	cur    *rxBatch
	curOff int
	wg     sync.WaitGroup
	once   sync.Once

	framesSent, framesRecv, bytesSent, bytesRecv atomic.Uint64
	sendCopied, dropped, rejected, starved       atomic.Uint64
	rehomed, rehomedBytes, txDropped             atomic.Uint64
	kernelCopied, passes, polls, kicks           atomic.Uint64
	refSent, refDescsSent, txCalls               atomic.Uint64
	txNoKick, rxWakeups                          atomic.Uint64

	umemKept bool // closed with frames referenced: umem still mapped

	metricsMu    sync.Mutex
	reported     uint64       // kernel-removed payload bytes already in cfg.Metrics
	lastReported atomic.Int64 // unix nanoseconds
}

// ErrNoFrame is returned by Send when no UMEM frame is free for the datagram.
var ErrNoFrame = errors.New("xdp: no free UMEM frame")

const pollTimeoutMs = 20

// bindBusyWait is how long New retries binding a queue that is busy: the
// kernel releases a closed socket's queue in deferred work, so a conduit
// reopened on its queue (a node restarted in the same process) may find
// it busy for a moment. A queue another socket holds is an error after it.
const bindBusyWait = 2 * time.Second

// xdpHeadroom is the room the kernel keeps in front of a received frame
// (XDP_PACKET_HEADROOM).
const xdpHeadroom = 256

// MaxVethMTU is the largest MTU a veth accepts while an XDP program
// without multi-buffer support (not xdp.frags) is attached: a frame must
// fit one page behind the XDP headroom and the skb_shared_info, less the
// Ethernet header (PAGE_SIZE 4096 − 256 − 320 − 14; kernel 6.x,
// veth_xdp_set). netns topologies for AF_XDP use it; larger datagrams are
// fragmented by netio/link.
const MaxVethMTU = 3506

// maxQueues is the size of the program's queue → socket map (xsks).
const maxQueues = 64

// DefaultLinkHeaderSize is netio/link's HeaderSize (a test keeps them equal;
// a constant here keeps this package buildable while link changes).
const DefaultLinkHeaderSize = 48

// NoLinkHeader, as Config.LinkHeaderSize, says datagrams start with the
// onecast header itself.
const NoLinkHeader = -1

// New opens an AF_XDP socket on cfg.Ifindex/cfg.Queue, loads and attaches
// the XDP program, and starts the receive loop. It must run in the network
// namespace the interface lives in (netns.Topology.Do); the conduit may be
// used from any goroutine afterwards.
func New(cfg Config) (_ *Conduit, err error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	c := &Conduit{
		cfg: cfg, log: cfg.Logger,
		self:    newEndpoint(cfg.MAC, cfg.Addr),
		peers:   make(map[broadcast.NodeID]*endpoint, len(cfg.Peers)),
		closing: make(chan struct{}),
	}
	batches := max(4, cfg.Backlog/cfg.RecvBatch)
	c.rx, c.free = make(chan *rxBatch, batches), make(chan *rxBatch, batches)
	for range batches {
		c.free <- &rxBatch{d: make([]netio.Datagram, 0, cfg.RecvBatch)}
	}
	for id, p := range cfg.Peers {
		e := newEndpoint(p.MAC, p.Addr)
		c.peers[id] = &e
		c.from = append(c.from, peerAddr{p.Addr, id})
	}
	ifc, err := net.InterfaceByIndex(cfg.Ifindex)
	if err != nil {
		return nil, fmt.Errorf("xdp: interface %d: %w", cfg.Ifindex, err)
	}
	if cfg.FrameSize == 0 {
		cfg.FrameSize = 2048
		if ifc.MTU+ethLen+xdpHeadroom > 2048 {
			cfg.FrameSize = 4096
		}
		c.cfg.FrameSize = cfg.FrameSize
	}
	// A frame holds the kernel's XDP headroom, the Ethernet header and the
	// IP packet.
	c.mtu = min(ifc.MTU, cfg.FrameSize-xdpHeadroom-ethLen) - ipv4Len - udpLen
	if cfg.MTU > 0 {
		c.mtu = min(c.mtu, cfg.MTU)
	}

	defer func() {
		if err != nil {
			c.teardown()
		}
	}()
	c.prog, err = LoadProgram(ProgramConfig{Port: cfg.Addr.Port(), LinkHeaderSize: cfg.LinkHeaderSize, HeldMax: cfg.HeldMax,
		Nodes: len(cfg.Peers) + 1, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	if err := c.prog.Attach(cfg.Ifindex, cfg.Mode, c.log); err != nil {
		return nil, err
	}
	opts := &axdp.SocketOptions{
		NumFrames: cfg.Frames, FrameSize: cfg.FrameSize,
		FillRingNumDescs: cfg.RingSize, CompletionRingNumDescs: cfg.RingSize,
		RxRingNumDescs: cfg.RingSize, TxRingNumDescs: cfg.RingSize,
	}
	// Bind with need_wakeup and, unless told to copy, multi-buffer TX; on a
	// kernel that refuses a flag, without it.
	c.noSG = "Config.CopySend"
	attempts := []uint16{unix.XDP_USE_NEED_WAKEUP, 0}
	if !cfg.CopySend {
		attempts = []uint16{unix.XDP_USE_SG | unix.XDP_USE_NEED_WAKEUP, unix.XDP_USE_SG, unix.XDP_USE_NEED_WAKEUP, 0}
	}
	// A queue a socket of this process let go of stays busy until the
	// kernel's deferred release (under the RTNL lock) clears it: a busy
	// queue is retried for up to bindBusyWait before it is an error.
	for deadline := time.Now().Add(bindBusyWait); ; time.Sleep(20 * time.Millisecond) {
		for _, flags := range attempts {
			if c.xsk, err = newSocket(cfg.Ifindex, cfg.Queue, opts, flags); err == nil {
				c.sg, c.nw = flags&unix.XDP_USE_SG != 0, flags&unix.XDP_USE_NEED_WAKEUP != 0
				break
			}
			if errors.Is(err, unix.EBUSY) {
				break // whatever the flags
			}
			if flags&unix.XDP_USE_SG != 0 {
				c.noSG = fmt.Sprintf("multi-buffer AF_XDP refused: %v", err)
			}
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			break
		}
	}
	if c.sg {
		c.noSG = ""
	} else if err == nil && !cfg.CopySend {
		c.log.Info("xdp: sending by copy", "why", c.noSG)
	}
	if err != nil {
		return nil, fmt.Errorf("xdp: AF_XDP socket on ifindex %d queue %d: %w", cfg.Ifindex, cfg.Queue, err)
	}
	c.zc = zeroCopy(c.xsk.FD())
	if c.comp, err = mapCompletionRing(c.xsk.FD(), cfg.RingSize); err != nil {
		return nil, err
	}
	if c.nw {
		if c.flags, err = mapRingFlags(c.xsk.FD(), cfg.RingSize); err != nil {
			return nil, err
		}
	}
	c.umem = c.xsk.GetFrame(axdp.Desc{Addr: 0, Len: uint32(cfg.Frames * cfg.FrameSize)})
	c.pool, err = bufpool.New(bufpool.Config{Region: c.umem, FrameSize: cfg.FrameSize, Checked: cfg.Checked, Name: "umem"})
	if err != nil {
		return nil, fmt.Errorf("xdp: UMEM pool: %w", err)
	}
	c.onRing = make([]bufpool.Buf, cfg.Frames)
	c.txBody = make([]bufpool.Buf, cfg.Frames)
	c.fillBuf = make([]axdp.Desc, 0, cfg.RingSize)
	c.pending = make([]axdp.Desc, 0, cfg.RingSize)
	c.refill()
	if err := c.prog.Register(cfg.Queue, c.xsk.FD()); err != nil {
		return nil, err
	}
	c.log.Info("xdp: conduit up", "ifindex", cfg.Ifindex, "queue", cfg.Queue, "addr", cfg.Addr,
		"mode", c.prog.Mode(), "zerocopy", c.zc, "frames", cfg.Frames)
	c.wg.Add(1)
	go c.recvLoop()
	return c, nil
}

func (cfg *Config) fill() error {
	switch {
	case cfg.Ifindex <= 0:
		return fmt.Errorf("xdp: Config.Ifindex must be positive, got %d", cfg.Ifindex)
	case len(cfg.MAC) != 6:
		return fmt.Errorf("xdp: Config.MAC must be 6 bytes, got %d", len(cfg.MAC))
	case !cfg.Addr.Addr().Is4() || cfg.Addr.Port() == 0:
		return fmt.Errorf("xdp: Config.Addr must be an IPv4 address and port, got %v", cfg.Addr)
	case len(cfg.Peers) == 0:
		return errors.New("xdp: Config.Peers is empty")
	case cfg.Queue < 0 || cfg.Queue >= maxQueues:
		return fmt.Errorf("xdp: Config.Queue must be in [0, %d), got %d", maxQueues, cfg.Queue)
	}
	for id, p := range cfg.Peers {
		if id == cfg.Self {
			return fmt.Errorf("xdp: Config.Peers includes Self (%v)", id)
		}
		if len(p.MAC) != 6 || !p.Addr.Addr().Is4() || p.Addr.Port() == 0 {
			return fmt.Errorf("xdp: Config.Peers[%v] = %v/%v is not a MAC and IPv4 address and port", id, p.MAC, p.Addr)
		}
	}
	switch {
	case cfg.LinkHeaderSize == 0:
		cfg.LinkHeaderSize = DefaultLinkHeaderSize
	case cfg.LinkHeaderSize == NoLinkHeader:
		cfg.LinkHeaderSize = 0
	}
	if cfg.Frames == 0 {
		cfg.Frames = 4096
	}
	if cfg.FrameSize != 0 && cfg.FrameSize != 2048 && cfg.FrameSize != 4096 {
		return fmt.Errorf("xdp: Config.FrameSize must be 2048 or 4096, got %d", cfg.FrameSize)
	}
	if cfg.RingSize == 0 {
		cfg.RingSize = 1024
	}
	if cfg.RingSize&(cfg.RingSize-1) != 0 || cfg.RingSize < 16 {
		return fmt.Errorf("xdp: Config.RingSize must be a power of two ≥ 16, got %d", cfg.RingSize)
	}
	if cfg.Frames < 2*cfg.RingSize {
		return fmt.Errorf("xdp: Config.Frames (%d) must be at least twice RingSize (%d)", cfg.Frames, cfg.RingSize)
	}
	if cfg.Watermark == 0 {
		cfg.Watermark = cfg.Frames / 8
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = cfg.RingSize
	}
	if cfg.RecvBatch <= 0 {
		cfg.RecvBatch = 256
	}
	cfg.RecvBatch = min(cfg.RecvBatch, cfg.RingSize)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return nil
}

// Program returns the conduit's XDP program. It is the broadcast.StoreObserver
// that keeps the kernel's dedup map in step with a PayloadStore:
//
//	store := broadcast.NewPayloadStore(broadcast.StoreConfig{Observer: c.Program()})
func (c *Conduit) Program() *Program { return c.prog }

// Pool returns the UMEM pool received frames come from.
func (c *Conduit) Pool() *bufpool.Pool { return c.pool }

// WatchStore tells the conduit which store to ask to rehome payloads when
// free UMEM frames run under the watermark.
func (c *Conduit) WatchStore(s *broadcast.PayloadStore) { c.store.Store(s) }

// RecvCopies reports that received bytes are not copied in user space (the
// reliable link asks, to count copies on its receive path).
func (c *Conduit) RecvCopies() bool { return false }

// MTU is the largest datagram Send accepts.
func (c *Conduit) MTU() int { return c.mtu }

// Send builds one Ethernet/IPv4/UDP frame in a UMEM frame: headers, hdr,
// then body's bytes (copied: counted in SendCopiedBytes), and queues it for
// the TX ring. It borrows hdr and body. The frame returns to the pool when
// the kernel reports its transmission complete.
func (c *Conduit) Send(to broadcast.NodeID, hdr []byte, body bufpool.Buf) error {
	dst, ok := c.peers[to]
	if !ok {
		return fmt.Errorf("xdp: send to unknown node %v", to)
	}
	n := len(hdr) + body.Len()
	if n > c.mtu {
		return fmt.Errorf("xdp: datagram of %d bytes exceeds MTU %d", n, c.mtu)
	}
	select {
	case <-c.closing:
		return netio.ErrClosed
	default:
	}
	b, err := c.pool.Get()
	if err != nil {
		c.mu.Lock()
		c.complete()
		c.mu.Unlock()
		if b, err = c.pool.Get(); err != nil {
			return ErrNoFrame
		}
	}
	mem := c.frameMem(b)
	c.mu.Lock()
	c.ipID++
	id := c.ipID
	c.mu.Unlock()
	putHeaders(mem, &c.self, dst, n, id)
	off := HeadersLen + copy(mem[HeadersLen:], hdr)
	refs := c.sg && c.refDescs(body)
	if !refs {
		for seg := range body.Segments() {
			off += copy(mem[off:], seg)
		}
		c.sendCopied.Add(uint64(body.Len()))
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		b.Release()
		return netio.ErrClosed
	}
	idx := b.FrameIndex()
	c.onRing[idx] = b
	head := axdp.Desc{Addr: uint64(idx * c.cfg.FrameSize), Len: uint32(off)}
	if refs {
		// Headers in their own frame, then one descriptor per segment of
		// the body where it lies; the header frame holds a reference on the
		// body until its completion.
		head.Options = unix.XDP_PKT_CONTD
		c.pending = append(c.pending, head)
		base := uintptr(unsafe.Pointer(unsafe.SliceData(c.umem)))
		first := len(c.pending)
		for seg := range body.Segments() {
			if len(seg) > 0 {
				addr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(seg))) - base)
				c.pending = append(c.pending, axdp.Desc{Addr: addr, Len: uint32(len(seg)), Options: unix.XDP_PKT_CONTD})
			}
		}
		c.pending[len(c.pending)-1].Options = 0
		c.txBody[idx] = body.Retain()
		c.refSent.Add(uint64(body.Len()))
		c.refDescsSent.Add(uint64(len(c.pending) - first))
	} else {
		c.pending = append(c.pending, head)
	}
	c.framesSent.Add(1)
	c.bytesSent.Add(uint64(n))
	if len(c.pending) >= c.cfg.RingSize/2 {
		return c.flushLocked()
	}
	return nil
}

// maxRefSegments bounds the descriptors of a referenced body: the kernel
// builds a packet of at most MAX_SKB_FRAGS (17) buffers, headers included.
const maxRefSegments = 16

// refDescs reports whether body can be sent by reference: not empty, at
// most maxRefSegments segments, each inside one frame of this UMEM.
func (c *Conduit) refDescs(body bufpool.Buf) bool {
	if body.Len() == 0 || body.Pool() != c.pool {
		return false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(c.umem)))
	fs := uintptr(c.cfg.FrameSize)
	n := 0
	for seg := range body.Segments() {
		if len(seg) == 0 {
			continue
		}
		n++
		p := uintptr(unsafe.Pointer(unsafe.SliceData(seg))) - base
		if n > maxRefSegments || p >= uintptr(len(c.umem)) || p/fs != (p+uintptr(len(seg))-1)/fs {
			return false
		}
	}
	return n > 0
}

// frameMem returns the whole UMEM frame b holds, writable: b must be a
// frame fresh from the pool, owned by the caller alone.
func (c *Conduit) frameMem(b bufpool.Buf) []byte {
	start := b.FrameIndex() * c.cfg.FrameSize
	return c.umem[start : start+c.cfg.FrameSize : start+c.cfg.FrameSize]
}

// Flush puts the queued frames on the TX ring and kicks the kernel.
func (c *Conduit) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *Conduit) flushLocked() error {
	deadline := time.Time{}
	for len(c.pending) > 0 {
		if c.closed {
			return netio.ErrClosed
		}
		c.complete()
		sent, err := c.transmit(c.pending)
		if err != nil {
			return err
		}
		c.pending = c.pending[:copy(c.pending, c.pending[sent:])]
		if len(c.pending) == 0 {
			break
		}
		// TX ring full: wait for the kernel to consume, boundedly.
		if deadline.IsZero() {
			deadline = time.Now().Add(time.Second)
		} else if time.Now().After(deadline) {
			for _, d := range c.pending {
				idx := int(d.Addr / uint64(c.cfg.FrameSize))
				if d.Addr%uint64(c.cfg.FrameSize) == 0 && !c.onRing[idx].IsZero() {
					c.releaseOnRing(idx)
					c.txBody[idx].Release()
					c.txBody[idx] = bufpool.Buf{}
				}
			}
			c.txDropped.Add(uint64(len(c.pending)))
			c.pending = c.pending[:0]
			return errors.New("xdp: TX ring stuck, queued frames dropped")
		}
		c.mu.Unlock()
		time.Sleep(50 * time.Microsecond)
		c.mu.Lock()
	}
	return nil
}

// transmit calls the socket's Transmit, which panics on unexpected sendto
// errors; the panic becomes an error. Then it kicks the kernel until the TX
// ring is drained: in copy mode one sendto transmits at most the socket's
// TX budget (32 frames), and asavie/xdp leaves the rest on the ring,
// unsent until the next Flush.
func (c *Conduit) transmit(descs []axdp.Desc) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("xdp: transmit: %v", r)
		}
	}()
	n = c.xsk.Transmit(descs)
	c.txCalls.Add(1)
	for stalled := 0; c.xsk.NumFreeTxSlots() < c.cfg.RingSize && stalled < 4; {
		if c.nw && !c.flags.txNeedsWakeup() {
			c.txNoKick.Add(1)
			break // the driver drains the ring by itself
		}
		before := c.xsk.NumFreeTxSlots()
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(c.xsk.FD()), 0, 0, uintptr(unix.MSG_DONTWAIT), 0, 0)
		c.kicks.Add(1)
		switch errno {
		case 0, unix.EAGAIN, unix.EBUSY, unix.EINTR:
		default:
			return n, fmt.Errorf("xdp: transmit: sendto: %w", errno)
		}
		if c.xsk.NumFreeTxSlots() == before {
			stalled++
		}
	}
	return n, nil
}

// complete reaps the completion ring and releases transmitted frames.
// c.mu is held.
func (c *Conduit) complete() {
	if c.closed {
		return
	}
	n := c.xsk.NumCompleted()
	if n == 0 || c.comp == nil {
		return
	}
	bodies := c.bodies[:0]
	for i := range n {
		addr := c.comp.addr(i)
		idx := int(addr / uint64(c.cfg.FrameSize))
		if addr%uint64(c.cfg.FrameSize) != 0 || c.onRing[idx].IsZero() {
			continue // a descriptor into a referenced body: its header frame holds the reference
		}
		c.releaseOnRing(idx)
		if !c.txBody[idx].IsZero() {
			// Released after the loop: a body frame given back now could
			// not be confused with a header frame below, but keep it simple.
			bodies = append(bodies, c.txBody[idx])
			c.txBody[idx] = bufpool.Buf{}
		}
	}
	c.xsk.Complete(n) // hands the slots back to the kernel
	for i, b := range bodies {
		b.Release()
		bodies[i] = bufpool.Buf{}
	}
	c.bodies = bodies[:0]
}

func (c *Conduit) releaseOnRing(idx int) {
	b := c.onRing[idx]
	c.onRing[idx] = bufpool.Buf{}
	b.Release()
}

// refill puts free pool frames on the fill ring. c.mu is held or the
// receive loop is not running.
func (c *Conduit) refill() {
	want := c.xsk.NumFreeFillSlots()
	if want == 0 {
		return
	}
	descs := c.fillBuf[:0]
	for range want {
		b, err := c.pool.Get()
		if err != nil {
			c.starved.Add(1)
			break
		}
		idx := b.FrameIndex()
		c.onRing[idx] = b
		descs = append(descs, axdp.Desc{Addr: uint64(idx * c.cfg.FrameSize), Len: uint32(c.cfg.FrameSize)})
	}
	if len(descs) > 0 {
		c.xsk.Fill(descs)
	}
}

// rxBatch is one pass's received datagrams, handed to the consumer whole.
type rxBatch struct{ d []netio.Datagram }

// peerAddr maps a peer's address to its node.
type peerAddr struct {
	addr netip.AddrPort
	id   broadcast.NodeID
}

// peerOf returns the node at addr. The peers are few: a scan of a short
// slice, starting at the last hit, beats hashing an AddrPort per frame.
func (c *Conduit) peerOf(addr netip.AddrPort, hint *int) (broadcast.NodeID, bool) {
	for i := range c.from {
		j := (*hint + i) % len(c.from)
		if c.from[j].addr == addr {
			*hint = j
			return c.from[j].id, true
		}
	}
	return 0, false
}

// recvLoop runs to completion per pass: it waits for the RX ring (poll(2),
// or spinning for Config.BusyPoll first), takes up to RecvBatch
// descriptors under one lock, parses each frame in place and names its
// peer, reaps completions and restocks the fill ring in the same pass, and
// hands the pass's datagrams to the consumer in one channel send.
func (c *Conduit) recvLoop() {
	defer c.wg.Done()
	pfd := []unix.PollFd{{Fd: int32(c.xsk.FD()), Events: unix.POLLIN}}
	hint := 0
	for {
		select {
		case <-c.closing:
			return
		default:
		}
		if c.xsk.NumReceived() == 0 && !c.spin() {
			c.polls.Add(1)
			_, err := unix.Poll(pfd, pollTimeoutMs)
			if err != nil && !errors.Is(err, unix.EINTR) {
				c.log.Error("xdp: poll", "err", err)
				time.Sleep(pollTimeoutMs * time.Millisecond)
			}
		}
		if h := c.onPass.Load(); h != nil {
			c.drainTo(*h) // passes queued before the handler came
		}
		var batch *rxBatch
		select {
		case batch = <-c.free:
		default:
			// Every batch waits for Recv: wait for one, and drain the
			// queue to an OnPass handler that came meanwhile.
			for batch == nil {
				select {
				case batch = <-c.free:
				case <-c.closing:
					return
				case <-time.After(10 * time.Millisecond):
					if h := c.onPass.Load(); h != nil {
						c.drainTo(*h)
					}
				}
			}
		}
		var frames, bytes, dropped, rejected uint64
		c.mu.Lock()
		descs := c.xsk.Receive(min(c.xsk.NumReceived(), c.cfg.RecvBatch))
		for _, d := range descs {
			idx := int(d.Addr) / c.cfg.FrameSize
			off := int(d.Addr) % c.cfg.FrameSize
			b := c.onRing[idx]
			c.onRing[idx] = bufpool.Buf{}
			if b.IsZero() || off+int(d.Len) > c.cfg.FrameSize {
				c.log.Error("xdp: RX descriptor for a frame not on the fill ring", "addr", d.Addr, "len", d.Len)
				b.Release()
				continue
			}
			frame := b.Slice(off, int(d.Len))
			doff, n, from, perr := parseUDP(frame.Bytes(), c.cfg.Addr.Port())
			if perr != nil {
				rejected++
				b.Release()
				continue
			}
			id, ok := c.peerOf(from, &hint)
			if !ok {
				dropped++
				b.Release()
				continue
			}
			frames++
			bytes += uint64(n)
			batch.d = append(batch.d, netio.Datagram{From: id, Frame: b.Slice(off+doff, n)})
		}
		c.complete()
		c.refill()
		c.mu.Unlock()
		if len(descs) > 0 {
			c.passes.Add(1)
		}
		c.framesRecv.Add(frames)
		c.bytesRecv.Add(bytes)
		if !c.zc {
			c.kernelCopied.Add(bytes)
		}
		if dropped > 0 {
			c.dropped.Add(dropped)
		}
		if rejected > 0 {
			c.rejected.Add(rejected)
		}
		if h := c.onPass.Load(); h != nil && len(batch.d) > 0 {
			(*h)(batch.d) // run to completion: the consumer works in this goroutine
			clear(batch.d)
			batch.d = batch.d[:0]
			c.free <- batch
		} else if len(batch.d) == 0 {
			c.free <- batch
		} else {
			select {
			case c.rx <- batch:
			case <-c.closing:
				releaseBatch(batch)
				return
			}
		}
		c.maybeRehome()
		if c.cfg.Metrics != nil && time.Now().UnixNano()-c.lastReported.Load() > int64(100*time.Millisecond) {
			_ = c.SyncMetrics()
		}
	}
}

// drainTo hands the passes queued for Recv to fn (OnPass's handler), so
// that their batches come back to the receive loop.
func (c *Conduit) drainTo(fn func([]netio.Datagram)) {
	for {
		select {
		case b := <-c.rx:
			fn(b.d)
			clear(b.d)
			b.d = b.d[:0]
			c.free <- b
		default:
			return
		}
	}
}

// spin waits on the RX ring for Config.BusyPoll without a system call; it
// reports whether a frame arrived.
func (c *Conduit) spin() bool {
	if c.cfg.BusyPoll <= 0 {
		return false
	}
	deadline := time.Now().Add(c.cfg.BusyPoll)
	for i := 0; ; i++ {
		if c.xsk.NumReceived() > 0 {
			return true
		}
		if c.nw && i%64 == 0 && c.flags.fillNeedsWakeup() {
			// need_wakeup: a driver waits for a system call to use the
			// fill ring; poll(2) would make it, spinning must.
			_, _, _ = unix.Syscall6(unix.SYS_RECVFROM, uintptr(c.xsk.FD()), 0, 0, uintptr(unix.MSG_DONTWAIT), 0, 0)
			c.rxWakeups.Add(1)
		}
		if i%64 == 63 {
			if time.Now().After(deadline) {
				return false
			}
			runtime.Gosched()
		}
	}
}

func releaseBatch(b *rxBatch) {
	for _, d := range b.d {
		d.Frame.Release()
	}
	b.d = b.d[:0]
}

// SyncMetrics adds the payload bytes the kernel removed since the last call
// to Config.Metrics.StrippedBytes.
func (c *Conduit) SyncMetrics() error {
	if c.cfg.Metrics == nil {
		return nil
	}
	k, err := c.prog.Counters()
	if err != nil {
		return err
	}
	c.metricsMu.Lock()
	defer c.metricsMu.Unlock()
	c.lastReported.Store(time.Now().UnixNano())
	if removed := k.PayloadBytesRemoved(); removed > c.reported {
		c.cfg.Metrics.StrippedBytes.Add(removed - c.reported)
		c.reported = removed
	}
	return nil
}

// maybeRehome asks the watched store to move payloads out of UMEM when free
// frames run under the watermark.
func (c *Conduit) maybeRehome() {
	s := c.store.Load()
	if s == nil {
		return
	}
	if n, bytes := s.RehomeBelow(c.pool, c.cfg.Watermark, c.cfg.RingSize/4); n > 0 {
		c.rehomed.Add(uint64(n))
		c.rehomedBytes.Add(uint64(bytes))
	}
}

// OnPass has the receive loop hand each pass to fn, in the receive loop's
// own goroutine, instead of queueing it for Recv and RecvBatch: the
// consumer (netio/link) then runs to completion on the pass — parse,
// reassemble, acknowledge, send — with no goroutine switch between the RX
// ring and it. fn takes each datagram's reference; it must not block (the
// ring waits for it) nor keep the slice. OnPass(nil) restores queueing.
func (c *Conduit) OnPass(fn func([]netio.Datagram)) {
	if fn == nil {
		c.onPass.Store(nil)
		return
	}
	c.onPass.Store(&fn)
}

// RecvBatch appends to dst every datagram of the next receive pass (one
// channel receive for the whole pass) and returns it; it blocks for a pass,
// ctx's end, or Close. The caller takes each Frame's reference, as from
// Recv. Use either RecvBatch or Recv on a conduit, not both at once: Recv
// keeps the rest of a pass for its next call.
func (c *Conduit) RecvBatch(ctx context.Context, dst []netio.Datagram) ([]netio.Datagram, error) {
	var b *rxBatch
	select {
	case b = <-c.rx:
	default:
		select {
		case b = <-c.rx:
		case <-ctx.Done():
			return dst, ctx.Err()
		case <-c.closing:
			return dst, netio.ErrClosed
		}
	}
	dst = append(dst, b.d...)
	clear(b.d)
	b.d = b.d[:0]
	c.free <- b
	return dst, nil
}

// Recv blocks for the next datagram, ctx's end, or Close. The datagram's
// Frame is a view on the UMEM frame it arrived in: the caller takes its
// reference, and the frame goes back to the fill ring after the last Release.
func (c *Conduit) Recv(ctx context.Context) (netio.Datagram, error) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if c.cur == nil {
		select {
		case c.cur = <-c.rx:
		default:
			select {
			case c.cur = <-c.rx:
			case <-ctx.Done():
				return netio.Datagram{}, ctx.Err()
			case <-c.closing:
				return netio.Datagram{}, netio.ErrClosed
			}
		}
		c.curOff = 0
	}
	d := c.cur.d[c.curOff]
	c.curOff++
	if c.curOff == len(c.cur.d) {
		clear(c.cur.d)
		c.cur.d = c.cur.d[:0]
		c.free <- c.cur
		c.cur = nil
	}
	return d, nil
}

// Buffered reports how many received datagrams Recv holds from the
// current pass (the link flushes its acks once they are consumed).
func (c *Conduit) Buffered() int {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if c.cur == nil {
		return 0
	}
	return len(c.cur.d) - c.curOff
}

// UMEMHolds reports whether every byte of b lies in this conduit's UMEM,
// each segment inside one frame and past the Ethernet/IPv4/UDP headers the
// kernel wrote in front of the datagram: where a received frame's
// datagram, and nothing a user-space copy makes (pool.Copy fills frames
// from offset 0, Wrap is heap), lies. Tests prove zero-copy by this
// identity rather than by counters.
func (c *Conduit) UMEMHolds(b bufpool.Buf) bool {
	if b.Len() == 0 || len(c.umem) == 0 {
		return false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(c.umem)))
	for seg := range b.Segments() {
		if len(seg) == 0 {
			continue
		}
		p := uintptr(unsafe.Pointer(unsafe.SliceData(seg))) - base
		if p >= uintptr(len(c.umem)) || p+uintptr(len(seg)) > uintptr(len(c.umem)) {
			return false // below base wraps to a large offset
		}
		fs := uintptr(c.cfg.FrameSize)
		if p/fs != (p+uintptr(len(seg))-1)/fs || p%fs < HeadersLen {
			return false
		}
	}
	return true
}

// Stats returns the conduit's wire counters. RecvCopiedBytes is always zero:
// received bytes are handed up in the UMEM frame the kernel wrote them into.
func (c *Conduit) Stats() netio.ConduitStats {
	return netio.ConduitStats{
		FramesSent: c.framesSent.Load(), FramesReceived: c.framesRecv.Load(),
		BytesSent: c.bytesSent.Load(), BytesReceived: c.bytesRecv.Load(),
		SendCopiedBytes:       c.sendCopied.Load(),
		KernelRecvCopiedBytes: c.kernelCopied.Load(),
		Dropped:               c.dropped.Load(),
	}
}

// XDPStats returns every counter of the conduit, the kernel's included.
func (c *Conduit) XDPStats() (Stats, error) {
	st := Stats{
		ConduitStats: c.Stats(), Mode: c.prog.Mode(), ZeroCopy: c.zc, Pool: c.pool.Stats(),
		RehomedPayloads: c.rehomed.Load(), RehomedBytes: c.rehomedBytes.Load(),
		FillStarved: c.starved.Load(), Rejected: c.rejected.Load(), TxDropped: c.txDropped.Load(),
		Held: c.prog.HeldStats(), RecvPasses: c.passes.Load(), Polls: c.polls.Load(), TxKicks: c.kicks.Load(), TxCalls: c.txCalls.Load(),
	}
	st.SendReferencedBytes, st.SendRefDescs, st.MultiBuffer = c.refSent.Load(), c.refDescsSent.Load(), c.sg
	st.NeedWakeup, st.TxKicksSkipped, st.RxWakeups = c.nw, c.txNoKick.Load(), c.rxWakeups.Load()
	switch {
	case st.SendCopiedBytes == 0:
	case !c.sg:
		st.SendCopyFallback = "copied into a TX frame per recipient: " + c.noSG
	default:
		st.SendCopyFallback = "payload not in this UMEM: copied into a TX frame per recipient"
	}
	var err error
	st.Kernel, err = c.prog.Counters()
	var serr error
	c.mu.Lock()
	if !c.closed {
		var s axdp.Stats
		s, serr = c.xsk.Stats()
		st.Socket = s.KernelStats
	}
	c.mu.Unlock()
	return st, errors.Join(err, serr)
}

// Close stops the receive loop, detaches the program, closes the socket and
// releases every frame the conduit holds. Datagrams already handed up stay
// valid: if any is still referenced, the UMEM stays mapped (the kernel lets
// go of it when the socket closes) until ReleaseUMEM.
func (c *Conduit) Close() error {
	var err error
	c.once.Do(func() {
		close(c.closing)
		c.wg.Wait()
		err = c.teardown()
	})
	return err
}

// ErrUMEMInUse is returned by ReleaseUMEM while received buffers are still
// referenced.
var ErrUMEMInUse = errors.New("xdp: UMEM frames still referenced")

// ReleaseUMEM unmaps the UMEM of a conduit that was closed while received
// buffers were still referenced, once they have all been released. It is a
// no-op when Close already unmapped it.
func (c *Conduit) ReleaseUMEM() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.umemKept {
		return nil
	}
	if c.pool.Outstanding() > 0 {
		return ErrUMEMInUse
	}
	c.umemKept = false
	if err := syscall.Munmap(c.umem); err != nil { // asavie mapped it with syscall.Mmap
		return fmt.Errorf("xdp: unmap UMEM: %w", err)
	}
	return nil
}

func (c *Conduit) teardown() error {
	var errs []error
	if c.prog != nil {
		if c.xsk != nil {
			// The map entry holds a reference on the socket, which the
			// map's deferred free would drop only later: the queue would
			// stay bound a while after Close.
			errs = append(errs, c.prog.Unregister(c.cfg.Queue))
		}
		errs = append(errs, c.prog.Close())
	}
	for {
		select {
		case b := <-c.rx:
			releaseBatch(b)
			continue
		default:
		}
		break
	}
	c.recvMu.Lock()
	if c.cur != nil {
		for _, d := range c.cur.d[c.curOff:] {
			d.Frame.Release()
		}
		c.cur = nil
	}
	c.recvMu.Unlock()
	c.mu.Lock()
	c.closed = true
	for i := range c.onRing {
		c.releaseOnRing(i)
	}
	for i := range c.txBody {
		c.txBody[i].Release()
		c.txBody[i] = bufpool.Buf{}
	}
	c.pending = c.pending[:0]
	c.mu.Unlock()
	if c.flags != nil {
		errs = append(errs, c.flags.close())
	}
	if c.comp != nil {
		errs = append(errs, c.comp.close())
	}
	if c.xsk != nil {
		// Unmapped and closed under the lock newSocket holds, so that its
		// cleanup of orphan rings never sees this socket half closed.
		socketFlagsMu.Lock()
		defer socketFlagsMu.Unlock()
		errs = append(errs, unmapRings(c.xsk)) // or the socket, and its queue, outlive Close
		if c.pool != nil && c.pool.Outstanding() > 0 {
			// Frames still referenced: close the socket, keep the memory
			// until ReleaseUMEM.
			errs = append(errs, unix.Close(c.xsk.FD()))
			c.umemKept = true
			c.log.Info("xdp: conduit closed with UMEM frames still referenced; UMEM stays mapped until ReleaseUMEM", "outstanding", c.pool.Outstanding())
		} else {
			errs = append(errs, c.xsk.Close())
		}
	}
	return errors.Join(errs...)
}

var _ netio.Conduit = (*Conduit)(nil)
