package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// HostDir is the directory, under GenerateOptions.Dir, of node i's host
// bundle: the cluster's configuration and node i's key file alone, what
// the host that runs node i needs (copy it there; keep it private).
func HostDir(i int) string { return fmt.Sprintf("host%d", i) }

// hostAddrs parses o.Addrs: nil when there are none.
func (o GenerateOptions) hostAddrs() ([]netip.AddrPort, error) {
	if len(o.Addrs) == 0 {
		return nil, nil
	}
	if o.N != 0 && o.N != len(o.Addrs) {
		return nil, fmt.Errorf("config: n is %d but %d addresses are listed", o.N, len(o.Addrs))
	}
	out := make([]netip.AddrPort, len(o.Addrs))
	seen := map[netip.AddrPort]int{}
	for i, a := range o.Addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return nil, fmt.Errorf("config: address %d: %w", i, err)
		}
		if !ap.Addr().Is4() || ap.Port() == 0 || int(ap.Port())+200 > 65535 {
			return nil, fmt.Errorf("config: address %d: %v is not an IPv4 address with a port below 65336", i, ap)
		}
		if j, dup := seen[ap]; dup {
			return nil, fmt.Errorf("config: address %d: %v is also address %d", i, ap, j)
		}
		seen[ap] = i
		out[i] = ap
	}
	return out, nil
}

// hostNode returns a host node's UDP, API and control addresses: the
// given one, and ports +100 and +200 on the same host.
func hostNode(ap netip.AddrPort) (addr, api, control string) {
	return ap.String(), netip.AddrPortFrom(ap.Addr(), ap.Port()+100).String(),
		netip.AddrPortFrom(ap.Addr(), ap.Port()+200).String()
}

// writeHostBundles writes each node's host bundle (HostDir): the
// configuration and that node's key file.
func (c *Cluster) writeHostBundles() error {
	cfg, err := os.ReadFile(filepath.Join(c.dir, ConfigFile))
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	for i, n := range c.Nodes {
		dir := filepath.Join(c.dir, HostDir(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("config: %w", err)
		}
		key, err := os.ReadFile(filepath.Join(c.dir, n.KeyFile))
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), cfg, 0o644); err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, n.KeyFile), key, 0o600); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}
