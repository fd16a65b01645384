package sim

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/cloudflare/circl/dh/x25519"
	"github.com/cloudflare/circl/sign/ed25519"

	"github.com/onecast/onecast/broadcast"
)

// Result is what one run did and found.
type Result struct {
	Seed uint64
	// Violations are the broken properties; empty on a passing run.
	Violations []Violation
	// Byzantine names each Byzantine node and its behaviour ("n3:equivocate").
	Byzantine []string
	// TraceHash fingerprints every delivered message and delivery with its
	// virtual time: equal seeds give equal hashes.
	TraceHash uint64
	// Events is the number of events processed; Messages of them were
	// messages handed to a node.
	Events, Messages uint64
	// Deliveries counts deliveries at correct nodes.
	Deliveries uint64
	// WireBytes counts bytes put on links, retransmissions and network
	// duplicates included.
	WireBytes uint64
	// Retransmits, Reordered and Duplicated count the network's doings;
	// Rejected counts messages a protocol refused; SubmitErrors counts
	// refused submissions.
	Retransmits, Reordered, Duplicated, Rejected, SubmitErrors uint64
	// End is the virtual time the run ended.
	End time.Duration
	// Ended says why the run stopped.
	Ended Ending
	// Settled says the run owed every liveness obligation when it ended:
	// it ran out of work, or reached its Horizon at or after its Deadline.
	// An unsettled run was cut by a time limit; an obligation it had not
	// met is a TimeLimit violation.
	Settled bool
	// Coverage counts the protocol paths the run reached.
	Coverage Coverage
	// Correct sums the metrics of the correct nodes; All sums every node's.
	Correct, All broadcast.Snapshot
}

// Failed reports whether the run broke a property.
func (r *Result) Failed() bool { return len(r.Violations) > 0 }

// Run simulates one execution of cfg under seed and checks it. An error
// means the configuration is unusable; a property violation is reported in
// Result.Violations.
func Run(cfg Config, seed uint64) (*Result, error) { return runUntil(nil, cfg, seed) }

// stopCheckEvents is how often (in events) a run of a sweep checks whether
// the sweep was cancelled: a cancelled sweep stops within milliseconds even
// when one run is long.
const stopCheckEvents = 1024

// errAbandoned: the run was abandoned because its sweep was cancelled.
var errAbandoned = errors.New("sim: run abandoned")

// runUntil is Run, abandoned (errAbandoned) when done, if not nil, is
// closed before the run ends.
func runUntil(done <-chan struct{}, cfg Config, seed uint64) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &engine{cfg: cfg, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x6f6e6563617374)), trace: cfg.Trace,
		hash: fnvOffset, res: &Result{Seed: seed}, stop: done}
	sc := scratchPool.Get().(*scratch)
	e.free, e.queue = sc.free, sc.queue
	defer e.teardown()
	if err := e.setup(); err != nil {
		return nil, err
	}
	if e.trace != nil {
		fmt.Fprintf(e.trace, "# %s mode=%v n=%d f=%d seed=%d byzantine=%v partitions=%d gst=%v delta=%v horizon=%v deadline=%v schedule=%v\n",
			cfg.Spec.Name, cfg.Mode, cfg.N, cfg.F, seed, e.res.Byzantine, len(e.parts), cfg.Net.GST, cfg.Net.Delta, cfg.Horizon, cfg.Deadline, cfg.Schedule)
		if e.sched != nil {
			for _, st := range e.sched.storms {
				fmt.Fprintf(e.trace, "# storm %v–%v isolate-primary=%v\n", st.from, st.to, st.isolate)
			}
			for v, r := range e.sched.views {
				fmt.Fprintf(e.trace, "# view %d: %v\n", v, r)
			}
		}
	}
	if !e.loop() {
		return nil, errAbandoned
	}
	e.finish()
	return e.res, nil
}

