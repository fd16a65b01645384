// Package netns builds small network topologies in Linux network namespaces
// for tests, benchmarks and demos of the udp and xdp transports: n nodes,
// each in its own namespace with one interface, wired by a veth pair (two
// nodes) or by veth pairs to a bridge in a hub namespace (more nodes),
// addressed in one /24, with static neighbour entries so that no ARP is
// needed.
//
// Usage:
//
//	topo, err := netns.New(netns.Config{Nodes: 4})
//	if err != nil { ... }
//	defer topo.Close()
//	err = topo.Do(0, func() error {
//		// runs on a locked OS thread inside node 0's namespace: sockets
//		// created here live there, links are looked up there.
//		return nil
//	})
//
// Cleanup: namespaces are anonymous by default, so the kernel frees them,
// and every interface in them, when the process lets go of their handles:
// on Close, and also when the process dies however it dies (panic, SIGKILL).
// Named namespaces (Config.Named, visible to `ip netns exec`) are removed by
// Close, by a SIGINT/SIGTERM handler installed while the topology lives, and
// any stale ones with the same names are removed by New. Test code should
// call Close from t.Cleanup, which also runs when the test panics.
//
// Creating namespaces needs CAP_SYS_ADMIN (root); Available reports it.
package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Config describes a topology.
type Config struct {
	// Nodes is the number of nodes, at least 2.
	Nodes int
	// Subnet is the /24 the nodes' addresses are taken from: node i gets
	// .i+1. Default 10.77.0.0/24. The addresses exist only inside the
	// topology's namespaces.
	Subnet netip.Prefix
	// Bridge wires the nodes through a bridge in a hub namespace even when
	// there are only two (more than two always use one).
	Bridge bool
	// MTU of the nodes' interfaces. Default 1500.
	MTU int
	// Named creates named namespaces (/run/netns/<Prefix><i>, hub
	// <Prefix>hub) that `ip netns exec` can enter. Default anonymous.
	Named bool
	// Prefix names the namespaces when Named. Default "oc<pid>-".
	Prefix string
}

// Node is one host of a topology.
type Node struct {
	// Index is the node's position, 0 … n-1.
	Index int
	// Name is the namespace's name (Named) or a label.
	Name string
	// NS is the namespace handle, owned by the topology.
	NS netns.NsHandle
	// Ifname and Ifindex name the node's interface inside its namespace.
	Ifname  string
	Ifindex int
	// MAC is the interface's hardware address, 02:77:00:00:00:<i+1>.
	MAC net.HardwareAddr
	// Addr is the interface's IPv4 address.
	Addr netip.Addr
}

// Topology is a set of namespaces and the links between them. Close it.
type Topology struct {
	cfg   Config
	Nodes []*Node
	hub   netns.NsHandle
	names []string // named namespaces to delete

	closeOnce sync.Once
	closeErr  error
	sigs      chan os.Signal
	done      chan struct{}
}

// IfName is the name of every node's interface inside its namespace.
const IfName = "oc0"

// Available reports whether this process can create namespaces, and if not,
// why not (for t.Skip).
func Available() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "creating network namespaces needs root"
	}
	return true, ""
}

// New builds the topology. On error, everything created so far is removed.
func New(cfg Config) (_ *Topology, err error) {
	if cfg.Nodes < 2 || cfg.Nodes > 250 {
		return nil, fmt.Errorf("netns: Nodes must be in [2, 250], got %d", cfg.Nodes)
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = netip.MustParsePrefix("10.77.0.0/24")
	}
	if !cfg.Subnet.Addr().Is4() || cfg.Subnet.Bits() > 24 {
		return nil, fmt.Errorf("netns: Subnet must be an IPv4 prefix of /24 or wider, got %v", cfg.Subnet)
	}
	cfg.Subnet = netip.PrefixFrom(cfg.Subnet.Masked().Addr(), 24)
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("oc%d-", os.Getpid())
	}
	t := &Topology{cfg: cfg, hub: netns.None(), done: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = t.Close()
		}
	}()
	if cfg.Named {
		t.sigs = make(chan os.Signal, 1)
		signal.Notify(t.sigs, os.Interrupt, syscall.SIGTERM)
		go t.onSignal()
	}
	bridge := cfg.Bridge || cfg.Nodes > 2
	for i := range cfg.Nodes {
		name := fmt.Sprintf("%s%d", cfg.Prefix, i)
		ns, err := t.newNS(name)
		if err != nil {
			return nil, fmt.Errorf("netns: create namespace for node %d: %w", i, err)
		}
		a := cfg.Subnet.Addr().As4()
		a[3] = byte(i + 1)
		t.Nodes = append(t.Nodes, &Node{
			Index: i, Name: name, NS: ns, Ifname: IfName,
			MAC:  net.HardwareAddr{0x02, 0x77, 0, 0, byte((i + 1) >> 8), byte(i + 1)},
			Addr: netip.AddrFrom4(a),
		})
	}
	if bridge {
		if t.hub, err = t.newNS(cfg.Prefix + "hub"); err != nil {
			return nil, fmt.Errorf("netns: create hub namespace: %w", err)
		}
		if err := t.wireBridge(); err != nil {
			return nil, err
		}
	} else if err := t.wirePair(); err != nil {
		return nil, err
	}
	for _, n := range t.Nodes {
		if err := t.configure(n); err != nil {
			return nil, err
		}
	}
	if err := t.waitUp(5 * time.Second); err != nil {
		return nil, err
	}
	return t, nil
}

