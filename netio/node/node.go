package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/config"
	"github.com/onecast/onecast/netio/link"
	"github.com/onecast/onecast/netio/udp"
	"github.com/onecast/onecast/netio/xdp"
	"github.com/onecast/onecast/pbft"
)

// Specs lists the protocols a node runs by name (Config.Protocol).
func Specs() []broadcast.Spec {
	return []broadcast.Spec{bracha.Spec, pbft.Spec, dolevstrong.Spec}
}

// DefaultFrames is the default number of frames of a node's buffer pool.
const DefaultFrames = 16384

// Config configures a node. Cluster and ID are required; everything else
// has a default that suits a node of a real cluster.
type Config struct {
	// Cluster is the cluster's configuration (onecast keygen, config.Load):
	// fault bound, mode, authenticator, every node's address and transport.
	Cluster *config.Cluster
	// ID is this node's index in Cluster.Nodes.
	ID int
	// Keyring is this node's keys (default: Cluster.Keyring(ID), which
	// reads the node's key file). In-process clusters that generate their
	// keys pass them here.
	Keyring *broadcast.Keyring

	// Spec is the protocol to run. When Spec.New is nil, Protocol names
	// one of Specs() instead (default Cluster.Protocol). A caller with its
	// own state machine (kv/replica: PBFT over a durable store) passes a
	// Spec whose New builds it.
	Spec     broadcast.Spec
	Protocol string
	// Mode is "full" or "digest" (default Cluster.Mode).
	Mode string
	// Tuning is passed to the protocol; its Auth is always the cluster's.
	Tuning broadcast.Tuning

	// Transport overrides the node's transport section of Cluster (nil:
	// the section, and UDP without one). See config.Transport.
	Transport *config.Transport
	// Conduit, when set, is a conduit the caller opened (a test harness,
	// an ablation that wraps AF_XDP); the node runs the reliable link over
	// it and takes it: the node closes it, also when Start fails.
	// Transport is then ignored.
	Conduit netio.Conduit
	// Endpoint, when set, is an in-process transport whose messages are
	// authentic and reliable by construction (netio/mem): the node runs
	// its runner over it directly, without the reliable link, and does not
	// close it. Conduit and Transport are then ignored.
	Endpoint netio.Transport
	// Do runs fn where the node's sockets must be opened: in the node's
	// network namespace (netns.Topology.Do). Default: fn is called as is.
	Do func(fn func() error) error

	// Frames and FrameSize shape the node's buffer pool: the UDP
	// conduit's receive frames and the frames Pool gives applications
	// (default DefaultFrames frames of max(2048, MTU rounded up to 1 KiB)).
	Frames, FrameSize int
	// Window is the reliable link's per-peer window (default: link's).
	Window int
	// MaxPayload is the largest payload the node submits and receives
	// (default link.DefaultMaxPayload, 8 MiB): Submit refuses a larger one
	// with an error naming the limit (errors.Is link.ErrTooLarge).
	MaxPayload int
	// Store bounds the payload store (its sender quota).
	Store broadcast.StoreConfig
	// Epoch is the origin of the protocol clock (default: the Unix
	// epoch, which every node on every host with a synchronized clock
	// shares, so that synchronous rounds line up across processes).
	Epoch time.Time
	// Verifiers is the number of goroutines verifying authenticators
	// (default: the runner's, 1).
	Verifiers int
	// Metrics receives the node's counters (default: a fresh one).
	Metrics *broadcast.Metrics
	// Logger receives the node's logs (default slog.Default()), with a
	// "node" attribute added.
	Logger *slog.Logger

	// OnDeliver, when set, is called for each delivery on the node's
	// protocol loop; it takes the delivery's payload reference (see the
	// package doc). It must not block for long: the node waits for it.
	OnDeliver func(broadcast.Delivery)
	// Deliveries, when set and OnDeliver is not, receives each delivery;
	// the receiver takes its payload reference. The node blocks on a full
	// channel (back-pressure up to the protocol loop), and releases what
	// it could not hand over when it closes. The node never closes the
	// channel, so several nodes may share one.
	Deliveries chan<- broadcast.Delivery

	// privileged checks that the process may use AF_XDP (default
	// checkPrivileges; tests replace it).
	privileged func() error
}

// Node is a running node: its buffer pool, payload store, protocol,
// conduit, reliable link, authenticator and runner, assembled once.
type Node struct {
	maxPayload int
	id         broadcast.NodeID
	logger     *slog.Logger
	spec       broadcast.Spec
	params     broadcast.Params
	pool       *bufpool.Pool
	store      *broadcast.PayloadStore
	proto      broadcast.Protocol
	udp        *udp.Conduit // when the node opened a UDP conduit
	xdp        *xdp.Conduit // when the node opened an AF_XDP conduit
	conduit    netio.Conduit
	link       *link.Link
	runner     *netio.Runner
	metrics    *broadcast.Metrics
	transport  string
	fallback   string
	onDeliver  func(broadcast.Delivery)
	out        chan<- broadcast.Delivery

	closing chan struct{}
	once    sync.Once
	err     error
}

