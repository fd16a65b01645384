// Package mem is an in-process transport that passes payloads by reference.
//
// A Network connects n endpoints. Send hands the receiver the same payload
// buffer the sender holds (one more reference per delivered copy), so no
// payload byte is ever copied; the header is passed as a value and the small
// body and authenticator are copied, as a wire would.
//
// A Fault hook decides, per message, whether it is dropped, duplicated,
// reordered or delayed: tests use it to inject the network's misbehaviour.
// Drop, duplicate and reorder are deterministic for a given seed and send
// order; Delay uses real timers.
package mem

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
)

// Decision is what a Fault hook says about one message.
type Decision struct {
	Drop bool
	// Duplicates is the number of extra copies delivered.
	Duplicates int
	// Reorder inserts the message at a random place in the receiver's queue
	// instead of its tail.
	Reorder bool
	// Delay holds the message back this long (real time).
	Delay time.Duration
}

// Fault decides the fate of one message from `from` to `to`. It borrows m.
// It is called with the network's lock held: it must not call the network.
type Fault func(from, to broadcast.NodeID, m *broadcast.Message, rng *rand.Rand) Decision

// Stats count what the network did.
type Stats struct {
	Sent, Delivered, Dropped, Duplicated, Reordered, Delayed uint64
}

// Network is a set of connected in-process endpoints.
type Network struct {
	mu       sync.Mutex
	eps      []*Endpoint
	fault    Fault
	rng      *rand.Rand
	timers   map[*time.Timer]*netio.Inbound // delayed messages in flight
	inflight sync.WaitGroup                 // their callbacks
	closed   bool

	sent, delivered, dropped, duplicated, reordered, delayed atomic.Uint64
}

// Option configures a Network.
type Option func(*Network)

// WithFault installs a fault hook.
func WithFault(f Fault) Option { return func(n *Network) { n.fault = f } }

