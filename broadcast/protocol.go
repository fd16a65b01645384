package broadcast

import (
	"fmt"
	"time"

	"github.com/onecast/onecast/bufpool"
)

// Mode says how much of a payload each round carries.
type Mode uint8

const (
	// ModeFull carries the payload in every round: the textbook formulation and
	// the baseline the characterization measures.
	ModeFull Mode = iota + 1
	// ModeDigest carries the payload in the first round only; later rounds carry
	// its digest, and a node missing a payload fetches it.
	ModeDigest
)

func (m Mode) String() string {
	switch m {
	case ModeFull:
		return "full"
	case ModeDigest:
		return "digest"
	}
	return fmt.Sprintf("mode%d", uint8(m))
}

// ParseMode maps "full" or "digest" to a Mode.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "full":
		return ModeFull, nil
	case "digest":
		return ModeDigest, nil
	}
	return 0, fmt.Errorf("unknown mode %q (want full or digest)", s)
}

// Protocol is a protocol instance on one node, as a pure state machine: it
// never starts a goroutine, reads a clock or touches a socket. A driver (the
// simulator, the node runner, a test) feeds it messages, ticks and the
// application's input, and carries out what Ready returns. Methods are not
// safe for concurrent use: one driver goroutine owns a Protocol.
//
// The usage loop:
//
//	p.Submit(payload)            // application input
//	p.Step(from, msg)            // each authenticated message
//	p.Tick(now)                  // when the clock passes rd.NextWake
//	rd := p.Ready()
//	send(rd.Messages); deliver(rd.Deliveries)
type Protocol interface {
	// Step consumes one message from `from`, whose authenticator the driver
	// has verified and whose Sender equals from. It borrows m: the protocol
	// retains m.Payload and copies m.Body if it keeps them. A bad message
	// returns a *RejectError and changes nothing.
	Step(from NodeID, m *Message) error
	// Tick advances the protocol's logical clock to now, for timeouts and
	// rounds. now never decreases.
	Tick(now time.Duration)
	// Submit hands the protocol one application payload: a value to
	// broadcast, or a request to order. It takes p's reference.
	Submit(p bufpool.Buf) error
	// Ready returns the work accumulated since the last call and clears it.
	// Its slices are valid until the next call to Ready.
	Ready() Ready
}

// Ready is what a protocol asks its driver to do.
type Ready struct {
	// Messages to send. The driver sets the authenticator and sends each
	// message to its destination(s). Each message owns one reference to its
	// Payload, which passes to the driver: release it once sent.
	Messages []Outbound
	// Deliveries to hand to the application, in order. Each owns one
	// reference to its Payload, which passes to the application.
	Deliveries []Delivery
	// NextWake is the logical time of the next Tick the protocol needs, or 0
	// when it waits for nothing.
	NextWake time.Duration
}

// Empty reports whether rd asks for nothing.
func (rd *Ready) Empty() bool { return len(rd.Messages) == 0 && len(rd.Deliveries) == 0 }

// Release drops every payload reference rd holds, for a driver that discards
// a Ready (shutdown, a crashed simulated node).
func (rd *Ready) Release() {
	for i := range rd.Messages {
		rd.Messages[i].Msg.Payload.Release()
	}
	for i := range rd.Deliveries {
		rd.Deliveries[i].Payload.Release()
	}
}

// Outbound is a message and its destination: one node, or Everyone (every
// node but the sender). Drivers never loop a message back to its sender: a
// protocol counts its own vote itself.
type Outbound struct {
	To  NodeID
	Msg Message
}

// Delivery is one payload delivered to the application.
type Delivery struct {
	Instance Instance
	// Index is the payload's position within its instance's batch.
	Index int
	// Digest names the instance's payload: the delivered payload itself
	// when the instance carries one, the batch it is a slice of otherwise.
	// (Instance, Index) names the delivered item; hash Payload for its own
	// digest.
	Digest Digest
	// Payload is the delivered bytes; the application releases it.
	Payload bufpool.Buf
}

// Params are the parameters every protocol shares.
type Params struct {
	N    int    // nodes in the cluster
	F    int    // faults tolerated
	Self NodeID // this node
	Mode Mode
}

// Validate checks the shared parameters against the fault bound of the
// protocol (n ≥ minN(f)).
func (p Params) Validate(minN func(f int) int) error {
	switch {
	case p.N <= 0:
		return fmt.Errorf("n must be positive, got %d", p.N)
	case p.F < 0:
		return fmt.Errorf("f must not be negative, got %d", p.F)
	case p.N < minN(p.F):
		return fmt.Errorf("n = %d is too small for f = %d (need n ≥ %d)", p.N, p.F, minN(p.F))
	case int(p.Self) >= p.N:
		return fmt.Errorf("self %d outside the cluster of %d", p.Self, p.N)
	case p.Mode != ModeFull && p.Mode != ModeDigest:
		return fmt.Errorf("mode %d is neither full nor digest", p.Mode)
	}
	return nil
}
