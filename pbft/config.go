package pbft

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/broadcast/quorum"
	"github.com/onecast/onecast/internal/mutant"
)

// Message types of PBFT (Header.Type). Fetch and payload use the shared
// broadcast.TypeFetch / TypePayload.
const (
	TypeRequest    broadcast.MsgType = 1
	TypePrePrepare broadcast.MsgType = 2
	TypePrepare    broadcast.MsgType = 3
	TypeCommit     broadcast.MsgType = 4
	TypeReply      broadcast.MsgType = 5
	TypeCheckpoint broadcast.MsgType = 6
	TypeViewChange broadcast.MsgType = 7
	TypeNewView    broadcast.MsgType = 8
)

// TypeName names a PBFT message type.
func TypeName(t broadcast.MsgType) string {
	switch t {
	case TypeRequest:
		return "REQUEST"
	case TypePrePrepare:
		return "PRE-PREPARE"
	case TypePrepare:
		return "PREPARE"
	case TypeCommit:
		return "COMMIT"
	case TypeReply:
		return "REPLY"
	case TypeCheckpoint:
		return "CHECKPOINT"
	case TypeViewChange:
		return "VIEW-CHANGE"
	case TypeNewView:
		return "NEW-VIEW"
	case broadcast.TypeFetch:
		return "FETCH"
	case broadcast.TypePayload:
		return "PAYLOAD"
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// Signer makes and checks the signatures inside certificates (PRE-PREPARE,
// PREPARE, CHECKPOINT, VIEW-CHANGE, NEW-VIEW), which must convince a third
// party even when links are authenticated with MACs.
type Signer interface {
	Sign(d *broadcast.Digest) []byte
	Verify(from broadcast.NodeID, d *broadcast.Digest, sig []byte) error
}

// NewEd25519Signer signs certificates with the node's Ed25519 key.
func NewEd25519Signer(k *broadcast.Keyring) (Signer, error) {
	a, err := broadcast.NewEd25519(k)
	if err != nil {
		return nil, fmt.Errorf("pbft: certificate signer: %w", err)
	}
	return edSigner{a}, nil
}

type edSigner struct{ a *broadcast.Ed25519 }

func (s edSigner) Sign(d *broadcast.Digest) []byte { return s.a.Authenticate(nil, 0, d) }
func (s edSigner) Verify(from broadcast.NodeID, d *broadcast.Digest, sig []byte) error {
	return s.a.Verify(from, d, sig)
}

// OracleSigner is a simulated signature scheme for the simulator: an HMAC
// under a secret that only the harness holds, keyed per node. Byzantine code
// that is not handed the secret cannot forge another node's signature, which
// is all the protocol needs, at a fraction of Ed25519's cost.
type OracleSigner struct {
	Secret [32]byte
	Self   broadcast.NodeID
}

// mac is HMAC-SHA256 under Secret of (node, d), truncated to 16 bytes,
// computed on the stack.
func (o OracleSigner) mac(node broadcast.NodeID, d *broadcast.Digest) [16]byte {
	var buf [sha256.BlockSize + 4 + 32]byte
	for i := range sha256.BlockSize {
		var k byte
		if i < len(o.Secret) {
			k = o.Secret[i]
		}
		buf[i] = k ^ 0x36
	}
	buf[sha256.BlockSize], buf[sha256.BlockSize+1], buf[sha256.BlockSize+2], buf[sha256.BlockSize+3] = byte(node), byte(node>>8), byte(node>>16), byte(node>>24)
	copy(buf[sha256.BlockSize+4:], d[:])
	inner := sha256.Sum256(buf[:])
	var outer [sha256.BlockSize + sha256.Size]byte
	for i := range sha256.BlockSize {
		outer[i] = buf[i] ^ 0x36 ^ 0x5c
	}
	copy(outer[sha256.BlockSize:], inner[:])
	sum := sha256.Sum256(outer[:])
	var out [16]byte
	copy(out[:], sum[:16])
	return out
}

// Sign returns the node's simulated signature of d.
func (o OracleSigner) Sign(d *broadcast.Digest) []byte {
	m := o.mac(o.Self, d)
	return append([]byte(nil), m[:]...)
}

// Verify checks a simulated signature of from.
func (o OracleSigner) Verify(from broadcast.NodeID, d *broadcast.Digest, sig []byte) error {
	m := o.mac(from, d)
	if !hmac.Equal(m[:], sig) {
		return broadcast.Reject(broadcast.ReasonAuth, "pbft: certificate signature of %v does not verify", from)
	}
	return nil
}

// Config configures a replica (and the client it hosts).
type Config struct {
	broadcast.Params
	// Store holds request payloads, batches and view-change certificates by
	// digest. Required.
	Store *broadcast.PayloadStore
	// Signer signs certificates. Default: Ed25519 from Keys; with neither,
	// certificates are unsigned and trusted, which is safe only when no
	// replica is Byzantine (crash-fault tests).
	Signer Signer
	// Keys are the node's keys, for the default Signer.
	Keys *broadcast.Keyring
	// StateMachine is the application. Default: a HashChain.
	StateMachine StateMachine
	// RequestAuth is how clients authenticate their requests to replicas
	// that do not get them on the client's own link (relayed, or named in a
	// PRE-PREPARE). Default: MAC vectors when Keys are set, else Signer.
	RequestAuth RequestAuth

	// Batch is the most requests per PRE-PREPARE (default 16, max 512: a
	// batch's entries must fit a 64 KiB body).
	Batch int
	// Pipeline is the most batches the primary has in flight, pre-prepared
	// but not executed (default 4). Requests that arrive meanwhile fill the
	// next batch.
	Pipeline int
	// AdaptiveBatch makes batches grow with the queue: an idle pipeline
	// proposes whatever is queued at once, but with batches in flight the
	// primary proposes only full batches (Batch requests) until one
	// executes, which under load spreads the per-batch signatures over
	// Batch requests. Off (default), the primary proposes whenever the
	// pipeline has room, so a deep pipeline under load orders many small
	// batches.
	AdaptiveBatch bool
	// CheckpointInterval K: a checkpoint every K sequence numbers (default 32).
	CheckpointInterval uint64
	// Window L: sequence numbers are accepted in (h, h+L], h the last stable
	// checkpoint (default 2K).
	Window uint64
	// ClientWindow is the most outstanding requests per client (default 64):
	// a replica holds at most this many of one client's requests.
	ClientWindow int
	// MaxRequest bounds a request's payload (default 1 MiB).
	MaxRequest int
	// Timeout is the base view-change and retransmission timeout (logical
	// time, default 200ms); it doubles with each view change in a row.
	Timeout time.Duration
	// OnExecute, when set, is told of every batch the replica executes, in
	// order, with the batch digest and its entries (borrowed). Checkers use
	// it; it must not call back into the replica.
	OnExecute func(seq uint64, batch broadcast.Digest, entries []Entry)
	// FetchAnswerRate bounds the fetch answers one peer may take, in bytes
	// per second of logical time (default 4 MiB/s: a share of one link per
	// peer that leaves a flooded replica its capacity — 64 MiB/s did not
	// bite before the transport saturated; one answer may overdraw it, so
	// a large state blob still goes out; see fetch.go).
	FetchAnswerRate int64
	// FutureQuota bounds the payload bytes of PRE-PREPAREs for views not
	// yet entered that are kept per primary (default 4 MiB); beyond it they
	// are kept without their payload, which is fetched if needed.
	FutureQuota int
	// Journal, when set, makes durable what the replica must not forget
	// across a restart (recovery.go); kv/replica provides one.
	Journal Journal
	// Recovery, when set, restarts the replica from what its Journal and
	// its application's log kept (see Recovery). Its payloads are borrowed
	// for the call to New.
	Recovery *Recovery
	// Logger, default slog.Default().
	Logger *slog.Logger

	// UnsafeCommitQuorum, when positive, replaces the commit quorum 2f+1.
	// It exists so that tests can prove the checkers catch a broken PBFT;
	// never set it otherwise.
	UnsafeCommitQuorum int
	// Mutations seeds bugs for the mutation check (package internal/mutant).
	// For tests only: the zero Set is the correct protocol.
	Mutations mutant.Set
}

const maxBatch = 512

// MinN is PBFT's bound: n ≥ 3f+1 (quorum.MinN).
func MinN(f int) int { return quorum.MinN(f) }

func (c *Config) setDefaults() error {
	if err := c.Params.Validate(MinN); err != nil {
		return fmt.Errorf("pbft: %w", err)
	}
	if c.Store == nil {
		return fmt.Errorf("pbft: Config.Store is required")
	}
	if c.Batch == 0 {
		c.Batch = 16
	}
	if c.Batch < 1 || c.Batch > maxBatch {
		return fmt.Errorf("pbft: Config.Batch = %d outside 1…%d", c.Batch, maxBatch)
	}
	if c.Pipeline == 0 {
		c.Pipeline = 4
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 32
	}
	if c.Window == 0 {
		c.Window = 2 * c.CheckpointInterval
	}
	if c.Window < c.CheckpointInterval || c.Window%c.CheckpointInterval != 0 {
		return fmt.Errorf("pbft: Config.Window = %d must be a positive multiple of CheckpointInterval %d", c.Window, c.CheckpointInterval)
	}
	if c.Window > 4096 {
		return fmt.Errorf("pbft: Config.Window = %d exceeds 4096", c.Window)
	}
	if c.Pipeline < 1 || uint64(c.Pipeline) > c.Window {
		return fmt.Errorf("pbft: Config.Pipeline = %d outside 1…Window", c.Pipeline)
	}
	if c.ClientWindow == 0 {
		c.ClientWindow = 64
	}
	if c.ClientWindow < 1 || c.ClientWindow > 1<<16 {
		return fmt.Errorf("pbft: Config.ClientWindow = %d outside 1…65536", c.ClientWindow)
	}
	if c.MaxRequest == 0 {
		c.MaxRequest = 1 << 20
	}
	if c.Timeout == 0 {
		c.Timeout = 200 * time.Millisecond
	}
	if c.FetchAnswerRate == 0 {
		c.FetchAnswerRate = 4 << 20
	}
	if c.FetchAnswerRate < 0 {
		return fmt.Errorf("pbft: Config.FetchAnswerRate = %d is negative", c.FetchAnswerRate)
	}
	if c.FutureQuota == 0 {
		c.FutureQuota = 4 << 20
	}
	if c.FutureQuota < 0 {
		return fmt.Errorf("pbft: Config.FutureQuota = %d is negative", c.FutureQuota)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.StateMachine == nil {
		c.StateMachine = &HashChain{}
	}
	if c.Signer == nil && c.Keys != nil {
		s, err := NewEd25519Signer(c.Keys)
		if err != nil {
			return err
		}
		c.Signer = s
	}
	if c.Signer == nil {
		c.Signer = trustSigner{}
	}
	if c.RequestAuth == RequestAuthDefault {
		c.RequestAuth = RequestSigned
		if c.Keys != nil {
			c.RequestAuth = RequestMACs
		}
	}
	if c.RequestAuth != RequestMACs && c.RequestAuth != RequestSigned {
		return fmt.Errorf("pbft: Config.RequestAuth = %d is neither RequestMACs nor RequestSigned", c.RequestAuth)
	}
	if c.RequestAuth == RequestMACs && c.Keys == nil {
		return fmt.Errorf("pbft: Config.RequestAuth = RequestMACs needs Config.Keys")
	}
	return nil
}

// requestAuthenticator is what clients authenticate requests with and
// replicas check them with: Config.Signer, or MAC vectors from Config.Keys.
func (c *Config) requestAuthenticator() (Signer, error) {
	if c.RequestAuth == RequestSigned {
		return c.Signer, nil
	}
	m, err := broadcast.NewMAC(c.Keys)
	if err != nil {
		return nil, fmt.Errorf("pbft: request MACs: %w", err)
	}
	return MACVector{MAC: m, N: c.N}, nil
}

// RequestAuth selects how requests are authenticated (Config.RequestAuth).
type RequestAuth uint8

const (
	// RequestAuthDefault is RequestMACs when Config.Keys are set, else
	// RequestSigned.
	RequestAuthDefault RequestAuth = iota
	// RequestMACs: the client appends a vector of n MACs (HMAC-SHA256, 16
	// bytes each, under the pairwise keys of the cluster's keyrings) to each
	// request, as in Castro and Liskov's MAC variant; the vector travels
	// with the request when it is relayed and inside the PRE-PREPARE's
	// entry, and each replica checks its own MAC. n HMACs per request
	// instead of an Ed25519 signature, one HMAC per check instead of a
	// signature verification. The cost: a MAC does not convince a third
	// party, so a Byzantine client that gives some replicas bad MACs can
	// stall the request until a view change (never safety).
	RequestMACs
	// RequestSigned: the client signs each request with Config.Signer
	// (Ed25519 by default), which every replica can check.
	RequestSigned
)

// MACVector is a Signer whose "signature" is a vector of n MACs, one per
// replica, under the keys node MAC.self shares with each; Verify checks the
// verifier's own entry. It authenticates requests (RequestMACs), never
// certificates: a MAC vector does not convince a third party.
type MACVector struct {
	MAC *broadcast.MAC
	N   int
}

// Sign returns the MAC vector of d.
func (v MACVector) Sign(d *broadcast.Digest) []byte {
	return v.MAC.Authenticate(make([]byte, 0, v.N*broadcast.MACSize), broadcast.Everyone, d)
}

// Verify checks this replica's entry of from's MAC vector of d.
func (v MACVector) Verify(from broadcast.NodeID, d *broadcast.Digest, vec []byte) error {
	if len(vec) != v.N*broadcast.MACSize {
		return broadcast.Reject(broadcast.ReasonAuth, "pbft: request MAC vector of %d bytes, want %d", len(vec), v.N*broadcast.MACSize)
	}
	if err := v.MAC.Verify(from, d, vec); err != nil {
		return broadcast.Reject(broadcast.ReasonAuth, "pbft: request MAC of %v: %v", from, err)
	}
	return nil
}

// trustSigner makes empty signatures and accepts any: crash-fault use only.
type trustSigner struct{}

func (trustSigner) Sign(*broadcast.Digest) []byte                            { return nil }
func (trustSigner) Verify(broadcast.NodeID, *broadcast.Digest, []byte) error { return nil }

// Spec describes PBFT to the tools that run any protocol. Env.Tuning.Batch
// sets Config.Batch and Env.Tuning.Timeout sets Config.Timeout; Env.Keys
// sign certificates.
var Spec = broadcast.Spec{
	Name:     "pbft",
	ID:       broadcast.ProtoPBFT,
	Class:    broadcast.StateMachineReplication,
	MinN:     MinN,
	TypeName: TypeName,
	New: func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		return New(Config{Params: p, Store: env.Store, Keys: env.Keys, Batch: env.Tuning.Batch, Timeout: env.Tuning.Timeout})
	},
	DefaultScheme: broadcast.SchemeMAC,
}
