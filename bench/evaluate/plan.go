package evaluate

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/onecast/onecast/bench"
	"github.com/onecast/onecast/broadcast"
)

// Config is one configuration of the receive path and message format, as
// the matrix and ablation tables name it.
type Config struct {
	Name      string
	Mode      broadcast.Mode
	Transport string
}

// The four configurations of the matrix, from the conventional path to
// onecast's whole one. Without namespaces (not root) the AF_XDP ones are
// left out and UDP runs in process on loopback.
var (
	ConfFull        = Config{"full", broadcast.ModeFull, "udp"}
	ConfDigest      = Config{"digest", broadcast.ModeDigest, "udp"}
	ConfDigestRef   = Config{"digest + AF_XDP ref", broadcast.ModeDigest, "xdp-ref"}
	ConfDigestStrip = Config{"digest + AF_XDP ref + strip", broadcast.ModeDigest, "xdp"}
)

// profile holds the sizes of a run.
type profile struct {
	duration, warmup time.Duration
	inflight         int
	matrixNs         []int
	matrixPayloads   []int
	scaleNs          []int // in process
	scaleNetnsNs     []int
	scalePayload     int
}

func profileFor(quick bool) profile {
	if quick {
		return profile{duration: 2 * time.Second, warmup: 500 * time.Millisecond, inflight: 16,
			matrixNs: []int{4}, matrixPayloads: []int{16 << 10},
			scaleNs: []int{4, 7, 10, 13}, scaleNetnsNs: []int{4, 7, 10}, scalePayload: 4 << 10}
	}
	return profile{duration: 5 * time.Second, warmup: time.Second, inflight: 32,
		matrixNs: []int{4, 7}, matrixPayloads: []int{1 << 10, 16 << 10, 64 << 10},
		scaleNs: []int{4, 7, 10, 13, 16, 22}, scaleNetnsNs: []int{4, 7, 10, 13}, scalePayload: 4 << 10}
}

// part is one group of points that a table reads: its sweeps, and the
// `onecast bench` commands that reproduce them.
type part struct {
	sweeps []bench.Sweep
	points []bench.Point
	// repeat is how many times each point runs (Options.Repeat).
	repeat int
}

// Commands returns one `onecast bench` command per sweep of the part.
func (p *part) Commands() []string {
	var out []string
	for _, s := range p.sweeps {
		c := benchCommand(s)
		if p.repeat > 1 {
			c += fmt.Sprintf(" --repeat %d", p.repeat)
		}
		out = append(out, c)
	}
	return out
}

// benchCommand renders a sweep as the onecast bench command that runs it.
func benchCommand(s bench.Sweep) string {
	var b strings.Builder
	b.WriteString("onecast bench")
	add := func(flag string, vals []string) {
		if len(vals) > 0 {
			fmt.Fprintf(&b, " --%s %s", flag, strings.Join(vals, ","))
		}
	}
	add("protocol", s.Protocols)
	var modes []string
	for _, m := range s.Modes {
		modes = append(modes, m.String())
	}
	add("mode", modes)
	add("cluster", s.Clusters)
	add("transport", s.Transports)
	add("n", ints(s.Ns))
	var sizes []string
	for _, p := range s.Payloads {
		sizes = append(sizes, bench.FormatSize(p))
	}
	add("payload", sizes)
	add("batch", ints(s.Batches))
	add("inflight", ints(s.Inflight))
	var byz []string
	for _, x := range s.Byzantine {
		byz = append(byz, x.String())
	}
	add("byzantine", byz)
	fmt.Fprintf(&b, " --duration %s --warmup %s", s.Duration, s.Warmup)
	return b.String()
}

func ints(v []int) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = strconv.Itoa(x)
	}
	return out
}

// plan is every part of one evaluation.
type plan struct {
	prof      profile
	netns     bool
	protocols []string
	configs   []Config
	matrix    part // protocols × configurations × n × payload
	byzantine part // one silent node, digest over UDP
	ablation  part // Bracha (and PBFT batching) at n = 4
	scaleMem  part // bytes per broadcast vs n, in process
	scaleNet  part // throughput vs n
}

