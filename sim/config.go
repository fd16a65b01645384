package sim

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Network is the model every link follows. Links are directed (from, to)
// pairs; each has its own serialization queue.
//
// Timing model (partial synchrony, GST): before GST a message can be held by
// a partition, lost and retransmitted, or delayed by the latency tail; from
// GST on, every message a correct node sends to a correct node arrives within
// Delta of max(send time, GST). Messages between correct nodes are never lost
// for good: Loss models datagrams the reliable-link layer under every
// protocol retransmits, so a loss costs RTO of latency and the bytes again
// on the link.
type Network struct {
	// MinLatency is the propagation delay every message pays.
	MinLatency time.Duration
	// Jitter is the mean of the exponential delay added to MinLatency
	// (capped at 20×Jitter).
	Jitter time.Duration
	// Bandwidth is each link's rate in bytes per second; 0 means infinite.
	// A message occupies its link for WireLen/Bandwidth, so duplicated
	// payload bytes show up as latency.
	Bandwidth int64
	// Loss is the probability that one transmission is lost; the link
	// retransmits after RTO (at most 16 times).
	Loss float64
	// RTO is the retransmission delay after a loss.
	RTO time.Duration
	// Reorder is the probability that a message takes an extra delay of up
	// to 10×(MinLatency+Jitter), letting later messages overtake it.
	Reorder float64
	// Duplicate is the probability that a message arrives twice.
	Duplicate float64
	// Partitions is the number of partition episodes drawn per run: each
	// splits the nodes in two for an interval before GST and heals by GST.
	Partitions int
	// GST is the global stabilization time.
	GST time.Duration
	// Delta bounds delivery between correct nodes after GST.
	Delta time.Duration
}

// DefaultNetwork is a LAN-like network: 1 ms ± 1 ms, 1 Gb/s links, no loss.
func DefaultNetwork() Network {
	return Network{MinLatency: time.Millisecond, Jitter: time.Millisecond, Bandwidth: 125_000_000,
		RTO: 20 * time.Millisecond, Delta: 100 * time.Millisecond}
}

// HostileNetwork loses, reorders and duplicates messages and partitions the
// cluster before a GST of 500 ms: the network of the acceptance runs.
func HostileNetwork() Network {
	n := DefaultNetwork()
	n.Loss, n.Reorder, n.Duplicate = 0.05, 0.1, 0.02
	n.Partitions = 2
	n.GST = 500 * time.Millisecond
	return n
}

// Workload is the application input: who submits what, and when.
type Workload struct {
	// PerNode is the number of payloads each origin submits (default 1).
	PerNode int
	// Origins are the submitting nodes; nil means every node.
	Origins []broadcast.NodeID
	// PayloadSize is the size of each payload in bytes (default 1024).
	PayloadSize int
	// Spread: submissions happen at times drawn uniformly in [0, Spread)
	// (default 10 ms).
	Spread time.Duration
}

// Config describes a simulation. One Config and one seed determine a run.
type Config struct {
	// Spec builds the protocol instances. Required.
	Spec broadcast.Spec
	// N and F are the cluster size and the faults the protocol tolerates
	// (F defaults to MaxF(Spec, N), the largest f with Spec.MinN(f) ≤ N:
	// n−1 for Dolev–Strong, ⌊(n−1)/3⌋ for Bracha and PBFT).
	N, F int
	// Mode is the payload mode (default digest).
	Mode broadcast.Mode
	// Tuning passes protocol knobs through Env.
	Tuning broadcast.Tuning
	// Net is the network model (zero value: DefaultNetwork).
	Net Network
	// Byzantine assigns behaviours to nodes; the nodes are drawn per seed.
	// The total count must not exceed F.
	Byzantine []Assignment
	// Workload is the application input.
	Workload Workload
	// Horizon bounds virtual time (default GST + 60 s; for Byzantine
	// broadcast with Tuning.RoundDuration set, Deadline + 2 rounds).
	Horizon time.Duration
	// Deadline is the virtual time by which a correct protocol has met
	// every liveness obligation of the run: a synchronous protocol's last
	// decision. A run that reaches its Horizon at or after the Deadline
	// owed everything (RunInfo.Settled), and an obligation it did not meet
	// breaks the property itself; one that stops earlier — the Horizon
	// before the Deadline, no Deadline at all, or MaxEvents — was cut by a
	// time limit, and an obligation it did not meet is a TimeLimit
	// violation. Default: for Byzantine broadcast with
	// Tuning.RoundDuration set, the decision of the last instance the
	// Workload can start (SyncDeadline); otherwise none.
	Deadline time.Duration
	// MaxEvents bounds the events of one run (default 10,000,000); a run that
	// hits it was cut by a time limit (see Deadline), and is a termination
	// violation even if it met every obligation.
	MaxEvents int
	// Schedule is an adversarial message schedule on top of Net (default
	// ScheduleNone). See Schedule.
	Schedule Schedule
	// Checkers, when set, replaces the checkers chosen by Spec.Class.
	Checkers func(n int) []Checker
	// Pool, when set, makes every payload buffer of the run (workload and
	// Byzantine) with Pool.Wrap so that its leak check covers the run; the
	// engine releases everything it holds when the run ends.
	Pool *bufpool.Pool
	// Keys, when true, gives every node a keyring (deterministic from the
	// seed) in Env.Keys; twins share one. Defaults to true when
	// Spec.DefaultScheme is not SchemeNone.
	Keys bool
	// Trace, when set, receives one line per event of the run.
	Trace io.Writer
}

