package kv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/onecast/onecast/bufpool"
)

// maxRope is the number of pieces an appended-to value may have before it
// is flattened into one buffer (a counted copy).
const maxRope = 16

// item is one stored value. Its pieces are views of the request payloads
// that wrote them; the item holds one reference on each.
type item struct {
	flags  uint32
	exp    int64 // 0: never; otherwise expired once exp <= clock
	cas    uint64
	stored int64 // clock when last written, for delayed flush_all
	atime  int64 // clock when last written or fetched (mg l, me la)
	n      int
	// fetched is memcached's ITEM_FETCHED (mg h, me fetch); stale and
	// tokenSent are ITEM_STALE and ITEM_TOKEN_SENT (mg X, W, Z);
	// keyBinary is ITEM_KEY_BINARY (stored by ms with b).
	fetched, stale, tokenSent, keyBinary bool
	pieces                               []bufpool.Buf
}

func (it *item) release() {
	for _, p := range it.pieces {
		p.Release()
	}
	it.pieces = nil
}

// Store is the deterministic key-value state machine (kv/replica adapts it
// to pbft.StateMachine). Replicas that apply the same ops in the same order hold
// the same items, CAS uniques and clock, and return byte-identical replies.
//
// Values are not copied: a stored value is a retained view of the request
// payload it arrived in — the same buffer PBFT's payload store holds by
// digest — so a value crosses memory once from the wire to the store.
// append and prepend add a piece rather than copy; incr and decr write a new
// small buffer.
//
// Time is the op's: each op carries the unix time its front end chose; the
// store's clock is the largest such time seen, so it never runs backwards
// and every replica computes the same expiries. A replica's own clock is
// never read.
//
// Store is safe for one Apply caller concurrent with any number of Read,
// Snapshot and Stats callers.
type Store struct {
	mu      sync.RWMutex
	items   map[string]*item
	clock   int64
	casSeq  uint64
	flushAt int64 // delayed flush (memcached's oldest_live): items stored at or before it vanish once clock >= it
	bytes   int64
	total   uint64
	maxItem int
	pool    *bufpool.Pool
	// clients remembers each BFT client's last request and reply, so that
	// an op submitted through several replicas executes once.
	clients map[uint64]*clientRec
	// cnt counts what this replica executed, for stats; atomic because
	// Read runs under the read lock.
	cnt counters

	scratch []byte
	keys    [][]byte
}

// counters are the stats figures the state machine knows, named after
// memcached's.
type counters struct {
	cmdGet, cmdSet, cmdTouch, cmdFlush, cmdMeta                          atomic.Uint64
	getHits, getMisses, getExpired, getFlushed                           atomic.Uint64
	deleteHits, deleteMisses, incrHits, incrMisses, decrHits, decrMisses atomic.Uint64
	casHits, casMisses, casBadval, touchHits, touchMisses, tooLarge      atomic.Uint64
}

// clientRec is a BFT client's last executed request.
type clientRec struct {
	nonce uint64
	reply []byte
}

// ReplyStale answers a BFT client's request older than its last executed
// one.
const ReplyStale = "SERVER_ERROR stale request\r\n"

// StoreConfig configures a Store.
type StoreConfig struct {
	// MaxItemSize is the item size limit (default DefaultMaxItemSize).
	MaxItemSize int
	// Pool, if set, tracks the buffers Restore and incr/decr create, so
	// that leak checks cover them.
	Pool *bufpool.Pool
}

// NewStore returns an empty store.
func NewStore(cfg StoreConfig) *Store {
	if cfg.MaxItemSize <= 0 {
		cfg.MaxItemSize = DefaultMaxItemSize
	}
	return &Store{items: map[string]*item{}, clients: map[uint64]*clientRec{}, maxItem: cfg.MaxItemSize, pool: cfg.Pool}
}

func (s *Store) wrap(b []byte) bufpool.Buf {
	if s.pool != nil {
		return s.pool.Wrap(b)
	}
	return bufpool.Wrap(b)
}

