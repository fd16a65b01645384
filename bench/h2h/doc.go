// Package h2h is a head-to-head harness: onecast's pbft (digest and full
// mode) against Hyperledger Labs' SmartBFT v1.0.1, a Go PBFT-family library,
// with etcd's raft (go.etcd.io/raft/v3) as a crash-fault reference, run one
// after the other in one process on the same in-memory network with the
// same load, reporting requests/s, latency p50/p99, wire bytes and
// messages per request.
//
// It is its own Go module (bench/h2h/go.mod, replacing
// github.com/onecast/onecast with ../..) so that SmartBFT, raft and their
// dependencies stay out of the library's go.mod; the root module's
// `go test ./...` does not see it.
//
// # Running
//
//	cd bench/h2h
//	go run ./cmd/h2h -payload 1024 -inflight 32 -duration 5s      # table
//	go run ./cmd/h2h -systems onecast-digest,smartbft -json        # []Result
//	go run ./cmd/h2h -systems onecast-digest,smartbft-signed -pbft-pipeline 1
//	go run ./cmd/h2h -systems onecast-digest,onecast-digest-adaptive,onecast-digest-signed-adaptive,smartbft,smartbft-signed -rounds 3
//	go run ./cmd/h2h -rounds 3   # interleaved repeats, each figure's median
//	go test ./...                                                  # ~5 s
//
// # What is the same for every system
//
//   - The network: package memnet, n nodes (default 4), one unbounded FIFO
//     inbound queue per node, no loss, no added delay. A message is the
//     []byte the system's own encoder produced: onecast frames
//     (broadcast.AppendPrefix's header, body and authenticator, then the
//     payload bytes; decoded with broadcast.DecodeFrame), SmartBFT's
//     protobuf messages (plus a one-byte kind: consensus, forwarded request,
//     client copy), raftpb.Message marshalled. memnet counts the bytes and
//     messages each node sends, the same way for all, and adds no framing:
//     wire bytes per request = all bytes sent during the window ÷ requests
//     completed in it; messages per request likewise.
//   - The load: a closed loop of Inflight outstanding requests (default 32)
//     of Payload bytes (default 1024): 16 bytes naming the request (node,
//     sequence number) and random bytes cut from one seeded block, the same
//     bytes for every system. A request is issued as soon as one completes.
//     Warm-up (default 1 s) then a measurement window (default 5 s);
//     latency is submission to completion, in an HDR histogram.
//   - The BFT systems spread the load over all n nodes (Inflight/n each),
//     and their clients send every request to every replica (pbft's hosted
//     client does; for SmartBFT the harness puts the request in the
//     submitting node's pool and sends a copy to each other node's pool, as
//     Fabric's clients send to every orderer). Raft, a leader-based
//     crash-fault protocol with no client broadcast, takes every proposal at
//     its leader (node 0, which campaigns at start); its n is the same 4.
//   - Batching: at most 16 requests per proposal for pbft (its default
//     Config.Batch) and SmartBFT (RequestBatchMaxCount = 16); raft batches
//     whatever was proposed between two Ready calls.
//   - No system writes to disk.
//
// # Completion rule (when a request counts)
//
//   - onecast-digest / onecast-full: the submitting node's hosted pbft
//     client accepted the result, i.e. f+1 replicas sent matching REPLYs and
//     it holds the result bytes (pbft.Node.TakeResults, taken in the
//     runner's loop as kv/replica does). This includes a reply round trip
//     the other two systems do not have.
//   - smartbft: the request is in a decision the submitting node delivered
//     (Application.Deliver), or pulled by its Synchronizer.
//   - raft: the committed entry was applied at the proposing node (the
//     leader).
//
// # What differs, and why
//
//   - Crypto. pbft: MAC vectors on every replica message (its default
//     scheme, broadcast.SchemeMAC, as the repo's bench uses), Ed25519
//     signatures on PRE-PREPAREs, PREPAREs and checkpoints, and on every
//     request a client authenticator checked once, by the primary: in
//     onecast-digest and onecast-full a vector of n MACs (pbft's default
//     with keys, pbft.RequestMACs; a backup that did not get the request
//     from the client checks its own entry), in onecast-digest-signed (not
//     in the default list) an Ed25519 signature (pbft.RequestSigned).
//     SmartBFT: Ed25519 for its consenter signatures (each replica signs
//     each decision, SignProposal / VerifyConsenterSig) and view-change
//     data; its links are not authenticated (in Fabric, TLS does that) and
//     requests carry no client signature (VerifyRequest checks their shape).
//     So SmartBFT here does less crypto per request than pbft. The extra
//     row smartbft-signed (not in the default list: -systems
//     smartbft-signed) closes that gap from the other side: the client
//     appends an Ed25519 signature (its node's key, as pbft's hosted client
//     signs) to each request, 64 more bytes on the wire per copy, and every
//     follower checks it in VerifyProposal, as Fabric's orderers check each
//     transaction: three verifications per request where pbft's primary
//     makes one. Raft: no crypto.
//   - pbft's pipeline: its primary keeps up to Config.Pipeline (default 4)
//     batches in flight and proposes as soon as there is room, so under
//     this load its batches hold a few requests each, and PREPARE
//     signatures are made and checked per batch; SmartBFT has one proposal
//     in flight and waits up to 50 ms to fill 16. -pbft-pipeline 1 runs
//     pbft closer to that; the rows onecast-digest-adaptive and
//     onecast-digest-signed-adaptive (or -pbft-adaptive for every onecast
//     row) turn on pbft's adaptive batching (Config.AdaptiveBatch: with a
//     batch in flight the primary proposes only full batches of 16), so
//     batches grow with the load.
//   - WAL. pbft keeps no log; SmartBFT gets an in-memory WAL (entries
//     copied into memory, dropped at each truncation point), not its wal
//     package, which fsyncs; raft uses MemoryStorage, compacted behind the
//     applied index.
//   - Leader. SmartBFT runs with LeaderRotation off: with its default
//     rotation every 3 decisions, a replica that receives the next leader's
//     PRE-PREPARE before it has rotated itself drops it and the cluster
//     stalls for tens of seconds; pbft and raft keep a stable leader too.
//     Otherwise SmartBFT runs its DefaultConfig (50 ms batch interval,
//     1 s scheduler ticks as in its naive_chain example).
//   - Laggards. SmartBFT's views accept messages for the current and the
//     next sequence only, and its quorum of 3 moves on without the fourth
//     replica, which then syncs. Its Synchronizer pulls the decisions it
//     missed from the most advanced replica's in-memory ledger (as Fabric
//     pulls blocks), without re-verifying their signatures, and the bytes
//     (headers, payloads, metadata, signatures) are charged to memnet.
//   - Goroutines. pbft nodes are netio.Runners (one verifier and one loop
//     goroutine each); SmartBFT runs its own goroutines per node plus a
//     receive loop and a pool feeder per node here; raft one loop and one
//     receive goroutine per node.
//
// Every run stops everything it started (the tests check goroutine leaks)
// and is bounded by warm-up + duration plus start-up (at most 10 s waiting
// for a leader).
package h2h
