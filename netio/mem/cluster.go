package mem

import (
	"fmt"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Cluster drives protocol instances over a Network from one goroutine, with
// a logical clock: a protocol test's harness. For a given seed and fault hook
// a run is deterministic, as long as the hook uses no Delay (which is real
// time): the cluster delivers queued messages round-robin over the nodes,
// and when every queue is empty it advances the clock to the earliest
// NextWake and ticks.
//
// A nil entry in Nodes is a crashed node: messages to it are discarded.
type Cluster struct {
	Net   *Network
	Nodes []broadcast.Protocol
	// Auth, when set, authenticates every message on send and verifies it on
	// receive (rejects are counted in Metrics and the message dropped).
	Auth []broadcast.Authenticator
	// Metrics has one entry per node, updated on every send, receive and
	// delivery.
	Metrics []*broadcast.Metrics
	// Now is the logical clock.
	Now time.Duration
	// Delivered holds every node's deliveries in order. The cluster keeps the
	// payload references until Close.
	Delivered [][]broadcast.Delivery
	// OnDeliver, when set, is called for each delivery.
	OnDeliver func(node broadcast.NodeID, d broadcast.Delivery)
	// StepErrors counts Step errors (rejected messages) per node.
	StepErrors []int
	// Origin returns the node a delivered instance originated from, for the
	// remote-delivery figure; nil means Instance.Origin.
	Origin func(broadcast.Instance) broadcast.NodeID

	wake []time.Duration
}

// NewCluster builds a cluster of len(nodes) protocol instances on net, which
// must have at least as many endpoints.
func NewCluster(net *Network, nodes []broadcast.Protocol) *Cluster {
	n := len(nodes)
	c := &Cluster{Net: net, Nodes: nodes, Delivered: make([][]broadcast.Delivery, n),
		Metrics: make([]*broadcast.Metrics, n), StepErrors: make([]int, n), wake: make([]time.Duration, n)}
	for i := range c.Metrics {
		c.Metrics[i] = &broadcast.Metrics{}
	}
	return c
}

// Submit hands node `id` an application payload (taking the reference) and
// processes its output.
func (c *Cluster) Submit(id broadcast.NodeID, p bufpool.Buf) error {
	if c.Nodes[id] == nil {
		p.Release()
		return fmt.Errorf("mem: submit to crashed node %v", id)
	}
	if err := c.Nodes[id].Submit(p); err != nil {
		return err
	}
	c.flush(id)
	return nil
}

// Crash stops node id: its pending output is discarded and it receives
// nothing more.
func (c *Cluster) Crash(id broadcast.NodeID) {
	if c.Nodes[id] == nil {
		return
	}
	rd := c.Nodes[id].Ready()
	rd.Release()
	c.Nodes[id] = nil
}

// flush carries out node id's Ready.
func (c *Cluster) flush(id broadcast.NodeID) {
	p := c.Nodes[id]
	if p == nil {
		return
	}
	rd := p.Ready()
	ep := c.Net.Endpoint(id)
	for i := range rd.Messages {
		out := &rd.Messages[i]
		out.Msg.Sender = id
		if out.To == broadcast.Everyone {
			for j := range c.Nodes {
				if broadcast.NodeID(j) != id {
					c.send(ep, broadcast.NodeID(j), &out.Msg)
				}
			}
		} else {
			c.send(ep, out.To, &out.Msg)
		}
		out.Msg.Payload.Release()
	}
	for _, d := range rd.Deliveries {
		remote := c.originOf(d.Instance) != id
		c.Metrics[id].CountDelivery(d.Payload.Len(), remote)
		c.Delivered[id] = append(c.Delivered[id], d)
		if c.OnDeliver != nil {
			c.OnDeliver(id, d)
		}
	}
	c.wake[id] = rd.NextWake
}

func (c *Cluster) originOf(in broadcast.Instance) broadcast.NodeID {
	if c.Origin != nil {
		return c.Origin(in)
	}
	return in.Origin
}

func (c *Cluster) send(ep *Endpoint, to broadcast.NodeID, m *broadcast.Message) {
	if c.Auth != nil {
		sd := broadcast.SigningDigest(&m.Header, m.Body)
		m.Auth = c.Auth[ep.id].Authenticate(m.Auth[:0], to, &sd)
	}
	if err := ep.Send(to, m); err == nil {
		c.Metrics[ep.id].CountSent(m)
	}
}

// deliverOne hands one queued message to node id. It reports whether there
// was one.
func (c *Cluster) deliverOne(id broadcast.NodeID) bool {
	in, ok := c.Net.Endpoint(id).TryRecv()
	if !ok {
		return false
	}
	defer in.Release()
	p := c.Nodes[id]
	if p == nil {
		return true
	}
	m := &in.Msg
	c.Metrics[id].CountReceived(m)
	if m.Sender != in.From {
		c.Metrics[id].Rejects.Count(broadcast.Reject(broadcast.ReasonSender, "header sender %v on link from %v", m.Sender, in.From))
		return true
	}
	if c.Auth != nil {
		sd := broadcast.SigningDigest(&m.Header, m.Body)
		if err := c.Auth[id].Verify(in.From, &sd, m.Auth); err != nil {
			c.Metrics[id].Rejects.Count(err)
			return true
		}
	}
	if err := p.Step(in.From, m); err != nil {
		c.StepErrors[id]++
		c.Metrics[id].Rejects.Count(err)
	}
	c.flush(id)
	return true
}

// Pending reports whether any live node has a queued message.
func (c *Cluster) Pending() bool {
	for i := range c.Nodes {
		if c.Net.Endpoint(broadcast.NodeID(i)).Pending() > 0 {
			return true
		}
	}
	return false
}

// Stabilize delivers messages round-robin until every queue is empty or
// maxMessages were delivered. It returns the number delivered.
func (c *Cluster) Stabilize(maxMessages int) int {
	delivered := 0
	for delivered < maxMessages {
		progress := false
		for i := range c.Nodes {
			if c.deliverOne(broadcast.NodeID(i)) {
				delivered++
				progress = true
			}
		}
		if !progress {
			break
		}
	}
	return delivered
}

// Run stabilizes, then advances the clock to the earliest wake-up and ticks,
// until nothing is queued and no node waits for a tick, the clock passes
// until, or maxMessages were delivered. It returns the messages delivered.
func (c *Cluster) Run(until time.Duration, maxMessages int) int {
	total := 0
	for total < maxMessages {
		total += c.Stabilize(maxMessages - total)
		next := time.Duration(-1)
		for i, w := range c.wake {
			if c.Nodes[i] != nil && w > 0 && (next < 0 || w < next) {
				next = w
			}
		}
		if next < 0 || next > until {
			break
		}
		c.Now = max(c.Now, next)
		for i := range c.Nodes {
			if c.Nodes[i] != nil && c.wake[i] > 0 && c.wake[i] <= c.Now {
				c.wake[i] = 0
				c.Nodes[i].Tick(c.Now)
				c.flush(broadcast.NodeID(i))
			}
		}
	}
	return total
}

// TickAll advances the clock to now and ticks every live node.
func (c *Cluster) TickAll(now time.Duration) {
	c.Now = max(c.Now, now)
	for i := range c.Nodes {
		if c.Nodes[i] != nil {
			c.Nodes[i].Tick(c.Now)
			c.flush(broadcast.NodeID(i))
		}
	}
}

// Close releases every delivered payload and closes the network.
func (c *Cluster) Close() {
	for i := range c.Delivered {
		for _, d := range c.Delivered[i] {
			d.Payload.Release()
		}
		c.Delivered[i] = nil
	}
	for i := range c.Nodes {
		if c.Nodes[i] != nil {
			rd := c.Nodes[i].Ready()
			rd.Release()
		}
	}
	c.Net.Close()
}