// newPlan lays out the points. netns says whether namespace clusters (and
// so AF_XDP) are available.
func newPlan(quick, netns bool, specs []broadcast.Spec) (*plan, error) {
	p := &plan{prof: profileFor(quick), netns: netns, protocols: []string{"bracha", "pbft", "dolevstrong"}}
	pr := p.prof
	cluster, ablationCluster := "inproc", "inproc"
	p.configs = []Config{ConfFull, ConfDigest}
	if netns {
		cluster, ablationCluster = "netns", "netns"
		p.configs = append(p.configs, ConfDigestRef, ConfDigestStrip)
	}
	base := func() bench.Sweep {
		return bench.Sweep{Clusters: []string{cluster}, Ns: pr.matrixNs, Payloads: pr.matrixPayloads, Batches: []int{1},
			Rates: []float64{0}, Inflight: []int{pr.inflight}, Duration: pr.duration, Warmup: pr.warmup,
			Auth: broadcast.SchemeMAC, MaxDelay: 50 * time.Millisecond}
	}
	// Matrix: per protocol, full mode on UDP, digest mode on every
	// transport.
	for _, proto := range p.protocols {
		full := base()
		full.Protocols, full.Modes, full.Transports = []string{proto}, []broadcast.Mode{broadcast.ModeFull}, []string{"udp"}
		dig := base()
		dig.Protocols, dig.Modes = []string{proto}, []broadcast.Mode{broadcast.ModeDigest}
		for _, c := range p.configs[1:] {
			dig.Transports = append(dig.Transports, c.Transport)
		}
		p.matrix.sweeps = append(p.matrix.sweeps, full, dig)
	}
	// Byzantine: one silent node (f = 1 at n = 4), both modes over UDP.
	byz := base()
	byz.Protocols, byz.Modes, byz.Transports = p.protocols, []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest}, []string{"udp"}
	byz.Ns, byz.Payloads = []int{4}, []int{16 << 10}
	byz.Byzantine = []bench.Byzantine{{Count: 1, Behaviour: "silent"}}
	p.byzantine.sweeps = []bench.Sweep{byz}

	// Ablation, Bracha n = 4, 16 KiB: full and digest over each receive
	// path; batching for Bracha and PBFT in digest mode.
	abl := base()
	abl.Clusters, abl.Ns, abl.Payloads = []string{ablationCluster}, []int{4}, []int{16 << 10}
	abl.Protocols = []string{"bracha"}
	abl.Modes = []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest}
	abl.Transports = []string{"udp"}
	if netns {
		abl.Transports = []string{"udp", "xdp-copy", "xdp-ref", "xdp"}
	}
	batch := abl
	batch.Protocols, batch.Modes, batch.Batches = []string{"bracha", "pbft"}, []broadcast.Mode{broadcast.ModeDigest}, []int{1, 16}
	batch.Transports = []string{abl.Transports[len(abl.Transports)-1]}
	p.ablation.sweeps = []bench.Sweep{abl, batch}

	// Scaling: wire bytes per broadcast in process (mem, where n is cheap),
	// throughput in namespaces (or over loopback UDP without root).
	sm := base()
	sm.Clusters, sm.Transports, sm.Protocols = []string{"inproc"}, []string{"mem"}, []string{"bracha"}
	sm.Modes = []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest}
	sm.Ns, sm.Payloads = pr.scaleNs, []int{pr.scalePayload}
	p.scaleMem.sweeps = []bench.Sweep{sm}
	sn := base()
	sn.Protocols, sn.Modes, sn.Ns, sn.Payloads = []string{"bracha"}, []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest}, pr.scaleNetnsNs, []int{pr.scalePayload}
	sn.Transports = []string{p.configs[len(p.configs)-1].Transport}
	p.scaleNet.sweeps = []bench.Sweep{sn}

	for _, pt := range p.parts() {
		for _, s := range pt.sweeps {
			pts, err := s.Points(specs)
			if err != nil {
				return nil, err
			}
			pt.points = append(pt.points, pts...)
		}
	}
	return p, nil
}

func (p *plan) parts() []*part {
	return []*part{&p.matrix, &p.byzantine, &p.ablation, &p.scaleMem, &p.scaleNet}
}