// ApplyBatch executes a committed batch of ops (borrowing each) in order.
// Each result is the memcached reply to the op, byte for byte (the front
// end drops it for noreply).
func (s *Store) ApplyBatch(ops []bufpool.Buf) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(ops))
	for i := range ops {
		out[i] = s.applyOne(ops[i], nil)
	}
	return out
}

// ApplyOne executes one op (borrowing payload) and appends its reply to dst.
func (s *Store) ApplyOne(payload bufpool.Buf, dst []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyOne(payload, dst)
}

// Read answers a get, gets or me op (borrowing payload) from the local state
// without changing it: the fast, non-linearizable read path. It refuses any
// other op with ReplyBadOp.
func (s *Store) Read(payload bufpool.Buf, dst []byte) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var keys [4][]byte
	o, _, err := decodeOp(payload, nil, keys[:0])
	if err != nil || !o.kind.IsRead() {
		return append(dst, ReplyBadOp...)
	}
	now := max(s.clock, o.now)
	if o.kind == KindMetaDebug {
		return s.metaDebug(dst, &o, now, false)
	}
	return s.get(dst, &o, now, false)
}

func (s *Store) applyOne(payload bufpool.Buf, dst []byte) []byte {
	var o op
	var err error
	o, s.scratch, err = decodeOp(payload, s.scratch, s.keys)
	s.keys = o.keys[:0]
	if err != nil {
		return append(dst, ReplyBadOp...)
	}
	if o.client == 0 {
		return s.exec(dst, &o)
	}
	rec := s.clients[o.client]
	if rec != nil && o.nonce <= rec.nonce {
		if o.nonce == rec.nonce {
			return append(dst, rec.reply...)
		}
		return append(dst, ReplyStale...)
	}
	start := len(dst)
	dst = s.exec(dst, &o)
	if rec == nil {
		rec = &clientRec{}
		s.clients[o.client] = rec
	}
	rec.nonce, rec.reply = o.nonce, append(rec.reply[:0], dst[start:]...)
	return dst
}

func (s *Store) exec(dst []byte, o *op) []byte {
	if o.now > s.clock {
		s.clock = o.now
	}
	switch o.kind {
	case KindGet, KindGets:
		return s.get(dst, o, s.clock, true)
	case KindGat, KindGats:
		return s.getAndTouch(dst, o)
	case KindSet, KindAdd, KindReplace, KindAppend, KindPrepend, KindCas:
		s.cnt.cmdSet.Add(1)
		key := o.keys[0]
		if len(key)+o.value.Len()+ItemOverhead > s.maxItem {
			// The front end refuses these before they are proposed; a
			// Byzantine client's op is refused here the same way on every
			// replica. memcached also drops the old value.
			s.remove(string(key))
			s.cnt.tooLarge.Add(1)
			return append(dst, ReplyTooLarge...)
		}
		res, _ := s.storeItem(o.kind, key, o.flags, o.exptime, o.arg, false, false, o.value)
		return append(dst, classicStoreReply[res]...)
	case KindDelete:
		counted := o.flags != dropQuietly
		if s.lookup(o.keys[0], true) == nil {
			if counted {
				s.cnt.deleteMisses.Add(1)
			}
			return append(dst, ReplyNotFound...)
		}
		if counted {
			s.cnt.deleteHits.Add(1)
		}
		s.remove(string(o.keys[0]))
		return append(dst, ReplyDeleted...)
	case KindIncr, KindDecr:
		return s.arith(dst, o)
	case KindTouch:
		s.cnt.cmdTouch.Add(1)
		it := s.lookup(o.keys[0], true)
		if it == nil {
			s.cnt.touchMisses.Add(1)
			return append(dst, ReplyNotFound...)
		}
		s.cnt.touchHits.Add(1)
		it.exp = s.expiry(o.exptime)
		it.fetched, it.atime = true, s.clock
		if s.dead(it, s.clock) {
			s.remove(string(o.keys[0]))
		}
		return append(dst, ReplyTouched...)
	case KindFlushAll:
		s.cnt.cmdFlush.Add(1)
		if o.exptime <= 0 {
			for k := range s.items {
				s.remove(k)
			}
			s.flushAt = 0
		} else {
			// memcached's oldest_live: one second before the delay
			// ends, the flush takes effect on everything written until
			// then.
			s.flushAt = s.expiry(o.exptime) - 1
		}
		return append(dst, ReplyOK...)
	case KindMetaGet:
		return s.metaGet(dst, o)
	case KindMetaSet:
		return s.metaSet(dst, o)
	case KindMetaDelete:
		return s.metaDelete(dst, o)
	case KindMetaArith:
		return s.metaArith(dst, o)
	case KindMetaDebug:
		return s.metaDebug(dst, o, s.clock, true)
	}
	return append(dst, ReplyBadOp...)
}

