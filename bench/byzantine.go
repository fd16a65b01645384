package bench

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/config"
	"github.com/onecast/onecast/netio/node"
	"github.com/onecast/onecast/netio/udp"
	"github.com/onecast/onecast/netio/wireadv"
	"github.com/onecast/onecast/pbft"
)

// protocolBehaviours are the Byzantine behaviours a real cluster has
// besides wireadv's: the node is not started.
var protocolBehaviours = []string{"silent", "crash"}

// isWire reports whether behaviour is one of wireadv's (a node that runs
// and attacks on the wire).
func isWire(behaviour string) bool {
	_, _, err := parseWire(behaviour)
	return err == nil
}

// parseWire parses a wire behaviour, optionally with its load per
// millisecond: "fetch-flood" or "fetch-flood@4" (wireadv.Options.PerTick).
func parseWire(behaviour string) (wireadv.Behaviour, int, error) {
	name, perTick, paced := strings.Cut(behaviour, "@")
	b, err := wireadv.Parse(name)
	if err != nil {
		return "", 0, err
	}
	if !paced {
		return b, 0, nil
	}
	n, err := strconv.Atoi(perTick)
	if err != nil || n <= 0 {
		return "", 0, fmt.Errorf("behaviour %q: the load after @ is not a positive number of messages per millisecond", behaviour)
	}
	return b, n, nil
}

// behaviourNames lists every behaviour a real cluster accepts.
func behaviourNames() []string {
	out := slices.Clone(protocolBehaviours)
	for _, b := range wireadv.Behaviours() {
		out = append(out, string(b))
	}
	return out
}

// Refusals are a correct node's resource-budget counters (the netio/link
// resource table): what its quotas refused or moved, and the fewest free
// receive frames it had. They show that a Byzantine peer was held to its
// share.
type Refusals struct {
	// LinkQuotaDrops counts frames dropped because their peer held its
	// reorder-window quota (link Stats.QuotaDrops).
	LinkQuotaDrops uint64 `json:"link_quota_drops"`
	// RateDeferred counts frames the link held back because their peer
	// had used its receive rate (link Stats.RateDeferred): held before
	// they were decoded, verified or stepped, while the peer's window
	// closed.
	RateDeferred uint64 `json:"rate_deferred"`
	// PartialsExpired counts partly received messages dropped after the
	// link's PartialTimeout.
	PartialsExpired uint64 `json:"partials_expired"`
	// HeapReassembled counts messages received into a heap buffer (a
	// message larger than half a peer's frame quota).
	HeapReassembled uint64 `json:"heap_reassembled"`
	// LinkRejected counts frames the link refused as malformed.
	LinkRejected uint64 `json:"link_rejected"`
	// FetchRefused counts fetch requests the protocol refused for the
	// asker's budget (PBFT FetchRefused, Bracha ServeDenied).
	FetchRefused uint64 `json:"fetch_refused"`
	// FutureStripped counts PBFT PRE-PREPAREs of future views kept without
	// their payload (FutureQuota).
	FutureStripped uint64 `json:"future_stripped"`
	// HeldQuotaEvictions counts digests the AF_XDP held map pushed out at
	// a supplier's quota.
	HeldQuotaEvictions uint64 `json:"held_quota_evictions"`
	// StoreQuotaRefusals counts payloads the store refused or evicted at a
	// sender's quota (StoreStats.QuotaRejects + QuotaEvictions).
	StoreQuotaRefusals uint64 `json:"store_quota_refusals"`
	// MinFreeFrames is the fewest free frames of the node's receive pool
	// (the UDP pool or the AF_XDP UMEM) sampled every 10 ms; -1 unknown.
	MinFreeFrames int `json:"min_free_frames"`
}

// add sums counters over nodes and keeps the smallest MinFreeFrames.
func (r *Refusals) add(o Refusals) {
	r.LinkQuotaDrops += o.LinkQuotaDrops
	r.RateDeferred += o.RateDeferred
	r.PartialsExpired += o.PartialsExpired
	r.HeapReassembled += o.HeapReassembled
	r.LinkRejected += o.LinkRejected
	r.FetchRefused += o.FetchRefused
	r.FutureStripped += o.FutureStripped
	r.HeldQuotaEvictions += o.HeldQuotaEvictions
	r.StoreQuotaRefusals += o.StoreQuotaRefusals
	switch {
	case o.MinFreeFrames < 0:
	case r.MinFreeFrames < 0:
		r.MinFreeFrames = o.MinFreeFrames
	default:
		r.MinFreeFrames = min(r.MinFreeFrames, o.MinFreeFrames)
	}
}

// NodeRefusals reads a node's refusal counters from its metrics and its
// protocol's counters (ProtocolCounters; nil when not counted); minFree is
// the sampled minimum of free receive frames (-1: unknown).
func NodeRefusals(m node.Metrics, proto *ProtocolCounters, minFree int) Refusals {
	r := Refusals{LinkQuotaDrops: m.Link.QuotaDrops, RateDeferred: m.Link.RateDeferred, PartialsExpired: m.Link.PartialsExpired,
		HeapReassembled: m.Link.HeapReassembled, LinkRejected: m.Link.Rejected,
		HeldQuotaEvictions: m.XDP.Held.QuotaEvictions,
		StoreQuotaRefusals: m.Store.QuotaRejects + m.Store.QuotaEvictions, MinFreeFrames: minFree}
	if proto != nil {
		r.FetchRefused, r.FutureStripped = proto.fetchRefused.Load(), proto.futureStripped.Load()
	}
	return r
}

