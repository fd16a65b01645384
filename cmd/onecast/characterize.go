package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/onecast/onecast/bench/characterize"
)

func characterizeCommand() command {
	return command{
		name:    "characterize",
		summary: "phase 1: measure payload duplication in onecast's primitives and in real etcd / ZooKeeper clusters",
		run:     runCharacterize,
	}
}

func runCharacterize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("characterize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "reduced sweep (a few minutes)")
	out := fs.String("out", "docs/CHARACTERIZATION.md", "report path; plots go to characterization/ beside it")
	install := fs.Bool("install", true, "apt-get install etcd-server, zookeeper and tshark when missing")
	systems := newList("etcd", "zookeeper")
	fs.Var(systems, "systems", "real systems to run (etcd, zookeeper; empty for none)")
	udp := fs.Bool("udp", true, "also run onecast's primitives over kernel UDP on loopback (system-level figures)")
	verbose := fs.Bool("v", false, "log every step")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	sys := systems.vals
	if sys == nil {
		sys = []string{}
	}
	c, err := characterize.Run(ctx, append([]string{"characterize"}, args...), characterize.Options{
		Quick: *quick, Systems: sys, Install: *install, RealOwn: *udp, Log: log})
	if err != nil {
		return fmt.Errorf("characterize: %w (no report written)", err)
	}
	if dir := filepath.Dir(*out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	files, err := c.Write(*out)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(stdout, f)
	}
	return nil
}
