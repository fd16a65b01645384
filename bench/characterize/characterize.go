package characterize

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/onecast/onecast/bench"
	"github.com/onecast/onecast/bench/dupscope"
	"github.com/onecast/onecast/bench/realsys"
	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/pbft"
)

// Options configure a characterization.
type Options struct {
	// Quick runs the reduced sweep (minutes, not tens of minutes).
	Quick bool
	// Own is the sweep of onecast's primitives; zero means the default for
	// Quick.
	Own OwnSweep
	// Systems are the real systems to run ("etcd", "zookeeper"); nil means
	// both. A system whose programs are missing is skipped (Missing says
	// what to install); nothing is ever installed.
	Systems []string
	// RealOwn runs onecast's primitives over kernel UDP on loopback (bench
	// inproc/udp) for system-level figures; RealDuration is each point's
	// measurement time.
	RealOwn      bool
	RealDuration time.Duration
	Log          *slog.Logger
}

// DefaultOwnSweep is the full sweep of the issue: n ∈ {4, 7, 10, 16},
// payload ∈ {64 B … 64 KiB}, batches, loads and Byzantine behaviours.
func DefaultOwnSweep(quick bool) OwnSweep {
	s := OwnSweep{Protocols: OwnProtocols, Ns: []int{4, 7, 10, 16}, Payloads: []int{64, 1 << 10, 16 << 10, 64 << 10},
		Batches: []int{1, 4, 16}, Loads: []int{1, 4, 16}, Byzantine: []string{"silent", "equivocate", "flood", "replay"}, Seed: 1}
	if quick {
		s.Batches, s.Loads = []int{1, 8}, []int{1, 8}
	}
	return s
}

// Characterization is everything the report shows.
type Characterization struct {
	Env  bench.Environment
	Opts Options
	Own  []OwnResult
	// Real are the real systems' results (Skipped set when one could not
	// run); RealErr the errors of those that failed.
	Real    []*realsys.Result
	RealErr map[string]string
	// OwnReal are onecast's primitives over kernel UDP; OwnWire dupscope's
	// view of their captured datagrams.
	OwnReal []bench.Result
	OwnWire []OwnWire
	Elapsed time.Duration
}

// Missing lists, for each system in systems, what this host lacks to run
// it (realsys.Layout.Check), and the command that installs all of it (""
// when nothing is missing). With capture, dumpcap is needed even without a
// system: it also captures onecast's own UDP traffic (Options.RealOwn).
func Missing(systems []string, capture bool) (map[string][]realsys.Missing, string, error) {
	out := map[string][]realsys.Missing{}
	var all []realsys.Missing
	l := realsys.HostLayout()
	for _, sys := range systems {
		m, err := l.Check(sys)
		if err != nil {
			return nil, "", err
		}
		if len(m) > 0 {
			out[sys] = m
			all = append(all, m...)
		}
	}
	if capture && !slices.ContainsFunc(all, func(m realsys.Missing) bool { return m.What == "dumpcap" }) {
		if _, err := exec.LookPath("dumpcap"); err != nil {
			all = append(all, realsys.Missing{What: "dumpcap", Package: "tshark", Looked: "PATH"})
		}
	}
	if len(all) == 0 {
		return out, "", nil
	}
	return out, realsys.InstallCommand(all), nil
}

// Run runs the characterization.
func Run(ctx context.Context, args []string, opts Options) (*Characterization, error) {
	start := time.Now()
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if len(opts.Own.Protocols) == 0 {
		opts.Own = DefaultOwnSweep(opts.Quick)
	}
	if opts.Systems == nil {
		opts.Systems = realsys.Systems
	}
	if opts.RealDuration == 0 {
		opts.RealDuration = 3 * time.Second
		if opts.Quick {
			opts.RealDuration = 2 * time.Second
		}
	}
	c := &Characterization{Env: bench.CurrentEnvironment(args), Opts: opts, RealErr: map[string]string{}}

	opts.Log.Info("own primitives in the simulator", "points", len(opts.Own.Points()))
	c.Own = RunOwnSweep(ctx, opts.Own, func(r OwnResult) {
		opts.Log.Debug("point", "point", r.OwnPoint.String(), "dup", r.DupFactor, "agree", r.Agree, "err", r.Err)
	})
	if err := ctx.Err(); err != nil {
		return c, err
	}

	sizes := []int{64, 1 << 10, 16 << 10, 64 << 10}
	perSize := 50
	if opts.Quick {
		perSize = 20
	}
	for _, sys := range opts.Systems {
		for _, viaFollower := range []bool{false, true} {
			opts.Log.Info("real system", "system", sys, "via_follower", viaFollower)
			r, err := realsys.Run(ctx, sys, realsys.Options{Sizes: sizes, PerSize: perSize,
				ViaFollower: viaFollower, Log: opts.Log})
			if ctx.Err() != nil {
				return c, ctx.Err()
			}
			if err != nil {
				opts.Log.Warn("real system failed", "system", sys, "err", err)
				c.RealErr[sys] = err.Error()
				break
			}
			if r.Skipped != "" {
				opts.Log.Warn("real system skipped", "system", sys, "reason", r.Skipped)
				c.Real = append(c.Real, r)
				break
			}
			c.Real = append(c.Real, r)
		}
	}

	if opts.RealOwn {
		opts.Log.Info("own primitives over kernel UDP")
		c.runOwnReal(ctx, opts)
	}
	c.Elapsed = time.Since(start)
	return c, ctx.Err()
}