// Start assembles node cfg.ID and starts it. On error, everything opened
// so far is closed again, and the error names the field or the resource
// at fault.
func Start(cfg Config) (_ *Node, err error) {
	defer func() {
		if err != nil && cfg.Conduit != nil {
			_ = cfg.Conduit.Close() // taken, also on error (closing twice is harmless)
		}
	}()
	c := cfg.Cluster
	if c == nil {
		return nil, errors.New("node: Config.Cluster is required")
	}
	if cfg.ID < 0 || cfg.ID >= c.N() {
		return nil, fmt.Errorf("node: Config.ID %d outside the cluster's nodes 0…%d", cfg.ID, c.N()-1)
	}
	spec := cfg.Spec
	if spec.New == nil {
		name := cfg.Protocol
		if name == "" {
			name = c.Protocol
		}
		if spec, err = broadcast.FindSpec(Specs(), name); err != nil {
			return nil, fmt.Errorf("node: protocol: %w", err)
		}
	}
	modeName := cfg.Mode
	if modeName == "" {
		modeName = c.Mode
	}
	mode, err := broadcast.ParseMode(modeName)
	if err != nil {
		return nil, fmt.Errorf("node: mode: %w", err)
	}
	scheme, err := broadcast.ParseScheme(c.Auth)
	if err != nil {
		return nil, fmt.Errorf("node: auth: %w", err)
	}
	id := broadcast.NodeID(cfg.ID)
	params := broadcast.Params{N: c.N(), F: c.F, Self: id, Mode: mode}
	if spec.MinN != nil {
		if err := params.Validate(spec.MinN); err != nil {
			return nil, fmt.Errorf("node: %s: %w", spec.Name, err)
		}
	}
	tr := cfg.Transport
	if tr == nil {
		tr = c.Nodes[cfg.ID].Transport
	}
	if err := tr.Validate(); err != nil {
		return nil, fmt.Errorf("node: transport: %w", err)
	}
	ring := cfg.Keyring
	if ring == nil {
		if ring, err = c.Keyring(cfg.ID); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	auth, err := broadcast.NewAuthenticator(scheme, ring)
	if err != nil {
		return nil, fmt.Errorf("node: auth: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = &broadcast.Metrics{}
	}
	if cfg.Do == nil {
		cfg.Do = func(fn func() error) error { return fn() }
	}
	if cfg.privileged == nil {
		cfg.privileged = checkPrivileges
	}
	if cfg.Epoch.IsZero() {
		cfg.Epoch = time.Unix(0, 0)
	}
	mtu := c.MTU
	if mtu == 0 {
		mtu = udp.DefaultMTU
	}
	if cfg.FrameSize == 0 {
		cfg.FrameSize = max(2048, (mtu+1023)/1024*1024)
	}
	if cfg.Frames == 0 {
		cfg.Frames = DefaultFrames
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = link.DefaultMaxPayload
	}
	if cfg.MaxPayload < 0 || int64(cfg.MaxPayload) > int64(broadcast.DefaultLimits.MaxPayload) {
		return nil, fmt.Errorf("node: Config.MaxPayload %d outside [1, %d]", cfg.MaxPayload, broadcast.DefaultLimits.MaxPayload)
	}
	nd := &Node{maxPayload: cfg.MaxPayload, id: id, logger: cfg.Logger.With("node", cfg.ID), spec: spec, params: params, metrics: cfg.Metrics,
		onDeliver: cfg.OnDeliver, out: cfg.Deliveries, closing: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = nd.Close()
		}
	}()
	nd.pool, err = bufpool.New(bufpool.Config{FrameSize: cfg.FrameSize, Frames: cfg.Frames, Name: fmt.Sprintf("node%d", cfg.ID)})
	if err != nil {
		return nil, fmt.Errorf("node: buffer pool: %w", err)
	}

	// The transport first: an AF_XDP conduit's program is the store's
	// observer (the kernel's map of held digests).
	var tp netio.Transport
	switch {
	case cfg.Endpoint != nil:
		tp, nd.transport = cfg.Endpoint, "mem"
	case cfg.Conduit != nil:
		nd.conduit, nd.transport = cfg.Conduit, "conduit"
		if _, ok := cfg.Conduit.(interface{ XDPStats() (xdp.Stats, error) }); ok {
			nd.transport = "xdp"
		}
	default:
		if err := nd.openConduit(&cfg, tr, mtu); err != nil {
			return nil, err
		}
	}
	storeCfg := cfg.Store
	if storeCfg.Observer == nil {
		if o, ok := nd.conduit.(interface {
			StoreObserver() broadcast.StoreObserver
		}); ok {
			storeCfg.Observer = o.StoreObserver()
		} else if nd.xdp != nil {
			storeCfg.Observer = nd.xdp.Program()
		}
	}
	nd.store = broadcast.NewPayloadStore(storeCfg)
	if w, ok := nd.conduit.(interface{ WatchStore(*broadcast.PayloadStore) }); ok {
		w.WatchStore(nd.store) // long-held payloads leave the receive frames when they run low
	}
	if nd.conduit != nil {
		nd.link, err = link.New(link.Config{Self: id, N: c.N(), Conduit: nd.conduit, Window: cfg.Window, MaxPayload: cfg.MaxPayload,
			Metrics: nd.metrics, Logger: nd.logger})
		if err != nil {
			return nil, fmt.Errorf("node: link: %w", err)
		}
		tp = nd.link
	}
	tuning := cfg.Tuning
	tuning.Auth = scheme
	nd.proto, err = spec.New(params, broadcast.Env{Store: nd.store, Keys: ring, Tuning: tuning})
	if err != nil {
		return nil, fmt.Errorf("node: %s: %w", spec.Name, err)
	}
	nd.runner, err = netio.NewRunner(netio.RunnerConfig{Self: id, N: c.N(), Protocol: nd.proto, Transport: tp,
		Auth: auth, Metrics: nd.metrics, OnDeliver: nd.deliver, Logger: nd.logger, Verifiers: cfg.Verifiers,
		Epoch: cfg.Epoch})
	if err != nil {
		return nil, fmt.Errorf("node: runner: %w", err)
	}
	nd.runner.Start()
	attrs := []any{"protocol", spec.Name, "mode", mode, "n", params.N, "f", params.F, "auth", scheme,
		"transport", nd.transport}
	if nd.udp != nil {
		attrs = append(attrs, "addr", nd.udp.LocalAddr(), "mtu", mtu)
	}
	if nd.xdp != nil {
		attrs = append(attrs, "iface", tr.Iface, "queue", tr.Queue)
	}
	if nd.fallback != "" {
		attrs = append(attrs, "fallback", nd.fallback)
	}
	nd.logger.Info("node started", attrs...)
	return nd, nil
}

// openConduit opens the conduit tr names: AF_XDP, falling back to UDP when
// tr allows it, or UDP.
func (nd *Node) openConduit(cfg *Config, tr *config.Transport, mtu int) error {
	if tr.KindOrDefault() == config.TransportXDP {
		var cd *xdp.Conduit
		err := cfg.Do(func() error {
			var err error
			cd, err = openXDP(cfg, tr, nd.metrics, nd.logger)
			return err
		})
		if err == nil {
			nd.xdp, nd.conduit, nd.transport = cd, cd, config.TransportXDP
			return nil
		}
		if tr.Fallback != config.TransportUDP {
			return err
		}
		nd.fallback = err.Error()
		nd.logger.Warn("AF_XDP unavailable: running over kernel UDP (transport.fallback: udp)", "cause", err)
	}
	peers, err := addrsOf(cfg.Cluster)
	if err != nil {
		return err
	}
	err = cfg.Do(func() error {
		var err error
		nd.udp, err = udp.New(udp.Config{Self: nd.id, Peers: peers, Pool: nd.pool, MTU: mtu, Logger: nd.logger})
		return err
	})
	if err != nil {
		return fmt.Errorf("node %d: UDP on %v: %w", nd.id, peers[nd.id], err)
	}
	nd.conduit, nd.transport = nd.udp, config.TransportUDP
	return nil
}

// addrsOf returns every node's UDP address, or an error naming the entry
// that has none (a configuration built in memory, not loaded).
func addrsOf(c *config.Cluster) ([]netip.AddrPort, error) {
	out := make([]netip.AddrPort, c.N())
	for i, n := range c.Nodes {
		ap, err := netip.ParseAddrPort(n.Addr)
		if err != nil {
			return nil, fmt.Errorf("node: nodes[%d].addr: %w", i, err)
		}
		out[i] = ap
	}
	return out, nil
}

// deliver runs on the runner's loop goroutine; it takes d's reference.
func (nd *Node) deliver(d broadcast.Delivery) {
	switch {
	case nd.onDeliver != nil:
		nd.onDeliver(d)
	case nd.out != nil:
		select {
		case nd.out <- d:
		case <-nd.closing:
			d.Payload.Release()
		}
	default:
		d.Payload.Release()
	}
}

// ID returns the node's ID.
func (nd *Node) ID() broadcast.NodeID { return nd.id }

// Spec returns the protocol the node runs.
func (nd *Node) Spec() broadcast.Spec { return nd.spec }

// Params returns the node's protocol parameters.
func (nd *Node) Params() broadcast.Params { return nd.params }

// Conduit returns the conduit the node runs on (nil over mem).
func (nd *Node) Conduit() netio.Conduit { return nd.conduit }

// Pool returns the node's buffer pool, from which applications take the
// buffers they Submit (Pool().Copy(data)).
func (nd *Node) Pool() *bufpool.Pool { return nd.pool }

// SendPool returns the pool whose buffers the node's conduit sends by
// reference: over AF_XDP, the UMEM (a payload built there goes out to
// every peer without a copy into TX frames, as the bench's namespace
// clusters build theirs); otherwise Pool. Its buffers share the UMEM with
// the receive ring: hold them only as long as a Submit needs.
func (nd *Node) SendPool() *bufpool.Pool {
	if nd.xdp != nil {
		return nd.xdp.Pool()
	}
	return nd.pool
}

// LocalAddr returns the UDP address the node is bound to; the zero value
// when it runs over another transport.
func (nd *Node) LocalAddr() netip.AddrPort {
	if nd.udp == nil {
		return netip.AddrPort{}
	}
	return nd.udp.LocalAddr()
}

// Submit broadcasts (or, for PBFT, submits for ordering) payload p. It
// takes p's reference, also when it fails. It blocks while the node's
// transport is congested, until ctx is done.
func (nd *Node) Submit(ctx context.Context, p bufpool.Buf) error {
	if max := nd.maxPayload; max > 0 && p.Len() > max {
		n := p.Len()
		p.Release()
		return fmt.Errorf("node: payload of %d bytes exceeds MaxPayload of %d bytes (Config.MaxPayload): %w", n, max, link.ErrTooLarge)
	}
	return nd.runner.Submit(ctx, p)
}

// Metrics are a node's counters, from every layer.
type Metrics struct {
	// Transport is "udp", "xdp", "mem" or "conduit" (a conduit the caller
	// opened).
	Transport string
	// Fallback, when not empty, is why the node runs over UDP although
	// its configuration asked for AF_XDP.
	Fallback string
	// Broadcast are the protocol's traffic, deliveries and copies.
	Broadcast broadcast.Snapshot
	// Runner are the runner's counters (verification, send errors).
	Runner netio.RunnerStats
	// Store are the payload store's counters.
	Store broadcast.StoreStats
	// Link are the reliable link's counters (zero over mem).
	Link link.Stats
	// Conduit are the conduit's counters (zero over mem).
	Conduit netio.ConduitStats
	// Pool are the node's buffer pool's counters.
	Pool bufpool.Stats
	// UMEM are the AF_XDP receive pool's counters (zero without AF_XDP).
	UMEM bufpool.Stats
	// UDP are the UDP conduit's counters (when the node opened one).
	UDP udp.Stats
	// XDP are the AF_XDP conduit's counters (when it runs over AF_XDP).
	XDP xdp.Stats
}

// Metrics returns the node's counters. Safe from any goroutine.
func (nd *Node) Metrics() Metrics {
	m := Metrics{Transport: nd.transport, Fallback: nd.fallback, Broadcast: nd.metrics.Snapshot(),
		Runner: nd.runner.Stats(), Store: nd.store.Stats(), Pool: nd.pool.Stats()}
	if nd.link != nil {
		m.Link = nd.link.Stats()
	}
	if nd.conduit != nil {
		m.Conduit = nd.conduit.Stats()
	}
	if nd.udp != nil {
		m.UDP = nd.udp.UDPStats()
	}
	if x, ok := nd.conduit.(interface{ XDPStats() (xdp.Stats, error) }); ok {
		m.XDP, _ = x.XDPStats()
		m.UMEM = m.XDP.Pool
	}
	return m
}

// Close stops the node: the runner (no delivery after it returns), the
// link and its conduit, the protocol (its pins and held payloads), the
// store; then unmaps an AF_XDP UMEM when no payload references it any
// more. Delivered payloads the application still holds stay valid until
// it releases them. Close is idempotent.
func (nd *Node) Close() error {
	nd.once.Do(func() {
		close(nd.closing)
		if nd.runner != nil {
			nd.runner.Stop()
		}
		var errs []error
		if nd.link != nil {
			errs = append(errs, nd.link.Close())
		} else if nd.conduit != nil {
			errs = append(errs, nd.conduit.Close())
		}
		if cl, ok := nd.proto.(interface{ Close() }); ok {
			cl.Close() // the runner has stopped: no other caller
		}
		if nd.store != nil {
			nd.store.Close()
		}
		if nd.xdp != nil {
			if err := nd.xdp.ReleaseUMEM(); errors.Is(err, xdp.ErrUMEMInUse) {
				nd.logger.Info("UMEM stays mapped: the application still holds received payloads")
			} else {
				errs = append(errs, err)
			}
		}
		nd.err = errors.Join(errs...)
	})
	return nd.err
}
