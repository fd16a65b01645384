// Package config reads and writes a onecast cluster's configuration: one
// YAML file that lists every node (ID, address, client API address, public
// keys) and the cluster's protocol, mode, fault bound and authenticator, and
// one secret key file per node beside it.
//
// Usage:
//
//	c, err := config.Generate(config.GenerateOptions{N: 4, Dir: "cluster"}) // onecast keygen
//	c, err := config.Load("cluster/cluster.yaml")
//	ring, err := c.Keyring(2) // reads node 2's secret key file
//
// Load validates everything and names the field at fault
// ("nodes[2].addr: ..."), so an operator sees what to fix.
package config

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/cloudflare/circl/dh/x25519"
	"github.com/cloudflare/circl/sign/ed25519"
	"go.yaml.in/yaml/v3"

	"github.com/onecast/onecast/broadcast"
)

// Cluster is the configuration file.
type Cluster struct {
	// Protocol is the protocol's name ("bracha").
	Protocol string `yaml:"protocol"`
	// Mode is "full" or "digest".
	Mode string `yaml:"mode"`
	// F is the number of faults tolerated.
	F int `yaml:"f"`
	// Auth is the authenticator scheme: "ed25519" or "mac".
	Auth string `yaml:"auth"`
	// MTU is the largest UDP datagram (default 1472).
	MTU int `yaml:"mtu,omitempty"`
	// Nodes lists every node, in ID order.
	Nodes []Node `yaml:"nodes"`

	// dir is the directory of the file, against which KeyFile resolves.
	dir string
}

// Node is one node's entry.
type Node struct {
	ID int `yaml:"id"`
	// Addr is the node's UDP address (host:port).
	Addr string `yaml:"addr"`
	// API is the TCP address where the node takes client submissions.
	API string `yaml:"api"`
	// Control is the TCP address of the node's bench control port
	// (`onecast bench --cluster remote` coordinates the nodes through it).
	// Optional.
	Control string `yaml:"control,omitempty"`
	// VerifyKey is the node's Ed25519 public key, base64.
	VerifyKey string `yaml:"verify_key"`
	// DHKey is the node's X25519 public key, base64, from which pairwise
	// MAC keys derive.
	DHKey string `yaml:"dh_key"`
	// KeyFile is the node's secret key file, relative to the config file.
	KeyFile string `yaml:"key_file"`
	// Transport is the node's transport (optional; default kernel UDP).
	// See Transport.
	Transport *Transport `yaml:"transport,omitempty"`
}

// Secret is a node's secret key file.
type Secret struct {
	ID      int    `yaml:"id"`
	SignKey string `yaml:"sign_key"` // Ed25519 private key, base64
	DHKey   string `yaml:"dh_key"`   // X25519 private key, base64
}

// Load reads and validates a configuration file.
func Load(path string) (*Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.dir = filepath.Dir(path)
	return c, nil
}

// Parse decodes and validates a configuration; unknown fields are errors.
func Parse(data []byte) (*Cluster, error) {
	var c Cluster
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty configuration")
		}
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks every field and names the first one at fault.
func (c *Cluster) Validate() error {
	if c.Protocol == "" {
		return errors.New("protocol: missing (for example \"bracha\")")
	}
	if _, err := broadcast.ParseMode(c.Mode); err != nil {
		return fmt.Errorf("mode: %w", err)
	}
	if c.F < 0 {
		return fmt.Errorf("f: %d is negative", c.F)
	}
	s, err := broadcast.ParseScheme(c.Auth)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if s == broadcast.SchemeNone {
		return errors.New("auth: \"none\" authenticates nothing; a networked cluster needs ed25519 or mac")
	}
	if c.MTU != 0 && (c.MTU < 256 || c.MTU > 65507) {
		return fmt.Errorf("mtu: %d outside [256, 65507]", c.MTU)
	}
	if len(c.Nodes) == 0 {
		return errors.New("nodes: empty")
	}
	if c.F >= len(c.Nodes) {
		return fmt.Errorf("f: %d faults among %d nodes (the protocol's own bound is checked when a node starts)", c.F, len(c.Nodes))
	}
	addrs := map[netip.AddrPort]int{}
	apis := map[string]int{}
	for i, n := range c.Nodes {
		field := func(name string) string { return fmt.Sprintf("nodes[%d].%s", i, name) }
		if n.ID != i {
			return fmt.Errorf("%s: %d, want %d (nodes are listed in ID order from 0)", field("id"), n.ID, i)
		}
		ap, err := netip.ParseAddrPort(n.Addr)
		if err != nil {
			return fmt.Errorf("%s: %w", field("addr"), err)
		}
		if !ap.Addr().Is4() && !ap.Addr().Is4In6() {
			return fmt.Errorf("%s: %v is not an IPv4 address", field("addr"), ap)
		}
		if j, dup := addrs[ap]; dup {
			return fmt.Errorf("%s: %v is also nodes[%d].addr", field("addr"), ap, j)
		}
		addrs[ap] = i
		if n.API != "" {
			if _, err := netip.ParseAddrPort(n.API); err != nil {
				return fmt.Errorf("%s: %w", field("api"), err)
			}
			if j, dup := apis[n.API]; dup {
				return fmt.Errorf("%s: %s is also nodes[%d].api", field("api"), n.API, j)
			}
			apis[n.API] = i
		}
		if n.Control != "" {
			if _, err := netip.ParseAddrPort(n.Control); err != nil {
				return fmt.Errorf("%s: %w", field("control"), err)
			}
			if j, dup := apis[n.Control]; dup {
				return fmt.Errorf("%s: %s is also the api or control address of nodes[%d]", field("control"), n.Control, j)
			}
			apis[n.Control] = i
		}
		if _, err := decodeKey(n.VerifyKey, ed25519.PublicKeySize); err != nil {
			return fmt.Errorf("%s: %w", field("verify_key"), err)
		}
		if _, err := decodeKey(n.DHKey, x25519.Size); err != nil {
			return fmt.Errorf("%s: %w", field("dh_key"), err)
		}
		if err := n.Transport.Validate(); err != nil {
			return fmt.Errorf("%s: %w", field("transport"), err)
		}
	}
	return nil
}

