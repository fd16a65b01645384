package mutcheck

import (
	"strings"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/pbft"
	"github.com/onecast/onecast/sim"
)

// Coverage counts, for each protocol event a mutant may need to show
// itself, the runs of a search in which some correct node reached it: a
// mutant not caught in 10,000 runs of which none entered a second view
// says which schedule is missing, not that the mutant is harmless.
type Coverage struct {
	// Runs is the number of runs counted.
	Runs int
	// Events are the events in the protocol's report order, Reached[i] the
	// runs that reached Events[i].
	Events  []string
	Reached []int
}

// coverageEvents lists, per protocol, the events Coverage counts.
var coverageEvents = map[string][]string{
	"bracha":      {"equivocating SEND", "duplicate vote", "fetch", "bad fetch answer"},
	"pbft":        {"view change", "new view entered", "two views in a row", "certificate carried", "certificate carried twice", "stable checkpoint", "state transfer"},
	"dolevstrong": {"⊥ decided", "stale chain", "fetch"},
}

// reached reports which of the protocol's events node p reached, in
// coverageEvents order.
func reached(p broadcast.Protocol) []bool {
	switch nd := p.(type) {
	case *bracha.Node:
		s := nd.Stats()
		return []bool{s.Equivocated > 0, s.DupVotes > 0, s.FetchesSent > 0, s.BadPayloads > 0}
	case *pbft.Node:
		s := nd.Stats()
		return []bool{s.ViewChanges > 0, s.ViewsEntered > 0, s.MaxConsecutiveViews >= 2, s.CertsCarried > 0,
			s.CertCarriedTwice > 0, s.StableCheckpoints > 0, s.StateTransfers > 0}
	case *dolevstrong.Node:
		s := nd.Stats()
		return []bool{s.Bottoms > 0, s.Stale > 0, s.Fetches > 0}
	}
	return nil
}

// core is one protocol instance a run built.
type core struct {
	self broadcast.NodeID
	p    broadcast.Protocol
}

// recordCores makes cfg's Spec remember every instance it builds.
func recordCores(cfg *sim.Config, into *[]core) {
	inner := cfg.Spec.New
	cfg.Spec.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		pr, err := inner(p, env)
		if err == nil {
			*into = append(*into, core{p.Self, pr})
		}
		return pr, err
	}
}

func newCoverage(protocol string) Coverage {
	ev := coverageEvents[protocol]
	return Coverage{Events: ev, Reached: make([]int, len(ev))}
}

// add counts one run: r's result and the cores it built.
func (c *Coverage) add(r *sim.Result, cores []core) {
	c.Runs++
	byz := map[string]bool{}
	for _, b := range r.Byzantine {
		id, _, _ := strings.Cut(b, ":")
		byz[id] = true
	}
	hit := make([]bool, len(c.Events))
	for _, co := range cores {
		if byz[co.self.String()] {
			continue
		}
		for i, ok := range reached(co.p) {
			if i < len(hit) && ok {
				hit[i] = true
			}
		}
	}
	for i, ok := range hit {
		if ok {
			c.Reached[i]++
		}
	}
}

// String formats c as "event runs, …".
func (c Coverage) String() string {
	parts := make([]string, len(c.Events))
	for i, e := range c.Events {
		parts[i] = e + " " + itoa(c.Reached[i])
	}
	return strings.Join(parts, ", ")
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
