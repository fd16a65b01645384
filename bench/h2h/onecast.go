package h2h

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/onecast/onecast/bench/h2h/memnet"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/pbft"
)

const (
	modeDigest = broadcast.ModeDigest
	modeFull   = broadcast.ModeFull
)

// Transport is a netio.Transport on a memnet node: each message crosses as
// one frame, broadcast.AppendPrefix's prefix followed by the payload bytes,
// and is decoded with broadcast.DecodeFrame on arrival, as it would be off
// a socket.
type Transport struct {
	net  *memnet.Network
	self int
	lim  broadcast.Limits
	// Rejects counts frames that did not decode.
	Rejects atomic.Uint64
}

var _ netio.Transport = (*Transport)(nil)

// NewTransport attaches a transport to node self of net.
func NewTransport(net *memnet.Network, self int) *Transport {
	return &Transport{net: net, self: self, lim: broadcast.DefaultLimits}
}

// Send encodes m as one frame and queues it for node to. It borrows m.
func (t *Transport) Send(to broadcast.NodeID, m *broadcast.Message) error {
	frame := make([]byte, 0, m.WireLen())
	frame, err := broadcast.AppendPrefix(frame, m)
	if err != nil {
		return fmt.Errorf("h2h transport: %w", err)
	}
	for seg := range m.Payload.Segments() {
		frame = append(frame, seg...)
	}
	if err := t.net.Send(t.self, int(to), frame); err != nil {
		if errors.Is(err, memnet.ErrClosed) {
			return netio.ErrClosed
		}
		return err
	}
	return nil
}

// Recv decodes the next frame; a frame that does not decode is counted and
// dropped.
func (t *Transport) Recv(ctx context.Context) (netio.Inbound, error) {
	for {
		msg, err := t.net.Recv(ctx, t.self)
		if err != nil {
			if errors.Is(err, memnet.ErrClosed) {
				return netio.Inbound{}, netio.ErrClosed
			}
			return netio.Inbound{}, err
		}
		frame := bufpool.Wrap(msg.Data)
		m, err := broadcast.DecodeFrame(frame, &t.lim)
		if err != nil || (m.Flags&broadcast.HasPayload != 0 && !m.Complete()) {
			t.Rejects.Add(1)
			frame.Release()
			continue
		}
		return netio.NewInbound(broadcast.NodeID(msg.From), m, frame, bufpool.Buf{}), nil
	}
}

// Close does nothing: the network is closed by its owner.
func (t *Transport) Close() error { return nil }

// onecastSys is pbft run by netio.Runner on memnet, each node submitting
// through its hosted client.
type onecastSys struct {
	name     string
	mode     broadcast.Mode
	reqAuth  pbft.RequestAuth // zero: pbft's default, MAC vectors (Keys are set)
	adaptive bool             // Config.AdaptiveBatch, whatever Config.PBFTAdaptive says
	nodes    []*onecastNode
}

type onecastNode struct {
	id     int
	node   *pbft.Node
	store  *broadcast.PayloadStore
	runner *netio.Runner
	tr     *Transport

	mu      sync.Mutex
	pending map[broadcast.Digest]ReqID // submitted, by op digest
}

func newOnecast(name string, mode broadcast.Mode) *onecastSys {
	return &onecastSys{name: name, mode: mode}
}

func (s *onecastSys) Name() string { return s.name }

// tapped hands the hosted client's accepted results to the harness on the
// runner's loop goroutine (as kv/replica does).
type tapped struct {
	*pbft.Node
	nd      *onecastNode
	done    Done
	results []pbft.Result
}

func (t *tapped) Ready() broadcast.Ready {
	rd := t.Node.Ready()
	t.results = t.Node.TakeResults(t.results[:0])
	for i := range t.results {
		t.nd.mu.Lock()
		id, ok := t.nd.pending[t.results[i].Op]
		delete(t.nd.pending, t.results[i].Op)
		t.nd.mu.Unlock()
		if ok {
			t.done(id)
		}
	}
	clear(t.results)
	return rd
}

func (s *onecastSys) Start(net *memnet.Network, cfg Config, done Done) (err error) {
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	rings, err := broadcast.GenerateKeyrings(cfg.N, crand.Reader)
	if err != nil {
		return fmt.Errorf("generate keys: %w", err)
	}
	for i := range cfg.N {
		id := broadcast.NodeID(i)
		nd := &onecastNode{id: i, store: broadcast.NewPayloadStore(broadcast.StoreConfig{}), pending: map[broadcast.Digest]ReqID{}}
		s.nodes = append(s.nodes, nd)
		// As pbft.Spec.New builds it for the repo's bench: default batch
		// (16), pipeline and timeout; Ed25519 certificate signatures.
		nd.node, err = pbft.New(pbft.Config{Params: broadcast.Params{N: cfg.N, F: cfg.F(), Self: id, Mode: s.mode},
			Store: nd.store, Keys: rings[i], Pipeline: cfg.PBFTPipeline, AdaptiveBatch: cfg.PBFTAdaptive || s.adaptive,
			RequestAuth: s.reqAuth, Logger: cfg.Logger})
		if err != nil {
			return fmt.Errorf("pbft node %d: %w", i, err)
		}
		auth, err := broadcast.NewAuthenticator(pbft.Spec.DefaultScheme, rings[i])
		if err != nil {
			return err
		}
		nd.tr = NewTransport(net, i)
		observe := cfg.Observe
		nd.runner, err = netio.NewRunner(netio.RunnerConfig{Self: id, N: cfg.N,
			Protocol: &tapped{Node: nd.node, nd: nd, done: done}, Transport: nd.tr, Auth: auth, Logger: cfg.Logger,
			OnDeliver: func(d broadcast.Delivery) {
				if observe != nil {
					observe(i, d.Payload.Bytes())
				}
				d.Payload.Release()
			}})
		if err != nil {
			return fmt.Errorf("runner %d: %w", i, err)
		}
	}
	for _, nd := range s.nodes {
		nd.runner.Start()
	}
	return nil
}

func (s *onecastSys) Submitters() []int {
	out := make([]int, len(s.nodes))
	for i := range out {
		out[i] = i
	}
	return out
}

func (s *onecastSys) Submit(ctx context.Context, node int, req []byte) error {
	nd := s.nodes[node]
	d := broadcast.DigestOfBytes(req)
	nd.mu.Lock()
	id, _ := ParseID(req)
	nd.pending[d] = id
	nd.mu.Unlock()
	return nd.runner.Submit(ctx, bufpool.Wrap(req))
}

func (s *onecastSys) Stop() error {
	var errs []error
	for _, nd := range s.nodes {
		if nd.runner != nil {
			nd.runner.Stop()
		}
	}
	for _, nd := range s.nodes {
		if nd.node != nil {
			nd.node.Close()
		}
		nd.store.Close()
		if n := nd.tr; n != nil && n.Rejects.Load() > 0 {
			errs = append(errs, fmt.Errorf("node %d: %d frames did not decode", nd.id, n.Rejects.Load()))
		}
	}
	s.nodes = nil
	return errors.Join(errs...)
}
