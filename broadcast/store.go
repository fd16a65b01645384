package broadcast

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/onecast/onecast/bufpool"
)

// StoreObserver is told when a digest becomes held and when it is evicted.
// The AF_XDP transport uses it to keep the kernel's map of held digests in
// step with the store. It is called with the store's lock held: it must be
// quick and must not call back into the store.
type StoreObserver interface {
	// Held says that d's payload is now held, supplied by `from` (the
	// peer whose quota it is charged to: an observer with a bounded table
	// bounds each supplier's share of it).
	Held(from NodeID, d Digest)
	// Evicted says that d's payload is no longer held.
	Evicted(d Digest)
}

// StoreConfig configures a PayloadStore.
type StoreConfig struct {
	// SenderQuota bounds the bytes of unpinned payloads charged to one
	// sender: payloads that arrived but that no protocol state references
	// yet. When a new payload would exceed it, that sender's oldest unpinned
	// payloads are evicted first. Default 64 MiB.
	SenderQuota int64
	// Observer, when set, is told of every digest held and evicted.
	Observer StoreObserver
}

// entryOverhead is what one entry is charged beyond its payload bytes, so
// that a flood of tiny payloads is bounded too.
const entryOverhead = 128

// StoreStats are a store's counters.
type StoreStats struct {
	Puts            uint64 // Put calls
	Stored          uint64 // payloads stored
	StoredBytes     uint64 // payload bytes stored, total
	DupPuts         uint64 // Puts of a digest already held
	DupBytesAvoided uint64 // payload bytes those Puts did not store again
	Mismatches      uint64 // Puts refused: bytes do not hash to the digest
	QuotaRejects    uint64 // Puts refused: larger than the sender quota
	QuotaEvictions  uint64 // unpinned payloads evicted to make room
	Evictions       uint64 // payloads evicted after their last unpin
	Held            int    // payloads held now
	HeldBytes       int64  // payload bytes held now
}

// PayloadStore holds each payload once, by digest. It is safe for concurrent
// use.
//
// Lifecycle of an entry: Put stores it unpinned, charged to the sender that
// supplied it (bounded by the sender quota); Pin marks it as referenced by
// protocol state, and lifts the charge; when the last pin goes (the instance
// delivered and was collected), the entry is evicted and the store's
// reference released. The application's own references from Get or from a
// delivery keep the bytes alive after eviction; the store just forgets them.
type PayloadStore struct {
	cfg StoreConfig

	mu      sync.Mutex
	entries map[Digest]*entry
	senders map[NodeID]*senderQueue
	spare   *entry // free list of entry structs
	// oldest and newest end the age list: the entries whose payload may
	// still live in a transport's frames, in the order they were stored
	// (Rehome walks it from the oldest).
	oldest, newest *entry

	puts, stored, storedBytes, dupPuts, dupBytes  atomic.Uint64
	mismatches, quotaRejects, quotaEvicts, evicts atomic.Uint64
	heldBytes                                     atomic.Int64
}

type entry struct {
	digest Digest
	buf    bufpool.Buf // the store's reference
	pins   int32
	from   NodeID
	// Unpinned entries are on their sender's queue, oldest first.
	prev, next *entry
	queued     bool
	// older, newer link the store's age list; aged says the entry is on it.
	older, newer *entry
	aged         bool
	rehoming     bool // Rehome is copying the payload, outside the lock
}

type senderQueue struct {
	head, tail *entry
	bytes      int64
}

// NewPayloadStore builds a store.
func NewPayloadStore(cfg StoreConfig) *PayloadStore {
	if cfg.SenderQuota <= 0 {
		cfg.SenderQuota = 64 << 20
	}
	return &PayloadStore{cfg: cfg, entries: make(map[Digest]*entry), senders: make(map[NodeID]*senderQueue)}
}

func charge(b bufpool.Buf) int64 { return int64(b.Len()) + entryOverhead }

// Put offers the payload b for digest d, received from `from`. It borrows b:
// on success the store keeps its own reference.
//
// If d is already held, nothing is hashed or stored: the bytes are counted as
// a duplicate avoided, and Put returns nil. Otherwise b must hash to d
// (ErrDigestMismatch) and fit from's quota (ErrQuota); nothing already held
// is touched by a refused Put.
func (s *PayloadStore) Put(from NodeID, d Digest, b bufpool.Buf) error {
	return s.put(from, d, b, true)
}

// PutOwn is Put for a payload whose digest the caller has just computed
// from b itself — a node's own submission — so it is not hashed a second
// time. Never use it for bytes from the network.
func (s *PayloadStore) PutOwn(from NodeID, d Digest, b bufpool.Buf) error {
	return s.put(from, d, b, false)
}

