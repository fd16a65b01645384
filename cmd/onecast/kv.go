package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/onecast/onecast/kv"
	"github.com/onecast/onecast/kv/replica"
	"github.com/onecast/onecast/netio/config"
)

func kvCommand() command {
	return command{
		name:    "kv",
		summary: "run a replica of the BFT key-value service (memcached protocol on PBFT)",
		run:     runKV,
	}
}

func runKV(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: onecast kv --config cluster.yaml --id N [flags]   (a PBFT replica; config from 'onecast keygen --protocol pbft')")
		fmt.Fprintln(stderr, "       onecast kv --single --listen ADDR [flags]         (one node, no replication)")
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", "", "cluster configuration file")
	id := fs.Int("id", -1, "this replica's ID")
	data := fs.String("data", "", "data directory for the log and snapshots (default kv-data-<id>)")
	listen := fs.String("listen", "", "memcached address (default: the node's api address)")
	single := fs.Bool("single", false, "serve one unreplicated node (still durable)")
	fast := fs.Bool("fast-reads", false, "answer get/gets from local state (not linearizable)")
	noSync := fs.Bool("nosync", false, "skip fsync (benchmarks of the CPU path only)")
	truncateCorrupt := fs.Bool("truncate-corrupt-log", false, "cut a corrupt log at its first bad record instead of refusing to start (losing the records after it)")
	checkpoint := fs.Uint64("checkpoint", 0, "PBFT checkpoint interval (default 32)")
	frames := fs.Int("frames", 32768, "packet buffer frames")
	timeout := fs.Duration("timeout", 0, "PBFT base timeout (default 200ms)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the replica's life to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	// The profile file is the first thing written: after every check.
	profile := func() (func(), error) {
		if *cpuProfile == "" {
			return func() {}, nil
		}
		return startCPUProfile(*cpuProfile)
	}
	if *single {
		if *listen == "" {
			return fmt.Errorf("%w: --single needs --listen", errUsage)
		}
		stop, err := profile()
		if err != nil {
			return err
		}
		defer stop()
		dir := *data
		if dir == "" {
			dir = "kv-data-single"
		}
		return runSingleKV(ctx, *listen, dir, *fast, *noSync, *truncateCorrupt, logger)
	}
	if *cfgPath == "" {
		return fmt.Errorf("%w: --config is required (or --single)", errUsage)
	}
	c, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if c.Protocol != "pbft" {
		return fmt.Errorf("%w: %s runs %q; the key-value service needs a pbft cluster (onecast keygen --protocol pbft)", errUsage, *cfgPath, c.Protocol)
	}
	if *id < 0 || *id >= c.N() {
		return fmt.Errorf("%w: --id %d is not a node of %s (0 … %d)", errUsage, *id, *cfgPath, c.N()-1)
	}
	if *data == "" {
		*data = fmt.Sprintf("kv-data-%d", *id)
	}
	stop, err := profile()
	if err != nil {
		return err
	}
	defer stop()
	r, err := replica.Start(replica.Config{Cluster: c, ID: *id, DataDir: *data, Listen: *listen, FastReads: *fast,
		Frames: *frames, CheckpointInterval: *checkpoint, Timeout: *timeout, NoSync: *noSync, TruncateCorruptLog: *truncateCorrupt, Logger: logger})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "kv replica %d serving memcached on %s\n", *id, r.Addr())
	<-ctx.Done()
	logger.Info("shutting down", "cause", context.Cause(ctx))
	return r.Close()
}

// runSingleKV serves the store on one node with its WAL, no replication.
func runSingleKV(ctx context.Context, listen, dir string, fast, noSync, truncateCorrupt bool, logger interface {
	Info(string, ...any)
}) error {
	store := kv.NewStore(kv.StoreConfig{})
	defer store.Close()
	wal, err := kv.OpenWAL(dir, kv.WALOptions{NoSync: noSync, TruncateCorrupt: truncateCorrupt})
	if err != nil {
		return err
	}
	defer wal.Close()
	exec := kv.NewLocal(store, wal)
	start := time.Now()
	if err := exec.Recover(); err != nil {
		return err
	}
	logger.Info("recovered", "items", store.Stats().CurrItems, "took", time.Since(start))
	srv, err := kv.NewServer(kv.ServerConfig{Executor: exec, FastReads: fast, Reader: store, Stats: store.Stats})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("kv: listen: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	logger.Info("kv single node serving memcached", "addr", ln.Addr(), "data", dir)
	select {
	case <-ctx.Done():
	case err := <-done:
		return err
	}
	srv.Close()
	return <-done
}
