package bench

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/link"
	"github.com/onecast/onecast/netio/mem"
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

// inprocNode is one node of an in-process cluster.
type inprocNode struct {
	id      broadcast.NodeID
	runner  *netio.Runner
	metrics *broadcast.Metrics
	store   *broadcast.PayloadStore
	link    *link.Link
	pool    *bufpool.Pool // receive frames (udp)
}

type inprocCluster struct {
	pt  Point
	byz map[broadcast.NodeID]string
	// conduits not yet owned by a link (assembly failed half-way).
	conduits []netio.Conduit
	// cleanup runs last in Close (a namespace topology).
	cleanup func() error
	nodes   []*inprocNode // nil for a node that is not started (silent)
	correct []broadcast.NodeID
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
		switch b.Behaviour {
		case "silent", "crash":
		default:
			return nil, fmt.Errorf("behaviour %q is not available on a real cluster (have silent, crash); the simulator has the full set", b.Behaviour)
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
	var conduits []netio.Conduit
	switch pt.Transport {
	case "mem":
		c.net = mem.NewNetwork(pt.N)
	case "udp":
		addrs, err := udp.LoopbackAddrs(pt.N, 1)
		if err != nil {
			return nil, Load{}, err
		}
		conduits = make([]netio.Conduit, pt.N)
		for _, id := range c.correct {
			pool, err := bufpool.New(bufpool.Config{FrameSize: 2048, Frames: 8192, Name: fmt.Sprintf("udp%d", id)})
			if err != nil {
				return nil, Load{}, err
			}
			c.nodes[id].pool = pool
			if conduits[id], err = udp.New(udp.Config{Self: id, Peers: addrs, Pool: pool, MTU: 1500, Logger: logger}); err != nil {
				return nil, Load{}, fmt.Errorf("node %d udp: %w", id, err)
			}
		}
	default:
		return nil, Load{}, fmt.Errorf("transport %q is not available in an inproc cluster (have mem, udp; xdp needs --cluster netns)", pt.Transport)
	}
	if err := c.assemble(spec, sink, logger, conduits); err != nil {
		return nil, Load{}, err
	}
	return c, Load{Pool: c.payload}, nil
}

// newCluster prepares the nodes of pt (correct ones get a node record,
// Byzantine ones none) and the payload pool.
func newCluster(pt Point) (*inprocCluster, error) {
	byz, err := byzantineSet(pt)
	if err != nil {
		return nil, err
	}
	c := &inprocCluster{pt: pt, nodes: make([]*inprocNode, pt.N), byz: byz}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for i := range pt.N {
		id := broadcast.NodeID(i)
		if _, bad := byz[id]; bad {
			continue
		}
		c.correct = append(c.correct, id)
		c.nodes[i] = &inprocNode{id: id, metrics: &broadcast.Metrics{}}
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

// assemble builds every correct node: store, protocol, transport (the mem
// endpoint, or the reliable link over conduits[id]) and runner, and starts
// the runners. A store whose conduit watches held digests (AF_XDP) tells it.
func (c *inprocCluster) assemble(spec broadcast.Spec, sink Sink, logger *slog.Logger, conduits []netio.Conduit) error {
	pt := c.pt
	c.conduits = conduits // closed by Close until a link takes them over
	rings, err := broadcast.GenerateKeyrings(pt.N, crand.Reader)
	if err != nil {
		return fmt.Errorf("generate keys: %w", err)
	}
	for i := range pt.N {
		if c.nodes[i] == nil && c.net != nil {
			_ = c.net.Endpoint(broadcast.NodeID(i)).Close() // messages to a silent node are dropped
		}
	}
	epoch := time.Now() // one protocol clock for every node: synchronous rounds line up
	for _, id := range c.correct {
		nd := c.nodes[id]
		var storeCfg broadcast.StoreConfig
		var cd netio.Conduit
		if conduits != nil {
			cd = conduits[id]
			if o, ok := cd.(observerSource); ok {
				storeCfg.Observer = o.StoreObserver()
			}
		}
		nd.store = broadcast.NewPayloadStore(storeCfg)
		if w, ok := cd.(storeWatcher); ok {
			w.WatchStore(nd.store)
		}
		params := broadcast.Params{N: pt.N, F: pt.F, Self: id, Mode: pt.Mode}
		proto, err := spec.New(params, broadcast.Env{Store: nd.store, Keys: rings[id],
			Tuning: broadcast.Tuning{Batch: pt.Batch, Auth: pt.Auth, MaxDelay: pt.MaxDelay}})
		if err != nil {
			return fmt.Errorf("%s node %d: %w", spec.Name, id, err)
		}
		auth, err := broadcast.NewAuthenticator(pt.Auth, rings[id])
		if err != nil {
			return err
		}
		var tr netio.Transport
		if c.net != nil {
			tr = c.net.Endpoint(id)
		} else {
			nd.link, err = link.New(link.Config{Self: id, N: pt.N, Conduit: cd, Metrics: nd.metrics, Logger: logger})
			if err != nil {
				_ = cd.Close()
				return fmt.Errorf("node %d link: %w", id, err)
			}
			conduits[id] = nil // the link owns it now
			tr = nd.link
		}
		nd.runner, err = netio.NewRunner(netio.RunnerConfig{
			Self: id, N: pt.N, Protocol: proto, Transport: tr, Auth: auth, Metrics: nd.metrics, Epoch: epoch,
			OnDeliver: func(d broadcast.Delivery) {
				sink.Delivered(id, d.Payload, time.Now())
				d.Payload.Release()
			},
			Logger: logger,
		})
		if err != nil {
			return err
		}
	}
	for _, nd := range c.nodes {
		if nd != nil {
			nd.runner.Start()
		}
	}
	return nil
}

// storeWatcher is a conduit that moves a store's long-held payloads out of
// its receive frames when they run low (UDP, AF_XDP).
type storeWatcher interface {
	WatchStore(*broadcast.PayloadStore)
}

// observerSource is a conduit that keeps a kernel map of held digests in
// step with a store (AF_XDP).
type observerSource interface {
	StoreObserver() broadcast.StoreObserver
}

func (c *inprocCluster) Submit(id broadcast.NodeID, p bufpool.Buf) error {
	nd := c.nodes[id]
	if nd == nil {
		p.Release()
		return fmt.Errorf("node %v is not running", id)
	}
	err := nd.runner.Submit(c.ctx, p)
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
	nc := NodeCounters{Metrics: nd.metrics.Snapshot()}
	if nd.link != nil {
		// The link's receive copies are in nd.metrics already (its
		// Config.Metrics): not added again here.
		nc.Retransmissions = nd.link.Stats().Retransmits
	}
	if nd.pool != nil {
		nc.CopiedBytes += nd.pool.Stats().CopiedBytes
	}

	return nc
}

func (c *inprocCluster) PeakRSSMB(broadcast.NodeID) float64 { return peakRSSMB(0) }

// Close stops the runners, then the transports, then the stores.
func (c *inprocCluster) Close() error {
	var errs []error
	c.once.Do(func() {
		c.cancel()
		for _, nd := range c.nodes {
			if nd != nil && nd.runner != nil {
				nd.runner.Stop()
			}
		}
		for _, nd := range c.nodes {
			if nd == nil {
				continue
			}
			if nd.link != nil {
				errs = append(errs, nd.link.Close())
			}
			if nd.store != nil {
				nd.store.Close()
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
