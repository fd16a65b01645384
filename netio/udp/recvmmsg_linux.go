//go:build linux

package udp

import (
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// batchReader reads datagrams with recvmmsg into the caller's buffers and
// keeps each source address in place: no allocation per datagram (x/net's
// ReadBatch makes a net.UDPAddr for each).
type batchReader struct {
	rc    syscall.RawConn
	msgs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // room for either family

	// The call's state lives here and recv is a method value made once, so
	// that a read allocates no closure.
	recv  func(fd uintptr) bool
	k     int
	got   int
	errno syscall.Errno
}

func newBatchReader(conn *net.UDPConn, n int) (*batchReader, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &batchReader{rc: rc, msgs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), names: make([]unix.RawSockaddrInet6, n)}
	r.recv = r.recvmmsg
	return r, nil
}

// recvmmsg is the raw read; false means "wait until readable".
func (r *batchReader) recvmmsg(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(r.k), unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0:
		r.got = int(n)
		return true
	case unix.EAGAIN, unix.EINTR:
		return false
	}
	r.errno = e
	return true
}

// read receives up to len(bufs) datagrams, blocking (through the runtime's
// poller, so read deadlines apply) until at least one arrives.
func (r *batchReader) read(bufs [][]byte) (int, error) {
	k := len(bufs)
	for i := range k {
		r.iovs[i].Base = &bufs[i][0]
		r.iovs[i].SetLen(len(bufs[i]))
		h := &r.msgs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Namelen = uint32(unsafe.Sizeof(r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control, h.Controllen, h.Flags = nil, 0, 0
		r.msgs[i].n = 0
	}
	r.k, r.got, r.errno = k, 0, 0
	if err := r.rc.Read(r.recv); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", r.errno)
	}
	return r.got, nil
}

// size returns the length of datagram i and whether it was cut to fit.
func (r *batchReader) size(i int) (int, bool) {
	return int(r.msgs[i].n), r.msgs[i].hdr.Flags&unix.MSG_TRUNC != 0
}

// source returns the address datagram i came from.
func (r *batchReader) source(i int) netip.AddrPort {
	sa := &r.names[i]
	b := (*[unsafe.Sizeof(*sa)]byte)(unsafe.Pointer(sa))
	port := uint16(b[2])<<8 | uint16(b[3])
	switch sa.Family {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}
