package udp

import (
	"fmt"
	"net"
	"net/netip"
)

// LoopbackAddrs returns n free UDP addresses for a cluster on one machine,
// one per loopback host 127.0.0.first … 127.0.0.(first+n-1). Each port was
// free when checked; another process may still take it before the node
// binds it.
func LoopbackAddrs(n int, first byte) ([]netip.AddrPort, error) {
	if n <= 0 || int(first)+n > 255 || first == 0 {
		return nil, fmt.Errorf("udp: %d loopback hosts from 127.0.0.%d do not fit in 127.0.0.1–254", n, first)
	}
	out := make([]netip.AddrPort, n)
	for i := range n {
		ip := netip.AddrFrom4([4]byte{127, 0, 0, first + byte(i)})
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			return nil, fmt.Errorf("udp: find a free port on %v: %w", ip, err)
		}
		out[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
		if err := c.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