// expiry turns a memcached exptime into an absolute time on the store clock:
// 0 never expires, negative is already expired, up to 30 days is relative,
// larger is an absolute unix time.
func (s *Store) expiry(exptime int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return -1
	case exptime <= RelativeExptimeMax:
		return s.clock + exptime
	default:
		return exptime
	}
}

func (s *Store) dead(it *item, now int64) bool {
	if it.exp != 0 && it.exp <= now {
		return true
	}
	return s.flushAt != 0 && s.flushAt <= now && it.stored <= s.flushAt
}

// lookup returns the live item under key, removing it if it has expired
// when purge is set (a deterministic side effect: every replica purges at
// the same op).
func (s *Store) lookup(key []byte, purge bool) *item {
	it := s.items[string(key)]
	if it == nil {
		return nil
	}
	if s.dead(it, s.clock) {
		if purge {
			s.remove(string(key))
		}
		return nil
	}
	return it
}

func (s *Store) remove(key string) {
	it := s.items[key]
	if it == nil {
		return
	}
	s.bytes -= int64(len(key) + it.n)
	it.release()
	delete(s.items, key)
}

func (s *Store) nextCas() uint64 {
	s.casSeq++
	return s.casSeq
}

// get answers get/gets. apply is false on the read-only path (Read): then
// nothing changes, not even the fetched mark.
func (s *Store) get(dst []byte, o *op, now int64, apply bool) []byte {
	s.cnt.cmdGet.Add(uint64(len(o.keys)))
	for _, k := range o.keys {
		it := s.live(k, now, apply)
		if it == nil {
			s.cnt.getMisses.Add(1)
			continue
		}
		s.cnt.getHits.Add(1)
		dst = s.appendValue(dst, k, it, o.kind == KindGets || o.kind == KindGats)
		if apply {
			it.fetched, it.atime = true, s.clock
		}
	}
	return append(dst, ReplyEnd...)
}

// live returns the live item under key at time now, counting an expired or
// flushed one as memcached's get_expired and get_flushed do, and removing it
// when purge is set.
func (s *Store) live(key []byte, now int64, purge bool) *item {
	it := s.items[string(key)]
	if it == nil {
		return nil
	}
	if !s.dead(it, now) {
		return it
	}
	if it.exp != 0 && it.exp <= now {
		s.cnt.getExpired.Add(1)
	} else {
		s.cnt.getFlushed.Add(1)
	}
	if purge {
		s.remove(string(key))
	}
	return nil
}

// appendValue appends the VALUE line and data block of a get reply.
func (s *Store) appendValue(dst, key []byte, it *item, withCas bool) []byte {
	dst = append(dst, "VALUE "...)
	dst = append(dst, key...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(it.flags), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(it.n), 10)
	if withCas {
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, it.cas, 10)
	}
	dst = append(dst, "\r\n"...)
	dst = it.appendData(dst)
	return append(dst, "\r\n"...)
}

