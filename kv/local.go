package kv

import (
	"context"
	"fmt"
	"sync"

	"github.com/onecast/onecast/bufpool"
)

// Local is the single-node executor: it applies each op directly to a
// Store, logging it first to a WAL when one is given. It is the memcached
// server without replication — useful on its own, and the baseline the
// replicated service is measured against.
type Local struct {
	store *Store
	wal   *WAL

	mu  sync.Mutex
	pos uint64 // WAL position of the last logged op
}

// NewLocal returns an executor over store, logging to wal if it is not nil.
// Recover the store from the WAL (WAL.Recover) before serving.
func NewLocal(store *Store, wal *WAL) *Local {
	return &Local{store: store, wal: wal}
}

// Recover rebuilds the store from the WAL: the snapshot, then every logged
// op after it.
func (l *Local) Recover() error {
	if l.wal == nil {
		return nil
	}
	err := l.wal.Recover(func(_ uint64, snap []byte) error { return l.store.Restore(snap) },
		func(_ uint64, rec []byte) error {
			op := l.store.wrap(append([]byte(nil), rec...))
			l.store.ApplyOne(op, nil)
			op.Release()
			return nil
		})
	l.pos = l.wal.Pos()
	return err
}

// Execute applies op (taking the reference) and returns its reply. With a
// WAL, a write is logged before it is applied and the reply waits until the
// log is fsynced up to it (group commit: one fsync covers every op logged
// meanwhile); a read waits until everything it may have seen is on disk.
func (l *Local) Execute(_ context.Context, op bufpool.Buf) ([]byte, error) {
	defer op.Release()
	l.mu.Lock()
	if l.wal != nil && !isReadOp(op) {
		pos, err := l.wal.Append(op)
		if err != nil {
			l.mu.Unlock()
			return nil, fmt.Errorf("kv: log op: %w", err)
		}
		l.pos = pos
	}
	reply := l.store.ApplyOne(op, nil)
	pos := l.pos
	l.mu.Unlock()
	if l.wal != nil {
		if err := l.wal.SyncTo(pos); err != nil {
			return nil, fmt.Errorf("kv: sync log: %w", err)
		}
		if l.wal.ShouldSnapshot() {
			if err := l.snapshot(); err != nil {
				return nil, err
			}
		}
	}
	return reply, nil
}

// snapshot writes the store's snapshot and truncates the log behind it.
func (l *Local) snapshot() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.wal.ShouldSnapshot() {
		return nil
	}
	snap, err := l.store.Snapshot()
	if err != nil {
		return err
	}
	if err := l.wal.WriteSnapshot(l.pos, snap); err != nil {
		return fmt.Errorf("kv: snapshot: %w", err)
	}
	return nil
}

// isReadOp reports whether op is a get/gets (reads are not logged).
func isReadOp(op bufpool.Buf) bool {
	for seg := range op.Segments() {
		return len(seg) > 0 && Kind(seg[0]).IsRead()
	}
	return false
}
