// Package mutcheck runs the mutation check: each seeded bug of package
// mutant, under its protocol's default simulation with Byzantine nodes,
// seed after seed until the simulator's checkers report a violation — the
// mutant is caught — or the budget runs out.
//
// A catch counts only if the correct protocol passes the same seed, so that
// a violation the mutant did not cause (a checker or protocol bug) is never
// taken for a catch; such seeds are reported as BaselineFailures.
//
// `onecast mutate` is the command-line front end; the committed table of
// catching seeds (Record, LoadTable) lets CI replay every catch in
// milliseconds (sim/mutants_test.go).
package mutcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/internal/mutant"
	"github.com/onecast/onecast/pbft"
	"github.com/onecast/onecast/sim"
)

// Cluster sizes of the default simulations. Dolev–Strong runs with f = n−2
// Byzantine nodes, the most that leaves two correct nodes whose outputs
// agreement can compare.
const (
	BrachaN      = 4
	PBFTN        = 4
	DolevStrongN = 4
	DolevStrongF = DolevStrongN - 2
)

// Options change a mutant's simulation from the default, to explore what
// catches a mutant the default misses. The zero Options is the default.
type Options struct {
	// N is the cluster size (0: the default; f follows from it: the largest
	// the protocol tolerates, n−2 for Dolev–Strong).
	N int
	// PerNode is the payloads each node submits (0: one).
	PerNode int
}

// Config returns the simulation of protocol ("bracha", "pbft" or
// "dolevstrong") with the mutants in muts: the protocol's default
// configuration of `onecast sim` — digest mode, one payload per node, the
// hostile network (the synchronous one for Dolev–Strong) — with f Byzantine
// nodes, each drawn per seed from every behaviour the protocol can be run
// against.
func Config(protocol string, muts mutant.Set) (sim.Config, error) {
	return ConfigWith(protocol, muts, Options{})
}

// ConfigWith is Config changed by opts.
func ConfigWith(protocol string, muts mutant.Set, opts Options) (sim.Config, error) {
	if opts.N < 0 || opts.PerNode < 0 {
		return sim.Config{}, fmt.Errorf("mutcheck: negative option in %+v", opts)
	}
	size := func(def int) int {
		if opts.N > 0 {
			return opts.N
		}
		return def
	}
	generic := sim.Behaviours()
	var cfg sim.Config
	switch protocol {
	case "bracha":
		spec := bracha.Spec
		spec.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
			return bracha.New(bracha.Config{N: p.N, F: p.F, Self: p.Self, Mode: p.Mode, Keys: env.Keys, Store: env.Store,
				Batch: env.Tuning.Batch, FetchTimeout: env.Tuning.Timeout, Mutations: muts})
		}
		n := size(BrachaN)
		f := (n - 1) / 3
		cfg = sim.Config{Spec: spec, N: n, F: f, Mode: broadcast.ModeDigest, Net: sim.HostileNetwork(),
			Byzantine: []sim.Assignment{{Count: f, Behaviours: generic}}}
	case "pbft":
		n := size(PBFTN)
		f := (n - 1) / 3
		cfg = sim.PBFTConfig(n, f, broadcast.ModeDigest,
			[]sim.Assignment{{Count: f, Behaviours: append(generic, sim.PBFTBehaviours()...)}},
			func(c *pbft.Config) { c.Mutations = muts })
	case "dolevstrong":
		spec := dolevstrong.Spec
		spec.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
			return dolevstrong.New(dolevstrong.Config{Params: p, Store: env.Store, Keys: env.Keys,
				RoundDuration: env.Tuning.RoundDuration, Mutations: muts})
		}
		n := size(DolevStrongN)
		f := max(n-2, 1)
		byz := []sim.Assignment{{Count: f, Behaviours: append(sim.DolevStrongBehaviours(), generic...)}}
		cfg = sim.DolevStrongConfig(spec, n, f, broadcast.ModeDigest, sim.DefaultNetwork().Delta, byz)
	default:
		return sim.Config{}, fmt.Errorf("mutcheck: no default simulation for protocol %q", protocol)
	}
	if opts.PerNode > 0 {
		cfg.Workload.PerNode = opts.PerNode
	}
	return cfg, nil
}

// PBFTVariant names the PBFT configuration a seed runs under (see
// ConfigForSeed).
func PBFTVariant(seed uint64) string {
	return [...]string{"default", "viewchange", "short-timeout", "viewsplit"}[seed%4]
}