func (it *item) appendData(dst []byte) []byte {
	for _, p := range it.pieces {
		for seg := range p.Segments() {
			dst = append(dst, seg...)
		}
	}
	return dst
}

// getAndTouch answers gat/gats: each item found gets the new exptime, and
// is returned (even when that exptime has already passed, as memcached
// does; it is gone afterwards).
func (s *Store) getAndTouch(dst []byte, o *op) []byte {
	s.cnt.cmdTouch.Add(uint64(len(o.keys)))
	exp := s.expiry(o.exptime)
	for _, k := range o.keys {
		it := s.live(k, s.clock, true)
		if it == nil {
			s.cnt.touchMisses.Add(1)
			continue
		}
		s.cnt.touchHits.Add(1)
		it.exp = exp
		it.fetched, it.atime = true, s.clock
		dst = s.appendValue(dst, k, it, o.kind == KindGats)
		if s.dead(it, s.clock) {
			s.remove(string(k))
		}
	}
	return append(dst, ReplyEnd...)
}

// Results of storeItem, memcached's enum store_item_type.
const (
	resStored = iota
	resNotStored
	resExists
	resNotFound
)

var classicStoreReply = [...]string{ReplyStored, ReplyNotStored, ReplyExists, ReplyNotFound}

// storeItem is memcached's do_store_item for kind (set, add, replace,
// append, prepend, cas) with the CAS value cas (0: none) and, for ms's I
// flag, setStale. It retains value for the item and returns the result and
// the stored item's CAS (0 unless stored). The caller has checked the size
// of key and value.
func (s *Store) storeItem(kind Kind, key []byte, flags uint32, exptime int64, cas uint64, setStale, keyBinary bool,
	value bufpool.Buf) (int, uint64) {
	old := s.lookup(key, true)
	if old == nil {
		switch kind {
		case KindCas:
			s.cnt.casMisses.Add(1)
			return resNotFound, 0
		case KindReplace, KindAppend, KindPrepend:
			return resNotStored, 0
		}
	} else {
		casMatch, casStale := cas != 0 && cas == old.cas, setStale && cas != 0 && cas < old.cas
		switch kind {
		case KindAdd:
			return resNotStored, 0
		case KindCas:
			if !casMatch && !casStale {
				s.cnt.casBadval.Add(1)
				return resExists, 0
			}
			s.cnt.casHits.Add(1)
			if casStale {
				// A value older than the item's replaces it but keeps
				// its TTL and win token, marked stale.
				oldExp, oldToken := old.exp, old.tokenSent
				it := s.put(key, flags, oldExp, keyBinary, value)
				if it == nil {
					return resStored, s.casSeq
				}
				it.stale, it.tokenSent = true, oldToken
				return resStored, it.cas
			}
		case KindAppend, KindPrepend:
			if cas != 0 && !casMatch {
				return resExists, 0
			}
			if len(key)+old.n+value.Len()+ItemOverhead > s.maxItem {
				return resNotStored, 0
			}
			piece := value.Retain()
			if kind == KindAppend {
				old.pieces = append(old.pieces, piece)
			} else {
				old.pieces = slices.Insert(old.pieces, 0, piece)
			}
			old.n += value.Len()
			s.bytes += int64(value.Len())
			// memcached builds a new item: new CAS, fresh marks.
			old.cas = s.nextCas()
			old.stored, old.atime = s.clock, s.clock
			old.fetched, old.stale, old.tokenSent, old.keyBinary = false, false, false, false
			if len(old.pieces) > maxRope {
				s.flatten(old)
			}
			return resStored, old.cas
		}
	}
	it := s.put(key, flags, s.expiry(exptime), keyBinary, value)
	if it == nil {
		return resStored, s.casSeq
	}
	return resStored, it.cas
}

