package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	xsk, err := axdp.NewSocket(ifindex, queue, opts)
	if err != nil {
		unmapOrphanRings()
		return nil, withErrno(err)
	}
	return xsk, nil
}

// unmapOrphanRings unmaps what asavie/xdp leaves behind when NewSocket
// fails after mapping the socket's rings (a bind refused): it closes the
// descriptor but not the mappings, which keep the socket — and the UMEM it
// registered, pinned — alive for the life of the process. Such a mapping
// is one of a socket no descriptor of the process refers to any more;
// onecast closes its own sockets only after unmapping them (unmapRings),
// and does both, as it creates sockets, under socketFlagsMu, which the
// caller holds. (A socket of another kind that some other code of the
// process closed while it still had it mapped would be unmapped too.)
func unmapOrphanRings() {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return
	}
	open := map[string]bool{}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, fd := range fds {
			if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil {
				open[l] = true
			}
		}
	}
	for line := range strings.Lines(string(maps)) {
		// start-end perms offset dev inode path
		fs := strings.Fields(line)
		if len(fs) < 6 || !strings.HasPrefix(fs[5], "socket:[") || open[fs[5]] {
			continue
		}
		var start, end uintptr
		if _, err := fmt.Sscanf(fs[0], "%x-%x", &start, &end); err != nil || end <= start {
			continue
		}
		_, _, _ = unix.Syscall(unix.SYS_MUNMAP, start, end-start, 0)
	}
}

// withErrno returns err, which asavie/xdp formats with the system's error
// flattened to text ("syscall.Bind SockaddrXDP failed: device or resource
// busy"), wrapping that system error again, so that callers can tell the
// causes apart with errors.Is (a busy queue from an unsupported mode).
func withErrno(err error) error {
	if errno := unix.Errno(0); errors.As(err, &errno) {
		return err
	}
	for _, errno := range []unix.Errno{unix.EBUSY, unix.EPERM, unix.EACCES, unix.ENODEV, unix.EOPNOTSUPP, unix.EINVAL, unix.ENOMEM} {
		if strings.HasSuffix(err.Error(), errno.Error()) {
			return fmt.Errorf("%w (%w)", err, errno)
		}
	}
	return err
}

// unmapRings unmaps the fill, completion, RX and TX rings asavie/xdp mapped
// from socket xsk's descriptor, which its Close leaves mapped. Each mapping
// holds a reference on the socket, and the kernel releases the socket —
// and with it the binding of its queue — only when the last reference goes:
// without this, a process that closed an AF_XDP socket could never bind
// that queue again (EBUSY; a node restarted in the same process). Call it
// once, right before the descriptor is closed, with the rings unused.
func unmapRings(xsk *axdp.Socket) error {
	var off unix.XDPMmapOffsets
	n := uint32(unsafe.Sizeof(off))
	if _, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(xsk.FD()), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&n)), 0); errno != 0 {
		return fmt.Errorf("xdp: getsockopt XDP_MMAP_OFFSETS: %w", errno)
	}
	// The Socket's rings are unexported: their descriptor arrays, read by
	// reflection, lie desc bytes into each mapping.
	v := reflect.ValueOf(xsk).Elem()
	var errs []error
	for _, r := range []struct {
		field string
		desc  uint64
		size  int
	}{
		{"fillRing", off.Fr.Desc, 8}, {"completionRing", off.Cr.Desc, 8},
		{"rxRing", off.Rx.Desc, int(unsafe.Sizeof(axdp.Desc{}))}, {"txRing", off.Tx.Desc, int(unsafe.Sizeof(axdp.Desc{}))},
	} {
		descs := v.FieldByName(r.field).FieldByName("Descs")
		if !descs.IsValid() {
			return fmt.Errorf("xdp: asavie/xdp's Socket has no %s.Descs: cannot unmap its rings", r.field)
		}
		if descs.Len() == 0 {
			continue // not mapped
		}
		length := int(r.desc) + descs.Len()*r.size
		mem := unsafe.Slice((*byte)(unsafe.Add(descs.UnsafePointer(), -int(r.desc))), length)
		// syscall.Munmap: asavie/xdp mapped them with syscall.Mmap, whose
		// registry knows this slice by its last byte.
		if err := syscall.Munmap(mem); err != nil {
			errs = append(errs, fmt.Errorf("xdp: unmap %s: %w", r.field, err))
		}
	}
	return errors.Join(errs...)
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
