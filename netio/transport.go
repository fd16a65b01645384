// Package netio moves protocol messages between nodes: the transports (mem,
// udp, xdp), the reliable-link layer that sits under protocols on lossy
// transports, and the node runner that drives a broadcast.Protocol over a
// transport with a real clock.
//
// A transport never copies payload bytes it does not have to: it retains the
// buffer a message's payload lives in, and hands received payloads up as
// views on the buffers they arrived in.
package netio

import (
	"context"
	"errors"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// ErrClosed is returned by a transport that has been closed.
var ErrClosed = errors.New("netio: transport closed")

// Transport moves authenticated messages to and from one node.
type Transport interface {
	// Send queues m for node `to`. It borrows m: it retains m.Payload for as
	// long as it needs the bytes (a queue, a retransmit buffer) and copies
	// nothing else it does not need. m.Auth must already be set.
	Send(to broadcast.NodeID, m *broadcast.Message) error
	// Recv blocks until a message arrives, ctx ends, or the transport closes.
	// The caller must Release the Inbound when done with it.
	Recv(ctx context.Context) (Inbound, error)
	// Close stops the transport and releases every buffer it holds.
	Close() error
}

// Inbound is one received message. Msg is a view: its Body, Auth and
// Payload stay valid until Release. A consumer that keeps the payload
// Retains Msg.Payload first.
type Inbound struct {
	// From is the sender as the link knows it. The runner checks it against
	// Msg.Sender and the authenticator.
	From broadcast.NodeID
	Msg  broadcast.Message
	// The references that keep Msg's memory alive: the frame the prefix was
	// decoded from, and the payload when it lives elsewhere (a reassembled
	// chain of fragments).
	frame, payload bufpool.Buf
}

// NewInbound builds an Inbound that owns the references frame and payload
// (either may be zero) until Release.
func NewInbound(from broadcast.NodeID, m broadcast.Message, frame, payload bufpool.Buf) Inbound {
	return Inbound{From: from, Msg: m, frame: frame, payload: payload}
}

// Release drops the references that keep the message alive.
func (in *Inbound) Release() {
	in.frame.Release()
	in.payload.Release()
	in.frame, in.payload = bufpool.Buf{}, bufpool.Buf{}
}