// waitUp waits until every interface of the topology is operationally up.
// The kernel's link watcher activates an interface's queueing discipline
// (until then, frames sent on it are dropped) and sets its operational
// state asynchronously, rate-limited machine-wide; on a busy machine that
// can take a second after "ip link set up".
func (t *Topology) waitUp(timeout time.Duration) error {
	type iface struct {
		ns   netns.NsHandle
		name string
	}
	var all []iface
	for _, n := range t.Nodes {
		all = append(all, iface{n.NS, n.Ifname})
	}
	if t.hub.IsOpen() {
		for _, n := range t.Nodes {
			all = append(all, iface{t.hub, fmt.Sprintf("p%d", n.Index)})
		}
		all = append(all, iface{t.hub, "br0"})
	}
	deadline := time.Now().Add(timeout)
	for _, f := range all {
		h, err := netlink.NewHandleAt(f.ns)
		if err != nil {
			return fmt.Errorf("netns: netlink handle: %w", err)
		}
		for {
			l, err := h.LinkByName(f.name)
			if err != nil {
				h.Close()
				return fmt.Errorf("netns: find %s: %w", f.name, err)
			}
			if l.Attrs().OperState == netlink.OperUp {
				break
			}
			if time.Now().After(deadline) {
				h.Close()
				return fmt.Errorf("netns: %s not up after %v (state %v)", f.name, timeout, l.Attrs().OperState)
			}
			time.Sleep(10 * time.Millisecond)
		}
		h.Close()
	}
	return nil
}

// newNS creates a namespace without moving the calling goroutine into it.
func (t *Topology) newNS(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	origin, err := netns.Get()
	if err != nil {
		return netns.None(), err
	}
	defer origin.Close()
	var ns netns.NsHandle
	if t.cfg.Named {
		_ = netns.DeleteNamed(name) // a stale one from a crashed run
		ns, err = netns.NewNamed(name)
		if err == nil {
			t.names = append(t.names, name)
		}
	} else {
		ns, err = netns.New()
	}
	if serr := netns.Set(origin); serr != nil {
		// This thread is stuck in the new namespace: keep it locked so
		// that the runtime retires it instead of reusing it.
		runtime.LockOSThread()
		return netns.None(), fmt.Errorf("netns: return to the original namespace: %w", serr)
	}
	return ns, err
}

func (t *Topology) wirePair() error {
	a, b := t.Nodes[0], t.Nodes[1]
	h, err := netlink.NewHandleAt(a.NS)
	if err != nil {
		return fmt.Errorf("netns: netlink handle for %s: %w", a.Name, err)
	}
	defer h.Close()
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: a.Ifname, MTU: t.cfg.MTU, HardwareAddr: a.MAC, NumTxQueues: 1, NumRxQueues: 1},
		PeerName:         b.Ifname,
		PeerHardwareAddr: b.MAC,
		PeerNamespace:    netlink.NsFd(int(b.NS)),
	}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("netns: add veth %s/%s: %w", a.Name, b.Name, err)
	}
	return nil
}

