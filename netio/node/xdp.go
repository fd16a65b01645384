package node

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	axdp "github.com/asavie/xdp"
	"golang.org/x/sys/unix"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/config"
	"github.com/onecast/onecast/netio/xdp"
)

// Causes of a node that cannot use AF_XDP; Start's error wraps one of
// them (errors.Is), together with the system's own error.
var (
	// ErrXDPNotPermitted: the process lacks CAP_NET_ADMIN and CAP_BPF (or
	// CAP_SYS_ADMIN), which loading the XDP program and binding an AF_XDP
	// socket need. Run as root, or grant them (setcap, systemd's
	// AmbientCapabilities).
	ErrXDPNotPermitted = errors.New("AF_XDP not permitted (needs CAP_NET_ADMIN and CAP_BPF or CAP_SYS_ADMIN)")
	// ErrXDPNoInterface: the configured interface does not exist in the
	// node's network namespace.
	ErrXDPNoInterface = errors.New("no such interface")
	// ErrXDPUnsupported: the interface or its driver refuses what the
	// configuration asks (the attach mode, zero-copy binding, the queue).
	ErrXDPUnsupported = errors.New("not supported by the interface or its driver")
	// ErrXDPQueueBusy: another AF_XDP socket holds the interface's
	// queue, or another XDP program (another node's, too: one node per
	// interface) is attached to the interface.
	ErrXDPQueueBusy = errors.New("queue busy")
	// ErrXDPNoPeerMAC: a peer's hardware address is neither configured
	// (nodes[i].transport.mac) nor in the neighbour table.
	ErrXDPNoPeerMAC = errors.New("peer hardware address unknown")
)

// DefaultXDPFrames is the default number of UMEM frames: room for the
// payloads a protocol retains (Bracha keeps delivered payloads a while to
// answer late fetches), so that copying them out under the free-frame
// watermark stays the exception. 32768 frames of 2 KiB map 64 MiB.
const DefaultXDPFrames = 32768

// bindMu serializes AF_XDP socket creation while the asavie library's
// bind flags (a package variable) are set for a copy-mode binding.
var bindMu sync.Mutex

// openXDP opens node cfg.ID's AF_XDP conduit as tr describes. It runs in
// the node's network namespace (Config.Do).
func openXDP(cfg *Config, tr *config.Transport, metrics *broadcast.Metrics, logger *slog.Logger) (*xdp.Conduit, error) {
	where := fmt.Sprintf("node %d: AF_XDP on %s queue %d", cfg.ID, tr.Iface, tr.Queue)
	if err := cfg.privileged(); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	ifc, err := net.InterfaceByName(tr.Iface)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", where, ErrXDPNoInterface, err)
	}
	if len(ifc.HardwareAddr) != 6 {
		return nil, fmt.Errorf("%s: %w: %s has no Ethernet address", where, ErrXDPUnsupported, tr.Iface)
	}
	c := cfg.Cluster
	addrs, err := addrsOf(c)
	if err != nil {
		return nil, err
	}
	xc := xdp.Config{Ifindex: ifc.Index, Queue: tr.Queue, Self: broadcast.NodeID(cfg.ID), MAC: ifc.HardwareAddr,
		Addr: addrs[cfg.ID], Peers: make(map[broadcast.NodeID]xdp.Peer, len(addrs)-1),
		Frames: tr.Frames, FrameSize: tr.FrameSize, Metrics: metrics, Logger: logger}
	if xc.Frames == 0 {
		xc.Frames = DefaultXDPFrames
	}
	switch tr.Attach {
	case "native":
		xc.Mode = xdp.ModeNative
	case "generic":
		xc.Mode = xdp.ModeGeneric
	}
	for j, a := range addrs {
		if j == cfg.ID {
			continue
		}
		mac, err := peerMAC(c.Nodes[j].Transport, a.Addr(), tr.Iface)
		if err != nil {
			return nil, fmt.Errorf("%s: peer %d (%v): %w", where, j, a, err)
		}
		xc.Peers[broadcast.NodeID(j)] = xdp.Peer{MAC: mac, Addr: a}
	}
	bindMu.Lock()
	saved := axdp.DefaultSocketFlags
	switch tr.Bind {
	case "copy":
		axdp.DefaultSocketFlags = unix.XDP_COPY
	case "zerocopy":
		axdp.DefaultSocketFlags = unix.XDP_ZEROCOPY
	}
	cd, err := xdp.New(xc)
	axdp.DefaultSocketFlags = saved
	bindMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", where, classify(err), err)
	}
	return cd, nil
}

// classify maps a system error from opening AF_XDP to the cause a user
// can act on.
func classify(err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return ErrXDPNotPermitted
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST): // EEXIST: an XDP program is attached already
		return ErrXDPQueueBusy
	case errors.Is(err, unix.ENODEV):
		return ErrXDPNoInterface
	}
	return ErrXDPUnsupported // EOPNOTSUPP, EINVAL (queue out of range, zero-copy refused), …
}

// checkPrivileges returns ErrXDPNotPermitted unless the process's
// effective capabilities include CAP_NET_ADMIN and CAP_BPF or
// CAP_SYS_ADMIN.
func checkPrivileges() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("%w: capget: %v", ErrXDPNotPermitted, err)
	}
	has := func(c int) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	if !has(unix.CAP_NET_ADMIN) || !(has(unix.CAP_BPF) || has(unix.CAP_SYS_ADMIN)) {
		return fmt.Errorf("%w (uid %d)", ErrXDPNotPermitted, os.Geteuid())
	}
	return nil
}

// peerMAC returns the hardware address frames to a peer at ip go to: the
// one its transport section names, or the neighbour table's entry on
// iface (asking the kernel to resolve it, for up to a second, when there
// is none yet). Peers are on the node's Ethernet segment.
func peerMAC(tr *config.Transport, ip netip.Addr, iface string) (net.HardwareAddr, error) {
	if tr != nil && tr.MAC != "" {
		return net.ParseMAC(tr.MAC)
	}
	if mac, ok := neighbour(ip, iface); ok {
		return mac, nil
	}
	// A datagram to the discard port makes the kernel resolve the address.
	if conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 9))); err == nil {
		_, _ = conn.Write(nil)
		conn.Close()
	}
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if mac, ok := neighbour(ip, iface); ok {
			return mac, nil
		}
	}
	return nil, fmt.Errorf("%w: set its transport.mac, or make it reachable on %s", ErrXDPNoPeerMAC, iface)
}

// neighbour looks ip up in the calling thread's network namespace's ARP
// table (complete entries on iface).
func neighbour(ip netip.Addr, iface string) (net.HardwareAddr, bool) {
	f, err := os.Open("/proc/thread-self/net/arp")
	if err != nil {
		return nil, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// IP address  HW type  Flags  HW address  Mask  Device
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[0] != ip.String() || fs[5] != iface || fs[2] == "0x0" {
			continue
		}
		if mac, err := net.ParseMAC(fs[3]); err == nil && len(mac) == 6 {
			return mac, true
		}
	}
	return nil, false
}
