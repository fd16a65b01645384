package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/config"
)

func keygenCommand() command {
	return command{
		name:    "keygen",
		summary: "write keys and a configuration for a loopback cluster or for real hosts (--addrs)",
		run:     runKeygen,
	}
}

func runKeygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 4, "number of nodes")
	f := fs.Int("f", 0, "faults tolerated (default (n-1)/3; 0 is f = 0)")
	out := fs.String("out", "", "directory for cluster.yaml and node<i>.key (required)")
	protocol := fs.String("protocol", "bracha", "protocol: bracha, pbft, dolevstrong")
	mode := fs.String("mode", "digest", "full or digest")
	auth := fs.String("auth", "ed25519", "authenticator: ed25519 or mac")
	host := fs.String("host", "127.0.0.1", "node 0's loopback address; node i binds the i-th next one")
	port := fs.Int("port", 7000, "node 0's UDP port; node i uses port+i, its client API port+100+i")
	mtu := fs.Int("mtu", 0, "largest UDP datagram (default 1472)")
	addrs := fs.String("addrs", "", "real hosts instead of loopback: every node's UDP address, host1:port,host2:port,… (node i's API is port+100, its control port port+200); also writes host<i>/ with the config and node i's key alone")
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
	o := config.GenerateOptions{N: *n, F: *f, Protocol: *protocol, Mode: *mode, Auth: *auth,
		Host: *host, BasePort: *port, MTU: *mtu, Dir: *out}
	nodes := *n
	if *addrs != "" {
		o.Addrs = strings.Split(*addrs, ",")
		if !flagSet(fs, "n") {
			o.N, nodes = 0, len(o.Addrs) // the addresses say how many
		}
	}
	if *f < 0 {
		return fmt.Errorf("%w: --f %d is negative", errUsage, *f)
	}
	// Without --f, config.Generate's default (n-1)/3; an explicit --f 0
	// is f = 0 (config.NoFaults, as Generate's zero F is the default).
	faults := *f
	switch {
	case !flagSet(fs, "f"):
		faults = (nodes - 1) / 3
	case faults == 0:
		o.F = config.NoFaults
	}
	if nodes < spec.MinN(faults) || faults >= nodes {
		return fmt.Errorf("%w: %s needs n ≥ %d for f = %d, got n = %d", errUsage, spec.Name, max(spec.MinN(faults), faults+1), faults, nodes)
	}
	c, err := config.Generate(o)
	if err != nil {
		return err
	}
	if *addrs != "" {
		fmt.Fprintf(stdout, "host bundles: %s … %s (copy host<i> to the host of node i)\n",
			filepath.Join(*out, config.HostDir(0)), filepath.Join(*out, config.HostDir(c.N()-1)))
	}
	fmt.Fprintf(stdout, "wrote %s and %d key files (n=%d f=%d %s/%s/%s)\n",
		filepath.Join(*out, config.ConfigFile), c.N(), c.N(), c.F, c.Protocol, c.Mode, c.Auth)
	return nil
}

// flagSet reports whether the command line set flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