func decodeKey(s string, size int) ([]byte, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	if len(b) != size {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), size)
	}
	return b, nil
}

// N returns the number of nodes.
func (c *Cluster) N() int { return len(c.Nodes) }

// ModeValue returns the parsed mode.
func (c *Cluster) ModeValue() broadcast.Mode {
	m, _ := broadcast.ParseMode(c.Mode)
	return m
}

// Scheme returns the parsed authenticator scheme.
func (c *Cluster) Scheme() broadcast.Scheme {
	s, _ := broadcast.ParseScheme(c.Auth)
	return s
}

// Addrs returns every node's UDP address, indexed by ID.
func (c *Cluster) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = netip.MustParseAddrPort(n.Addr)
	}
	return out
}

// PublicKeys returns every node's public keys, indexed by ID.
func (c *Cluster) PublicKeys() []broadcast.PublicKeys {
	out := make([]broadcast.PublicKeys, len(c.Nodes))
	for i, n := range c.Nodes {
		v, _ := decodeKey(n.VerifyKey, ed25519.PublicKeySize)
		d, _ := decodeKey(n.DHKey, x25519.Size)
		out[i].Verify = ed25519.PublicKey(v)
		copy(out[i].DH[:], d)
	}
	return out
}

// Node returns node id's entry.
func (c *Cluster) Node(id int) (Node, error) {
	if id < 0 || id >= len(c.Nodes) {
		return Node{}, fmt.Errorf("config: node %d outside the cluster of %d", id, len(c.Nodes))
	}
	return c.Nodes[id], nil
}

// Keyring reads node id's secret key file and derives its keyring, checking
// that the secret keys match the public keys the configuration lists (the
// signing key is derived again from its seed, so a corrupted file is
// refused here, naming it).
func (c *Cluster) Keyring(id int) (*broadcast.Keyring, error) {
	n, err := c.Node(id)
	if err != nil {
		return nil, err
	}
	path := n.KeyFile
	if path == "" {
		return nil, fmt.Errorf("config: nodes[%d].key_file: missing", id)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(c.dir, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: nodes[%d].key_file: %w", id, err)
	}
	var s Secret
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("config: key file %s: %w", path, err)
	}
	if s.ID != id {
		return nil, fmt.Errorf("config: key file %s: id: %d, want %d", path, s.ID, id)
	}
	sk, err := decodeKey(s.SignKey, ed25519.PrivateKeySize)
	if err != nil {
		return nil, fmt.Errorf("config: key file %s: sign_key: %w", path, err)
	}
	dk, err := decodeKey(s.DHKey, x25519.Size)
	if err != nil {
		return nil, fmt.Errorf("config: key file %s: dh_key: %w", path, err)
	}
	own := broadcast.NodeKeys{Sign: ed25519.PrivateKey(sk)}
	copy(own.DH[:], dk)
	pubs := c.PublicKeys()
	// An Ed25519 private key is its seed followed by its public key, and
	// Public() only returns the second half: derive the key from the seed,
	// so that a corrupted seed is caught here rather than by every peer
	// dropping this node's signatures.
	derived := ed25519.NewKeyFromSeed(own.Sign.Seed())
	if !bytes.Equal(derived, sk) || !bytes.Equal(derived.Public().(ed25519.PublicKey), pubs[id].Verify) {
		return nil, fmt.Errorf("config: key file %s: sign_key does not match nodes[%d].verify_key (corrupted key file, or the key of another cluster)", path, id)
	}
	var dhPub x25519.Key
	x25519.KeyGen(&dhPub, &own.DH)
	if dhPub != pubs[id].DH {
		return nil, fmt.Errorf("config: key file %s: dh_key does not match nodes[%d].dh_key", path, id)
	}
	ring, err := broadcast.NewKeyring(broadcast.NodeID(id), own, pubs)
	if err != nil {
		return nil, fmt.Errorf("config: node %d keyring: %w", id, err)
	}
	return ring, nil
}

