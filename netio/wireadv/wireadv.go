package wireadv

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio"
)

// Behaviour names what the Byzantine peer does on the wire.
type Behaviour string

// The wire behaviours (see the package doc).
const (
	PartialLarge Behaviour = "partial-large"
	FetchFlood   Behaviour = "fetch-flood"
	HeldSpray    Behaviour = "held-spray"
	FutureView   Behaviour = "future-view"
	Garbage      Behaviour = "garbage"
	Replay       Behaviour = "replay"
	AckWithhold  Behaviour = "ack-withhold"
)

// Behaviours lists every wire behaviour, in the package doc's order.
func Behaviours() []Behaviour {
	return []Behaviour{PartialLarge, FetchFlood, HeldSpray, FutureView, Garbage, Replay, AckWithhold}
}

// ErrUnknownBehaviour is returned for a behaviour this package does not have.
var ErrUnknownBehaviour = errors.New("wireadv: unknown behaviour")

// Parse returns the behaviour named s.
func Parse(s string) (Behaviour, error) {
	for _, b := range Behaviours() {
		if string(b) == s {
			return b, nil
		}
	}
	names := make([]string, 0, 7)
	for _, b := range Behaviours() {
		names = append(names, string(b))
	}
	return "", fmt.Errorf("%w %q (have %s)", ErrUnknownBehaviour, s, strings.Join(names, ", "))
}

// runsProtocol reports whether the behaviour needs the cluster's protocol
// running inside the Byzantine node (its own valid messages).
func (b Behaviour) runsProtocol() bool {
	return b == HeldSpray || b == PartialLarge || b == Replay
}

// Options configure an Adversary. Behaviour and Inner are required.
type Options struct {
	Behaviour Behaviour
	// Inner is the protocol the cluster runs (its wire ID for FETCHes, and
	// the state machine for the behaviours that run it).
	Inner broadcast.Spec
	// Delay is how long after the node's first tick the load starts
	// (default 0: at once).
	Delay time.Duration
	// Duration bounds the load in time (default 10 minutes).
	Duration time.Duration
	// MaxInjections bounds the messages and datagrams injected (default
	// 1<<22; partial-large 8 broadcasts).
	MaxInjections uint64
	// PerTick is how many messages or datagrams are injected per
	// millisecond (default: 32; held-spray 1; partial-large one large
	// broadcast per 250 ms; future-view one PRE-PREPARE of 64 KiB per 4 ms).
	PerTick int
	// LargeBytes is the payload size of partial-large's broadcasts
	// (default 4 MiB: more frames than half a peer's frame quota at the
	// nodes' default pools, so receivers take the heap path).
	LargeBytes int
	// SprayBytes is the payload size of held-spray's broadcasts (default
	// 16 KiB).
	SprayBytes int
	// Backlog, when set, returns the frames the Byzantine node's link
	// holds queued for its peers (link Stats.Queued): the protocol-side
	// load (FETCHes, forged PRE-PREPAREs, replayed messages, spray and
	// large broadcasts) pauses while it exceeds MaxBacklog. The flood
	// still fills every budget the correct nodes grant it — its queue
	// stays full — but the node does not spend its own CPU building
	// messages its link cannot send: on a bench whose nodes share the
	// cores, that work would be charged to the correct nodes, which a
	// Byzantine node on a machine of its own would not cost them. The
	// datagrams the conduit injects (garbage, replayed frames) do not
	// pass through the link and are not paced.
	Backlog func() int
	// MaxBacklog is the queued frames above which the protocol-side load
	// pauses (default 4096).
	MaxBacklog int
	// Seed seeds the random content (default: the time).
	Seed uint64
	// Logger receives a line when the load starts and ends.
	Logger *slog.Logger
}

// Stats count what the Byzantine peer sent beyond its protocol.
type Stats struct {
	// Injected counts messages the adversary's protocol added (FETCHes,
	// forged PRE-PREPAREs, replayed messages, spray and large broadcasts).
	Injected uint64
	// Datagrams counts datagrams the conduit added (garbage, replays).
	Datagrams uint64
	// DroppedFragments counts continuation frames partial-large kept back.
	DroppedFragments uint64
	// WithheldAcks counts outgoing link headers whose ack state was zeroed.
	WithheldAcks uint64
	// Paused counts load ticks skipped because the node's link queue held
	// more than Options.MaxBacklog frames.
	Paused uint64
}