// ReceiveFree returns the free frames of the node's receive pool: the
// AF_XDP UMEM's, or else the node's buffer pool (the UDP conduit's
// receive frames).
func ReceiveFree(m node.Metrics) int {
	if m.UMEM.Frames > 0 {
		return m.UMEM.Free
	}
	return m.Pool.Free
}

// ProtocolCounters are the budget counters of a protocol instance, copied
// on its own loop after each Ready (the protocol is not safe to read from
// elsewhere) and readable from any goroutine.
type ProtocolCounters struct {
	fetchRefused, futureStripped atomic.Uint64
}

// CountingSpec returns spec whose instances publish their budget counters
// to pc after each Ready.
func CountingSpec(spec broadcast.Spec, pc *ProtocolCounters) broadcast.Spec {
	inner := spec.New
	spec.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		pr, err := inner(p, env)
		if err != nil {
			return nil, err
		}
		return &countingProtocol{Protocol: pr, pc: pc}, nil
	}
	return spec
}

type countingProtocol struct {
	broadcast.Protocol
	pc *ProtocolCounters
}

func (c *countingProtocol) Ready() broadcast.Ready {
	rd := c.Protocol.Ready()
	switch p := c.Protocol.(type) {
	case *pbft.Node:
		st := p.Stats()
		c.pc.fetchRefused.Store(st.FetchRefused)
		c.pc.futureStripped.Store(st.FutureStripped)
	case *bracha.Node:
		c.pc.fetchRefused.Store(p.Stats().ServeDenied)
	}
	return rd
}

// Close closes the protocol (its pins and held payloads), as the node
// would have.
func (c *countingProtocol) Close() {
	if cl, ok := c.Protocol.(interface{ Close() }); ok {
		cl.Close()
	}
}

// FreeSampler keeps the smallest value a free-frame count took, sampled
// every 10 ms until Stop.
type FreeSampler struct {
	min  atomic.Int64
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// sampleEvery is how often a FreeSampler reads the pool.
const sampleEvery = 10 * time.Millisecond

// NewFreeSampler starts sampling free().
func NewFreeSampler(free func() int) *FreeSampler {
	s := &FreeSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s.min.Store(int64(free()))
	go func() {
		defer close(s.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				if v := int64(free()); v < s.min.Load() {
					s.min.Store(v)
				}
			}
		}
	}()
	return s
}

// Min returns the smallest sample so far.
func (s *FreeSampler) Min() int {
	if s == nil {
		return -1
	}
	return int(s.min.Load())
}

// Stop ends the sampling.
func (s *FreeSampler) Stop() {
	if s == nil {
		return
	}
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// byzantineNode is one wire-level Byzantine node a cluster runs.
type byzantineNode struct {
	adv  *wireadv.Adversary
	node *node.Node
}

// startByzantine starts node id as the wire behaviour beh over cd (the
// conduit of its kind the cluster opened for it), with keyring ring (the
// cluster's real keys) and the cluster's protocol clock. The node takes cd.
func startByzantine(cl *config.Cluster, spec broadcast.Spec, id broadcast.NodeID, beh string, ring *broadcast.Keyring,
	cd netio.Conduit, pt Point, epoch time.Time, logger *slog.Logger) (*byzantineNode, error) {
	b, perTick, err := parseWire(beh)
	if err != nil {
		_ = cd.Close()
		return nil, err
	}
	// The load pauses while the node's own link queue is full (see
	// wireadv.Options.Backlog): the nodes share the bench's cores.
	var started atomic.Pointer[node.Node]
	backlog := func() int {
		if nd := started.Load(); nd != nil {
			return nd.Metrics().Link.Queued
		}
		return 0
	}
	adv, err := wireadv.New(wireadv.Options{Behaviour: b, Inner: spec, PerTick: perTick, Duration: pt.Warmup + pt.Duration + pt.Drain(),
		SprayBytes: max(pt.PayloadBytes, 1024), Backlog: backlog, Logger: logger.With("byzantine", id)})
	if err != nil {
		_ = cd.Close()
		return nil, err
	}
	nd, err := node.Start(node.Config{Cluster: cl, ID: int(id), Keyring: ring, Spec: adv.Spec(), Conduit: adv.Conduit(cd),
		Epoch: epoch, Tuning: broadcast.Tuning{Batch: pt.Batch, MaxDelay: pt.MaxDelay}, Logger: logger,
		OnDeliver: func(d broadcast.Delivery) { d.Payload.Release() }})
	if err != nil {
		return nil, fmt.Errorf("byzantine node %d (%s): %w", id, beh, err)
	}
	started.Store(nd)
	return &byzantineNode{adv: adv, node: nd}, nil
}

// openUDP opens node id's UDP conduit on the cluster's addresses, in do
// (its namespace), with a receive pool of its own.
func openUDP(cl *config.Cluster, id broadcast.NodeID, do func(func() error) error, logger *slog.Logger) (netio.Conduit, error) {
	peers := make([]netip.AddrPort, len(cl.Nodes))
	for i, n := range cl.Nodes {
		ap, err := netip.ParseAddrPort(n.Addr)
		if err != nil {
			return nil, fmt.Errorf("node %d address: %w", i, err)
		}
		peers[i] = ap
	}
	mtu := cl.MTU
	if mtu == 0 {
		mtu = udp.DefaultMTU
	}
	pool, err := bufpool.New(bufpool.Config{FrameSize: max(2048, (mtu+1023)/1024*1024), Frames: 8192, Name: fmt.Sprintf("byz%d", id)})
	if err != nil {
		return nil, err
	}
	var cd *udp.Conduit
	err = do(func() error {
		var err error
		cd, err = udp.New(udp.Config{Self: id, Peers: peers, Pool: pool, MTU: mtu, Logger: logger})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("byzantine node %d UDP: %w", id, err)
	}
	return cd, nil
}