func (e *engine) setup() error {
	cfg := &e.cfg
	n := cfg.N
	if cfg.Checkers != nil {
		e.checkers = cfg.Checkers(n)
	} else {
		cs, err := checkersFor(cfg.Spec.Class, n)
		if err != nil {
			return err
		}
		e.checkers = cs
	}
	e.links = make([]link, n*n)
	e.nodes = make([]*simNode, n)
	var keys []*broadcast.Keyring
	if cfg.Keys {
		var err error
		keys, err = e.keyrings(n)
		if err != nil {
			return fmt.Errorf("sim: generate keys: %w", err)
		}
	}
	// Draw the Byzantine nodes and their behaviours.
	perm := e.rng.Perm(n)
	picks := map[broadcast.NodeID]BehaviourSpec{}
	next := 0
	for _, a := range cfg.Byzantine {
		for range a.Count {
			picks[broadcast.NodeID(perm[next])] = a.Behaviours[e.rng.IntN(len(a.Behaviours))]
			next++
		}
	}
	for i := range n {
		id := broadcast.NodeID(i)
		nd := &simNode{id: id, correct: true}
		nd.ctx = Ctx{e: e, self: id}
		e.nodes[i] = nd
	}
	for i := range n {
		nd := e.nodes[i]
		spec, byz := picks[nd.id]
		cores := 1
		if byz {
			nd.correct = false
			nd.name = spec.Name
			nd.byz = spec.New(&nd.ctx)
			nd.inbound, _ = nd.byz.(InboundFilter)
			nd.twins, _ = nd.byz.(Twinned)
			if nd.twins != nil {
				cores = 2
			}
			e.res.Byzantine = append(e.res.Byzantine, fmt.Sprintf("%v:%s", nd.id, spec.Name))
		}
		for range cores {
			st := broadcast.NewPayloadStore(broadcast.StoreConfig{})
			env := broadcast.Env{Store: st, Tuning: cfg.Tuning}
			if keys != nil {
				env.Keys = keys[i]
			}
			p, err := cfg.Spec.New(broadcast.Params{N: n, F: cfg.F, Self: nd.id, Mode: cfg.Mode}, env)
			if err != nil {
				st.Close()
				return fmt.Errorf("%w: build %s node %v: %w", ErrConfig, cfg.Spec.Name, nd.id, err)
			}
			nd.cores = append(nd.cores, p)
			nd.stores = append(nd.stores, st)
			nd.wake = append(nd.wake, 0)
		}
	}
	// Partition episodes, all healed by GST.
	nw := &cfg.Net
	for range nw.Partitions {
		if nw.GST <= 0 {
			break
		}
		// Half the episodes start with the run, when the traffic is; the
		// others start anywhere in the first half before GST.
		var from time.Duration
		if e.rng.IntN(2) == 0 {
			from = time.Duration(e.rng.Int64N(int64(nw.GST)/2 + 1))
		}
		to := from + time.Duration(e.rng.Int64N(int64(nw.GST-from))+1)
		side := make([]uint8, n)
		for j := range side {
			side[j] = uint8(e.rng.IntN(2))
		}
		e.parts = append(e.parts, partition{from: from, to: to, side: side})
	}
	// The workload.
	origins := cfg.Workload.Origins
	if origins == nil {
		for i := range n {
			origins = append(origins, broadcast.NodeID(i))
		}
	}
	for _, o := range origins {
		for k := range cfg.Workload.PerNode {
			ev := e.newEvent(evSubmit, time.Duration(e.rng.Int64N(int64(cfg.Workload.Spread))))
			ev.to, ev.idx = o, k
			e.push(ev)
		}
	}
	e.sched = e.newScheduler()
	return nil
}

// loop runs the events; it returns false if the run was abandoned.
func (e *engine) loop() bool {
	budget := e.cfg.MaxEvents
	e.res.Ended = EndIdle
	for len(e.queue) > 0 {
		if e.res.Events >= uint64(budget) {
			e.res.Ended = EndBudget
			break
		}
		if e.stop != nil && e.res.Events%stopCheckEvents == 0 {
			select {
			case <-e.stop:
				return false
			default:
			}
		}
		ev := heap.Pop(&e.queue).(*event)
		if ev.at > e.cfg.Horizon {
			heap.Push(&e.queue, ev)
			e.res.Ended = EndHorizon
			break
		}
		e.now = ev.at
		e.res.Events++
		e.handle(ev)
		e.recycle(ev)
	}
	e.res.End = e.now
	return true
}