// put replaces key's item with a new one holding value (retained). An item
// born expired is not kept (nil), but takes a CAS like any other.
func (s *Store) put(key []byte, flags uint32, exp int64, keyBinary bool, value bufpool.Buf) *item {
	s.remove(string(key))
	it := &item{flags: flags, exp: exp, cas: s.nextCas(), stored: s.clock, atime: s.clock, n: value.Len(), keyBinary: keyBinary}
	if s.dead(it, s.clock) {
		return nil
	}
	if value.Len() > 0 {
		it.pieces = []bufpool.Buf{value.Retain()}
	}
	s.items[string(key)] = it
	s.bytes += int64(len(key) + it.n)
	s.total++
	return it
}

// flatten copies an item's pieces into one buffer.
func (s *Store) flatten(it *item) {
	b := make([]byte, 0, it.n)
	for _, p := range it.pieces {
		for seg := range p.Segments() {
			b = append(b, seg...)
		}
	}
	it.release()
	it.pieces = []bufpool.Buf{s.wrap(b)}
}

func (s *Store) arith(dst []byte, o *op) []byte {
	incr := o.kind == KindIncr
	it := s.lookup(o.keys[0], true)
	if it == nil {
		if incr {
			s.cnt.incrMisses.Add(1)
		} else {
			s.cnt.decrMisses.Add(1)
		}
		return append(dst, ReplyNotFound...)
	}
	nb, ok := s.addDelta(it, incr, o.arg)
	if !ok {
		return append(dst, ReplyNonNumeric...)
	}
	dst = append(dst, nb...)
	return append(dst, "\r\n"...)
}

// addDelta is memcached's do_add_delta on a live item: it returns the new
// number's digits, or false for a value that is not a number. A shorter
// number is written in place, padded with spaces (memcached rewrites the
// item in place then, keeping its marks); a longer one makes a new item.
func (s *Store) addDelta(it *item, incr bool, delta uint64) ([]byte, bool) {
	var small [64]byte
	v, ok := parseCounter(it.appendData(small[:0]))
	if !ok {
		return nil, false
	}
	if incr {
		v += delta
		s.cnt.incrHits.Add(1)
	} else {
		s.cnt.decrHits.Add(1)
		if delta > v {
			v = 0
		} else {
			v -= delta
		}
	}
	nb := strconv.AppendUint(nil, v, 10)
	nd := len(nb)
	if nd <= it.n {
		nb = append(nb, bytes.Repeat([]byte{' '}, it.n-nd)...)
	} else {
		it.atime = s.clock
		it.fetched, it.stale, it.tokenSent, it.keyBinary = false, false, false, false
	}
	s.bytes += int64(len(nb) - it.n)
	it.release()
	it.pieces = []bufpool.Buf{s.wrap(nb)}
	it.n = len(nb)
	it.cas = s.nextCas()
	it.stored = s.clock
	return nb[:nd], true
}

// parseCounter parses a stored counter as memcached's safe_strtoull reads
// the item's data (see parseUint): "12", " 12", "+12" and "12 and text"
// are 12.
func parseCounter(b []byte) (uint64, bool) { return parseUint(b) }

// StoreStats are the figures memcached's stats command reports that the
// state machine knows: its items, and counts of the ops it executed (on a
// replica: every replica's clients' ops, as each replica executes them all),
// named after memcached's fields.
type StoreStats struct {
	CurrItems  int
	TotalItems uint64
	Bytes      int64
	Clock      int64

	CmdGet, CmdSet, CmdTouch, CmdFlush, CmdMeta                          uint64
	GetHits, GetMisses, GetExpired, GetFlushed                           uint64
	DeleteHits, DeleteMisses, IncrHits, IncrMisses, DecrHits, DecrMisses uint64
	CasHits, CasMisses, CasBadval, TouchHits, TouchMisses                uint64
	StoreTooLarge                                                        uint64
}