// OwnWire is dupscope's view of one own-primitive point over kernel UDP:
// the datagrams between the cluster's sockets, captured on lo.
type OwnWire struct {
	Protocol string
	// Report covers the flows between the point's own UDP sockets only.
	Report *dupscope.Report
}

// ownWireCDC are the chunk sizes for onecast's datagrams (at most 1472
// bytes, each opening with a 48-byte link header): small enough that a
// datagram's payload yields several chunks past its header.
var ownWireCDC = dupscope.CDC{Min: 64, Avg: 256, Max: 1024}

// runOwnReal measures each primitive in full mode over kernel UDP on
// loopback with bench's in-process cluster: wire bytes from the transport,
// allocations and RSS. When dumpcap is there, it also captures the
// cluster's datagrams and runs dupscope over them, keeping only flows
// between UDP sockets this process held during the point.
func (c *Characterization) runOwnReal(ctx context.Context, opts Options) {
	specs := []broadcast.Spec{bracha.Spec, pbft.Spec, dolevstrong.Spec}
	dir, err := os.MkdirTemp("", "onecast-udp-")
	if err != nil {
		opts.Log.Warn("temp dir", "err", err)
		return
	}
	defer os.RemoveAll(dir)
	for _, s := range specs {
		pt := bench.Point{Protocol: s.Name, Mode: broadcast.ModeFull, Transport: "udp", Cluster: "inproc",
			N: 4, F: 1, PayloadBytes: 16 << 10, Batch: 1, Inflight: 8,
			Duration: opts.RealDuration, Warmup: opts.RealDuration / 4, Auth: s.DefaultScheme}
		var capt *realsys.Capture
		capPath := filepath.Join(dir, s.Name+".pcapng")
		if _, err := exec.LookPath("dumpcap"); err == nil {
			capt, err = realsys.StartCaptureFilter(ctx, capPath, "udp and host 127.0.0.1")
			if err != nil {
				opts.Log.Warn("capture of onecast's UDP traffic unavailable", "err", err)
			}
		}
		// Poll this process's UDP sockets while the point runs: they are
		// the cluster's.
		ports := map[netip.AddrPort]bool{}
		var mu sync.Mutex
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				owners, _ := realsys.UDPSocketOwners(map[int]string{os.Getpid(): "onecast"})
				mu.Lock()
				for a := range owners {
					ports[a] = true
				}
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		res, _ := bench.Run(ctx, []bench.Point{pt}, bench.Options{Specs: specs,
			Clusters: map[string]bench.ClusterFactory{"inproc": bench.Inproc(nil)}, Logger: opts.Log})
		close(stop)
		wg.Wait()
		c.OwnReal = append(c.OwnReal, res...)
		if capt == nil {
			continue
		}
		if _, err := capt.Stop(); err != nil {
			opts.Log.Warn("capture", "err", err)
			continue
		}
		f, err := os.Open(capPath)
		if err != nil {
			continue
		}
		rep, err := dupscope.Analyse(f, dupscope.Options{CDC: ownWireCDC, Keep: func(k dupscope.FlowKey) bool {
			mu.Lock()
			defer mu.Unlock()
			return ports[k.Src] && ports[k.Dst]
		}})
		f.Close()
		if err != nil {
			opts.Log.Warn("dupscope over onecast's UDP traffic", "err", err)
			continue
		}
		c.OwnWire = append(c.OwnWire, OwnWire{Protocol: s.Name, Report: rep})
		if ctx.Err() != nil {
			return
		}
	}
}

// Write writes CHARACTERIZATION.md and its plots: the markdown to mdPath,
// the PNGs to a directory beside it named after it (characterization/).
func (c *Characterization) Write(mdPath string) ([]string, error) {
	dir := filepath.Dir(mdPath)
	plotDir := filepath.Join(dir, "characterization")
	if err := os.MkdirAll(plotDir, 0o755); err != nil {
		return nil, fmt.Errorf("plot dir: %w", err)
	}
	plots, err := c.writePlots(plotDir)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(mdPath)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	for i := range plots {
		plots[i].File = filepath.Join("characterization", plots[i].File)
	}
	if err := c.WriteMarkdown(f, plots); err != nil {
		return nil, err
	}
	files := []string{mdPath}
	for _, p := range plots {
		files = append(files, filepath.Join(dir, p.File))
	}
	return files, f.Close()
}