func (e *engine) finish() {
	info := &RunInfo{N: e.cfg.N, F: e.cfg.F, Correct: make([]bool, e.cfg.N), GST: e.cfg.Net.GST, End: e.now, Ended: e.res.Ended}
	switch e.res.Ended {
	case EndIdle:
		info.Settled = true
	case EndHorizon:
		info.Settled = e.cfg.Deadline > 0 && e.cfg.Horizon >= e.cfg.Deadline
		if !info.Settled {
			info.Limit = fmt.Sprintf("horizon %v", e.cfg.Horizon)
			if e.cfg.Deadline > 0 {
				info.Limit += fmt.Sprintf(", before the protocol's deadline %v", e.cfg.Deadline)
			}
		}
	case EndBudget:
		info.Limit = fmt.Sprintf("event budget of %d events, at %v", e.cfg.MaxEvents, e.now)
	}
	e.res.Settled = info.Settled
	if e.trace != nil {
		fmt.Fprintf(e.trace, "# ended: %v at %v, settled=%v %s\n", e.res.Ended, e.now, info.Settled, info.Limit)
	}
	for i, nd := range e.nodes {
		info.Correct[i] = nd.correct
	}
	timeLimited := false
	for _, c := range e.checkers {
		for _, v := range c.Finish(info) {
			if v.Property == TimeLimit {
				v.Detail = c.Name() + "/" + v.Detail
				timeLimited = true
			} else {
				v.Property = c.Name() + "/" + v.Property
			}
			e.res.Violations = append(e.res.Violations, v)
		}
	}
	if e.res.Ended == EndBudget && !timeLimited {
		// Every obligation met, yet work left after MaxEvents events: a
		// protocol (or behaviour) that never quiesces.
		e.res.Violations = append(e.res.Violations, Violation{"termination", 0, fmt.Sprintf("event budget of %d exhausted at %v", e.cfg.MaxEvents, e.now)})
	}
	e.res.Coverage = e.coverage()
	for _, nd := range e.nodes {
		s := nd.metrics.Snapshot()
		if nd.correct {
			e.res.Correct.Add(s)
		}
		e.res.All.Add(s)
	}
	e.res.TraceHash = e.hash
	slices.Sort(e.res.Byzantine)
}

// teardown releases every reference the run still holds: queued messages,
// pending output, Byzantine state and the payload stores.
func (e *engine) teardown() {
	for _, ev := range e.queue {
		if ev.kind == evMsg {
			ev.msg.Payload.Release()
		}
		e.recycle(ev)
	}
	e.queue = e.queue[:0]
	scratchPool.Put(&scratch{free: e.free, queue: e.queue})
	e.free, e.queue = nil, nil
	for _, nd := range e.nodes {
		if nd == nil {
			continue
		}
		for _, p := range nd.cores {
			rd := p.Ready()
			rd.Release()
			if c, ok := p.(interface{ Close() }); ok {
				c.Close()
			}
		}
		if c, ok := nd.byz.(Closer); ok {
			c.Close()
		}
		for _, st := range nd.stores {
			st.Close()
		}
	}
}

// scratch is the reusable memory of a run: recycled events and the heap's
// slice. Runs hand it on through scratchPool, so that a sweep of thousands
// of seeds allocates events only while the largest queue grows.
type scratch struct {
	free  []*event
	queue eventQueue
}

var scratchPool = sync.Pool{New: func() any { return &scratch{} }}

// keyCache memoizes clusters' keyrings by size: deriving n² pairwise MAC
// keys costs far more than a whole simulated run, and the keys are not what
// a seed explores. Keyrings are read-only once built.
var keyCache sync.Map // int → []*broadcast.Keyring

// keyrings returns the keyrings of a cluster of n, derived from a fixed
// seed (crypto's key generators may ignore a supplied reader, and the run's
// RNG must not depend on whether keys were made).
func (e *engine) keyrings(n int) ([]*broadcast.Keyring, error) {
	if k, ok := keyCache.Load(n); ok {
		return k.([]*broadcast.Keyring), nil
	}
	rng := rand.New(rand.NewPCG(uint64(n), 0x6b657973))
	fill := func(p []byte) {
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
	}
	secrets := make([]broadcast.NodeKeys, n)
	pubs := make([]broadcast.PublicKeys, n)
	for i := range n {
		var seed [ed25519.SeedSize]byte
		fill(seed[:])
		secrets[i].Sign = ed25519.NewKeyFromSeed(seed[:])
		pubs[i].Verify = secrets[i].Sign.Public().(ed25519.PublicKey)
		fill(secrets[i].DH[:])
		x25519.KeyGen(&pubs[i].DH, &secrets[i].DH)
	}
	rings := make([]*broadcast.Keyring, n)
	for i := range n {
		var err error
		if rings[i], err = broadcast.NewKeyring(broadcast.NodeID(i), secrets[i], pubs); err != nil {
			return nil, err
		}
	}
	k, _ := keyCache.LoadOrStore(n, rings)
	return k.([]*broadcast.Keyring), nil
}
