package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/config"
)

// Local returns the factory of clusters of `onecast node` processes on this
// host: for each point it generates keys and a loopback configuration
// (127.0.0.1 … 127.0.0.n), starts one process per correct node with exe
// (the onecast binary) and a control port, and drives them as a remote
// cluster. Each node's figures — RSS above all — are its own process's.
func Local(exe string, logger *slog.Logger) ClusterFactory {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, pt Point, spec broadcast.Spec, sink Sink) (Cluster, Load, error) {
		return startLocal(ctx, exe, pt, spec, sink, logger)
	}
}

// localNode is one `onecast node` process of a local cluster.
type localNode struct {
	id      int
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the process has exited
	err     error         // its exit status, once exited is closed
}

// logTail returns the last lines of the node's log, indented, for an error.
func (n *localNode) logTail() string {
	data, err := os.ReadFile(n.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "\n  (its log is empty)"
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

// logTailLines is how much of a dead node's log an error quotes.
const logTailLines = 10

// localCluster is a remote cluster whose nodes are this host's processes:
// it watches them, and reports the first to exit (Died).
type localCluster struct {
	*remoteCluster
	died chan error
}

// Died reports the first node process that exits before the cluster is
// closed: "node 2 exited: …" and the tail of its log.
func (c *localCluster) Died() <-chan error { return c.died }

func startLocal(ctx context.Context, exe string, pt Point, spec broadcast.Spec, sink Sink, logger *slog.Logger) (_ Cluster, _ Load, err error) {
	if pt.Transport != "udp" {
		return nil, Load{}, fmt.Errorf("transport %q is not available in a local cluster (its nodes speak udp)", pt.Transport)
	}
	byz, err := byzantineSet(pt)
	if err != nil {
		return nil, Load{}, err
	}
	dir, err := os.MkdirTemp("", "onecast-local-")
	if err != nil {
		return nil, Load{}, err
	}
	var nodes []*localNode
	var byzantine []*byzantineNode // wire-level Byzantine nodes, in this process
	closing := make(chan struct{})
	// The nodes are started from one locked OS thread that lives until they
	// have exited: their parent-death signal (SIGKILL, so that a bench killed
	// outright takes its nodes with it) follows the thread that forked them,
	// and an unlocked Go thread may end earlier.
	spawn := make(chan func())
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for f := range spawn {
			f()
		}
	}()
	start := func(cmd *exec.Cmd) error {
		done := make(chan error, 1)
		spawn <- func() { done <- cmd.Start() }
		return <-done
	}
	died := make(chan error, 1)
	var stopOnce sync.Once
	var stopErr error
	// stop ends every node (SIGTERM; SIGKILL after a grace period, short
	// once ctx has ended) and removes the directory, whatever happened.
	stop := func() error {
		stopOnce.Do(func() {
			close(closing)
			for _, bn := range byzantine {
				_ = bn.node.Close() // its errors are not the correct nodes'
			}
			grace := 10 * time.Second
			if ctx.Err() != nil {
				grace = 500 * time.Millisecond // interrupted: stop within a second
			}
			var errs []error
			for _, n := range nodes {
				_ = n.cmd.Process.Signal(syscall.SIGTERM)
			}
			deadline := time.After(grace)
			for _, n := range nodes {
				select {
				case <-n.exited:
				case <-deadline:
					_ = n.cmd.Process.Kill()
					<-n.exited
					if ctx.Err() == nil {
						errs = append(errs, fmt.Errorf("node %d did not stop within %v of SIGTERM:%s", n.id, grace, n.logTail()))
					}
					continue
				}
				if n.err != nil && ctx.Err() == nil {
					errs = append(errs, fmt.Errorf("node %d exited: %w%s", n.id, n.err, n.logTail()))
				}
			}
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, err)
			}
			close(spawn) // every node has exited
			stopErr = errors.Join(errs...)
		})
		return stopErr
	}
	defer func() {
		if err != nil {
			_ = stop()
		}
	}()
	base, err := config.FreeBasePort(pt.N)
	if err != nil {
		return nil, Load{}, err
	}
	f := pt.F
	if f == 0 {
		f = config.NoFaults // Generate's zero F is its default, (n-1)/3
	}
	gen, err := config.Generate(config.GenerateOptions{N: pt.N, F: f, Protocol: pt.Protocol, Mode: pt.Mode.String(),
		Auth: pt.Auth.String(), BasePort: base, Dir: dir})
	if err != nil {
		return nil, Load{}, fmt.Errorf("generate the cluster's configuration: %w", err)
	}
	if gen.F != pt.F {
		// The nodes would run another f than the point names.
		return nil, Load{}, fmt.Errorf("the generated configuration has f = %d, the point f = %d", gen.F, pt.F)
	}
	// A wire-level Byzantine node runs in this process, on its loopback
	// address of the configuration, with its key file: the correct nodes'
	// processes, and their figures, are their own.
	for id, beh := range byz {
		if !isWire(beh) {
			continue
		}
		cl, err := config.Load(filepath.Join(dir, config.ConfigFile))
		if err != nil {
			return nil, Load{}, err
		}
		ring, err := cl.Keyring(int(id))
		if err != nil {
			return nil, Load{}, err
		}
		cd, err := openUDP(cl, id, func(fn func() error) error { return fn() }, logger)
		if err != nil {
			return nil, Load{}, err
		}
		// The node processes' protocol clock starts at the Unix epoch.
		bn, err := startByzantine(cl, spec, id, beh, ring, cd, pt, time.Unix(0, 0), logger)
		if err != nil {
			return nil, Load{}, err
		}
		byzantine = append(byzantine, bn)
	}
	controls := make([]string, pt.N)
	for i := range pt.N {
		controls[i] = "127.0.0.1:" + strconv.Itoa(base+200+i) // config.Generate's layout
		if _, bad := byz[broadcast.NodeID(i)]; bad {
			continue // a silent node is not started
		}
		n := &localNode{id: i, logPath: filepath.Join(dir, fmt.Sprintf("node%d.log", i)), exited: make(chan struct{})}
		logf, err := os.Create(n.logPath)
		if err != nil {
			return nil, Load{}, err
		}
		n.cmd = exec.Command(exe, "node", "--config", filepath.Join(dir, config.ConfigFile), "--id", strconv.Itoa(i), "--stats", "0")
		n.cmd.Stdout, n.cmd.Stderr = logf, logf
		// A process group of its own: a Ctrl-C at the terminal reaches the
		// bench, which stops the nodes itself (and reports what finished),
		// rather than every node at once.
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := start(n.cmd); err != nil {
			logf.Close()
			return nil, Load{}, fmt.Errorf("start node %d: %w", i, err)
		}
		logf.Close() // the child holds its own descriptor
		nodes = append(nodes, n)
		go func() {
			n.err = n.cmd.Wait()
			close(n.exited)
			select {
			case <-closing:
			default:
				cause := "exit status 0"
				if n.err != nil {
					cause = n.err.Error()
				}
				select {
				case died <- fmt.Errorf("node %d exited: %s; the end of its log:%s", n.id, cause, n.logTail()):
				default:
				}
			}
		}()
	}
	var c *remoteCluster
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err = dialRemote(ctx, pt, controls, stop, logger)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case derr := <-died:
			return nil, Load{}, fmt.Errorf("nodes did not come up: %w", derr)
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		var tails []string
		for _, n := range nodes {
			tails = append(tails, fmt.Sprintf("node %d:%s", n.id, n.logTail()))
		}
		return nil, Load{}, fmt.Errorf("nodes did not come up: %w\n%s", err, strings.Join(tails, "\n"))
	}
	if err = c.follow(sink.Record, logger); err != nil {
		c.cancel()
		c.wg.Wait()
		return nil, Load{}, err // the deferred stop ends the nodes
	}
	return &localCluster{remoteCluster: c, died: died}, Load{}, nil
}
