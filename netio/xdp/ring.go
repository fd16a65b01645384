package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	axdp "github.com/asavie/xdp"
	"golang.org/x/sys/unix"
)

// compRing is a second, read-only mapping of an AF_XDP socket's completion
// ring. asavie/xdp consumes completions without telling which frames they
// were; the conduit reads their addresses here first, to release the Bufs of
// exactly those frames, and then lets the socket's Complete advance the
// consumer index.
type compRing struct {
	mem   []byte
	prod  *uint32
	cons  *uint32
	descs []uint64
	mask  uint32
}

func mapCompletionRing(fd, size int) (*compRing, error) {
	var off unix.XDPMmapOffsets
	n := uint32(unsafe.Sizeof(off))
	if _, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&n)), 0); errno != 0 {
		return nil, fmt.Errorf("xdp: getsockopt XDP_MMAP_OFFSETS: %w", errno)
	}
	length := int(off.Cr.Desc) + size*8
	mem, err := unix.Mmap(fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, length, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("xdp: map completion ring: %w", err)
	}
	r := &compRing{mem: mem, mask: uint32(size - 1)}
	r.prod = (*uint32)(unsafe.Pointer(&mem[off.Cr.Producer]))
	r.cons = (*uint32)(unsafe.Pointer(&mem[off.Cr.Consumer]))
	r.descs = unsafe.Slice((*uint64)(unsafe.Pointer(&mem[off.Cr.Desc])), size)
	return r, nil
}

// addr returns the address of the i-th completion not yet consumed. The
// caller has seen at least i+1 completions available.
func (r *compRing) addr(i int) uint64 {
	_ = atomic.LoadUint32(r.prod) // acquire: the kernel wrote descs before prod
	return r.descs[(atomic.LoadUint32(r.cons)+uint32(i))&r.mask]
}

func (r *compRing) close() error { return unix.Munmap(r.mem) }

// zeroCopy reports whether the socket is bound in zero-copy mode.
func zeroCopy(fd int) bool {
	var opts [4]byte
	n := uint32(len(opts))
	if _, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_OPTIONS,
		uintptr(unsafe.Pointer(&opts[0])), uintptr(unsafe.Pointer(&n)), 0); errno != 0 {
		return false
	}
	return binary.LittleEndian.Uint32(opts[:])&unix.XDP_OPTIONS_ZEROCOPY != 0
}

// socketFlagsMu serialises the use of asavie/xdp's DefaultSocketFlags,
// which is how it takes bind flags.
var socketFlagsMu sync.Mutex

// newSocket opens an AF_XDP socket bound with the extra bind flags.
func newSocket(ifindex, queue int, opts *axdp.SocketOptions, flags uint16) (*axdp.Socket, error) {
	socketFlagsMu.Lock()
	defer socketFlagsMu.Unlock()
	old := axdp.DefaultSocketFlags
	axdp.DefaultSocketFlags = old | flags
	defer func() { axdp.DefaultSocketFlags = old }()
	return axdp.NewSocket(ifindex, queue, opts)
}

// ringFlags maps the flags words of an AF_XDP socket's fill and TX rings,
// read-only. Bound with XDP_USE_NEED_WAKEUP, the kernel sets
// XDP_RING_NEED_WAKEUP in them when it needs a system call to make
// progress: a driver that sleeps until told the fill ring has frames, a TX
// ring nobody drains without sendto (always, in copy mode).
type ringFlags struct {
	fillMem, txMem []byte
	fill, tx       *uint32
}

func mapRingFlags(fd, size int) (*ringFlags, error) {
	var off unix.XDPMmapOffsets
	n := uint32(unsafe.Sizeof(off))
	if _, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&n)), 0); errno != 0 {
		return nil, fmt.Errorf("xdp: getsockopt XDP_MMAP_OFFSETS: %w", errno)
	}
	fill, err := unix.Mmap(fd, unix.XDP_UMEM_PGOFF_FILL_RING, int(off.Fr.Desc)+size*8, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("xdp: map fill ring: %w", err)
	}
	tx, err := unix.Mmap(fd, unix.XDP_PGOFF_TX_RING, int(off.Tx.Desc)+size*16, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		_ = unix.Munmap(fill)
		return nil, fmt.Errorf("xdp: map TX ring: %w", err)
	}
	return &ringFlags{fillMem: fill, txMem: tx,
		fill: (*uint32)(unsafe.Pointer(&fill[off.Fr.Flags])), tx: (*uint32)(unsafe.Pointer(&tx[off.Tx.Flags]))}, nil
}

// fillNeedsWakeup reports whether the kernel waits for a system call to
// take frames from the fill ring.
func (r *ringFlags) fillNeedsWakeup() bool {
	return atomic.LoadUint32(r.fill)&unix.XDP_RING_NEED_WAKEUP != 0
}

// txNeedsWakeup reports whether the kernel waits for sendto to drain the
// TX ring.
func (r *ringFlags) txNeedsWakeup() bool {
	return atomic.LoadUint32(r.tx)&unix.XDP_RING_NEED_WAKEUP != 0
}

func (r *ringFlags) close() error {
	return errors.Join(unix.Munmap(r.fillMem), unix.Munmap(r.txMem))
}
