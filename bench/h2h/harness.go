package h2h

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/onecast/onecast/pbft"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/onecast/onecast/bench/h2h/memnet"
)

// IDSize is the request prefix that names a request: the submitting node
// (8 bytes, little endian) and its sequence number there (8 bytes).
const IDSize = 16

// ReqID names a request: the node it was submitted at and its number there
// (1, 2, …).
type ReqID struct {
	Node int
	Seq  uint64
}

// ParseID reads a request's ID from its first IDSize bytes.
func ParseID(req []byte) (ReqID, bool) {
	if len(req) < IDSize {
		return ReqID{}, false
	}
	return ReqID{Node: int(binary.LittleEndian.Uint64(req)), Seq: binary.LittleEndian.Uint64(req[8:])}, true
}

// Config is one run: the same for every system.
type Config struct {
	// N is the number of nodes (default 4; f = (N-1)/3 for the BFT ones).
	N int
	// Payload is each request's size in bytes, ID included (default 1024,
	// at least IDSize).
	Payload int
	// Inflight is the closed loop's outstanding requests, over all
	// submitting nodes (default 32).
	Inflight int
	// Warmup runs before the measurement window; Duration is the window.
	Warmup, Duration time.Duration
	// Seed seeds the payload generator (default 1): the same bytes for
	// every system.
	Seed uint64
	// PBFTPipeline, when positive, replaces pbft's Config.Pipeline (the
	// batches the primary keeps in flight, default 4) for the onecast rows;
	// SmartBFT has one proposal in flight.
	PBFTPipeline int
	// PBFTAdaptive turns on pbft's adaptive batching (Config.AdaptiveBatch)
	// for the onecast rows: with batches in flight the primary lets the
	// next one fill up to a share of Config.Batch (16) first.
	PBFTAdaptive bool
	// Observe, when set, is told of every request each node commits, in
	// order (the bytes are borrowed). Tests check content with it.
	Observe func(node int, req []byte)
	// Logger receives the systems' logs (default: discarded).
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.N == 0 {
		c.N = 4
	}
	if c.Payload == 0 {
		c.Payload = 1024
	}
	if c.Inflight == 0 {
		c.Inflight = 32
	}
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.N < 4:
		return fmt.Errorf("h2h: n = %d: the BFT systems need n ≥ 4", c.N)
	case c.Payload < IDSize:
		return fmt.Errorf("h2h: payload %d smaller than the %d-byte request ID", c.Payload, IDSize)
	case c.Inflight < 1:
		return fmt.Errorf("h2h: inflight %d < 1", c.Inflight)
	case c.Warmup < 0 || c.Duration < 0:
		return errors.New("h2h: negative warm-up or duration")
	}
	return nil
}

// F is the number of Byzantine faults the BFT systems tolerate.
func (c *Config) F() int { return (c.N - 1) / 3 }

// Done reports that the request id completed at the node it was submitted
// to. A system calls it once per request (later calls are ignored).
type Done func(id ReqID)

// System is one contender, driven by Run.
type System interface {
	// Name is the system's row name.
	Name() string
	// Start builds and starts the cluster on net; done is called when a
	// request completes at its submitting node (the completion rule is
	// the system's, see doc.go). Start returns once the cluster can take
	// requests.
	Start(net *memnet.Network, cfg Config, done Done) error
	// Submitters are the nodes the load is spread over.
	Submitters() []int
	// Submit hands node the request (the system owns req afterwards). It
	// may block for back-pressure until ctx ends.
	Submit(ctx context.Context, node int, req []byte) error
	// Stop stops every goroutine the system started and releases its
	// resources. It is called once, after Start returned nil.
	Stop() error
}

// Result is one system's figures.
type Result struct {
	System              string  `json:"system"`
	N                   int     `json:"n"`
	PayloadBytes        int     `json:"payload_bytes"`
	Inflight            int     `json:"inflight"`
	Requests            uint64  `json:"requests"`
	RequestsPerSec      float64 `json:"requests_per_sec"`
	LatencyP50Ms        float64 `json:"latency_p50_ms"`
	LatencyP99Ms        float64 `json:"latency_p99_ms"`
	WireBytesPerRequest float64 `json:"wire_bytes_per_request"`
	MessagesPerRequest  float64 `json:"messages_per_request"`
	Error               string  `json:"error,omitempty"`
}

