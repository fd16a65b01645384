package characterize

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/sim"
)

// OwnPoint is one configuration of one of onecast's primitives, run in full
// (textbook) mode.
type OwnPoint struct {
	Protocol string
	N, F     int
	Payload  int
	// Batch is payloads per protocol instance; PerNode the payloads each
	// node submits (the load).
	Batch, PerNode int
	// Byzantine is the behaviour of F nodes ("" for none).
	Byzantine string
	// Mode is the message format (zero: full mode, the characterization's
	// subject; the evaluation also runs digest mode).
	Mode broadcast.Mode
}

func (p OwnPoint) String() string {
	s := fmt.Sprintf("%s n=%d f=%d payload=%d batch=%d load=%d", p.Protocol, p.N, p.F, p.Payload, p.Batch, p.PerNode)
	if p.Byzantine != "" {
		s += " byz=" + p.Byzantine
	}
	return s
}

// OwnResult is one point's exact counts, from one simulator run.
type OwnResult struct {
	OwnPoint
	Seed uint64
	// ByzantineNodes names the Byzantine nodes and behaviours.
	ByzantineNodes []string
	// Types are the receptions at correct nodes per message type, recorded
	// inside the simulator run (every Step of every node).
	Types []TypeDup
	// SimMessages and SimPayload are the simulator's own counters (the
	// correct nodes' broadcast.Metrics) per type name; Agree says they equal
	// the trace's counts for every type.
	SimMessages map[string]uint64
	SimPayload  map[string]uint64
	Agree       bool
	// RemoteDelivered is the payload bytes correct nodes delivered whose
	// origin is another node; DupFactor = received payload bytes ÷ that
	// (the simulator's broadcast.Snapshot.PayloadDupFactor).
	RemoteDelivered uint64
	DupFactor       float64
	// First, Within, Between and Other sum the types' split.
	First, Within, Between, Other int64
	Violations                    []string
	Err                           string
}

// Received is all payload bytes correct nodes received.
func (r *OwnResult) Received() int64 { return r.First + r.Within + r.Between + r.Other }

// OwnSweep describes the points to run: a grid of N × Payload at the base
// batch, load and no Byzantine node, then one dimension at a time around
// the base point (N[0], Payloads[len/2]). A batch point submits batch ×
// load payloads per node, so that every batch fills.
type OwnSweep struct {
	Protocols []string
	Ns        []int
	Payloads  []int
	Batches   []int
	Loads     []int
	Byzantine []string
	Seed      uint64
}

// OwnProtocols are the primitives the characterization covers.
var OwnProtocols = []string{"bracha", "pbft", "dolevstrong"}