// Adversary is one Byzantine peer: its protocol (Spec) and its conduit
// wrapper (Conduit), sharing the load's bounds and counters.
type Adversary struct {
	opts      Options
	injected  atomic.Uint64
	datagrams atomic.Uint64
	dropped   atomic.Uint64
	withheld  atomic.Uint64
	paused    atomic.Uint64
	// active says the load window is open (set by the protocol's clock,
	// read by the conduit's injector).
	active atomic.Bool
}

// New checks opts, fills in the defaults and returns the adversary.
func New(opts Options) (*Adversary, error) {
	if _, err := Parse(string(opts.Behaviour)); err != nil {
		return nil, err
	}
	if opts.Inner.New == nil {
		return nil, errors.New("wireadv: Options.Inner (the cluster's protocol) is required")
	}
	if opts.Behaviour == FutureView && opts.Inner.ID != broadcast.ProtoPBFT {
		return nil, fmt.Errorf("wireadv: %s needs PBFT, not %s", FutureView, opts.Inner.Name)
	}
	if opts.Duration <= 0 {
		opts.Duration = 10 * time.Minute
	}
	if opts.MaxInjections == 0 {
		opts.MaxInjections = 1 << 22
		if opts.Behaviour == PartialLarge {
			// Its large broadcasts stay pinned in its own node (they are
			// never acknowledged): a few make the point, more would only
			// bloat the process it runs in.
			opts.MaxInjections = 8
		}
	}
	if opts.PerTick <= 0 {
		opts.PerTick = 32
		if opts.Behaviour == HeldSpray || opts.Behaviour == PartialLarge || opts.Behaviour == FutureView {
			opts.PerTick = 1
		}
	}
	if opts.LargeBytes <= 0 {
		opts.LargeBytes = 4 << 20
	}
	if opts.SprayBytes <= 0 {
		opts.SprayBytes = 16 << 10
	}
	if opts.MaxBacklog <= 0 {
		opts.MaxBacklog = 4096
	}
	if opts.Seed == 0 {
		opts.Seed = uint64(time.Now().UnixNano())
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Adversary{opts: opts}, nil
}

// Behaviour returns the adversary's behaviour.
func (a *Adversary) Behaviour() Behaviour { return a.opts.Behaviour }

// Stats returns what the adversary has sent so far. Safe from any goroutine.
func (a *Adversary) Stats() Stats {
	return Stats{Injected: a.injected.Load(), Datagrams: a.datagrams.Load(),
		DroppedFragments: a.dropped.Load(), WithheldAcks: a.withheld.Load(), Paused: a.paused.Load()}
}

// take reserves up to n injections within MaxInjections and returns how
// many it got.
func (a *Adversary) take(n int, ctr *atomic.Uint64) int {
	total := a.injected.Load() + a.datagrams.Load()
	if total >= a.opts.MaxInjections {
		return 0
	}
	n = int(min(uint64(n), a.opts.MaxInjections-total))
	ctr.Add(uint64(n))
	return n
}

// Spec returns the protocol the Byzantine node runs: the behaviour's
// messages, and the cluster's protocol when the behaviour needs it. Its
// instance is built by the node (node.Config.Spec).
func (a *Adversary) Spec() broadcast.Spec {
	s := a.opts.Inner
	s.Name = a.opts.Inner.Name + "+" + string(a.opts.Behaviour)
	s.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		return a.newProtocol(p, env)
	}
	return s
}

// Conduit wraps the Byzantine node's conduit cd: it keeps partial-large's
// continuation frames back, zeroes ack-withhold's acks, records frames to
// replay and injects garbage and replayed datagrams. The node takes the
// result (node.Config.Conduit); closing it closes cd.
func (a *Adversary) Conduit(cd netio.Conduit) netio.Conduit {
	return newConduit(a, cd)
}
