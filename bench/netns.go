package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/config"
	"github.com/onecast/onecast/netio/netns"
	"github.com/onecast/onecast/netio/node"
	"github.com/onecast/onecast/netio/xdp"
)

// netnsPort is the UDP port every node uses inside its namespace.
const netnsPort = 7700

// Netns returns the factory of namespace clusters: one network namespace
// and veth per node (wired through a bridge), the node's sockets opened
// inside it, every runner in this process. It needs root; the addresses
// exist only inside the namespaces. Transports, from the conventional path
// to onecast's whole one:
//
//   - udp: kernel sockets; the kernel copies each datagram into a user
//     buffer, which is then passed by reference;
//   - xdp-copy: AF_XDP, each datagram copied out of its UMEM frame into a
//     heap buffer on receive (what an AF_XDP application that does not
//     pass references does), the frame recycled at once; no in-kernel strip;
//   - xdp-ref: AF_XDP, payloads passed up by reference in the UMEM frames
//     the kernel filled; no in-kernel strip (the kernel's map of held
//     digests stays empty);
//   - xdp: xdp-ref plus the in-kernel strip of payloads already held;
//   - xdp-busy: xdp whose receive loop spins on the RX ring for 50 µs
//     before it sleeps in poll(2) (its CPU cost shows in cpu µs/deliv).
//
// The AF_XDP variants run on veths of xdp.MaxVethMTU (3506) with 4 KiB
// UMEM frames; udp on the default 1500.
//
// The three AF_XDP variants are the ablation of the receive path: xdp-copy
// against xdp-ref is reference passing alone, xdp-ref against xdp the
// in-kernel strip alone.
func Netns(logger *slog.Logger) ClusterFactory {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, pt Point, spec broadcast.Spec, sink Sink) (Cluster, Load, error) {
		return startNetns(pt, spec, sink, logger)
	}
}

// xdpConduit lets the cluster assembly wire a store to the AF_XDP conduit's
// kernel map of held digests (when strip is set; otherwise the map stays
// empty and the kernel strips nothing).
type xdpConduit struct {
	*xdp.Conduit
	strip bool
}

func (c xdpConduit) StoreObserver() broadcast.StoreObserver {
	if !c.strip {
		return nil
	}
	return c.Program()
}

// copyOutConduit copies each received datagram out of its UMEM frame into
// a heap buffer and recycles the frame at once: the copying receive path
// the xdp-copy transport measures. The link counts the copied payload
// bytes (RecvCopies).
type copyOutConduit struct {
	xdpConduit
	copied atomic.Uint64
}

func (c *copyOutConduit) Recv(ctx context.Context) (netio.Datagram, error) {
	d, err := c.xdpConduit.Recv(ctx)
	if err != nil {
		return d, err
	}
	own := bufpool.Wrap(append([]byte(nil), d.Frame.Bytes()...))
	c.copied.Add(uint64(d.Frame.Len()))
	d.Frame.Release()
	d.Frame = own
	return d, nil
}

// RecvBatch is Recv for a whole receive pass (the link takes passes when
// the conduit offers them): every datagram copied out.
func (c *copyOutConduit) RecvBatch(ctx context.Context, dst []netio.Datagram) ([]netio.Datagram, error) {
	start := len(dst)
	dst, err := c.xdpConduit.RecvBatch(ctx, dst)
	for i := start; i < len(dst); i++ {
		d := &dst[i]
		own := bufpool.Wrap(append([]byte(nil), d.Frame.Bytes()...))
		c.copied.Add(uint64(d.Frame.Len()))
		d.Frame.Release()
		d.Frame = own
	}
	return dst, err
}

// OnPass copies every datagram of a pass out before fn sees it (the link
// runs on the conduit's receive loop when the conduit offers it).
func (c *copyOutConduit) OnPass(fn func([]netio.Datagram)) {
	if fn == nil {
		c.xdpConduit.OnPass(nil)
		return
	}
	c.xdpConduit.OnPass(func(pass []netio.Datagram) {
		for i := range pass {
			d := &pass[i]
			own := bufpool.Wrap(append([]byte(nil), d.Frame.Bytes()...))
			c.copied.Add(uint64(d.Frame.Len()))
			d.Frame.Release()
			d.Frame = own
		}
		fn(pass)
	})
}

// RecvCopies reports that received bytes are copied into user memory.
func (c *copyOutConduit) RecvCopies() bool { return true }

func (c *copyOutConduit) Stats() netio.ConduitStats {
	st := c.xdpConduit.Stats()
	st.RecvCopiedBytes += c.copied.Load()
	return st
}