// Stats returns the store's figures.
func (s *Store) Stats() StoreStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := &s.cnt
	return StoreStats{CurrItems: len(s.items), TotalItems: s.total, Bytes: s.bytes, Clock: s.clock,
		CmdGet: c.cmdGet.Load(), CmdSet: c.cmdSet.Load(), CmdTouch: c.cmdTouch.Load(), CmdFlush: c.cmdFlush.Load(),
		CmdMeta: c.cmdMeta.Load(), GetHits: c.getHits.Load(), GetMisses: c.getMisses.Load(),
		GetExpired: c.getExpired.Load(), GetFlushed: c.getFlushed.Load(), DeleteHits: c.deleteHits.Load(),
		DeleteMisses: c.deleteMisses.Load(), IncrHits: c.incrHits.Load(), IncrMisses: c.incrMisses.Load(),
		DecrHits: c.decrHits.Load(), DecrMisses: c.decrMisses.Load(), CasHits: c.casHits.Load(),
		CasMisses: c.casMisses.Load(), CasBadval: c.casBadval.Load(), TouchHits: c.touchHits.Load(),
		TouchMisses: c.touchMisses.Load(), StoreTooLarge: c.tooLarge.Load()}
}

// Close releases every value the store holds.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.items {
		s.remove(k)
	}
}

// snapMagic starts a snapshot; snapMagicV2 is the layout before items
// carried their access time and marks, still restored (as never fetched).
const (
	snapMagic   = "KVS3"
	snapMagicV2 = "KVS2"
	// itemFixedLenV2 is a KVS2 item's fixed part: flags, exp, cas, stored,
	// value length.
	itemFixedLenV2 = 4 + 8*3 + 4
)

// itemFixedLen is a snapshot item's fixed part: flags, exp, cas, stored,
// atime, marks, value length.
const itemFixedLen = 4 + 8*4 + 1 + 4

// marks packs the item's booleans into a snapshot byte.
func (it *item) marks() byte {
	var m byte
	for i, b := range [...]bool{it.fetched, it.stale, it.tokenSent, it.keyBinary} {
		if b {
			m |= 1 << i
		}
	}
	return m
}

// setMarks unpacks marks; unknown bits are a malformed snapshot.
func (it *item) setMarks(m byte) bool {
	it.fetched, it.stale, it.tokenSent, it.keyBinary = m&1 != 0, m&2 != 0, m&4 != 0, m&8 != 0
	return m < 16
}

// Snapshot serializes the live items in key order, with the clock, the CAS
// counter and any pending delayed flush: equal states give equal bytes.
func (s *Store) Snapshot() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := make([]string, 0, len(s.items))
	size := 4 + 8*4 + 4
	for k, it := range s.items {
		if s.dead(it, s.clock) {
			continue
		}
		keys = append(keys, k)
		size += 1 + len(k) + 4 + 8*4 + 1 + 4 + it.n
	}
	slices.Sort(keys)
	cids := make([]uint64, 0, len(s.clients))
	for id, rec := range s.clients {
		cids = append(cids, id)
		size += 20 + len(rec.reply)
	}
	slices.Sort(cids)
	b := make([]byte, 0, size)
	b = append(b, snapMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.clock))
	b = binary.LittleEndian.AppendUint64(b, s.casSeq)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.flushAt))
	b = binary.LittleEndian.AppendUint64(b, s.total)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		it := s.items[k]
		b = append(b, byte(len(k)))
		b = append(b, k...)
		b = binary.LittleEndian.AppendUint32(b, it.flags)
		b = binary.LittleEndian.AppendUint64(b, uint64(it.exp))
		b = binary.LittleEndian.AppendUint64(b, it.cas)
		b = binary.LittleEndian.AppendUint64(b, uint64(it.stored))
		b = binary.LittleEndian.AppendUint64(b, uint64(it.atime))
		b = append(b, it.marks())
		b = binary.LittleEndian.AppendUint32(b, uint32(it.n))
		b = it.appendData(b)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(cids)))
	for _, id := range cids {
		rec := s.clients[id]
		b = binary.LittleEndian.AppendUint64(b, id)
		b = binary.LittleEndian.AppendUint64(b, rec.nonce)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(rec.reply)))
		b = append(b, rec.reply...)
	}
	return b, nil
}

