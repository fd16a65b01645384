package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/internal/units"
	"github.com/onecast/onecast/netio/link"
)

// Point is one benchmark configuration: one cluster, one protocol setting,
// one load.
type Point struct {
	Protocol     string
	Mode         broadcast.Mode
	Transport    string // mem, udp, xdp
	Cluster      string // inproc, local, netns, remote
	N, F         int
	PayloadBytes int
	Batch        int
	// Rate is the offered load in payloads per second across the cluster
	// (open loop); 0 means closed loop with Inflight payloads outstanding.
	Rate     float64
	Inflight int
	Duration time.Duration
	Warmup   time.Duration
	// Byzantine lists faulty nodes and their behaviour ("1:silent").
	Byzantine []Byzantine
	Auth      broadcast.Scheme
	// MaxDelay bounds the one-way delay between nodes; synchronous
	// protocols (Dolev–Strong) derive their round length from it.
	MaxDelay time.Duration
}

// Byzantine is k nodes that behave as Behaviour.
type Byzantine struct {
	Count     int
	Behaviour string
}

func (b Byzantine) String() string { return fmt.Sprintf("%d:%s", b.Count, b.Behaviour) }

// ParseByzantine parses "k:behaviour".
func ParseByzantine(s string) (Byzantine, error) {
	k, beh, ok := strings.Cut(s, ":")
	if !ok || beh == "" {
		return Byzantine{}, fmt.Errorf("byzantine %q: want k:behaviour, e.g. 1:silent", s)
	}
	n, err := strconv.Atoi(k)
	if err != nil || n < 0 {
		return Byzantine{}, fmt.Errorf("byzantine %q: count %q is not a non-negative integer", s, k)
	}
	return Byzantine{Count: n, Behaviour: beh}, nil
}

// Drain is how long a point waits at most, after its window, for the
// payloads in flight to be delivered everywhere before it reads the
// counters. What is still undelivered then counts as incomplete.
func (p Point) Drain() time.Duration { return max(10*time.Second, p.Duration) }

// TokenTimeout is how long a closed loop waits for one payload to be
// delivered everywhere before it offers another in its place, so that
// stragglers (a retransmission backing off) do not shrink the window.
func (p Point) TokenTimeout() time.Duration { return 2 * time.Second }

// Faulty returns the number of Byzantine nodes of the point.
func (p Point) Faulty() int {
	t := 0
	for _, b := range p.Byzantine {
		t += b.Count
	}
	return t
}

// Key names the point in tables and file names.
func (p Point) Key() string {
	s := fmt.Sprintf("%s/%s/%s/%s/n%d/f%d/%s/b%d", p.Protocol, p.Mode, p.Transport, p.Cluster, p.N, p.F, FormatSize(p.PayloadBytes), p.Batch)
	for _, b := range p.Byzantine {
		s += "/byz" + b.String()
	}
	return s
}

// MaxPayload is the largest payload a point may have: the nodes' default
// bound on a payload (link.DefaultMaxPayload, 8 MiB), which a node's
// Submit refuses beyond, naming the limit.
const MaxPayload = link.DefaultMaxPayload

// WindowBytes bounds a closed-loop point's payload bytes in flight: the
// window is Inflight payloads, or fewer when they would hold more than
// WindowBytes (at least one), so that large payloads do not hold more
// than the nodes' default pools can carry (32 payloads of 8 MiB in flight
// ran the AF_XDP UMEM out of frames; 2 deliver).
const WindowBytes = 16 << 20

// window is pt's closed-loop window: Inflight, capped by WindowBytes.
func (pt Point) window() int {
	w := pt.Inflight
	if pt.PayloadBytes > 0 {
		w = min(w, max(1, WindowBytes/pt.PayloadBytes))
	}
	return w
}

// ParseSize parses a payload size with units.ParseSize (512, 16KiB, 1MiB,
// 1GiB) and refuses what exceeds MaxPayload, saying so.
func ParseSize(s string) (int, error) {
	n, err := units.ParseSize(s)
	if err != nil {
		return 0, err
	}
	if n > MaxPayload {
		return 0, fmt.Errorf("size %q (%s) exceeds the %s payload limit (the nodes' default MaxPayload)", s, units.FormatSize(n), units.FormatSize(MaxPayload))
	}
	return int(n), nil
}

// FormatSize prints a byte size the way ParseSize reads it.
func FormatSize(n int) string { return units.FormatSize(int64(n)) }

// Sweep holds a list of values per parameter; its points are the cartesian
// product.
type Sweep struct {
	Protocols  []string
	Modes      []broadcast.Mode
	Transports []string
	Clusters   []string
	Ns         []int
	Fs         []int // empty: the largest f each protocol tolerates at each n
	Payloads   []int
	Batches    []int
	Rates      []float64
	Inflight   []int
	Byzantine  []Byzantine // applied to every point
	// ByzantineVariants, when not empty, makes each point once per entry,
	// with the entry's Byzantine nodes added to Byzantine (an empty entry:
	// none added, the fault-free point), so that one run has the
	// fault-free row and each behaviour's.
	ByzantineVariants [][]Byzantine
	Duration          time.Duration
	Warmup            time.Duration
	Auth              broadcast.Scheme
	MaxDelay          time.Duration
}

// Points expands the sweep, in a stable order (the last list varies
// fastest), resolving f per protocol. specs gives each protocol's MinN.
func (s Sweep) Points(specs []broadcast.Spec) ([]Point, error) {
	var out []Point
	for _, proto := range s.Protocols {
		spec, err := broadcast.FindSpec(specs, proto)
		if err != nil {
			return nil, err
		}
		for _, cl := range s.Clusters {
			for _, tr := range s.Transports {
				for _, n := range s.Ns {
					fs := s.Fs
					if len(fs) == 0 {
						fs = []int{maxF(spec, n)}
					}
					for _, f := range fs {
						if f < 0 || n < spec.MinN(f) {
							return nil, fmt.Errorf("%s needs n ≥ %d for f = %d, got n = %d", proto, spec.MinN(f), f, n)
						}
						for _, size := range s.Payloads {
							for _, batch := range s.Batches {
								for _, rate := range s.Rates {
									for _, inflight := range s.Inflight {
										for _, mode := range s.Modes {
											for _, byz := range s.byzantineVariants() {
												out = append(out, Point{
													Protocol: proto, Mode: mode, Transport: tr, Cluster: cl,
													N: n, F: f, PayloadBytes: size, Batch: batch,
													Rate: rate, Inflight: inflight,
													Duration: s.Duration, Warmup: s.Warmup,
													Byzantine: byz, Auth: s.Auth, MaxDelay: s.MaxDelay,
												})
											}
										}
									}
								}
							}
						}
					}
				}
			}
		}
	}
	return out, nil
}

// byzantineVariants returns the Byzantine sets of each point: Byzantine
// alone, or Byzantine plus each of ByzantineVariants.
func (s Sweep) byzantineVariants() [][]Byzantine {
	if len(s.ByzantineVariants) == 0 {
		return [][]Byzantine{s.Byzantine}
	}
	out := make([][]Byzantine, 0, len(s.ByzantineVariants))
	for _, v := range s.ByzantineVariants {
		out = append(out, append(slices.Clone(s.Byzantine), v...))
	}
	return out
}

// maxF is the largest f the protocol tolerates with n nodes.
func maxF(spec broadcast.Spec, n int) int {
	f := 0
	for spec.MinN(f+1) <= n {
		f++
	}
	return f
}