// GenerateOptions describe a loopback cluster for Generate.
type GenerateOptions struct {
	N        int
	F        int // default (N-1)/3; NoFaults for f = 0
	Protocol string
	Mode     string
	Auth     string
	// Host is the first loopback address; node i binds Host+i (default
	// 127.0.0.1). BasePort is node 0's UDP port (default 7000); node i
	// uses BasePort+i, its API BasePort+100+i and its bench control port
	// BasePort+200+i.
	Host     string
	BasePort int
	// Addrs, when set, lists every node's UDP address (host:port) on real
	// hosts, one node per entry (N is then len(Addrs)): node i's API is
	// port+100 and its control port port+200 on the same host, and
	// Generate also writes a bundle per host (see HostDir).
	Addrs []string
	MTU   int
	// Dir receives cluster.yaml and node<i>.key.
	Dir string
	// Rand is the key source (default crypto/rand).
	Rand io.Reader
}

// NoFaults, as GenerateOptions.F, generates a cluster with f = 0 (F's zero
// value means the default, ⌊(n−1)/3⌋).
const NoFaults = -1

// ConfigFile is the name Generate gives the configuration file.
const ConfigFile = "cluster.yaml"

// Generate makes keys for a loopback cluster, writes the configuration and
// the secret key files (mode 0600) into o.Dir, and returns the cluster. It
// validates the whole configuration before it writes anything: an invalid
// option leaves o.Dir untouched.
func Generate(o GenerateOptions) (*Cluster, error) {
	hosts, err := o.hostAddrs()
	if err != nil {
		return nil, err
	}
	if hosts != nil {
		o.N = len(hosts)
	}
	if o.N <= 0 {
		return nil, fmt.Errorf("config: n must be positive, got %d", o.N)
	}
	switch o.F {
	case NoFaults:
		o.F = 0
	case 0:
		o.F = (o.N - 1) / 3
	}
	if o.Protocol == "" {
		o.Protocol = "bracha"
	}
	if o.Mode == "" {
		o.Mode = "digest"
	}
	if o.Auth == "" {
		o.Auth = "ed25519"
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.BasePort == 0 {
		o.BasePort = 7000
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	host, err := netip.ParseAddr(o.Host)
	if hosts == nil && (err != nil || !host.Is4() || !host.IsLoopback()) {
		return nil, fmt.Errorf("config: host %q is not an IPv4 loopback address", o.Host)
	}
	if hosts == nil && o.BasePort+200+o.N > 65535 {
		return nil, fmt.Errorf("config: base port %d leaves no room for %d nodes", o.BasePort, o.N)
	}
	c := &Cluster{Protocol: o.Protocol, Mode: o.Mode, F: o.F, Auth: o.Auth, MTU: o.MTU, dir: o.Dir}
	ip := host
	secrets := make([][]byte, o.N)
	for i := range o.N {
		sk, pk, err := broadcast.GenerateNodeKeys(o.Rand)
		if err != nil {
			return nil, fmt.Errorf("config: node %d: %w", i, err)
		}
		keyFile := fmt.Sprintf("node%d.key", i)
		sec := Secret{ID: i, SignKey: base64.StdEncoding.EncodeToString(sk.Sign), DHKey: base64.StdEncoding.EncodeToString(sk.DH[:])}
		if secrets[i], err = yaml.Marshal(&sec); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		nd := Node{ID: i,
			Addr:      netip.AddrPortFrom(ip, uint16(o.BasePort+i)).String(),
			API:       netip.AddrPortFrom(host, uint16(o.BasePort+100+i)).String(),
			Control:   netip.AddrPortFrom(host, uint16(o.BasePort+200+i)).String(),
			VerifyKey: base64.StdEncoding.EncodeToString(pk.Verify), DHKey: base64.StdEncoding.EncodeToString(pk.DH[:]),
			KeyFile: keyFile}
		if hosts != nil {
			nd.Addr, nd.API, nd.Control = hostNode(hosts[i])
		}
		c.Nodes = append(c.Nodes, nd)
		ip = ip.Next()
	}
	// Validate before the first write: a bad option leaves nothing on disk.
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	for i, sec := range secrets {
		if err := os.WriteFile(filepath.Join(o.Dir, c.Nodes[i].KeyFile), sec, 0o600); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(o.Dir, ConfigFile), data, 0o644); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if hosts != nil {
		if err := c.writeHostBundles(); err != nil {
			return nil, err
		}
	}
	return c, nil
}