// Restore replaces the state with a snapshot made by Snapshot. The snapshot
// is copied once; values then reference that copy. A malformed snapshot is
// an error and leaves the state unchanged.
func (s *Store) Restore(snap []byte) error {
	own := append([]byte(nil), snap...)
	bad := func(what string) error { return fmt.Errorf("kv: restore: snapshot %s", what) }
	if len(own) < 40 || (string(own[:4]) != snapMagic && string(own[:4]) != snapMagicV2) {
		return bad("header malformed")
	}
	v2 := string(own[:4]) == snapMagicV2
	fixed := itemFixedLen
	if v2 {
		fixed = itemFixedLenV2
	}
	clock := int64(binary.LittleEndian.Uint64(own[4:]))
	casSeq := binary.LittleEndian.Uint64(own[12:])
	flushAt := int64(binary.LittleEndian.Uint64(own[20:]))
	total := binary.LittleEndian.Uint64(own[28:])
	count := int(binary.LittleEndian.Uint32(own[36:]))
	off := 40
	type ent struct {
		k  string
		v  []byte
		it item
	}
	ents := make([]ent, 0, min(count, len(own)/33))
	for range count {
		if off >= len(own) {
			return bad("truncated")
		}
		kl := int(own[off])
		off++
		if off+kl+fixed > len(own) || !validKey(own[off:off+kl]) {
			return bad("key malformed")
		}
		e := ent{k: string(own[off : off+kl])}
		off += kl
		e.it.flags = binary.LittleEndian.Uint32(own[off:])
		e.it.exp = int64(binary.LittleEndian.Uint64(own[off+4:]))
		e.it.cas = binary.LittleEndian.Uint64(own[off+12:])
		e.it.stored = int64(binary.LittleEndian.Uint64(own[off+20:]))
		var vl int
		if v2 {
			e.it.atime = e.it.stored
			vl = int(binary.LittleEndian.Uint32(own[off+28:]))
		} else {
			e.it.atime = int64(binary.LittleEndian.Uint64(own[off+28:]))
			if !e.it.setMarks(own[off+36]) {
				return bad("item marks malformed")
			}
			vl = int(binary.LittleEndian.Uint32(own[off+37:]))
		}
		off += fixed
		if vl > len(own)-off {
			return bad("value truncated")
		}
		e.v = own[off : off+vl : off+vl]
		off += vl
		ents = append(ents, e)
	}
	if off+4 > len(own) {
		return bad("truncated")
	}
	nc := int(binary.LittleEndian.Uint32(own[off:]))
	off += 4
	clients := make(map[uint64]*clientRec, min(nc, len(own)/20))
	for range nc {
		if off+20 > len(own) {
			return bad("client table truncated")
		}
		id := binary.LittleEndian.Uint64(own[off:])
		rec := &clientRec{nonce: binary.LittleEndian.Uint64(own[off+8:])}
		rl := int(binary.LittleEndian.Uint32(own[off+16:]))
		off += 20
		if rl > len(own)-off {
			return bad("client reply truncated")
		}
		rec.reply = own[off : off+rl : off+rl]
		off += rl
		clients[id] = rec
	}
	if off != len(own) {
		return bad("has trailing bytes")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.items {
		s.remove(k)
	}
	s.clock, s.casSeq, s.flushAt, s.total, s.bytes = clock, casSeq, flushAt, total, 0
	s.clients = clients
	for _, e := range ents {
		it := e.it
		it.n = len(e.v)
		it.pieces = []bufpool.Buf{s.wrap(e.v)}
		if old := s.items[e.k]; old != nil {
			s.remove(e.k)
		}
		s.items[e.k] = &it
		s.bytes += int64(len(e.k) + it.n)
	}
	return nil
}
