package sim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Behaviour makes a node Byzantine. The node still runs a correct protocol
// instance (its core); the behaviour sits between the core and the network
// and decides what actually leaves: it may drop, alter, duplicate, delay or
// invent messages. Whatever it sends leaves under its own node's identity:
// the simulator's links are authentic, so no behaviour can forge another
// node's message.
//
// A new behaviour is a few lines: implement Outbound (and, if needed, the
// optional InboundFilter, Twinned or Closer), and list a BehaviourSpec.
type Behaviour interface {
	// Outbound is called once per destination for each message the core
	// sends (Everyone already fanned out). It borrows m; a behaviour sends
	// with c.Send or c.SendNotBefore, which take their own payload
	// references. Sending nothing drops the message.
	Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message)
}

// InboundFilter is implemented by behaviours that look at, or suppress,
// what their node receives. Inbound borrows m and returns false to drop it
// before the core sees it.
type InboundFilter interface {
	Inbound(c *Ctx, from broadcast.NodeID, m *broadcast.Message) bool
}

// Twinned is implemented by behaviours that run two cores under one
// identity (and one keyring). Route says which core receives a message from
// `from`; the workload submits different payloads to the two cores.
type Twinned interface {
	Route(from broadcast.NodeID) int
}

// Closer is implemented by behaviours that hold payload references; Close
// releases them when the run ends.
type Closer interface {
	Close()
}

// BehaviourSpec names a behaviour and builds a fresh one for one node of one
// run. New may draw from c.Rand (crash times, subsets).
type BehaviourSpec struct {
	Name string
	Doc  string
	New  func(c *Ctx) Behaviour
}

// Assignment makes Count nodes Byzantine, each with a behaviour drawn from
// Behaviours.
type Assignment struct {
	Count      int
	Behaviours []BehaviourSpec
}

// Ctx is a Byzantine node's view of the run and its only way to send.
type Ctx struct {
	e    *engine
	self broadcast.NodeID
	core int
}

// Self returns the node's identity.
func (c *Ctx) Self() broadcast.NodeID { return c.self }

// N returns the cluster size.
func (c *Ctx) N() int { return c.e.cfg.N }

// F returns the fault bound.
func (c *Ctx) F() int { return c.e.cfg.F }

// Now returns the virtual time.
func (c *Ctx) Now() time.Duration { return c.e.now }

// Rand returns the run's random source (the one seeded RNG).
func (c *Ctx) Rand() *rand.Rand { return c.e.rng }

// Delta returns the network's post-GST delivery bound.
func (c *Ctx) Delta() time.Duration { return c.e.cfg.Net.Delta }

// RoundDuration returns the protocol's round length (Tuning.RoundDuration),
// or Delta when the protocol has none.
func (c *Ctx) RoundDuration() time.Duration {
	if r := c.e.cfg.Tuning.RoundDuration; r > 0 {
		return r
	}
	return c.e.cfg.Net.Delta
}

// Core returns which core produced the message being filtered (0, or 1 for
// the second twin).
func (c *Ctx) Core() int { return c.core }

// Protocol returns the protocol's wire ID.
func (c *Ctx) Protocol() broadcast.ProtocolID { return c.e.cfg.Spec.ID }

// Send sends m to `to` under the node's own identity. It borrows m (the
// payload gets its own reference).
func (c *Ctx) Send(to broadcast.NodeID, m *broadcast.Message) { c.e.send(c.self, to, m, 0) }

// SendNotBefore is Send with the arrival held back to at least t.
func (c *Ctx) SendNotBefore(to broadcast.NodeID, m *broadcast.Message, t time.Duration) {
	c.e.send(c.self, to, m, t)
}

// NewPayload makes a payload buffer of data (not copied), holding one
// reference that the caller owns.
func (c *Ctx) NewPayload(data []byte) bufpool.Buf { return c.e.wrap(data) }

// ParseByzantine parses a Byzantine assignment list such as "2:equivocate",
// "1:crash,1:twins" or "2:any" (each node draws from every behaviour), or
// "2:equivocate|replay" (each node draws from those listed), against the
// behaviours in specs.
func ParseByzantine(s string, specs []BehaviourSpec) ([]Assignment, error) {
	var out []Assignment
	if strings.TrimSpace(s) == "" || s == "0" || s == "none" {
		return nil, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		cnt, names, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			cnt, names = "1", part
		}
		k, err := strconv.Atoi(cnt)
		if err != nil || k < 0 {
			return nil, fmt.Errorf("sim: bad Byzantine count in %q", part)
		}
		a := Assignment{Count: k}
		if names == "any" || names == "all" || names == "mix" {
			a.Behaviours = specs
		} else {
			for name := range strings.SplitSeq(names, "|") {
				found := false
				for _, b := range specs {
					if b.Name == name {
						a.Behaviours = append(a.Behaviours, b)
						found = true
					}
				}
				if !found {
					return nil, fmt.Errorf("sim: unknown Byzantine behaviour %q (have %s)", name, BehaviourNames(specs))
				}
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// BehaviourNames lists the names of specs, for usage messages.
func BehaviourNames(specs []BehaviourSpec) string {
	names := make([]string, len(specs))
	for i, b := range specs {
		names[i] = b.Name
	}
	return strings.Join(names, ", ")
}