func (t *Topology) wireBridge() error {
	h, err := netlink.NewHandleAt(t.hub)
	if err != nil {
		return fmt.Errorf("netns: netlink handle for hub: %w", err)
	}
	defer h.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0", MTU: t.cfg.MTU}}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("netns: add bridge: %w", err)
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("netns: bridge up: %w", err)
	}
	for _, n := range t.Nodes {
		port := fmt.Sprintf("p%d", n.Index)
		veth := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: port, MTU: t.cfg.MTU, NumTxQueues: 1, NumRxQueues: 1},
			PeerName:         n.Ifname,
			PeerHardwareAddr: n.MAC,
			PeerNamespace:    netlink.NsFd(int(n.NS)),
		}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("netns: add veth for %s: %w", n.Name, err)
		}
		l, err := h.LinkByName(port)
		if err != nil {
			return fmt.Errorf("netns: find %s: %w", port, err)
		}
		if err := h.LinkSetMaster(l, br); err != nil {
			return fmt.Errorf("netns: enslave %s: %w", port, err)
		}
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("netns: %s up: %w", port, err)
		}
	}
	return nil
}

// configure brings node n's interfaces up, addresses it and adds a static
// neighbour entry for every other node.
func (t *Topology) configure(n *Node) error {
	h, err := netlink.NewHandleAt(n.NS)
	if err != nil {
		return fmt.Errorf("netns: netlink handle for %s: %w", n.Name, err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("netns: %s: lo up: %w", n.Name, err)
	}
	l, err := h.LinkByName(n.Ifname)
	if err != nil {
		return fmt.Errorf("netns: %s: find %s: %w", n.Name, n.Ifname, err)
	}
	n.Ifindex = l.Attrs().Index
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.Addr.AsSlice(), Mask: net.CIDRMask(24, 32)}}
	if err := h.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("netns: %s: address %v: %w", n.Name, n.Addr, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("netns: %s: %s up: %w", n.Name, n.Ifname, err)
	}
	for _, p := range t.Nodes {
		if p == n {
			continue
		}
		neigh := &netlink.Neigh{
			LinkIndex: n.Ifindex, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
			IP: p.Addr.AsSlice(), HardwareAddr: p.MAC,
		}
		if err := h.NeighAdd(neigh); err != nil {
			return fmt.Errorf("netns: %s: neighbour %v: %w", n.Name, p.Addr, err)
		}
	}
	return nil
}

// Do runs fn on a locked OS thread inside node i's namespace and returns to
// the caller's namespace afterwards. Sockets and XDP attachments made in fn
// belong to node i's namespace and may be used from any goroutine later.
func (t *Topology) Do(i int, fn func() error) error {
	if i < 0 || i >= len(t.Nodes) {
		return fmt.Errorf("netns: no node %d", i)
	}
	return DoIn(t.Nodes[i].NS, fn)
}

// DoIn runs fn on a locked OS thread inside namespace ns.
func DoIn(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	origin, err := netns.Get()
	if err != nil {
		return fmt.Errorf("netns: current namespace: %w", err)
	}
	defer origin.Close()
	if err := netns.Set(ns); err != nil {
		return fmt.Errorf("netns: enter namespace: %w", err)
	}
	defer func() {
		if err := netns.Set(origin); err != nil {
			// Never hand a thread in the wrong namespace back to the
			// runtime: leave it locked, so that it exits with the goroutine.
			runtime.LockOSThread()
		}
	}()
	return fn()
}

// Hub returns the hub namespace (None when two nodes share a veth pair).
func (t *Topology) Hub() netns.NsHandle { return t.hub }

// Close removes every namespace, and with them every interface, of the
// topology. It is safe to call more than once.
func (t *Topology) Close() error {
	t.closeOnce.Do(func() {
		var errs []error
		for _, n := range t.Nodes {
			if n.NS.IsOpen() {
				errs = append(errs, n.NS.Close())
			}
		}
		if t.hub.IsOpen() {
			errs = append(errs, t.hub.Close())
		}
		for _, name := range t.names {
			if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("netns: delete %s: %w", name, err))
			}
		}
		if t.sigs != nil {
			signal.Stop(t.sigs)
			close(t.done)
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

// onSignal removes named namespaces on SIGINT/SIGTERM, then lets the signal
// take its default course.
func (t *Topology) onSignal() {
	select {
	case sig := <-t.sigs:
		_ = t.Close()
		signal.Reset(sig)
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Signal(sig)
		}
	case <-t.done:
	}
}