func (s *PayloadStore) put(from NodeID, d Digest, b bufpool.Buf, verify bool) error {
	s.puts.Add(1)
	s.mu.Lock()
	if _, ok := s.entries[d]; ok {
		s.mu.Unlock()
		s.dupPuts.Add(1)
		s.dupBytes.Add(uint64(b.Len()))
		return nil
	}
	s.mu.Unlock()

	// Hash outside the lock: it is the one real cost of a Put.
	if verify {
		if got := DigestOf(b); got != d {
			s.mismatches.Add(1)
			return decodeErr(ReasonDigestMismatch, "payload from %v hashes to %v, not %v", from, got, d)
		}
	}
	cost := charge(b)
	if cost > s.cfg.SenderQuota {
		s.quotaRejects.Add(1)
		return decodeErr(ReasonQuota, "payload of %d bytes from %v exceeds the sender quota of %d", b.Len(), from, s.cfg.SenderQuota)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[d]; ok { // stored by a concurrent Put meanwhile
		s.dupPuts.Add(1)
		s.dupBytes.Add(uint64(b.Len()))
		return nil
	}
	q := s.senders[from]
	if q == nil {
		q = &senderQueue{}
		s.senders[from] = q
	}
	for q.bytes+cost > s.cfg.SenderQuota && q.head != nil {
		victim := q.head
		s.unqueue(victim)
		s.evict(victim)
		s.quotaEvicts.Add(1)
	}
	e := s.newEntry()
	e.digest, e.buf, e.from = d, b.Retain(), from
	s.entries[d] = e
	s.enqueue(q, e)
	s.age(e)
	s.stored.Add(1)
	s.storedBytes.Add(uint64(b.Len()))
	s.heldBytes.Add(int64(b.Len()))
	if s.cfg.Observer != nil {
		s.cfg.Observer.Held(from, d)
	}
	return nil
}

// Pin records one reference from protocol state to d. It returns false if d
// is not held.
func (s *PayloadStore) Pin(d Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[d]
	if !ok {
		return false
	}
	if e.queued {
		s.unqueue(e)
	}
	e.pins++
	return true
}

// Unpin drops one reference from protocol state; the last one evicts d.
func (s *PayloadStore) Unpin(d Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[d]
	if !ok || e.pins == 0 {
		return
	}
	e.pins--
	if e.pins == 0 {
		s.evict(e)
		s.evicts.Add(1)
	}
}

// Get returns a retained reference to d's payload; the caller releases it.
func (s *PayloadStore) Get(d Digest) (bufpool.Buf, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[d]
	if !ok {
		return bufpool.Buf{}, false
	}
	return e.buf.Retain(), true
}

// Has reports whether d is held.
func (s *PayloadStore) Has(d Digest) bool {
	s.mu.Lock()
	_, ok := s.entries[d]
	s.mu.Unlock()
	return ok
}

// Pins returns the number of pins on d (for tests).
func (s *PayloadStore) Pins(d Digest) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[d]; ok {
		return int(e.pins)
	}
	return 0
}

// Stats returns a snapshot of the counters.
func (s *PayloadStore) Stats() StoreStats {
	s.mu.Lock()
	held := len(s.entries)
	s.mu.Unlock()
	return StoreStats{
		Puts: s.puts.Load(), Stored: s.stored.Load(), StoredBytes: s.storedBytes.Load(),
		DupPuts: s.dupPuts.Load(), DupBytesAvoided: s.dupBytes.Load(),
		Mismatches: s.mismatches.Load(), QuotaRejects: s.quotaRejects.Load(),
		QuotaEvictions: s.quotaEvicts.Load(), Evictions: s.evicts.Load(),
		Held: held, HeldBytes: s.heldBytes.Load(),
	}
}

// Close releases every payload the store holds.
func (s *PayloadStore) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if e.queued {
			s.unqueue(e)
		}
		s.evict(e)
	}
}

// CountDuplicate records payload bytes that arrived for a digest the caller
// already knows it holds and so never offered to Put (a protocol instance
// that already has its payload, or a frame the kernel stripped).
func (s *PayloadStore) CountDuplicate(n int) {
	s.dupPuts.Add(1)
	s.dupBytes.Add(uint64(n))
}

func (s *PayloadStore) evict(e *entry) {
	s.unage(e)
	delete(s.entries, e.digest)
	s.heldBytes.Add(-int64(e.buf.Len()))
	e.buf.Release()
	if s.cfg.Observer != nil {
		s.cfg.Observer.Evicted(e.digest)
	}
	*e = entry{next: s.spare}
	s.spare = e
}

func (s *PayloadStore) newEntry() *entry {
	if e := s.spare; e != nil {
		s.spare = e.next
		e.next = nil
		return e
	}
	return &entry{}
}

func (s *PayloadStore) enqueue(q *senderQueue, e *entry) {
	e.queued = true
	e.prev = q.tail
	if q.tail != nil {
		q.tail.next = e
	} else {
		q.head = e
	}
	q.tail = e
	q.bytes += charge(e.buf)
}

func (s *PayloadStore) unqueue(e *entry) {
	q := s.senders[e.from]
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		q.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		q.tail = e.prev
	}
	e.prev, e.next, e.queued = nil, nil, false
	q.bytes -= charge(e.buf)
}

// age appends e to the age list, as the newest entry.
func (s *PayloadStore) age(e *entry) {
	e.aged = true
	e.older = s.newest
	if s.newest != nil {
		s.newest.newer = e
	} else {
		s.oldest = e
	}
	s.newest = e
}

// unage takes e off the age list, if it is on it.
func (s *PayloadStore) unage(e *entry) {
	if !e.aged {
		return
	}
	if e.older != nil {
		e.older.newer = e.newer
	} else {
		s.oldest = e.newer
	}
	if e.newer != nil {
		e.newer.older = e.older
	} else {
		s.newest = e.older
	}
	e.older, e.newer, e.aged = nil, nil, false
}

// String summarizes the store for logs.
func (s *PayloadStore) String() string {
	st := s.Stats()
	return fmt.Sprintf("store{held %d (%d B), stored %d, dup %d (%d B avoided)}", st.Held, st.HeldBytes, st.Stored, st.DupPuts, st.DupBytesAvoided)
}
