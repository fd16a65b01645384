package bench

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/config"
	"github.com/onecast/onecast/netio/mem"
	"github.com/onecast/onecast/netio/netns"
	"github.com/onecast/onecast/netio/node"
	"github.com/onecast/onecast/netio/udp"
)

// Inproc returns the factory of in-process clusters: every node a
// netio.Runner in this process, over the mem transport (payloads passed by
// reference) or over kernel UDP sockets on 127.0.0.x with the reliable link.
func Inproc(logger *slog.Logger) ClusterFactory {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, pt Point, spec broadcast.Spec, sink Sink) (Cluster, Load, error) {
		return startInproc(pt, spec, sink, logger)
	}
}

type inprocCluster struct {
	pt  Point
	byz map[broadcast.NodeID]string
	// conduits opened for nodes not yet started (a node takes its own).
	conduits []netio.Conduit
	// cleanup runs last in Close (a namespace topology).
	cleanup func() error
	// topo is the namespace topology of a netns cluster (nil otherwise).
	topo    *netns.Topology
	nodes   []*node.Node // nil for a node that is not started (silent)
	correct []broadcast.NodeID
	// byzantine are the wire-level Byzantine nodes running (netio/wireadv).
	byzantine []*byzantineNode
	// openByzantine opens a wire-level Byzantine node's conduit, in its
	// namespace (nil: the transport has none, the behaviours are refused).
	openByzantine func(id broadcast.NodeID, cl *config.Cluster) (netio.Conduit, error)
	// protos and free are each correct node's protocol counters and
	// receive-frame sampler.
	protos  []*ProtocolCounters
	free    []*FreeSampler
	net     *mem.Network
	payload *bufpool.Pool
	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once
}

// byzantineSet assigns the point's Byzantine behaviours to the highest node
// IDs (node 0 stays correct, so a leader-based protocol starts with a
// correct leader unless the scenario says otherwise).
func byzantineSet(pt Point) (map[broadcast.NodeID]string, error) {
	out := map[broadcast.NodeID]string{}
	next := pt.N - 1
	for _, b := range pt.Byzantine {
		if !slices.Contains(protocolBehaviours, b.Behaviour) && !isWire(b.Behaviour) {
			return nil, fmt.Errorf("behaviour %q is not available on a real cluster (have %s); the simulator has the protocol-level set",
				b.Behaviour, strings.Join(behaviourNames(), ", "))
		}
		for range b.Count {
			if next < 0 {
				return nil, fmt.Errorf("more Byzantine nodes than nodes")
			}
			out[broadcast.NodeID(next)] = b.Behaviour
			next--
		}
	}
	return out, nil
}

func startInproc(pt Point, spec broadcast.Spec, sink Sink, logger *slog.Logger) (_ Cluster, _ Load, err error) {
	c, err := newCluster(pt)
	if err != nil {
		return nil, Load{}, err
	}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	cl := pt.cluster(spec)
	var transport func(id broadcast.NodeID, cfg *node.Config)
	switch pt.Transport {
	case "mem":
		for _, beh := range c.byz {
			if isWire(beh) {
				return nil, Load{}, fmt.Errorf("behaviour %q attacks the wire: it needs --transport udp or xdp", beh)
			}
		}
		c.net = mem.NewNetwork(pt.N)
		transport = func(id broadcast.NodeID, cfg *node.Config) { cfg.Endpoint = c.net.Endpoint(id) }
	case "udp":
		addrs, err := udp.LoopbackAddrs(pt.N, 1)
		if err != nil {
			return nil, Load{}, err
		}
		cl.MTU = 1500
		for i, a := range addrs {
			cl.Nodes[i].Addr = a.String()
		}
		transport = func(broadcast.NodeID, *node.Config) {} // the node opens its UDP socket
		c.openByzantine = func(id broadcast.NodeID, cl *config.Cluster) (netio.Conduit, error) {
			return openUDP(cl, id, func(fn func() error) error { return fn() }, logger)
		}
	default:
		return nil, Load{}, fmt.Errorf("transport %q is not available in an inproc cluster (have mem, udp; xdp needs --cluster netns)", pt.Transport)
	}
	if err := c.assemble(cl, spec, sink, logger, transport); err != nil {
		return nil, Load{}, err
	}
	return c, Load{Pool: c.payload}, nil
}

