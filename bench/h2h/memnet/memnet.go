// Package memnet is the in-memory network the head-to-head harness runs
// every system on: n nodes, each message an opaque []byte (the system's own
// wire encoding), delivered in order through one unbounded inbound queue per
// node, never lost, never copied, and counted the same way for every system
// (bytes and messages sent, per sending node).
//
// A message's length is its wire size: the harness adds no framing of its
// own, so "wire bytes" are exactly the bytes each system's encoder produced.
package memnet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned once the network (or the node's queue) is closed.
var ErrClosed = errors.New("memnet: closed")

// Message is one delivered message: its sender and its bytes. The receiver
// owns Data.
type Message struct {
	From int
	Data []byte
}

// NodeStats are one node's counters.
type NodeStats struct {
	// SentBytes and SentMessages count what the node sent (accepted by
	// Send); RecvBytes and RecvMessages what was taken from its queue.
	SentBytes, SentMessages, RecvBytes, RecvMessages uint64
}

// Stats are the network's counters: totals over every node, and per node.
type Stats struct {
	Bytes, Messages uint64
	Nodes           []NodeStats
}

// Sub returns s − o, field by field (a measurement window).
func (s Stats) Sub(o Stats) Stats {
	out := Stats{Bytes: s.Bytes - o.Bytes, Messages: s.Messages - o.Messages, Nodes: make([]NodeStats, len(s.Nodes))}
	for i := range s.Nodes {
		a := s.Nodes[i]
		if i < len(o.Nodes) {
			b := o.Nodes[i]
			a = NodeStats{a.SentBytes - b.SentBytes, a.SentMessages - b.SentMessages, a.RecvBytes - b.RecvBytes, a.RecvMessages - b.RecvMessages}
		}
		out.Nodes[i] = a
	}
	return out
}

type counters struct {
	sentBytes, sentMsgs, recvBytes, recvMsgs atomic.Uint64
}

type queue struct {
	mu     sync.Mutex
	msgs   []Message
	head   int
	notify chan struct{}
}

// Network connects nodes 0 … n-1.
type Network struct {
	queues []*queue
	cnt    []counters
	done   chan struct{}
	once   sync.Once
}

// New builds a network of n nodes.
func New(n int) *Network {
	net := &Network{queues: make([]*queue, n), cnt: make([]counters, n), done: make(chan struct{})}
	for i := range net.queues {
		net.queues[i] = &queue{notify: make(chan struct{}, 1)}
	}
	return net
}

// N is the number of nodes.
func (n *Network) N() int { return len(n.queues) }

// Send queues data for node `to` and counts it against node from. It takes
// data: the sender must not touch it afterwards.
func (n *Network) Send(from, to int, data []byte) error {
	if from < 0 || from >= len(n.queues) || to < 0 || to >= len(n.queues) || from == to {
		return fmt.Errorf("memnet: send %d→%d in a network of %d", from, to, len(n.queues))
	}
	select {
	case <-n.done:
		return ErrClosed
	default:
	}
	q := n.queues[to]
	q.mu.Lock()
	q.msgs = append(q.msgs, Message{From: from, Data: data})
	q.mu.Unlock()
	c := &n.cnt[from]
	c.sentBytes.Add(uint64(len(data)))
	c.sentMsgs.Add(1)
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return nil
}

// TryRecv takes node id's next message without blocking.
func (n *Network) TryRecv(id int) (Message, bool) {
	q := n.queues[id]
	q.mu.Lock()
	if q.head == len(q.msgs) {
		q.mu.Unlock()
		return Message{}, false
	}
	m := q.msgs[q.head]
	q.msgs[q.head] = Message{}
	q.head++
	if q.head == len(q.msgs) {
		q.msgs, q.head = q.msgs[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.msgs) {
		k := copy(q.msgs, q.msgs[q.head:])
		clear(q.msgs[k:])
		q.msgs, q.head = q.msgs[:k], 0
	}
	q.mu.Unlock()
	c := &n.cnt[id]
	c.recvBytes.Add(uint64(len(m.Data)))
	c.recvMsgs.Add(1)
	return m, true
}

// Recv blocks until node id has a message, ctx ends or the network closes.
func (n *Network) Recv(ctx context.Context, id int) (Message, error) {
	q := n.queues[id]
	for {
		if m, ok := n.TryRecv(id); ok {
			return m, nil
		}
		select {
		case <-q.notify:
		case <-ctx.Done():
			return Message{}, ctx.Err()
		case <-n.done:
			return Message{}, ErrClosed
		}
	}
}

// Pending is the number of messages queued for node id.
func (n *Network) Pending(id int) int {
	q := n.queues[id]
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs) - q.head
}

// Done is closed when the network closes.
func (n *Network) Done() <-chan struct{} { return n.done }

// Close stops the network: Send fails, Recv returns ErrClosed, queued
// messages are dropped.
func (n *Network) Close() {
	n.once.Do(func() {
		close(n.done)
		for _, q := range n.queues {
			q.mu.Lock()
			q.msgs, q.head = nil, 0
			q.mu.Unlock()
		}
	})
}

// Stats returns the counters.
func (n *Network) Stats() Stats {
	s := Stats{Nodes: make([]NodeStats, len(n.cnt))}
	for i := range n.cnt {
		c := &n.cnt[i]
		ns := NodeStats{SentBytes: c.sentBytes.Load(), SentMessages: c.sentMsgs.Load(),
			RecvBytes: c.recvBytes.Load(), RecvMessages: c.recvMsgs.Load()}
		s.Nodes[i] = ns
		s.Bytes += ns.SentBytes
		s.Messages += ns.SentMessages
	}
	return s
}

// Account counts a transfer of n bytes in one message from node from to
// node to that a system makes outside Send (SmartBFT's state transfer,
// which a deployment does over the network), so that it is charged like
// any other traffic.
func (n *Network) Account(from, to, bytes int) {
	c := &n.cnt[from]
	c.sentBytes.Add(uint64(bytes))
	c.sentMsgs.Add(1)
	r := &n.cnt[to]
	r.recvBytes.Add(uint64(bytes))
	r.recvMsgs.Add(1)
}