// ConfigForSeed is ConfigWith for one seed. PBFT's seeds take turns over
// four configurations, so that a search covers the paths each reaches:
//
//   - seed ≡ 0 (mod 4): the simulator's default (sim.PBFTConfig);
//   - seed ≡ 1: the same under sim.ScheduleViewChange (view changes in a
//     row, certificates carried across them);
//   - seed ≡ 2: a short timeout (20 ms, near the network's latency), one
//     request per batch and six per node, with Byzantine replicas drawn
//     from the PBFT attacks, delay and crash: replicas give up on views and
//     on NEW-VIEWs still on their way — the configuration that found the
//     agreement violation of a NEW-VIEW below the asked-for view. The
//     view-change storm is left out here: it attacks the join rule, which
//     the other two configurations reach, and would only thin out the
//     attacks this one is for;
//   - seed ≡ 3: the same as the default under sim.ScheduleViewSplit (views
//     partitioned one by one: lone preparers, replicas cut out of view
//     changes, COMMITs of earlier views in the logs), with Byzantine
//     replicas drawn from the behaviours that lie across views —
//     ViewSplitBehaviours(): forged VIEW-CHANGEs, twins, NEW-VIEWs on
//     chosen quorums, stale and split votes. The configuration that
//     catches pbft-commits-any-view (a replica must count a COMMIT of an
//     earlier view while a Byzantine replica hides the certificate behind
//     it from one NEW-VIEW) and pbft-newview-below-target (a NEW-VIEW that
//     arrives after its replicas asked for the next view).
func ConfigForSeed(protocol string, muts mutant.Set, opts Options, seed uint64) (sim.Config, error) {
	cfg, err := ConfigWith(protocol, muts, opts)
	if err != nil || protocol != "pbft" {
		return cfg, err
	}
	switch PBFTVariant(seed) {
	case "viewchange":
		cfg.Schedule = sim.ScheduleViewChange
	case "short-timeout":
		cfg.Tuning.Timeout = 20 * time.Millisecond
		cfg.Tuning.Batch = 1
		if opts.PerNode == 0 {
			cfg.Workload.PerNode = 6
		}
		var byz []sim.BehaviourSpec
		for _, b := range append(sim.PBFTBehaviours(), sim.Behaviours()...) {
			if (strings.HasPrefix(b.Name, "pbft-") && b.Name != "pbft-viewchange-storm") || b.Name == "delay" || b.Name == "crash" {
				byz = append(byz, b)
			}
		}
		cfg.Byzantine = []sim.Assignment{{Count: cfg.F, Behaviours: byz}}
	case "viewsplit":
		cfg.Schedule = sim.ScheduleViewSplit
		var byz []sim.BehaviourSpec
		for _, b := range sim.PBFTBehaviours() {
			if slices.Contains(ViewSplitBehaviours(), b.Name) {
				byz = append(byz, b)
			}
		}
		cfg.Byzantine = []sim.Assignment{{Count: cfg.F, Behaviours: byz}}
	}
	return cfg, nil
}

// ViewSplitBehaviours are the Byzantine behaviours of the viewsplit
// configuration of ConfigForSeed: those that lie across views.
func ViewSplitBehaviours() []string {
	return []string{"pbft-forgevc", "pbft-twins", "pbft-newview", "pbft-stale", "pbft-splitvote"}
}

// Outcome is what the search for one mutant found.
type Outcome struct {
	Mutant mutant.Mutant
	// Caught says a seed made the mutant violate a property that the
	// correct protocol keeps on that seed.
	Caught bool
	// Seed is the first catching seed; Runs the runs it took (the budget
	// when not caught).
	Seed uint64
	Runs int
	// Properties are the properties the catching run violated; Violation
	// is its first violation, Byzantine its Byzantine nodes.
	Properties []string
	Violation  string
	Byzantine  []string
	// BaselineFailures are seeds on which the correct protocol failed too:
	// not catches, and a problem of their own.
	BaselineFailures []uint64
	// Coverage counts the protocol events the runs reached.
	Coverage Coverage
	Elapsed  time.Duration
}

// Search runs seeds first, first+1, … of m's simulation until one catches it
// or budget runs have been made, workers runs at a time. The result does not
// depend on workers: seeds run in batches and the lowest catching seed of the
// first batch with one wins. It stops early, with ctx's error, when ctx ends.
func Search(ctx context.Context, m mutant.Mutant, first uint64, budget, workers int) (Outcome, error) {
	return SearchWith(ctx, m, Options{}, first, budget, workers)
}

