package sim

import (
	"fmt"
	"strings"

	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/pbft"
)

// Coverage counts the protocol paths one run reached, from the counters of
// its correct nodes (pbft.Stats, dolevstrong.Stats; a protocol without
// counters, or one wrapped by a test, leaves it zero). Sums are over the
// correct nodes.
type Coverage struct {
	// PBFT: view changes started, views entered through a NEW-VIEW, the
	// longest run of views a replica entered with no batch executed in
	// between (maximum over replicas), sequence numbers a NEW-VIEW took
	// from a prepared certificate, certificates carried across two
	// consecutive NEW-VIEWs, checkpoints taken, state transfers started.
	ViewChanges, ViewsEntered, MaxConsecutiveViews uint64
	CertsCarried, CertsCarriedTwice                uint64
	Checkpoints, StateTransfers                    uint64
	// MinStableCheckpoints and MaxStableCheckpoints are the fewest and the
	// most times a correct PBFT replica moved its low watermark: the
	// stable checkpoints it saw (2f+1 matching CHECKPOINTs, its own or a
	// lagging replica's proof). Max is the stable checkpoints the cluster
	// crossed; a replica left behind by partitions may catch up by state
	// transfer without ever seeing a proof, which Min shows.
	MinStableCheckpoints, MaxStableCheckpoints uint64
	// Dolev–Strong: instances decided, and those decided on the default
	// value ⊥ (the sender equivocated).
	Decisions, DefaultDecisions uint64
	// PBFTReplicas and DolevStrongNodes are the correct nodes whose
	// counters were read.
	PBFTReplicas, DolevStrongNodes int
}

// coverage reads the counters of the run's correct nodes.
func (e *engine) coverage() Coverage {
	var c Coverage
	first := true
	for _, nd := range e.nodes {
		if !nd.correct || len(nd.cores) == 0 {
			continue
		}
		switch p := nd.cores[0].(type) {
		case *pbft.Node:
			s := p.Stats()
			c.PBFTReplicas++
			c.ViewChanges += s.ViewChanges
			c.ViewsEntered += s.ViewsEntered
			c.MaxConsecutiveViews = max(c.MaxConsecutiveViews, s.MaxConsecutiveViews)
			c.CertsCarried += s.CertsCarried
			c.CertsCarriedTwice += s.CertCarriedTwice
			c.Checkpoints += s.Checkpoints
			c.StateTransfers += s.StateTransfers
			if first || s.StableCheckpoints < c.MinStableCheckpoints {
				c.MinStableCheckpoints = s.StableCheckpoints
			}
			c.MaxStableCheckpoints = max(c.MaxStableCheckpoints, s.StableCheckpoints)
			first = false
		case *dolevstrong.Node:
			s := p.Stats()
			c.DolevStrongNodes++
			c.Decisions += s.Instances
			c.DefaultDecisions += s.Bottoms
		}
	}
	return c
}

// CoverageSummary counts, over the runs of a sweep, those that reached
// each path at least once (or, for the counts with a threshold, that
// often).
type CoverageSummary struct {
	// Runs is the number of runs whose counters were read (runs of a
	// protocol with counters).
	Runs int
	// PBFT: runs in which a correct replica entered a new view, entered
	// two or more views in a row with no batch executed in between, a
	// NEW-VIEW carried a prepared certificate, one carried it across two
	// consecutive view changes, the cluster crossed two or more stable
	// checkpoints (MaxStableCheckpoints), every correct replica saw two or
	// more (MinStableCheckpoints), a replica transferred state.
	ViewChange, ConsecutiveViews2, CertCarried, CertCarriedTwice int
	StableCheckpoints2, StableCheckpoints2All, StateTransfer     int
	// PBFT is the number of PBFT runs among Runs.
	PBFT int
	// Dolev–Strong: runs with a decision, and with a decision on ⊥.
	DolevStrong, DefaultDecision int
}

func (s *CoverageSummary) add(c Coverage) {
	if c.PBFTReplicas == 0 && c.DolevStrongNodes == 0 {
		return
	}
	s.Runs++
	if c.DolevStrongNodes > 0 {
		s.DolevStrong++
		if c.DefaultDecisions > 0 {
			s.DefaultDecision++
		}
		return
	}
	s.PBFT++
	count := func(dst *int, ok bool) {
		if ok {
			*dst++
		}
	}
	count(&s.ViewChange, c.ViewsEntered > 0)
	count(&s.ConsecutiveViews2, c.MaxConsecutiveViews >= 2)
	count(&s.CertCarried, c.CertsCarried > 0)
	count(&s.CertCarriedTwice, c.CertsCarriedTwice > 0)
	count(&s.StableCheckpoints2, c.MaxStableCheckpoints >= 2)
	count(&s.StableCheckpoints2All, c.MinStableCheckpoints >= 2)
	count(&s.StateTransfer, c.StateTransfers > 0)
}

// String is the coverage line of a sweep, e.g. "coverage: 2000 runs; view
// changes ≥1: 34%, ≥2 consecutive: 12%; …". It is empty when no run had
// counters.
func (s *CoverageSummary) String() string {
	if s.Runs == 0 {
		return ""
	}
	pct := func(k, of int) string { return fmt.Sprintf("%.1f%%", 100*float64(k)/float64(of)) }
	var b strings.Builder
	fmt.Fprintf(&b, "coverage: %d runs", s.Runs)
	if s.PBFT > 0 {
		fmt.Fprintf(&b, "; view changes ≥1: %s, ≥2 consecutive: %s; certs carried: %s, twice: %s; stable checkpoints ≥2: %s (at every correct replica: %s); state transfers: %s",
			pct(s.ViewChange, s.PBFT), pct(s.ConsecutiveViews2, s.PBFT), pct(s.CertCarried, s.PBFT), pct(s.CertCarriedTwice, s.PBFT),
			pct(s.StableCheckpoints2, s.PBFT), pct(s.StableCheckpoints2All, s.PBFT), pct(s.StateTransfer, s.PBFT))
	}
	if s.DolevStrong > 0 {
		fmt.Fprintf(&b, "; Dolev–Strong decisions on the default value ⊥: %s", pct(s.DefaultDecision, s.DolevStrong))
	}
	return b.String()
}
