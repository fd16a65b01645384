// Package kv is a Byzantine fault-tolerant key-value service on PBFT that
// speaks the memcached text protocol — onecast's proof that its primitives
// carry a real service.
//
// # Pieces
//
//   - [ParseCommand]: the memcached text protocol, faithful to memcached
//     1.6: the same limits (keys of 1–250 bytes, a 1 MiB item limit counted
//     as memcached counts it), the same replies word for word (ERROR,
//     CLIENT_ERROR bad command line format, CLIENT_ERROR bad data chunk,
//     SERVER_ERROR object too large for cache, …), the same decisions on
//     what to swallow and when to close the connection.
//   - [Store]: the deterministic state machine. Ops travel as one payload
//     each (see op.go for the layout) with the value as the payload's tail;
//     the store keeps a retained view of that payload, the very buffer PBFT
//     holds by digest, so a value is never copied on its way from the socket
//     to the store. Expiry uses the time written into each op by the front
//     end that issued it, never the replica's clock. Results are the
//     memcached reply bytes, so replicas' replies can be compared byte for
//     byte.
//   - [Server]: the memcached front end over an [Executor]: [Local] in
//     single-node mode, PBFT in a replica (kv/replica). Reads go through the
//     executor by default (linearizable); ServerConfig.FastReads answers them
//     from local state instead.
//   - [WAL]: a data directory with a write-ahead log and a snapshot; a
//     reply waits for the fsync that covers its op (group commit).
//
// # Usage (single node)
//
//	store := kv.NewStore(kv.StoreConfig{})
//	wal, _ := kv.OpenWAL(dir, kv.WALOptions{})
//	exec := kv.NewLocal(store, wal)
//	_ = exec.Recover()
//	srv, _ := kv.NewServer(kv.ServerConfig{Executor: exec, Reader: store, Stats: store.Stats})
//	ln, _ := net.Listen("tcp", "127.0.0.1:11211")
//	go srv.Serve(ln)
//
// # Commands
//
// Everything memcached 1.6's text protocol serves for data, with memcached's
// syntax, limits, replies and error strings (protocol.txt is the
// reference, proto_text.c the tie-breaker):
//
//   - storage: set, add, replace, append, prepend, cas — each with noreply;
//   - retrieval: get, gets, gat, gats (and bget, memcached's old alias of
//     get);
//   - delete [0] [noreply], incr, decr, touch — each with noreply;
//   - flush_all [delay] [noreply], version, verbosity <level> [noreply],
//     quit, stats, stats settings, stats reset, stats detail on|off|dump
//     (per key prefix, as memcached counts them; dump lists prefixes in
//     sorted order), shutdown (refused, as by a memcached started
//     without -A);
//   - the meta commands mg, ms, md, ma, me, mn with their flags:
//     mg b c f h k l O q s t u v N R T (answering W, X, Z), ms b c C F I k
//     O q T M(E A P R S), md b C I k O q T, ma b C N J D T M(I + D -) q t c
//     v O k, me <key> [b]. As in memcached, every meta command accepts
//     every flag memcached's parser knows and ignores those that mean
//     nothing to it (ms v, md s, …); an unknown or repeated flag is an
//     error;
//   - onecast's own "op" command for the BFT client (see Client).
//
// "noreply" is taken as memcached takes it: a command asks for noreply
// when its last token is "noreply", whatever that token stands for
// ("touch k noreply" is silent, as memcached's CLIENT_ERROR is). Meta
// commands use q instead, and their errors are always answered.
//
// Every command that reads or changes items is an op of the replicated
// state machine: it is ordered by the Executor (PBFT in a replica) and
// applied by every replica in the same order; expiry (exptime, touch, gat,
// the T/N/R tokens of the meta commands, flush_all's delay) is computed
// from the time written into the op by the front end that issued it. The
// meta commands travel with their flag tokens as sent, and the state
// machine interprets them in the order sent, as memcached does. version,
// verbosity, stats, quit and mn are answered by the front end. With
// ServerConfig.FastReads, get, gets and me are answered from local state;
// gat, gats and mg are always ordered, since they change items (TTL,
// fetched mark, last access, win token).
//
// Meta flags whose meaning belongs to a cache are accepted and handled as
// follows: u (no LRU bump) only keeps mg from marking the item fetched and
// from updating its last access, since there is no LRU; P and L (proxy
// hints) are accepted and ignored, as memcached ignores them. The
// recache machinery (mg N, R; md I; ms I with C; the W, X, Z answers) is
// implemented as memcached implements it: the win-token and stale marks
// are part of the replicated item state.
//
// # Stats
//
// stats lists memcached's field names, in memcached's order, for the
// figures this service really has: pid, uptime, time, version,
// pointer_size, rusage_user, rusage_system, curr_connections,
// total_connections, cmd_get, cmd_set, cmd_flush, cmd_touch, cmd_meta,
// get_hits, get_misses, get_expired, get_flushed, delete_misses,
// delete_hits, incr_misses, incr_hits, decr_misses, decr_hits, cas_misses,
// cas_hits, cas_badval, touch_hits, touch_misses, store_too_large,
// bytes_read, bytes_written, bytes, curr_items, total_items. The command
// and hit counters count what this replica's state machine executed — on a
// replica, every client's ops, whichever replica they came through — and
// cmd_meta counts mg, ms, md, ma and me. Connections and bytes are this
// front end's. Omitted because the service has no such thing: libevent,
// max_connections and rejected_connections (no connection limit),
// connection_structures, the response object, read buffer, reserved fd,
// thread, hash table, slab, LRU crawler and maintainer, logger and NAPI
// figures, store_no_memory, limit_maxbytes, evictions and the other
// eviction counters (memory is not bounded), auth_cmds and auth_errors (no
// SASL). stats settings lists verbosity, evictions (off), cas_enabled,
// item_size_max and flush_enabled. stats reset zeroes the counters,
// total_items, total_connections and the detail counts, as memcached's
// does.
//
// # Deviations from memcached
//
// TestRepliesMatchRealMemcached sends the same requests to Debian's
// memcached 1.6 and to this server and requires byte-identical replies and
// the same decision to keep or close the connection; where a reply cannot
// be identical it compares the shape (stats, version, me). Known
// differences:
//
//   - there is no eviction (memory is not bounded by -m; the service is a
//     store, not a cache);
//   - CAS uniques are numbered differently;
//   - the version string is onecast's (Version);
//   - me prints exp, la, cas and fetch — not memcached's slab class and
//     slab size, which this store does not have — and exp is the remaining
//     TTL (memcached 1.6.18 prints its negation, a bug later fixed);
//   - mg's l and me's la count exact seconds since the last access
//     (memcached moves an item's access time at most once a minute); reads
//     served with ServerConfig.FastReads do not mark items fetched or
//     accessed, and a single node's log (WAL) does not record get, gets
//     and me, so those marks made since the last snapshot are not
//     recovered after a restart;
//   - a get, gets, gat or gats line with a key longer than 250 bytes is
//     refused whole before anything is looked up (memcached looks up, and
//     gat touches, the keys before the long one, then drops their replies);
//   - stats subcommands other than settings, reset and detail (items,
//     slabs, sizes, conns, cachedump) answer ERROR, as do the commands
//     that manage a cache rather than data (lru_crawler, lru, slabs,
//     watch, cache_memlimit).
package kv
