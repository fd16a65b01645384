package pbft

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Op is one client request as the state machine sees it.
type Op struct {
	// Client is the node whose client issued the request.
	Client broadcast.NodeID
	// Timestamp is the client's request number.
	Timestamp uint64
	// Payload is the operation's bytes. It is borrowed for the call.
	Payload bufpool.Buf
}

// StateMachine is the replicated application. It must be deterministic:
// replicas that apply the same batches in the same order return the same
// results and the same snapshots. kv implements it.
type StateMachine interface {
	// Apply executes a committed batch at sequence number seq and returns one
	// result per op (the replica keeps the slices; do not reuse them).
	Apply(seq uint64, ops []Op) [][]byte
	// Snapshot returns the state's serialized form, for checkpoints and
	// state transfer.
	Snapshot() ([]byte, error)
	// Restore replaces the state with a snapshot.
	Restore(snap []byte) error
}

// HashChain is a small deterministic StateMachine for tests, the simulator
// and benchmarks: its state is a running SHA-256 over every applied op, and
// each result is the state after the op, so a result is correct only if
// every earlier op was applied in the same order.
type HashChain struct {
	state [32]byte
	ops   uint64
}

// Apply folds each op into the chain.
func (h *HashChain) Apply(_ uint64, ops []Op) [][]byte {
	out := make([][]byte, len(ops))
	results := make([]byte, 32*len(ops)) // one allocation for the batch's results
	for i, op := range ops {
		s := sha256.New()
		s.Write(h.state[:])
		var hdr [12]byte
		binary.LittleEndian.PutUint32(hdr[0:], uint32(op.Client))
		binary.LittleEndian.PutUint64(hdr[4:], op.Timestamp)
		s.Write(hdr[:])
		for seg := range op.Payload.Segments() {
			s.Write(seg)
		}
		s.Sum(h.state[:0])
		h.ops++
		out[i] = results[32*i : 32*(i+1) : 32*(i+1)]
		copy(out[i], h.state[:])
	}
	return out
}

// Snapshot returns the chain head and the op count.
func (h *HashChain) Snapshot() ([]byte, error) {
	b := make([]byte, 40)
	copy(b, h.state[:])
	binary.LittleEndian.PutUint64(b[32:], h.ops)
	return b, nil
}

// Restore loads a snapshot made by Snapshot.
func (h *HashChain) Restore(snap []byte) error {
	if len(snap) != 40 {
		return fmt.Errorf("pbft: hash-chain snapshot of %d bytes, want 40", len(snap))
	}
	copy(h.state[:], snap)
	h.ops = binary.LittleEndian.Uint64(snap[32:])
	return nil
}

// Ops returns the number of ops applied.
func (h *HashChain) Ops() uint64 { return h.ops }