// cluster describes pt's nodes as a configuration (addresses left to the
// cluster's transport).
func (pt Point) cluster(spec broadcast.Spec) *config.Cluster {
	cl := &config.Cluster{Protocol: spec.Name, Mode: pt.Mode.String(), F: pt.F, Auth: pt.Auth.String(),
		Nodes: make([]config.Node, pt.N)}
	for i := range cl.Nodes {
		cl.Nodes[i].ID = i
	}
	return cl
}

// newCluster prepares the nodes of pt (correct ones are listed, Byzantine
// ones are not started) and the payload pool.
func newCluster(pt Point) (*inprocCluster, error) {
	byz, err := byzantineSet(pt)
	if err != nil {
		return nil, err
	}
	c := &inprocCluster{pt: pt, nodes: make([]*node.Node, pt.N), byz: byz,
		protos: make([]*ProtocolCounters, pt.N), free: make([]*FreeSampler, pt.N)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for i := range pt.N {
		id := broadcast.NodeID(i)
		if _, bad := byz[id]; bad {
			continue
		}
		c.correct = append(c.correct, id)
	}
	// Payload frames: protocols keep delivered payloads a while (Bracha's
	// digest mode, 2 s, to answer late fetches), so the pool covers a high
	// throughput times that. Untouched frames cost address space, not RSS.
	frame := min(max(4096, pt.PayloadBytes), 1<<20)
	frames := min(16384, max(2048, (256<<20)/frame))
	c.payload, err = bufpool.New(bufpool.Config{FrameSize: frame, Frames: frames, Name: "bench-payloads"})
	if err != nil {
		c.cancel()
		return nil, err
	}
	return c, nil
}

// assemble starts every correct node of cl with netio/node, with keys
// generated here and one protocol clock; transport sets each node's
// transport (an in-process endpoint, a namespace, a conduit).
func (c *inprocCluster) assemble(cl *config.Cluster, spec broadcast.Spec, sink Sink, logger *slog.Logger,
	transport func(id broadcast.NodeID, cfg *node.Config)) error {
	pt := c.pt
	rings, err := broadcast.GenerateKeyrings(pt.N, crand.Reader)
	if err != nil {
		return fmt.Errorf("generate keys: %w", err)
	}
	for i := range pt.N {
		if _, bad := c.byz[broadcast.NodeID(i)]; bad && c.net != nil {
			_ = c.net.Endpoint(broadcast.NodeID(i)).Close() // messages to a silent node are dropped
		}
	}
	epoch := time.Now() // one protocol clock for every node: synchronous rounds line up
	for _, id := range c.correct {
		c.protos[id] = &ProtocolCounters{}
		cfg := node.Config{Cluster: cl, ID: int(id), Keyring: rings[id], Spec: CountingSpec(spec, c.protos[id]), Frames: 8192, Epoch: epoch,
			Tuning: broadcast.Tuning{Batch: pt.Batch, MaxDelay: pt.MaxDelay},
			OnDeliver: func(d broadcast.Delivery) {
				sink.Delivered(id, d.Payload, time.Now())
				d.Payload.Release()
			},
			Logger: logger}
		transport(id, &cfg)
		if c.conduits != nil {
			cfg.Conduit, c.conduits[id] = c.conduits[id], nil // the node takes it
		}
		if cfg.Endpoint != nil || cfg.Conduit != nil {
			cfg.Frames = 256 // no UDP receive frames: the node's pool is only for its Pool()
		}
		if c.nodes[id], err = node.Start(cfg); err != nil {
			return fmt.Errorf("%s node %d: %w", spec.Name, id, err)
		}
		nd := c.nodes[id]
		c.free[id] = NewFreeSampler(func() int { return ReceiveFree(nd.Metrics()) })
	}
	for i := range pt.N {
		id := broadcast.NodeID(i)
		beh, bad := c.byz[id]
		if !bad || !isWire(beh) {
			continue
		}
		var cd netio.Conduit
		if c.conduits != nil && c.conduits[id] != nil {
			cd, c.conduits[id] = c.conduits[id], nil
		} else if c.openByzantine != nil {
			if cd, err = c.openByzantine(id, cl); err != nil {
				return err
			}
		} else {
			return fmt.Errorf("behaviour %q attacks the wire: transport %q has no conduit for it", beh, pt.Transport)
		}
		bn, err := startByzantine(cl, spec, id, beh, rings[id], cd, pt, epoch, logger)
		if err != nil {
			return err
		}
		c.byzantine = append(c.byzantine, bn)
	}
	return nil
}

func (c *inprocCluster) Submit(id broadcast.NodeID, p bufpool.Buf) error {
	nd := c.nodes[id]
	if nd == nil {
		p.Release()
		return fmt.Errorf("node %v is not running", id)
	}
	err := nd.Submit(c.ctx, p)
	if errors.Is(err, context.Canceled) {
		return ErrBackPressure // the point ended while the submission waited
	}
	return err
}

func (c *inprocCluster) Correct() []broadcast.NodeID { return c.correct }

func (c *inprocCluster) Counters(id broadcast.NodeID) NodeCounters {
	nd := c.nodes[id]
	if nd == nil {
		return NodeCounters{}
	}
	m := nd.Metrics()
	// The link's receive copies are in m.Broadcast already (the node's
	// metrics): not added again here. Receive frames are the UDP pool's
	// or AF_XDP's UMEM.
	return NodeCounters{Metrics: m.Broadcast, Retransmissions: m.Link.Retransmits,
		CopiedBytes:       m.Pool.CopiedBytes + m.UMEM.CopiedBytes,
		SendCopiedBytes:   m.Conduit.SendCopiedBytes,
		KernelCopiedBytes: KernelCopiedPayload(m.Broadcast, m.Conduit),
		SendCopyFallback:  m.XDP.SendCopyFallback,
		Refusals:          NodeRefusals(m, c.protos[id], c.free[id].Min()),
		Health:            NodeHealth(m)}
}

// KernelCopiedPayload estimates the received payload bytes the kernel
// copied unseen by user space: the node's received payload bytes in the
// proportion of the conduit's received bytes the kernel copied (all of
// them for AF_XDP in copy mode, none in zero-copy mode or over UDP, whose
// recvmmsg copy the link counts as a receive copy).
func KernelCopiedPayload(m broadcast.Snapshot, c netio.ConduitStats) uint64 {
	if c.BytesReceived == 0 || c.KernelRecvCopiedBytes == 0 {
		return 0
	}
	k := min(c.KernelRecvCopiedBytes, c.BytesReceived)
	return uint64(float64(m.Totals().RecvPayload) * float64(k) / float64(c.BytesReceived))
}

func (c *inprocCluster) PeakRSSMB(broadcast.NodeID) float64 { return peakRSSMB(0) }

// Close stops the nodes (runner, link and conduit, store), closes what no
// node took, then the cleanup.
func (c *inprocCluster) Close() error {
	var errs []error
	c.once.Do(func() {
		c.cancel()
		for _, s := range c.free {
			s.Stop()
		}
		for _, bn := range c.byzantine {
			errs = append(errs, bn.node.Close())
		}
		for _, nd := range c.nodes {
			if nd != nil {
				errs = append(errs, nd.Close())
			}
		}
		for _, cd := range c.conduits {
			if cd != nil {
				errs = append(errs, cd.Close())
			}
		}
		if c.net != nil {
			c.net.Close()
		}
		if c.cleanup != nil {
			errs = append(errs, c.cleanup())
		}
	})
	return errors.Join(errs...)
}
