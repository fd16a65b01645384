package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

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
	protocol := fs.String("protocol", "bracha", "protocol name")
	mode := fs.String("mode", "digest", "full or digest")
	auth := fs.String("auth", "ed25519", "authenticator: ed25519 or mac")
	host := fs.String("host", "127.0.0.1", "node 0's loopback address; node i binds the i-th next one")
	port := fs.Int("port", 7000, "node 0's UDP port; node i uses port+i, its client API port+100+i")
	mtu := fs.Int("mtu", 0, "largest UDP datagram (default 1472)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	if *n < 1 {
		return fmt.Errorf("%w: --n must be positive", errUsage)
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
