package broadcast

import (
	"fmt"
	"time"
)

// Class is the family of properties a protocol promises; the simulator
// checks a protocol against its class's properties.
type Class uint8

// Protocol classes.
const (
	// ReliableBroadcast: validity, agreement, integrity, totality (Bracha).
	ReliableBroadcast Class = iota + 1
	// StateMachineReplication: no two correct replicas commit different
	// batches at one sequence number; each request executes once (PBFT).
	StateMachineReplication
	// ByzantineBroadcast: agreement and validity after a fixed number of
	// synchronous rounds (Dolev–Strong).
	ByzantineBroadcast
)

func (c Class) String() string {
	switch c {
	case ReliableBroadcast:
		return "reliable-broadcast"
	case StateMachineReplication:
		return "smr"
	case ByzantineBroadcast:
		return "byzantine-broadcast"
	}
	return fmt.Sprintf("class%d", uint8(c))
}

// Env is what a node's protocol instance is built with besides Params.
type Env struct {
	// Store holds the node's payloads. Required.
	Store *PayloadStore
	// Keys are the node's keys, for protocols that sign or verify inside
	// the protocol (signature chains, certificates). May be nil for
	// protocols that leave authentication to the driver.
	Keys *Keyring
	// Tuning are the knobs every tool can set.
	Tuning Tuning
}

// Tuning are protocol knobs shared by the tools (CLI flags map onto them).
// Zero values mean the protocol's default.
type Tuning struct {
	// Batch is the number of application payloads per instance or batch.
	Batch int
	// RoundDuration is a synchronous protocol's Δ.
	RoundDuration time.Duration
	// MaxDelay bounds the one-way delay between correct nodes (propagation,
	// queueing, serialization, clock skew). A synchronous protocol derives
	// its Δ from it when RoundDuration is zero.
	MaxDelay time.Duration
	// Timeout is the base timeout for retries, fetches and view changes.
	Timeout time.Duration
	// Auth is the authenticator scheme the driver uses on links; protocols
	// that need transferable proofs check it.
	Auth Scheme
}

// Spec describes a protocol to the tools that run any protocol (the
// simulator, the benchmark, the node runner, the CLI). Each protocol package
// exports one; the CLI lists them. No global registry.
type Spec struct {
	// Name is the protocol's name on the command line ("bracha").
	Name string
	// ID is its wire protocol number.
	ID ProtocolID
	// Class is the property family it promises.
	Class Class
	// MinN returns the smallest n that tolerates f faults.
	MinN func(f int) int
	// New builds node p.Self's instance.
	New func(p Params, env Env) (Protocol, error)
	// TypeName names the protocol's message types, for reports.
	TypeName func(MsgType) string
	// DefaultScheme is the authenticator the protocol is meant to run with.
	DefaultScheme Scheme
}

// FindSpec returns the spec named name from specs.
func FindSpec(specs []Spec, name string) (Spec, error) {
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Spec{}, fmt.Errorf("unknown protocol %q (have %v)", name, names)
}
