package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/config"
)

func keygenCommand() command {
	return command{
		name:    "keygen",
		summary: "write keys and a configuration for a loopback cluster",
		run:     runKeygen,
	}
}

func runKeygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 4, "number of nodes")
	f := fs.Int("f", 0, "faults tolerated (default (n-1)/3)")
	out := fs.String("out", "", "directory for cluster.yaml and node<i>.key (required)")
	protocol := fs.String("protocol", "bracha", "protocol: bracha, pbft, dolevstrong")
	mode := fs.String("mode", "digest", "full or digest")
	auth := fs.String("auth", "ed25519", "authenticator: ed25519 or mac")
	host := fs.String("host", "127.0.0.1", "node 0's loopback address; node i binds the i-th next one")
	port := fs.Int("port", 7000, "node 0's UDP port; node i uses port+i, its client API port+100+i")
	mtu := fs.Int("mtu", 0, "largest UDP datagram (default 1472)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	// Every check comes before the first file is written.
	spec, err := broadcast.FindSpec(nodeSpecs(), *protocol)
	if err != nil {
		return fmt.Errorf("%w: --protocol: %v", errUsage, err)
	}
	if _, err := broadcast.ParseMode(*mode); err != nil {
		return fmt.Errorf("%w: --mode: %v", errUsage, err)
	}
	if s, err := broadcast.ParseScheme(*auth); err != nil || s == broadcast.SchemeNone {
		return fmt.Errorf("%w: --auth %q: want ed25519 or mac", errUsage, *auth)
	}
	if *n < 1 {
		return fmt.Errorf("%w: --n must be positive", errUsage)
	}
	if *f < 0 {
		return fmt.Errorf("%w: --f %d is negative", errUsage, *f)
	}
	faults := *f
	if faults == 0 {
		faults = (*n - 1) / 3 // config.Generate's default
	}
	if *n < spec.MinN(faults) || faults >= *n {
		return fmt.Errorf("%w: %s needs n ≥ %d for f = %d, got --n %d", errUsage, spec.Name, max(spec.MinN(faults), faults+1), faults, *n)
	}
	c, err := config.Generate(config.GenerateOptions{N: *n, F: *f, Protocol: *protocol, Mode: *mode, Auth: *auth,
		Host: *host, BasePort: *port, MTU: *mtu, Dir: *out})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %d key files (n=%d f=%d %s/%s/%s)\n",
		filepath.Join(*out, config.ConfigFile), c.N(), c.N(), c.F, c.Protocol, c.Mode, c.Auth)
	return nil
}