// Systems names the systems the command runs by default, in order.
var Systems = []string{"onecast-digest", "onecast-full", "smartbft", "raft"}

// AllSystems names every system NewSystem knows: Systems,
// smartbft-signed (SmartBFT with Ed25519 client signatures on requests,
// checked by every follower, for crypto closer to pbft's), and
// onecast-digest-signed (pbft's clients sign requests with Ed25519 instead
// of authenticating them with MAC vectors, pbft.RequestSigned), and
// onecast-digest-adaptive and onecast-digest-signed-adaptive (the same with
// pbft's adaptive batching, Config.AdaptiveBatch).
var AllSystems = append(slices.Clone(Systems), "smartbft-signed", "onecast-digest-signed",
	"onecast-digest-adaptive", "onecast-digest-signed-adaptive")

// NewSystem returns the system of that name.
func NewSystem(name string) (System, error) {
	switch name {
	case "onecast-digest":
		return newOnecast(name, modeDigest), nil
	case "onecast-digest-signed", "onecast-digest-adaptive", "onecast-digest-signed-adaptive":
		o := newOnecast(name, modeDigest)
		if strings.Contains(name, "signed") {
			o.reqAuth = pbft.RequestSigned
		}
		o.adaptive = strings.HasSuffix(name, "-adaptive")
		return o, nil
	case "onecast-full":
		return newOnecast(name, modeFull), nil
	case "smartbft":
		return newSmartBFT(false), nil
	case "smartbft-signed":
		return newSmartBFT(true), nil
	case "raft":
		return newRaft(), nil
	}
	return nil, fmt.Errorf("h2h: unknown system %q (have %v)", name, AllSystems)
}

// RunNamed runs the named system; an error is reported in the Result.
func RunNamed(name string, cfg Config) Result {
	sys, err := NewSystem(name)
	if err != nil {
		return Result{System: name, N: cfg.N, PayloadBytes: cfg.Payload, Inflight: cfg.Inflight, Error: err.Error()}
	}
	return Run(sys, cfg)
}

// Run drives sys with cfg's closed-loop load on a fresh memnet and measures
// it. It always stops the system and the network before returning; a
// failure is reported in Result.Error.
func Run(sys System, cfg Config) Result {
	res := Result{System: sys.Name(), N: cfg.N, PayloadBytes: cfg.Payload, Inflight: cfg.Inflight}
	if err := cfg.setDefaults(); err != nil {
		res.Error = err.Error()
		return res
	}
	res.N, res.PayloadBytes, res.Inflight = cfg.N, cfg.Payload, cfg.Inflight
	if err := run(sys, cfg, &res); err != nil {
		res.Error = err.Error()
	}
	return res
}

// loadGen is the closed loop: per submitting node, a window of tokens; a
// request takes one when submitted and gives it back when it completes.
type loadGen struct {
	cfg     Config
	random  []byte // the payload bytes requests are cut from
	mu      sync.Mutex
	pending map[ReqID]time.Time
	tokens  map[int]chan struct{}
	hist    *hdrhistogram.Histogram

	measure            atomic.Bool
	completed, counted atomic.Uint64
}

func newLoadGen(cfg Config, submitters []int) *loadGen {
	g := &loadGen{cfg: cfg, pending: map[ReqID]time.Time{}, tokens: map[int]chan struct{}{},
		hist: hdrhistogram.New(1, 60_000_000, 3)}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	g.random = make([]byte, 1<<20+cfg.Payload)
	for i := 0; i+8 <= len(g.random); i += 8 {
		binary.LittleEndian.PutUint64(g.random[i:], rng.Uint64())
	}
	for k, node := range submitters {
		w := cfg.Inflight / len(submitters)
		if k < cfg.Inflight%len(submitters) {
			w++
		}
		if w == 0 {
			continue
		}
		c := make(chan struct{}, w)
		for range w {
			c <- struct{}{}
		}
		g.tokens[node] = c
	}
	return g
}

// request builds request seq of node: its ID, then payload bytes cut from
// the random block at an offset that depends on both.
func (g *loadGen) request(node int, seq uint64) []byte {
	req := make([]byte, g.cfg.Payload)
	binary.LittleEndian.PutUint64(req, uint64(node))
	binary.LittleEndian.PutUint64(req[8:], seq)
	off := int((seq*7919 + uint64(node)*104729) % (1 << 20))
	copy(req[IDSize:], g.random[off:])
	return req
}

