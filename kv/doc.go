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
// # Deviations from memcached
//
// TestRepliesMatchRealMemcached sends the same requests to Debian's
// memcached 1.6 and to this server and requires byte-identical replies and
// the same decision to keep or close the connection. Known differences:
// there is no eviction (memory is not bounded by -m; the service is a store,
// not a cache), CAS uniques are numbered differently, stats lists fewer
// figures, and commands outside the classic text protocol (meta commands,
// gat, lru_crawler, …) answer ERROR. onecast adds one command, "op", for
// the BFT client (see Client).
package kv
