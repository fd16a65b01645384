package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
		return startLocal(ctx, exe, pt, sink, logger)
	}
}

func startLocal(ctx context.Context, exe string, pt Point, sink Sink, logger *slog.Logger) (_ Cluster, _ Load, err error) {
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
	var procs []*exec.Cmd
	stop := func() error {
		var errs []error
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			done := make(chan error, 1)
			go func() { done <- p.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w (log in %s)", filepath.Base(p.Path), err, dir))
				}
			case <-time.After(10 * time.Second):
				_ = p.Process.Kill()
				<-done
				errs = append(errs, fmt.Errorf("a node did not stop within 10 s of SIGTERM"))
			}
		}
		if len(errs) == 0 {
			_ = os.RemoveAll(dir)
		}
		return errors.Join(errs...)
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
	if _, err := config.Generate(config.GenerateOptions{N: pt.N, F: pt.F, Protocol: pt.Protocol, Mode: pt.Mode.String(),
		Auth: pt.Auth.String(), BasePort: base, Dir: dir}); err != nil {
		return nil, Load{}, fmt.Errorf("generate the cluster's configuration: %w", err)
	}
	controls := make([]string, pt.N)
	for i := range pt.N {
		controls[i] = "127.0.0.1:" + strconv.Itoa(base+200+i) // config.Generate's layout
		if _, bad := byz[broadcast.NodeID(i)]; bad {
			continue // a silent node is not started
		}
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("node%d.log", i)))
		if err != nil {
			return nil, Load{}, err
		}
		cmd := exec.Command(exe, "node", "--config", filepath.Join(dir, config.ConfigFile), "--id", strconv.Itoa(i), "--stats", "0")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, Load{}, fmt.Errorf("start node %d: %w", i, err)
		}
		logf.Close() // the child holds its own descriptor
		procs = append(procs, cmd)
	}
	var c *remoteCluster
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err = dialRemote(ctx, pt, controls, stop, logger)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, Load{}, fmt.Errorf("nodes did not come up (logs in %s): %w", dir, err)
	}
	if err = c.follow(sink.Record, logger); err != nil {
		c.cancel()
		c.wg.Wait()
		return nil, Load{}, err // the deferred stop ends the nodes
	}
	return c, Load{}, nil
}
