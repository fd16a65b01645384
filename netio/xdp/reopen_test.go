package xdp

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/netns"
)

// TestReopenOnTheSameQueueInOneProcess closes a conduit while a received
// datagram is still held (the UMEM kept mapped), then with every frame
// back, and opens a new conduit on the same interface and queue after
// each: the closed socket must let go of the queue — its rings unmapped,
// which asavie/xdp's Close does not do — or the bind fails with EBUSY (a
// node or kv replica restarted in the same process).
func TestReopenOnTheSameQueueInOneProcess(t *testing.T) {
	skipUnlessRoot(t)
	topo, err := netns.New(netns.Config{Nodes: 2, Subnet: netip.MustParsePrefix("10.77.4.0/24")})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, topo.Close()) })
	open := func(i int) *Conduit {
		t.Helper()
		cfg := TopologyConfig(topo, i, testPort)
		cfg.Frames, cfg.RingSize = 1024, 256
		var c *Conduit
		require.NoError(t, topo.Do(i, func() (err error) { c, err = New(cfg); return err }), "conduit of node %d", i)
		return c
	}
	exchange := func(a, b *Conduit, what string) bufpool.Buf {
		t.Helper()
		require.NoError(t, a.Send(1, []byte(what), bufpool.Wrap(make([]byte, 100))))
		require.NoError(t, a.Flush())
		d, err := recvOne(t, b, 3*time.Second)
		require.NoError(t, err, what)
		require.Equal(t, what, string(d.Frame.Bytes()[:len(what)]))
		return d.Frame
	}
	a := open(0)
	defer func() { assert.NoError(t, a.Close()) }()
	b := open(1)
	held := exchange(a, b, "first")
	require.NoError(t, b.Close())
	require.ErrorIs(t, b.ReleaseUMEM(), ErrUMEMInUse, "a received datagram is still held")

	b2 := open(1) // the queue is free although b's UMEM is still mapped
	exchange(a, b2, "second").Release()
	assert.Equal(t, "first", string(held.Bytes()[:5]), "the held datagram stays valid")
	held.Release()
	require.NoError(t, b.ReleaseUMEM())

	require.NoError(t, b2.Close())
	b3 := open(1) // and after a close with every frame back
	exchange(a, b3, "third").Release()
	require.NoError(t, b3.Close())
	assert.Zero(t, orphanSocketMappings(t), "every closed socket unmapped: released, its UMEM unpinned")
}

// orphanSocketMappings counts the mappings of sockets the process has no
// descriptor of any more.
func orphanSocketMappings(t *testing.T) int {
	maps, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	open := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil {
			open[l] = true
		}
	}
	n := 0
	for line := range strings.Lines(string(maps)) {
		if fs := strings.Fields(line); len(fs) >= 6 && strings.HasPrefix(fs[5], "socket:[") && !open[fs[5]] {
			n++
		}
	}
	return n
}

// TestBindErrorsKeepTheSystemError checks that the system error asavie/xdp
// flattens into its message is wrapped again, so that callers tell a busy
// queue (EBUSY) from a refused mode (EOPNOTSUPP) with errors.Is.
func TestBindErrorsKeepTheSystemError(t *testing.T) {
	for _, errno := range []unix.Errno{unix.EBUSY, unix.EOPNOTSUPP, unix.EPERM} {
		err := withErrno(fmt.Errorf("syscall.Bind SockaddrXDP failed: %v", errno))
		assert.ErrorIs(t, err, errno)
		assert.Contains(t, err.Error(), "syscall.Bind SockaddrXDP failed")
	}
	plain := fmt.Errorf("RxRingNumDescs and TxRingNumDescs cannot both be set to zero")
	assert.Equal(t, plain, withErrno(plain))
	wrapped := fmt.Errorf("bind: %w", unix.EBUSY)
	assert.Equal(t, wrapped, withErrno(wrapped))
}
