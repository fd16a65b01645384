// Package udp is the kernel-socket Conduit: the copy-based baseline that the
// AF_XDP conduit is measured against.
//
// One UDP socket per node, batched IO in both directions: Recv fills pool
// frames with one recvmmsg (golang.org/x/net/ipv4 ReadBatch) and hands them
// up by reference; Send queues datagrams that Flush writes with one sendmmsg
// (WriteBatch), the payload gathered from the caller's own buffers. The one
// user-space copy is the kernel's, into the receive frame: it is counted in
// ConduitStats.RecvCopiedBytes, so that "copies per payload byte" compares
// honestly with the zero-copy path.
//
// Datagrams from addresses outside the configured cluster are dropped and
// counted. Tests inject loss and reordering with Config.Fault.
//
// Usage:
//
//	cd, err := udp.New(udp.Config{Self: 1, Peers: addrs, Pool: pool})
//	l, err := link.New(link.Config{Self: 1, N: len(addrs), Conduit: cd})
package udp
