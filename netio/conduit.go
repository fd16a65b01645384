package netio

import (
	"context"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Datagram is one datagram received on a Conduit.
type Datagram struct {
	// From is the peer whose address the datagram came from.
	From broadcast.NodeID
	// Frame holds the datagram's bytes, contiguous; the receiver owns one
	// reference and releases it.
	Frame bufpool.Buf
}

// ConduitStats count one conduit's traffic on the wire.
type ConduitStats struct {
	FramesSent, FramesReceived uint64
	BytesSent, BytesReceived   uint64
	// RecvCopiedBytes counts bytes copied into user-space memory on the
	// receive path by a copying API (a recv system call writes each byte into
	// the user's buffer). An AF_XDP conduit, which hands up UMEM frames by
	// reference, leaves it at zero.
	RecvCopiedBytes uint64
	// KernelRecvCopiedBytes counts received bytes the kernel copied into
	// memory user space reads, beyond RecvCopiedBytes: an AF_XDP socket in
	// copy mode (veth) has the kernel copy each frame into the UMEM, where
	// a zero-copy NIC would DMA it.
	KernelRecvCopiedBytes uint64
	// SendCopiedBytes counts payload (body) bytes copied in user space into
	// transmit buffers, once per datagram sent: per recipient and per
	// retransmission.
	SendCopiedBytes uint64
	// Dropped counts datagrams dropped on receive (unknown peer, no buffer).
	Dropped uint64
}

// Conduit is an unreliable, unordered datagram path between the nodes of a
// cluster: kernel UDP sockets, or an AF_XDP socket. The reliable-link layer
// runs on any Conduit, so the protocols see the same service on both.
type Conduit interface {
	// Send sends one datagram, hdr followed by body, to node `to`. It
	// borrows both (body may be zero). Send may queue the datagram; Flush
	// pushes queued datagrams out.
	Send(to broadcast.NodeID, hdr []byte, body bufpool.Buf) error
	// Flush sends what Send queued (one sendmmsg, one TX ring kick).
	Flush() error
	// Recv blocks for the next datagram, ctx's end, or Close.
	Recv(ctx context.Context) (Datagram, error)
	// MTU is the largest datagram (hdr plus body) Send accepts.
	MTU() int
	// Stats returns the conduit's counters.
	Stats() ConduitStats
	// Close stops the conduit and releases every buffer it holds.
	Close() error
}
