package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onecast/onecast/internal/mutant"
	"github.com/onecast/onecast/internal/mutant/mutcheck"
	"github.com/onecast/onecast/sim"
)

func mutateCommand() command {
	return command{name: "mutate", summary: "run the seeded protocol bugs under the simulator and report the seeds each takes to catch", run: runMutate}
}

// mutateRow is one mutant's line of the report (and its JSON form).
type mutateRow struct {
	Mutant           string   `json:"mutant"`
	Protocol         string   `json:"protocol"`
	Caught           bool     `json:"caught"`
	Seed             uint64   `json:"seed,omitempty"`
	Runs             int      `json:"runs"`
	Properties       []string `json:"properties,omitempty"`
	Violation        string   `json:"violation,omitempty"`
	Byzantine        []string `json:"byzantine,omitempty"`
	BaselineFailures []uint64 `json:"baseline_failures,omitempty"`
	// Coverage: runs (of Runs) in which a correct node reached each event.
	Coverage    map[string]int `json:"coverage"`
	Description string         `json:"description"`
	Location    string         `json:"location"`
	Seconds     float64        `json:"seconds"`
}

func runMutate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mutate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		budget  = fs.Int("budget", 10000, "seeds to try per mutant before calling it NOT CAUGHT")
		first   = fs.Uint64("seed", 1, "first seed")
		only    = fs.String("only", "", "comma-separated mutant names or protocols (default: every mutant)")
		format  = fs.String("format", "table", "output: table or json")
		workers = fs.Int("workers", 0, "runs in parallel (0: GOMAXPROCS)")
		record  = fs.String("record", "", "write the catching seeds to this table (the testdata of sim/mutants_test.go)")
		list    = fs.Bool("list", false, "list the mutants and exit")
		n       = fs.Int("n", 0, "cluster size instead of the protocol's default (exploration; the recorded table uses the default)")
		perNode = fs.Int("per-node", 0, "payloads each node submits instead of one (exploration)")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: onecast mutate [flags]\n\nRuns every seeded bug (internal/mutant) under its protocol's default simulation\nwith f Byzantine nodes of any behaviour, seed after seed, until a property is\nviolated on a seed the correct protocol passes. Exit status 1 if any mutant is\nnot caught within the budget.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	if *n < 0 || *perNode < 0 {
		return fmt.Errorf("%w: --n and --per-node must not be negative", errUsage)
	}
	if *record != "" && (*n != 0 || *perNode != 0) {
		return fmt.Errorf("%w: --record writes the table of the default simulations; drop --n and --per-node", errUsage)
	}
	if *budget <= 0 {
		return fmt.Errorf("%w: --budget must be positive", errUsage)
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("%w: --format must be table or json, got %q", errUsage, *format)
	}
	ms, err := selectMutants(*only)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *list {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "mutant\tprotocol\tlocation\tdescription")
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, m.Protocol, m.Location, m.Description)
		}
		return tw.Flush()
	}
	if *workers <= 0 {
		*workers = runtime.GOMAXPROCS(0)
	}
	table := *format == "table"
	const rowFormat = "%-26s %-12s %-12s %6s  %-52s %s\n"
	if table {
		sims := "default simulations"
		if *n != 0 || *perNode != 0 {
			sims = fmt.Sprintf("simulations changed to n=%d per-node=%d (0: default)", *n, *perNode)
		}
		fmt.Fprintf(stdout, "mutation check: %d mutants, budget %d seeds from %d, %s with f Byzantine nodes (any behaviour)\n", len(ms), *budget, *first, sims)
		fmt.Fprintf(stdout, rowFormat, "mutant", "protocol", "caught at", "runs", "property violated", "time")
	}
	var (
		outs   []mutcheck.Outcome
		rows   []mutateRow
		missed []string
		bad    []string
	)
	for _, m := range ms {
		o, err := mutcheck.SearchWith(ctx, m, mutcheck.Options{N: *n, PerNode: *perNode}, *first, *budget, *workers)
		if err != nil {
			if errors.Is(err, sim.ErrConfig) {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
			return err
		}
		outs = append(outs, o)
		row := mutateRow{Mutant: m.Name, Protocol: m.Protocol, Caught: o.Caught, Seed: o.Seed, Runs: o.Runs, Properties: o.Properties,
			Violation: o.Violation, Byzantine: o.Byzantine, BaselineFailures: o.BaselineFailures, Description: m.Description,
			Location: m.Location, Seconds: o.Elapsed.Seconds()}
		row.Coverage = map[string]int{}
		for i, e := range o.Coverage.Events {
			row.Coverage[e] = o.Coverage.Reached[i]
		}
		rows = append(rows, row)
		if !o.Caught {
			missed = append(missed, m.Name)
		}
		if len(o.BaselineFailures) > 0 {
			bad = append(bad, fmt.Sprintf("%s (seeds %v)", m.Protocol, o.BaselineFailures))
		}
		if table {
			seed, prop := "NOT CAUGHT", "-"
			if o.Caught {
				seed, prop = fmt.Sprintf("seed %d", o.Seed), strings.Join(o.Properties, ",")
			}
			fmt.Fprintf(stdout, rowFormat, m.Name, m.Protocol, seed, fmt.Sprint(o.Runs), prop, o.Elapsed.Round(time.Millisecond))
			if !o.Caught {
				fmt.Fprintf(stdout, "    runs reaching: %v\n", o.Coverage)
			}
		}
	}
	if !table {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "caught %d of %d\n", len(ms)-len(missed), len(ms))
	}
	if *record != "" {
		if err := mutcheck.WriteTable(*record, outs); err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: the correct protocol fails seeds too: %s", errViolation, strings.Join(bad, "; "))
	}
	if len(missed) > 0 {
		return fmt.Errorf("%w: %d mutants NOT CAUGHT within %d seeds: %s", errViolation, len(missed), *budget, strings.Join(missed, ", "))
	}
	return nil
}

// selectMutants returns the mutants named (or of the protocols named) in a
// comma-separated list; every mutant for an empty list.
func selectMutants(only string) ([]mutant.Mutant, error) {
	all := mutant.All()
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	var out []mutant.Mutant
	for name := range strings.SplitSeq(only, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, m := range all {
			if m.Protocol == name {
				out = append(out, m)
				found = true
			}
		}
		if found {
			continue
		}
		m, err := mutant.Lookup(name)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