// Points expands the sweep.
func (s OwnSweep) Points() []OwnPoint {
	var out []OwnPoint
	seen := map[OwnPoint]bool{}
	add := func(p OwnPoint) {
		p.F = (p.N - 1) / 3
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	basePayload := s.Payloads[len(s.Payloads)/2]
	for _, proto := range s.Protocols {
		base := OwnPoint{Protocol: proto, N: s.Ns[0], Payload: basePayload, Batch: s.Batches[0], PerNode: s.Loads[0]}
		for _, n := range s.Ns {
			for _, pl := range s.Payloads {
				p := base
				p.N, p.Payload = n, pl
				add(p)
			}
		}
		for _, b := range s.Batches {
			p := base
			p.Batch = b
			p.PerNode = b * base.PerNode // fill every batch
			add(p)
		}
		for _, l := range s.Loads {
			p := base
			p.PerNode = l
			add(p)
		}
		for _, z := range s.Byzantine {
			p := base
			p.Byzantine = z
			add(p)
		}
	}
	return out
}

func behaviour(name string) ([]sim.BehaviourSpec, error) {
	all := append(append(sim.Behaviours(), sim.PBFTBehaviours()...), sim.DolevStrongBehaviours()...)
	for _, b := range all {
		if b.Name == name {
			return []sim.BehaviourSpec{b}, nil
		}
	}
	return nil, fmt.Errorf("unknown Byzantine behaviour %q (have %s)", name, sim.BehaviourNames(all))
}

// simConfig builds the simulator configuration of a point: full mode, a
// network without loss, reordering or duplication (so that every count is
// the protocol's own), the load submitted within 10 ms.
func simConfig(p OwnPoint) (sim.Config, error) {
	var byz []sim.Assignment
	if p.Byzantine != "" {
		b, err := behaviour(p.Byzantine)
		if err != nil {
			return sim.Config{}, err
		}
		byz = []sim.Assignment{{Count: p.F, Behaviours: b}}
	}
	wl := sim.Workload{PerNode: p.PerNode, PayloadSize: p.Payload, Spread: 10 * time.Millisecond}
	mode := p.Mode
	if mode == 0 {
		mode = broadcast.ModeFull
	}
	var cfg sim.Config
	switch p.Protocol {
	case "bracha":
		cfg = sim.Config{Spec: bracha.Spec, N: p.N, F: p.F, Mode: mode, Net: sim.DefaultNetwork(),
			Tuning: broadcast.Tuning{Batch: p.Batch}, Byzantine: byz, Workload: wl}
	case "pbft":
		cfg = sim.Config{Spec: sim.PBFTSpec(nil), N: p.N, F: p.F, Mode: mode, Net: sim.DefaultNetwork(),
			Tuning: broadcast.Tuning{Batch: p.Batch}, Byzantine: byz, Workload: wl, Checkers: sim.SMRCheckers}
	case "dolevstrong":
		cfg = sim.DolevStrongConfig(dolevstrong.Spec, p.N, p.F, mode, 20*time.Millisecond, byz)
		cfg.Net.Loss, cfg.Net.Reorder, cfg.Net.Duplicate = 0, 0, 0
		cfg.Tuning.Batch = p.Batch
		wl.Spread = cfg.Workload.Spread
		cfg.Workload = wl
		cfg.Horizon += time.Duration(p.PerNode) * cfg.Tuning.RoundDuration
	default:
		return sim.Config{}, fmt.Errorf("unknown protocol %q (have %v)", p.Protocol, OwnProtocols)
	}
	return cfg, nil
}

// RunOwn runs one point in the simulator and classifies every payload copy.
func RunOwn(p OwnPoint, seed uint64) OwnResult {
	res := OwnResult{OwnPoint: p, Seed: seed}
	cfg, err := simConfig(p)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	rec := newRecorder()
	if p.Protocol == "dolevstrong" {
		// A relay's round is the length of its signature chain.
		rec.roundOf = func(n int, m *broadcast.Message) uint32 {
			if b, err := dolevstrong.DecodeBody(m.Body, n); err == nil {
				return uint32(len(b.Signers))
			}
			return 0
		}
	}
	typeName := cfg.Spec.TypeName
	cfg.Spec = rec.spec(cfg.Spec)
	sr, err := sim.Run(cfg, seed)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.ByzantineNodes = sr.Byzantine
	byz := map[broadcast.NodeID]bool{}
	for _, b := range sr.Byzantine {
		id, _, _ := strings.Cut(strings.TrimPrefix(b, "n"), ":")
		if n, err := strconv.ParseUint(id, 10, 32); err == nil {
			byz[broadcast.NodeID(n)] = true
		}
	}
	for _, v := range sr.Violations {
		res.Violations = append(res.Violations, fmt.Sprint(v))
	}
	res.Types, err = rec.classify(typeName, byz, p.Protocol == "dolevstrong")
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.SimMessages, res.SimPayload = map[string]uint64{}, map[string]uint64{}
	for _, row := range sr.Correct.Types {
		name := typeName(row.Type)
		res.SimMessages[name] += row.RecvMessages
		res.SimPayload[name] += row.RecvPayload
	}
	msgs, pay := map[string]uint64{}, map[string]uint64{}
	for _, t := range res.Types {
		res.First += t.FirstBytes
		res.Within += t.WithinBytes
		res.Between += t.BetweenBytes
		res.Other += t.OtherBytes
		base, _, _ := strings.Cut(t.Type, " r") // "relay r2" → "relay"
		msgs[base] += uint64(t.Messages)
		pay[base] += uint64(t.PayloadBytes)
	}
	res.Agree = len(msgs) == len(res.SimMessages)
	for name, m := range res.SimMessages {
		if msgs[name] != m || pay[name] != res.SimPayload[name] {
			res.Agree = false
		}
	}
	res.RemoteDelivered = sr.Correct.RemoteDeliveredBytes
	res.DupFactor = sr.Correct.PayloadDupFactor()
	return res
}

// RunOwnSweep runs every point of s, stopping early when ctx ends.
func RunOwnSweep(ctx context.Context, s OwnSweep, progress func(OwnResult)) []OwnResult {
	var out []OwnResult
	for _, p := range s.Points() {
		if ctx.Err() != nil {
			break
		}
		r := RunOwn(p, s.Seed)
		if progress != nil {
			progress(r)
		}
		out = append(out, r)
	}
	return out
}