func (g *loadGen) done(id ReqID) {
	now := time.Now()
	g.mu.Lock()
	sent, ok := g.pending[id]
	if ok {
		delete(g.pending, id)
		if g.measure.Load() {
			_ = g.hist.RecordValue(max(now.Sub(sent).Microseconds(), 1))
			g.counted.Add(1)
		}
	}
	g.mu.Unlock()
	if !ok {
		return
	}
	g.completed.Add(1)
	if c := g.tokens[id.Node]; c != nil {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// submitLoop offers node's share of the load until ctx ends.
func (g *loadGen) submitLoop(ctx context.Context, sys System, node int) error {
	tokens := g.tokens[node]
	for seq := uint64(1); ; seq++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tokens:
		}
		req := g.request(node, seq)
		id := ReqID{Node: node, Seq: seq}
		g.mu.Lock()
		g.pending[id] = time.Now()
		g.mu.Unlock()
		if err := sys.Submit(ctx, node, req); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: submit at node %d: %w", sys.Name(), node, err)
		}
	}
}

func run(sys System, cfg Config, res *Result) (err error) {
	net := memnet.New(cfg.N)
	defer net.Close()
	var gp atomic.Pointer[loadGen]
	doneFn := func(id ReqID) {
		if lg := gp.Load(); lg != nil {
			lg.done(id)
		}
	}
	if err := sys.Start(net, cfg, doneFn); err != nil {
		return fmt.Errorf("%s: start: %w", sys.Name(), err)
	}
	defer func() {
		if stopErr := sys.Stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: stop: %w", sys.Name(), stopErr)
		}
	}()
	g := newLoadGen(cfg, sys.Submitters())
	gp.Store(g)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errC := make(chan error, len(g.tokens))
	for node := range g.tokens {
		wg.Go(func() {
			if err := g.submitLoop(ctx, sys, node); err != nil {
				errC <- err
				cancel()
			}
		})
	}
	stopLoad := func() { cancel(); wg.Wait() }

	sleep := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case err := <-errC:
			return err
		}
	}
	if err := sleep(cfg.Warmup); err != nil {
		stopLoad()
		return err
	}
	before := net.Stats()
	g.measure.Store(true)
	start := time.Now()
	werr := sleep(cfg.Duration)
	g.measure.Store(false)
	elapsed := time.Since(start)
	window := net.Stats().Sub(before)
	stopLoad()
	if werr != nil {
		return werr
	}

	g.mu.Lock()
	n := g.counted.Load()
	res.Requests = n
	if n == 0 {
		g.mu.Unlock()
		return fmt.Errorf("%s: no request completed in the %v window", sys.Name(), cfg.Duration)
	}
	res.RequestsPerSec = float64(n) / elapsed.Seconds()
	res.LatencyP50Ms = float64(g.hist.ValueAtQuantile(50)) / 1000
	res.LatencyP99Ms = float64(g.hist.ValueAtQuantile(99)) / 1000
	g.mu.Unlock()
	res.WireBytesPerRequest = float64(window.Bytes) / float64(n)
	res.MessagesPerRequest = float64(window.Messages) / float64(n)
	return nil
}

// Median combines repeated runs of one system: each figure is its median
// over the runs without an error (the upper median for an even count);
// Requests is the median too. If every run failed, the first error is
// reported; if some did, their count is noted in Error.
func Median(runs []Result) Result {
	if len(runs) == 0 {
		return Result{}
	}
	out := runs[0]
	var ok []Result
	for _, r := range runs {
		if r.Error == "" {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return out
	}
	med := func(f func(Result) float64) float64 {
		v := make([]float64, len(ok))
		for i, r := range ok {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	out.Error = ""
	if len(ok) < len(runs) {
		out.Error = fmt.Sprintf("%d of %d runs failed", len(runs)-len(ok), len(runs))
	}
	out.Requests = uint64(med(func(r Result) float64 { return float64(r.Requests) }))
	out.RequestsPerSec = med(func(r Result) float64 { return r.RequestsPerSec })
	out.LatencyP50Ms = med(func(r Result) float64 { return r.LatencyP50Ms })
	out.LatencyP99Ms = med(func(r Result) float64 { return r.LatencyP99Ms })
	out.WireBytesPerRequest = med(func(r Result) float64 { return r.WireBytesPerRequest })
	out.MessagesPerRequest = med(func(r Result) float64 { return r.MessagesPerRequest })
	return out
}