func startNetns(pt Point, spec broadcast.Spec, sink Sink, logger *slog.Logger) (_ Cluster, _ Load, err error) {
	if ok, why := netns.Available(); !ok {
		return nil, Load{}, fmt.Errorf("netns cluster: %s", why)
	}
	c, err := newCluster(pt)
	if err != nil {
		return nil, Load{}, err
	}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	// AF_XDP nodes get the largest MTU a veth takes with a (single-buffer)
	// XDP program attached, and 4 KiB UMEM frames to hold it: a 16 KiB
	// payload is 5 frames, not 12. UDP keeps the default 1500, the
	// conventional path the comparison starts from.
	mtu := 0
	if strings.HasPrefix(pt.Transport, "xdp") {
		mtu = xdp.MaxVethMTU
	}
	topo, err := netns.New(netns.Config{Nodes: pt.N, Bridge: true, MTU: mtu})
	if err != nil {
		return nil, Load{}, fmt.Errorf("netns topology: %w", err)
	}
	c.topo = topo
	cl := pt.cluster(spec)
	for i, n := range topo.Nodes {
		cl.Nodes[i].Addr = netip.AddrPortFrom(n.Addr, netnsPort).String()
	}
	metrics := make([]*broadcast.Metrics, pt.N)
	for i := range metrics {
		metrics[i] = &broadcast.Metrics{}
	}
	var xdps []*xdp.Conduit
	umem := map[broadcast.NodeID]*bufpool.Pool{} // each AF_XDP node's UMEM: its payloads are built there
	// Close stops the nodes and stores first, then this: unmap each UMEM
	// (a closed conduit keeps it while payloads reference it), then remove
	// the namespaces.
	c.cleanup = func() error {
		var errs []error
		for _, cd := range xdps {
			errs = append(errs, cd.ReleaseUMEM())
		}
		return errors.Join(append(errs, topo.Close())...)
	}
	switch pt.Transport {
	case "udp":
		// Each node opens its socket in its namespace, datagrams that fit
		// the veth MTU of 1500 (the default MTU); so does a wire-level
		// Byzantine node.
		c.openByzantine = func(id broadcast.NodeID, cl *config.Cluster) (netio.Conduit, error) {
			return openUDP(cl, id, func(fn func() error) error { return topo.Do(int(id), fn) }, logger)
		}
	case "xdp", "xdp-ref", "xdp-copy", "xdp-busy":
		c.conduits = make([]netio.Conduit, pt.N)
		// The correct nodes and the wire-level Byzantine ones (the same
		// transport as the others), each on its own interface.
		running := slices.Clone(c.correct)
		for id, beh := range c.byz {
			if isWire(beh) {
				running = append(running, id)
			}
		}
		for _, id := range running {
			cfg := xdp.TopologyConfig(topo, int(id), netnsPort)
			cfg.Metrics = metrics[id]
			// A UMEM large enough for the payloads a protocol retains (Bracha
			// keeps delivered payloads 2 s for late fetches), so that the
			// store's copy-out under the free-frame watermark stays the
			// exception it is meant to be: 32768 frames of 4 KiB, 128 MiB.
			cfg.Frames = node.DefaultXDPFrames
			cfg.FrameSize = 4096
			cfg.Logger = logger
			if pt.Transport == "xdp-busy" {
				cfg.BusyPoll = 50 * time.Microsecond
			}
			var cd *xdp.Conduit
			err := topo.Do(int(id), func() error {
				var err error
				cd, err = xdp.New(cfg)
				return err
			})
			if err != nil {
				return nil, Load{}, fmt.Errorf("node %d AF_XDP in its namespace: %w", id, err)
			}
			xc := xdpConduit{Conduit: cd, strip: pt.Transport == "xdp" || pt.Transport == "xdp-busy"}
			if pt.Transport == "xdp-copy" {
				c.conduits[id] = &copyOutConduit{xdpConduit: xc}
			} else {
				c.conduits[id] = xc
			}
			xdps = append(xdps, cd)
			if pt.Transport != "xdp-copy" {
				umem[id] = cd.Pool()
			}
		}
	default:
		return nil, Load{}, fmt.Errorf("transport %q is not available in a netns cluster (have udp, xdp-copy, xdp-ref, xdp, xdp-busy)", pt.Transport)
	}
	err = c.assemble(cl, spec, sink, logger, func(id broadcast.NodeID, cfg *node.Config) {
		cfg.Metrics = metrics[id]
		cfg.Do = func(fn func() error) error { return topo.Do(int(id), fn) }
	})
	if err != nil {
		return nil, Load{}, err
	}
	load := Load{Pool: c.payload}
	if len(umem) > 0 {
		// Payloads are built in the origin's UMEM, where its conduit sends
		// them by reference (xdp-copy keeps heap payloads: the
		// conventional AF_XDP application copies on both sides).
		load.PoolOf = func(id broadcast.NodeID) *bufpool.Pool { return umem[id] }
	}
	return c, load, nil
}