// SearchWith is Search in the simulation ConfigWith(…, opts) describes.
func SearchWith(ctx context.Context, m mutant.Mutant, opts Options, first uint64, budget, workers int) (Outcome, error) {
	start := time.Now()
	out := Outcome{Mutant: m, Coverage: newCoverage(m.Protocol)}
	if _, err := ConfigWith(m.Protocol, m.Set(), opts); err != nil {
		return out, err
	}
	workers = max(workers, 1)
	for done := 0; done < budget; {
		if err := ctx.Err(); err != nil {
			out.Runs, out.Elapsed = done, time.Since(start)
			return out, err
		}
		k := min(workers, budget-done)
		results := make([]*sim.Result, k)
		cores := make([][]core, k)
		errs := make([]error, k)
		var wg sync.WaitGroup
		for i := range k {
			wg.Go(func() {
				// A configuration per run: its Spec records the run's cores.
				seed := first + uint64(done+i)
				cfg, err := ConfigForSeed(m.Protocol, m.Set(), opts, seed)
				if err != nil {
					errs[i] = err
					return
				}
				recordCores(&cfg, &cores[i])
				results[i], errs[i] = sim.Run(cfg, seed)
			})
		}
		wg.Wait()
		for i, r := range results {
			if errs[i] != nil {
				return out, fmt.Errorf("mutcheck: %s seed %d: %w", m.Name, first+uint64(done+i), errs[i])
			}
			out.Coverage.add(r, cores[i])
			if !r.Failed() {
				continue
			}
			base, err := ConfigForSeed(m.Protocol, 0, opts, r.Seed)
			if err != nil {
				return out, err
			}
			b, err := sim.Run(base, r.Seed)
			if err != nil {
				return out, fmt.Errorf("mutcheck: baseline %s seed %d: %w", m.Protocol, r.Seed, err)
			}
			if b.Failed() {
				out.BaselineFailures = append(out.BaselineFailures, r.Seed)
				continue
			}
			out.Caught, out.Seed, out.Runs = true, r.Seed, done+i+1
			out.Properties = Properties(r)
			out.Violation = r.Violations[0].String()
			out.Byzantine = r.Byzantine
			out.Elapsed = time.Since(start)
			return out, nil
		}
		done += k
	}
	out.Runs, out.Elapsed = budget, time.Since(start)
	return out, nil
}

// Properties returns the distinct properties r violated, sorted.
func Properties(r *sim.Result) []string {
	var ps []string
	for _, v := range r.Violations {
		if !slices.Contains(ps, v.Property) {
			ps = append(ps, v.Property)
		}
	}
	sort.Strings(ps)
	return ps
}

// Replay runs m's simulation on seed with and without the mutant: the run
// with it must violate a property and the run without it must not.
func Replay(m mutant.Mutant, seed uint64) (mutated, correct *sim.Result, err error) {
	cfg, err := ConfigForSeed(m.Protocol, m.Set(), Options{}, seed)
	if err != nil {
		return nil, nil, err
	}
	base, err := ConfigForSeed(m.Protocol, 0, Options{}, seed)
	if err != nil {
		return nil, nil, err
	}
	if mutated, err = sim.Run(cfg, seed); err != nil {
		return nil, nil, fmt.Errorf("mutcheck: %s seed %d: %w", m.Name, seed, err)
	}
	if correct, err = sim.Run(base, seed); err != nil {
		return nil, nil, fmt.Errorf("mutcheck: baseline %s seed %d: %w", m.Protocol, seed, err)
	}
	return mutated, correct, nil
}

// Record is one row of the committed table of catches: the mutant, its
// first catching seed and the properties that run violated.
type Record struct {
	Mutant     string `json:"mutant"`
	Seed       uint64 `json:"seed"`
	Properties string `json:"properties"`
}

// RecordOf returns the table row of a caught outcome.
func RecordOf(o Outcome) Record {
	return Record{Mutant: o.Mutant.Name, Seed: o.Seed, Properties: strings.Join(o.Properties, ",")}
}

// LoadTable reads a table of catches written by WriteTable.
func LoadTable(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mutcheck: read table: %w", err)
	}
	var rs []Record
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("mutcheck: table %s: %w", path, err)
	}
	return rs, nil
}

// WriteTable writes the rows of the caught outcomes to path, one per line.
func WriteTable(path string, outs []Outcome) error {
	var b strings.Builder
	b.WriteString("[\n")
	first := true
	for _, o := range outs {
		if !o.Caught {
			continue
		}
		line, err := json.Marshal(RecordOf(o))
		if err != nil {
			return err
		}
		if !first {
			b.WriteString(",\n")
		}
		first = false
		b.WriteString("  ")
		b.Write(line)
	}
	b.WriteString("\n]\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("mutcheck: write table: %w", err)
	}
	return nil
}