// MaxF is the largest f that spec tolerates with n nodes: the largest f
// with spec.MinN(f) ≤ n (n−1 for Dolev–Strong, ⌊(n−1)/3⌋ for Bracha and
// PBFT), and 0 when not even f = 1 fits.
func MaxF(spec broadcast.Spec, n int) int {
	f := 0
	for spec.MinN(f+1) <= n {
		f++
	}
	return f
}

// SyncDeadline is when the last instance of a synchronous Byzantine
// broadcast (Dolev–Strong: f+1 rounds of length round, an instance
// starting at the round boundary after its submission, one origin's
// instances in successive rounds) that w can start has decided.
func SyncDeadline(round time.Duration, f int, w Workload) time.Duration {
	per := max(w.PerNode, 1)
	lastStart := (w.Spread+round-1)/round + time.Duration(per)
	return (lastStart + time.Duration(f+1)) * round
}

// ErrConfig marks an error in a Config (or a protocol refusing to build
// from it): the run never started.
var ErrConfig = errors.New("sim: bad configuration")

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// withDefaults validates cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Spec.New == nil || cfg.Spec.MinN == nil {
		return cfg, configErr("Config.Spec needs New and MinN")
	}
	if cfg.N <= 0 {
		return cfg, configErr("Config.N must be positive, got %d", cfg.N)
	}
	if cfg.F == 0 {
		cfg.F = MaxF(cfg.Spec, cfg.N)
	}
	if cfg.Spec.MinN(cfg.F) > cfg.N {
		return cfg, configErr("n = %d is too small for f = %d (%s needs %d)", cfg.N, cfg.F, cfg.Spec.Name, cfg.Spec.MinN(cfg.F))
	}
	if cfg.Mode == 0 {
		cfg.Mode = broadcast.ModeDigest
	}
	if cfg.Net == (Network{}) {
		cfg.Net = DefaultNetwork()
	}
	nw := &cfg.Net
	switch {
	case nw.Loss < 0 || nw.Loss >= 1:
		return cfg, configErr("Net.Loss %v outside [0, 1)", nw.Loss)
	case nw.Reorder < 0 || nw.Reorder > 1:
		return cfg, configErr("Net.Reorder %v outside [0, 1]", nw.Reorder)
	case nw.Duplicate < 0 || nw.Duplicate > 1:
		return cfg, configErr("Net.Duplicate %v outside [0, 1]", nw.Duplicate)
	case nw.MinLatency < 0 || nw.Jitter < 0 || nw.Bandwidth < 0 || nw.GST < 0 || nw.Partitions < 0:
		return cfg, configErr("negative network parameter in %+v", *nw)
	}
	if nw.Delta <= 0 {
		nw.Delta = 100 * time.Millisecond
	}
	if nw.RTO <= 0 {
		nw.RTO = 20 * time.Millisecond
	}
	if nw.Partitions > 0 && nw.GST == 0 {
		nw.GST = 500 * time.Millisecond
	}
	if cfg.Workload.PerNode <= 0 {
		cfg.Workload.PerNode = 1
	}
	if cfg.Workload.PayloadSize <= 0 {
		cfg.Workload.PayloadSize = 1024
	}
	if cfg.Workload.Spread <= 0 {
		cfg.Workload.Spread = 10 * time.Millisecond
	}
	for _, o := range cfg.Workload.Origins {
		if int(o) >= cfg.N {
			return cfg, configErr("workload origin %v outside the cluster of %d", o, cfg.N)
		}
	}
	byz := 0
	for _, a := range cfg.Byzantine {
		if a.Count < 0 || (a.Count > 0 && len(a.Behaviours) == 0) {
			return cfg, configErr("Byzantine assignment of %d nodes with %d behaviours", a.Count, len(a.Behaviours))
		}
		byz += a.Count
	}
	if byz > cfg.F {
		return cfg, configErr("%d Byzantine nodes exceed f = %d", byz, cfg.F)
	}
	if err := cfg.Schedule.check(&cfg); err != nil {
		return cfg, err
	}
	round := cfg.Tuning.RoundDuration
	if cfg.Deadline <= 0 && cfg.Spec.Class == broadcast.ByzantineBroadcast && round > 0 {
		cfg.Deadline = SyncDeadline(round, cfg.F, cfg.Workload)
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = nw.GST + 60*time.Second
		if cfg.Deadline > 0 && cfg.Spec.Class == broadcast.ByzantineBroadcast && round > 0 {
			cfg.Horizon = cfg.Deadline + 2*round
		}
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = 10_000_000
	}
	if cfg.Spec.DefaultScheme != broadcast.SchemeNone {
		cfg.Keys = true
	}
	if cfg.Checkers == nil {
		if _, err := checkersFor(cfg.Spec.Class, cfg.N); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}
