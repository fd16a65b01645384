package bracha

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/broadcast/quorum"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/internal/mutant"
)

// Bracha's message types (Header.Type under broadcast.ProtoBracha). FETCH
// and PAYLOAD use the shared broadcast.TypeFetch and broadcast.TypePayload.
const (
	TypeSend  broadcast.MsgType = 1 // the origin's value: carries the payload
	TypeEcho  broadcast.MsgType = 2 // "I received this SEND"
	TypeReady broadcast.MsgType = 3 // "I am ready to deliver this digest"
)

// Layouts of an instance's payload, carried in Header.Round. A vote is for
// the triple (Digest, PayloadLen, layout), so a sender cannot make two
// correct nodes read one digest two ways.
const (
	// LayoutSingle: the payload is one application payload, as submitted.
	LayoutSingle uint32 = 0
	// LayoutBatch: the payload is a batch container (see EncodeBatch).
	LayoutBatch uint32 = 1
)

// TypeName names Bracha's message types, for reports.
func TypeName(t broadcast.MsgType) string {
	switch t {
	case TypeSend:
		return "SEND"
	case TypeEcho:
		return "ECHO"
	case TypeReady:
		return "READY"
	case broadcast.TypeFetch:
		return "FETCH"
	case broadcast.TypePayload:
		return "PAYLOAD"
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// MinN is the smallest cluster that tolerates f Byzantine nodes: 3f+1.
func MinN(f int) int { return quorum.MinN(f) }

// Config configures one node. N, F, Self and Mode are required; every other
// zero field takes the default its comment names.
type Config struct {
	// N is the number of nodes, F the number of Byzantine nodes tolerated;
	// N ≥ 3F+1.
	N, F int
	// Self is this node's ID, 0 … N-1.
	Self broadcast.NodeID
	// Mode is ModeFull (every message carries the payload) or ModeDigest
	// (only SEND and PAYLOAD carry it).
	Mode broadcast.Mode
	// Keys are the node's keys. Bracha needs no transferable proof, so the
	// node itself never signs: the driver authenticates links with them
	// (broadcast.NewMAC or NewEd25519). Optional.
	Keys *broadcast.Keyring
	// Store holds the node's payloads. Nil: the node makes its own, and
	// Close closes it.
	Store *broadcast.PayloadStore
	// Pool is where batch containers are built. Nil: the heap.
	Pool *bufpool.Pool
	// Logger receives debug logs of rejected input. Nil: discard.
	Logger *slog.Logger

	// Batch is the number of application payloads per instance. Default 1:
	// every payload is its own instance and is sent as is.
	Batch int
	// BatchDelay seals a partial batch this long (logical time) after its
	// first payload. Default 1ms when Batch > 1; negative: a partial batch
	// waits for Flush.
	BatchDelay time.Duration
	// MaxBatch is the most payloads a received batch container may hold.
	// Default 65536.
	MaxBatch int
	// MaxPayload is the largest instance payload accepted. Default
	// broadcast.DefaultLimits.MaxPayload.
	MaxPayload uint32

	// FetchDelay is how long a node that needs a payload waits for the
	// SEND before it starts fetching: with a correct origin the SEND is
	// usually in flight. Default FetchTimeout/2; negative: no wait.
	FetchDelay time.Duration
	// FetchTimeout is how long a FETCH may stay unanswered before the node
	// asks another peer. After each full round over the vouchers it
	// doubles, up to 64 times. Default 20ms.
	FetchTimeout time.Duration
	// MaxFetching bounds the instances fetching at once; the others wait
	// for a slot. Default 64.
	MaxFetching int
	// Retention is how long a delivered instance keeps its payload pinned
	// to answer FETCHes from slower peers. Default 0 in full mode (nobody
	// fetches), 10s in digest mode.
	Retention time.Duration
	// MaxRetained and MaxRetainedBytes bound the delivered instances kept
	// for Retention, in number and payload bytes; the oldest goes first.
	// Defaults 4096 and 64 MiB.
	MaxRetained      int
	MaxRetainedBytes int64
	// Window is how many sequence numbers per origin, from the oldest one
	// not yet delivered, the node tracks; messages for later ones are
	// rejected (ReasonQuota). It bounds what a Byzantine origin or voter can
	// make the node remember. A correct node that falls further behind an
	// origin than this loses that origin's later messages: keep it well
	// above MaxInFlight. Default 4096.
	Window int
	// MaxInFlight bounds this node's own undelivered instances; later
	// submissions wait in a backlog. At most Window. Default 256.
	MaxInFlight int
	// MaxOriginBytes bounds the payload bytes pinned for one origin's
	// undelivered instances; a SEND beyond it is refused (ReasonQuota).
	// Default 256 MiB.
	MaxOriginBytes int64
	// SendExpiry unpins the payload of a SEND whose instance has not
	// delivered this long (logical time) after the SEND was pinned, and
	// gives its bytes back to the origin's MaxOriginBytes: a Byzantine
	// origin that sends to too few nodes for its instances to deliver pins
	// nothing forever. Should such an instance deliver later, its payload
	// is fetched like any other. Default 60 s.
	SendExpiry time.Duration
	// ServeRate and ServeBurst rate-limit the PAYLOAD bytes this node sends
	// to one peer in answer to FETCH (a token bucket over logical time).
	// Besides, a peer is sent one instance's payload at most 4 times.
	// Defaults 8 MiB/s and 16 MiB: a correct node fetches only what it
	// missed (payloads of a Byzantine origin that did not send it its SEND,
	// or stripped and evicted), at most an origin's share of the traffic,
	// while every byte answered costs this node's CPU and uplink — a
	// fetch-flooding peer (bench --byzantine 1:fetch-flood) took 59 % of
	// the correct nodes' throughput at 1 GiB/s. The burst lets one
	// maximum-size payload out at once.
	ServeRate, ServeBurst int64

	// UnsafeEchoQuorum, when positive, replaces the ECHO quorum
	// ⌈(n+f+1)/2⌉. For tests of the checkers only: a lower value breaks
	// the protocol — totality at n = 3f+1 (the READY thresholds still keep
	// agreement there), agreement too at n ≥ 3f+2.
	UnsafeEchoQuorum int
	// Mutations seeds bugs for the mutation check (package internal/mutant).
	// For tests only: the zero Set is the correct protocol.
	Mutations mutant.Set
}

func (c *Config) setDefaults() {
	if c.Batch <= 0 {
		c.Batch = 1
	}
	if c.BatchDelay == 0 && c.Batch > 1 {
		c.BatchDelay = time.Millisecond
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1 << 16
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = broadcast.DefaultLimits.MaxPayload
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 20 * time.Millisecond
	}
	if c.FetchDelay == 0 {
		c.FetchDelay = c.FetchTimeout / 2
	}
	if c.MaxFetching <= 0 {
		c.MaxFetching = 64
	}
	if c.Retention == 0 && c.Mode == broadcast.ModeDigest {
		c.Retention = 10 * time.Second
	}
	if c.MaxRetained <= 0 {
		c.MaxRetained = 4096
	}
	if c.MaxRetainedBytes <= 0 {
		c.MaxRetainedBytes = 64 << 20
	}
	if c.Window <= 0 {
		c.Window = 4096
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = min(256, c.Window)
	}
	if c.MaxOriginBytes <= 0 {
		c.MaxOriginBytes = 256 << 20
	}
	if c.SendExpiry <= 0 {
		c.SendExpiry = time.Minute
	}
	if c.ServeRate <= 0 {
		c.ServeRate = 8 << 20
	}
	if c.ServeBurst <= 0 {
		c.ServeBurst = 16 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	p := broadcast.Params{N: c.N, F: c.F, Self: c.Self, Mode: c.Mode}
	if err := p.Validate(MinN); err != nil {
		return fmt.Errorf("bracha: config: %w", err)
	}
	switch {
	case c.N > 1<<15-1:
		return fmt.Errorf("bracha: config: N = %d exceeds %d", c.N, 1<<15-1)
	case c.UnsafeEchoQuorum < 0 || c.UnsafeEchoQuorum > c.N:
		return fmt.Errorf("bracha: config: UnsafeEchoQuorum = %d outside 0 … N", c.UnsafeEchoQuorum)
	case c.MaxInFlight > c.Window:
		return fmt.Errorf("bracha: config: MaxInFlight = %d exceeds Window = %d", c.MaxInFlight, c.Window)
	case c.Retention < 0:
		return fmt.Errorf("bracha: config: Retention = %v is negative", c.Retention)
	}
	return nil
}

// Spec describes Bracha to the tools that run any protocol (simulator,
// benchmark, node runner, CLI). Env.Tuning.Batch sets Config.Batch and
// Env.Tuning.Timeout sets Config.FetchTimeout.
var Spec = broadcast.Spec{
	Name:     "bracha",
	ID:       broadcast.ProtoBracha,
	Class:    broadcast.ReliableBroadcast,
	MinN:     MinN,
	TypeName: TypeName,
	New: func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		return New(Config{N: p.N, F: p.F, Self: p.Self, Mode: p.Mode, Keys: env.Keys, Store: env.Store,
			Batch: env.Tuning.Batch, FetchTimeout: env.Tuning.Timeout})
	},
	DefaultScheme: broadcast.SchemeMAC,
}
