// Package xdp is onecast's AF_XDP transport: a netio.Conduit whose received
// datagrams are written once, by the NIC or the kernel, into a UMEM frame
// and reach the application by reference, and whose XDP program cuts
// payloads the node already holds before they cost anything.
//
// # Receive path
//
//	wire ─▶ XDP program (onecast port?) ─▶ AF_XDP socket: frame written into UMEM
//	     ─▶ RX descriptor ─▶ the bufpool.Buf that owns that UMEM frame
//	     ─▶ Slice past Ethernet/IPv4/UDP ─▶ Datagram (ref 1) ─▶ link ─▶ protocol
//	     ─▶ PayloadStore keeps a ref ─▶ … ─▶ last Release ─▶ frame back in the
//	        pool ─▶ the receive loop puts it on the fill ring again
//
// The UMEM is carved into a [bufpool.Pool] (Config.Region = the UMEM); the
// receive loop stocks the fill ring with frames it takes from the pool
// (pool.Get) and remembers, per frame index, the Buf it holds for each. An
// RX descriptor's address names the frame; its Buf, narrowed to the datagram,
// is handed up. Nothing in user space copies a received byte:
// ConduitStats.RecvCopiedBytes stays 0 and the pool's copy counters count
// only what the store deliberately copies out (below). The one exception
// is above the conduit: the link receives a payload needing more frames
// than its per-peer share of the UMEM into the heap (link
// Stats.HeapCopiedBytes, Metrics.CopiedBytes). Tests prove the zero-copy
// path by identity, not by these counters: [Conduit.UMEMHolds] says a
// buffer lies in UMEM past the headers the kernel wrote, where no
// user-space copy (heap, pool.Copy) can put it.
//
// The receive loop works in passes, one goroutine per socket (queue): it
// waits for the RX ring (poll(2); with Config.BusyPoll, spinning on the
// ring first), takes what the ring holds up to Config.RecvBatch under one
// lock, parses each frame in place and names its peer (a scan of a short
// slice), reaps completions, restocks the fill ring, and hands the whole
// pass to the consumer: with [Conduit.OnPass] (netio/link registers it) by
// calling the consumer in the receive loop's goroutine — the link parses,
// reassembles, acknowledges and sends on the pass, then flushes once, with
// no goroutine switch after the RX ring; without, in one channel send for
// [Conduit.RecvBatch] (a pass at a time) or Recv (a datagram at a time).
// Stats.RecvPasses, Polls, TxCalls and TxKicks show the batching. The
// socket is bound with need_wakeup (XDP_USE_NEED_WAKEUP): the conduit kicks
// the TX ring only when the kernel's flag asks (always, in copy mode), and
// a busy-polling loop, which makes no poll(2), wakes the driver with a
// recvfrom when the fill ring's flag asks (zero-copy drivers). What
// remains between the ring and the protocol is the link's per-frame peer
// lock and the hand-off of whole messages to the runner's goroutine: the
// protocol is not stepped in the receive loop itself.
//
// # Frames and MTU
//
// Config.FrameSize (2048 or 4096) and Config.MTU are configuration; by
// default the frame is the smaller that holds a full frame of the
// interface's MTU behind the kernel's 256-byte headroom. A veth with a
// single-buffer XDP program attached takes an MTU of at most [MaxVethMTU]
// (3506 on kernel 6.x; one more is refused, a test shows it): a datagram
// then carries 3478 bytes, and netio/link fragments only beyond it — a
// 16 KiB payload is 5 frames instead of 12 at MTU 1500.
//
// Honesty about "written once": veth has native XDP but no zero-copy AF_XDP,
// so the socket is bound in copy mode and the kernel copies each frame into
// the UMEM once, where a zero-copy NIC would DMA it there. That kernel write
// is the one write of the frame into memory user space reads; it replaces,
// not adds to, the copy a recv system call makes into a user buffer.
// Stats.ZeroCopy says which mode the socket got, and
// ConduitStats.KernelRecvCopiedBytes counts the bytes the kernel copied so
// (the bench's "krn copies/B"). On veth the kernel copies more than that,
// unseen: a copy-mode sender's frame is copied into an skb, and the
// receiving veth copies an skb without XDP headroom into a page before
// its program runs; these happen on the UDP path's equivalents too.
//
// # Frame watermark
//
// A payload the store keeps pins its UMEM frame. When free frames fall
// under Config.Watermark, the receive loop asks the store it watches
// ([Conduit.WatchStore]) to copy payloads that only the store still
// references out to the heap ([broadcast.PayloadStore.Rehome]), longest
// held first, until the frames given back lift it over the watermark; each
// such copy is counted (Stats.RehomedBytes, the pool's CopiedBytes), as
// Cornflakes copies below its zero-copy threshold. The reliable link above
// bounds what each peer's traffic holds of the UMEM (netio/link's resource
// budget), and receives a payload larger than its share into the heap, so
// that an 8 MiB payload arrives through the default 8 MiB UMEM.
//
// # Transmit path
//
// Send builds Ethernet/IPv4/UDP headers in a frame taken from the same pool,
// copies the header and body bytes after them (SendCopiedBytes counts the
// body bytes, once per recipient and per retransmission; Stats
// .SendCopyFallback and the bench row say so) and queues the frame; Flush
// puts queued frames on the TX ring and kicks the kernel, again until the
// ring is drained (in copy mode one sendto sends at most 32 frames;
// Stats.TxKicks). Zero-copy send — a payload placed in UMEM once and
// referenced by every recipient's descriptor — needs multi-buffer TX
// descriptors (headers differ per recipient), which this package does not
// use yet. A frame is released when its address comes back on
// the completion ring. asavie/xdp consumes completions without reporting
// their addresses, so the conduit maps the completion ring a second time,
// read-only, to learn them.
//
// # In-kernel dedup
//
// The XDP program (bpf/onecast.c, compiled by bpf2go; the object is
// committed) passes everything that is not IPv4/UDP to the onecast port to
// the kernel stack and redirects the rest to the socket. It looks past the
// reliable-link header (Config.LinkHeaderSize, a load-time constant) at the
// onecast header: when a first frame carries the payload of a digest in the
// program's `held` map, it cuts the payload off the tail
// (bpf_xdp_adjust_tail), clears HasPayload, sets Stripped and fixes the IPv4
// and UDP lengths; header, body and authenticator stay, so the vote still
// counts. A continuation fragment of a held payload is cut to its header
// the same way. Per-CPU
// counters record what was cut ([KernelCounters]). The [Program] is a
// broadcast.StoreObserver: give it to the PayloadStore, and the map follows
// the store (insert on Put, delete on eviction). Each supplier of payloads
// may have Config.HeldMax / N digests in the map: at its quota, its own
// oldest digest leaves first, so a Byzantine node's distinct payloads never
// push out another node's, and the map never fills. Stats.Held reports the
// entries, the digests pushed out and any insert the kernel refused:
//
//	c, err := xdp.New(cfg) // inside the interface's namespace
//	store := broadcast.NewPayloadStore(broadcast.StoreConfig{Observer: c.Program()})
//	c.WatchStore(store)
//	l, err := link.New(link.Config{Self: id, N: n, Conduit: c})
//
// Why continuation fragments are cut rather than dropped: the reliable link
// numbers every frame and delivers in order, so a frame dropped in the
// kernel would be a hole its peer retransmits into (stalling the stream)
// until the digest leaves the map. A cut frame is acknowledged like any
// other, and netio/link consumes the continuations of a payload whose first
// frame was stripped without reassembling them.
//
// The program is attached in native (driver) mode where the driver has it,
// and falls back to generic (SKB) mode with a log line saying so
// (Config.Mode).
//
// # Bad input
//
// Frames whose Ethernet, IPv4 or UDP headers are bad or disagree with the
// frame's length are released and counted (Stats.Rejected); datagrams from
// an address that is not a peer are counted in Dropped. The kernel cuts a
// payload only when the header, body and authenticator it announces fit the
// frame; anything else goes to user space untouched, where the link and the
// codec reject it with a typed error.
//
// # Closing and reopening
//
// Close detaches the program, drops the socket from the program's socket
// map and unmaps the socket's four rings before it closes the descriptor
// (asavie/xdp's Close leaves the rings mapped, and each mapping keeps the
// socket, and the binding of its queue, alive for the life of the
// process); it keeps only the UMEM while received datagrams are held
// (ReleaseUMEM). The kernel frees the queue in deferred work a moment
// later, so New retries a busy queue for up to two seconds: a conduit
// reopened on its queue in the same process (a node or kv replica
// restarted) binds, and a queue that another socket holds is an error
// (EBUSY) after that. A failed bind leaves no rings mapped behind it.
//
// Tests and the benchmark build their hosts with netio/netns: real
// namespaces and veth pairs, created and removed by the test, root only.
package xdp