// WithSeed seeds the network's RNG (default 1).
func WithSeed(seed uint64) Option {
	return func(n *Network) { n.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// NewNetwork connects n endpoints, with IDs 0 … n-1.
func NewNetwork(n int, opts ...Option) *Network {
	net := &Network{rng: rand.New(rand.NewPCG(1, 2)), timers: map[*time.Timer]*netio.Inbound{}}
	for _, o := range opts {
		o(net)
	}
	for i := range n {
		net.eps = append(net.eps, &Endpoint{net: net, id: broadcast.NodeID(i), notify: make(chan struct{}, 1)})
	}
	return net
}

// Endpoint returns node id's endpoint.
func (n *Network) Endpoint(id broadcast.NodeID) *Endpoint { return n.eps[id] }

// SetFault replaces the fault hook (nil for none).
func (n *Network) SetFault(f Fault) {
	n.mu.Lock()
	n.fault = f
	n.mu.Unlock()
}

// Stats returns the network's counters.
func (n *Network) Stats() Stats {
	return Stats{Sent: n.sent.Load(), Delivered: n.delivered.Load(), Dropped: n.dropped.Load(),
		Duplicated: n.duplicated.Load(), Reordered: n.reordered.Load(), Delayed: n.delayed.Load()}
}

// Close closes every endpoint, cancels delayed messages and releases every
// buffer the network holds.
func (n *Network) Close() {
	n.mu.Lock()
	n.closed = true
	for t, in := range n.timers {
		// A timer that has not fired will not: release its message here. One
		// that has fired finds itself gone from the map and releases its own.
		if t.Stop() {
			in.Release()
			n.inflight.Done()
		}
	}
	n.timers = nil
	n.mu.Unlock()
	n.inflight.Wait()
	for _, ep := range n.eps {
		ep.Close()
	}
}

// Endpoint is one node's attachment to the network. It implements
// netio.Transport.
type Endpoint struct {
	net    *Network
	id     broadcast.NodeID
	mu     sync.Mutex
	queue  []netio.Inbound
	notify chan struct{}
	closed bool
}

var _ netio.Transport = (*Endpoint)(nil)

// ID returns the endpoint's node ID.
func (e *Endpoint) ID() broadcast.NodeID { return e.id }

// Send delivers m to node `to` by reference. It borrows m.
func (e *Endpoint) Send(to broadcast.NodeID, m *broadcast.Message) error {
	net := e.net
	if int(to) >= len(net.eps) {
		return fmt.Errorf("mem: send to %v: no such node in a network of %d", to, len(net.eps))
	}
	net.mu.Lock()
	defer net.mu.Unlock()
	if net.closed || e.isClosed() {
		return netio.ErrClosed
	}
	net.sent.Add(1)
	var d Decision
	if net.fault != nil {
		d = net.fault(e.id, to, m, net.rng)
	}
	if d.Drop {
		net.dropped.Add(1)
		return nil
	}
	dst := net.eps[to]
	for range 1 + max(d.Duplicates, 0) {
		in := e.inbound(m)
		pos := -1
		if d.Reorder {
			net.reordered.Add(1)
			pos = net.rng.IntN(dst.pending() + 1)
		}
		if d.Delay > 0 {
			net.delayed.Add(1)
			var t *time.Timer
			held := &in
			net.inflight.Add(1)
			t = time.AfterFunc(d.Delay, func() {
				defer net.inflight.Done()
				net.mu.Lock()
				_, live := net.timers[t]
				delete(net.timers, t)
				net.mu.Unlock()
				if live {
					dst.push(*held, pos)
				} else {
					held.Release()
				}
			})
			net.timers[t] = held
			continue
		}
		dst.push(in, pos)
	}
	net.duplicated.Add(uint64(max(d.Duplicates, 0)))
	return nil
}

// inbound makes the receiver's copy of m: header by value, body and
// authenticator copied (as a wire would), payload by reference.
func (e *Endpoint) inbound(m *broadcast.Message) netio.Inbound {
	c := *m
	if len(m.Body)+len(m.Auth) > 0 {
		buf := make([]byte, len(m.Body)+len(m.Auth))
		copy(buf, m.Body)
		copy(buf[len(m.Body):], m.Auth)
		c.Body, c.Auth = buf[:len(m.Body):len(m.Body)], buf[len(m.Body):]
		if len(m.Body) == 0 {
			c.Body = nil
		}
		if len(m.Auth) == 0 {
			c.Auth = nil
		}
	}
	c.Payload = m.Payload.Retain()
	return netio.NewInbound(e.id, c, c.Payload, bufpool.Buf{})
}

func (e *Endpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

func (e *Endpoint) pending() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.queue)
}

func (e *Endpoint) push(in netio.Inbound, pos int) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		in.Release()
		return
	}
	if pos < 0 || pos >= len(e.queue) {
		e.queue = append(e.queue, in)
	} else {
		e.queue = append(e.queue, netio.Inbound{})
		copy(e.queue[pos+1:], e.queue[pos:])
		e.queue[pos] = in
	}
	e.mu.Unlock()
	e.net.delivered.Add(1)
	select {
	case e.notify <- struct{}{}:
	default:
	}
}

// TryRecv returns the next queued message without blocking.
func (e *Endpoint) TryRecv() (netio.Inbound, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.queue) == 0 {
		return netio.Inbound{}, false
	}
	in := e.queue[0]
	e.queue[0] = netio.Inbound{}
	e.queue = e.queue[1:]
	if len(e.queue) == 0 {
		e.queue = e.queue[:0:0]
	}
	return in, true
}

// Pending returns the number of queued messages.
func (e *Endpoint) Pending() int { return e.pending() }

// Recv blocks until a message is queued, ctx ends or the endpoint closes.
func (e *Endpoint) Recv(ctx context.Context) (netio.Inbound, error) {
	for {
		if in, ok := e.TryRecv(); ok {
			return in, nil
		}
		if e.isClosed() {
			return netio.Inbound{}, netio.ErrClosed
		}
		select {
		case <-e.notify:
		case <-ctx.Done():
			return netio.Inbound{}, ctx.Err()
		}
	}
}

// Close releases queued messages; later sends to and from it fail or drop.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	q := e.queue
	e.queue = nil
	e.mu.Unlock()
	for i := range q {
		q[i].Release()
	}
	select {
	case e.notify <- struct{}{}:
	default:
	}
	return nil
}
