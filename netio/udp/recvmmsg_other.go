//go:build !linux

package udp

import (
	"errors"
	"net"
	"net/netip"
)

// batchReader needs recvmmsg: the UDP conduit runs on Linux only, like the
// rest of onecast's network paths.
type batchReader struct{}

func newBatchReader(*net.UDPConn, int) (*batchReader, error) {
	return nil, errors.New("the UDP conduit needs Linux (recvmmsg)")
}

func (*batchReader) read([][]byte) (int, error) { return 0, errors.New("unsupported") }
func (*batchReader) size(int) (int, bool)       { return 0, false }
func (*batchReader) source(int) netip.AddrPort  { return netip.AddrPort{} }
