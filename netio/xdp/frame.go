package xdp

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/onecast/onecast/broadcast"
)

// Sizes of the headers in front of every datagram the conduit sends.
const (
	ethLen  = 14
	ipv4Len = 20
	udpLen  = 8
	// HeadersLen is the Ethernet, IPv4 and UDP headers in front of each
	// datagram: the XDP program finds the link header right after them.
	HeadersLen = ethLen + ipv4Len + udpLen
)

// endpoint is one end of a datagram path on the wire.
type endpoint struct {
	mac  [6]byte
	addr netip.AddrPort
}

func newEndpoint(mac net.HardwareAddr, addr netip.AddrPort) endpoint {
	var e endpoint
	copy(e.mac[:], mac)
	e.addr = addr
	return e
}

// putHeaders writes Ethernet, IPv4 and UDP headers for a datagram of n bytes
// from src to dst into b[:HeadersLen]. The UDP checksum is 0 (none), which
// IPv4 allows; the IPv4 header checksum is computed.
func putHeaders(b []byte, src, dst *endpoint, n int, id uint16) {
	_ = b[HeadersLen-1]
	copy(b[0:6], dst.mac[:])
	copy(b[6:12], src.mac[:])
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[ethLen : ethLen+ipv4Len]
	ip[0] = 0x45
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:], uint16(ipv4Len+udpLen+n))
	binary.BigEndian.PutUint16(ip[4:], id)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // don't fragment
	ip[8] = 64
	ip[9] = 17
	ip[10], ip[11] = 0, 0
	s4, d4 := src.addr.Addr().As4(), dst.addr.Addr().As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	udp := b[ethLen+ipv4Len : HeadersLen]
	binary.BigEndian.PutUint16(udp[0:], src.addr.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.addr.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen+n))
	udp[6], udp[7] = 0, 0
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// parseUDP finds the UDP datagram in an Ethernet frame addressed to port: it
// returns the datagram's offset and length in frame and its source. Nothing
// in the frame is trusted: every length is checked against the frame, and a
// frame that is not IPv4/UDP to port, carries IP options or fragments, or
// whose lengths disagree is rejected with a *broadcast.RejectError.
func parseUDP(frame []byte, port uint16) (off, n int, from netip.AddrPort, err error) {
	if len(frame) < HeadersLen {
		return 0, 0, from, broadcast.Reject(broadcast.ReasonTruncated, "frame of %d bytes is shorter than its headers", len(frame))
	}
	if binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
		return 0, 0, from, broadcast.Reject(broadcast.ReasonMagic, "ethertype %#04x is not IPv4", binary.BigEndian.Uint16(frame[12:]))
	}
	ip := frame[ethLen:]
	if ip[0] != 0x45 || ip[9] != 17 {
		return 0, 0, from, broadcast.Reject(broadcast.ReasonMagic, "not an option-less IPv4/UDP packet (vihl %#02x, proto %d)", ip[0], ip[9])
	}
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		return 0, 0, from, broadcast.Reject(broadcast.ReasonLength, "IP fragment")
	}
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if total < ipv4Len+udpLen || ethLen+total > len(frame) {
		return 0, 0, from, broadcast.Reject(broadcast.ReasonLength, "IP total length %d in a frame of %d bytes", total, len(frame))
	}
	udp := ip[ipv4Len:]
	if binary.BigEndian.Uint16(udp[2:]) != port {
		return 0, 0, from, broadcast.Reject(broadcast.ReasonMagic, "UDP port %d, want %d", binary.BigEndian.Uint16(udp[2:]), port)
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen < udpLen || ulen != total-ipv4Len {
		return 0, 0, from, broadcast.Reject(broadcast.ReasonLength, "UDP length %d, IP payload %d", ulen, total-ipv4Len)
	}
	src := netip.AddrFrom4([4]byte(ip[12:16]))
	from = netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp[0:]))
	return HeadersLen, ulen - udpLen, from, nil
}
