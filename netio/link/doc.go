// Package link is the reliable-link layer: it turns any netio.Conduit
// (kernel UDP sockets, an AF_XDP socket) into a netio.Transport that hands
// up every message exactly once and in order per sender, despite loss,
// reordering and duplication on the conduit. It knows nothing of UDP or
// XDP: the same code runs under the protocols on both.
//
// # Wire
//
// Every datagram starts with a fixed 48-byte link header (HeaderSize; the
// kernel XDP program finds the onecast header right after it): the sender's
// and the receiver's epochs, the frame's sequence number, and the
// acknowledgement state of the reverse stream (a cumulative ack and a
// 64-bit selective-ack bitmap). A data frame carries one onecast frame
// after it; an ack frame carries nothing.
//
// # Reliability
//
// Per peer and direction, data frames are numbered from 1. The sender keeps
// each unacknowledged frame in a retransmit buffer — the link header and
// the onecast prefix bytes (small), and a retained reference to the payload
// chunk, never a copy — and releases it on ack. Lost frames are resent when
// selective acks show a gap (at most once per two least round trips, each
// further resend of a frame waiting twice as long), or
// after a timeout that adapts to the measured round trip (RFC 6298, with
// Karn's rule and no samples from frames that waited behind a gap), doubled
// on each timeout up to RTOMax. At most Window frames are in flight, and
// no more than the peer's credit (Header.Window: the half of its frame
// quota for this node that its reorder window may hold), so that a
// correct sender never runs into the receiver's quota; more wait in a
// queue. A peer that stops acknowledging is probed with one frame
// per timeout and, after DeadBackoff timeouts, counts as silent: its queue
// is bounded by MaxQueue and Send to it fails with ErrBacklog. A live
// peer's queue may grow further; while its acknowledgements move, the
// runner slows the application down instead (Link.Congested), because a
// dropped message costs a protocol its liveness — a peer whose oldest
// frame timed out is not waited for, so that one that receives and never
// acknowledges cannot stall the node. The receiver suppresses duplicates, holds frames that arrive
// early in a reorder window, and hands up in order while its receive queue
// has room (a full queue leaves frames unacknowledged, which closes the
// senders' windows: flow control end to end).
//
// A conduit whose receive loop can run the link (OnPass, the AF_XDP
// conduit) does: each receive pass is handled in the conduit's goroutine,
// one clock reading per pass and one Flush of the acks and sends it caused
// after it. A conduit that hands up a pass at a time (RecvBatch) is read a
// pass at a time the same way; other conduits a datagram at a time,
// flushed when their buffered datagrams are consumed.
//
// # Fragmentation
//
// A message whose prefix and payload exceed the conduit's MTU travels as a
// first frame (header, body, authenticator, first payload chunk) and
// continuation frames (the header with Flags = HasPayload|Fragment,
// FragIndex, FragOffset, no body or authenticator). The receiver checks
// each continuation against the first frame and links the chunks' frames
// into one bufpool chain (bufpool.Link), handed up by reference. Frames
// arrive in order, so one reassembly per peer is all there is. A message
// that needs more frames than half the peer's frame quota is copied into a
// heap buffer as it arrives instead, each frame released at once (see
// Resource budget).
//
// A prefix that alone exceeds a frame (a PRE-PREPARE with a large batch, a
// view change with many prepared certificates) is spilt: it travels in
// KindPrefix frames, each a piece header and a piece, numbered in the same
// stream, and the payload follows in continuation frames only. The receiver
// joins the pieces (a copy of the prefix, never of the payload). The
// kernel's XDP program leaves pieces alone (PieceMarker is not the onecast
// magic) and may still cut the continuations of a payload the node holds:
// a message whose continuation arrives cut goes up stripped, as if its
// first frame had been cut, so its vote still counts.
//
// # Resource budget
//
// No peer, correct or Byzantine, can stall or bloat a node by what it
// sends: every resource a peer's traffic takes has a per-peer quota, an
// expiry where holding it could last, and a counter of refusals. Exceeding
// a quota drops the offender's newest data (or, for a large message,
// copies it to the heap), counts it and logs once per RefusalLogInterval;
// it never blocks reception from anyone else. The quotas are shares: by
// default the N-1 peers together hold at most half the conduit's frame
// pool, so f Byzantine peers take at most f/(2N) of it, and a correct peer
// always finds its own share free. The other half serves the conduit's
// receive batch or fill ring, its transmit frames (AF_XDP) and the
// payloads the store keeps (moved to the heap, longest held first, under
// the conduit's free-frame watermark).
//
// Memory is not all a peer can take: every message it sends costs the node
// CPU (decoding, authenticating, stepping). So each peer also has a receive
// rate, in messages and bytes per second, checked when its next frame is
// about to be handed up — before anything decodes it — with two bytes read
// at fixed offsets. A frame over the rate stays in the reorder window,
// unacknowledged: the sender's window closes and it slows to its budget,
// and what it sends beyond its credit meanwhile is dropped at the cost of
// a header read. A peer's rate is RateFactor (default 2) times what the
// median peer offered over the last RateInterval, and never less than its
// fair share of the node's RecvRate and RecvByteRate (default 16384
// messages and 32 MiB per second, over the N-1 peers). While fewer than
// half the peers are faulty the median is at most a correct peer's rate,
// so a flooder cannot raise the limits, and a correct peer — which sends
// about what the others send, at most 1.5 times the median's messages as
// the only broadcaster of a Bracha cluster — keeps within it
// (bench's TestCorrectPeersStayWithinTheirReceiveRate: no frame held in
// fault-free runs). Frames that bring nothing new (duplicates, replays,
// frames for another incarnation) get one ack at once per Tick and the
// rest with the next tick; an acknowledgement state older than the current
// one (a replayed frame's) moves no retransmission.
//
//	resource (where)              per-peer quota                 expiry                      refusal, counter
//	reorder-window frames (link)  PeerFrames/2, the credit told  until in order              frame not next in order dropped, unacked
//	                              the peer (Header.Window);                                  (the peer resends): Stats.QuotaDrops,
//	                              PeerFrames default pool/(2N)                               PeerStats.QuotaDrops
//	partial message, frames       ≤ PeerFrames/2; one per peer   PartialTimeout without      beyond: received into the heap,
//	(link)                        (the stream is in order)       progress (default 10 s)     Stats.HeapReassembled, HeapCopiedBytes;
//	                                                                                         expired: Stats.PartialsExpired;
//	                                                                                         cut short: Stats.Rejected
//	partial message, heap (link)  ≤ MaxPayload, grown as bytes   PartialTimeout              announced > MaxPayload: Stats.Rejected;
//	                              arrive, one per peer                                       Send: ErrTooLarge, Stats.TooLarge
//	spilt prefix (link)           ≤ 72 + 65535 + MaxAuth bytes,  PartialTimeout              Stats.Rejected
//	                              one per peer
//	receive queue (link)          RecvQueue/(N-1) messages       taken by Recv               waits in the window (flow control):
//	                                                                                         PeerStats.Pending
//	receive rate (link)           max(RecvRate/(N-1),            bucket refills; the rate    waits in the window undecoded, unacked
//	                              RateFactor × median peer) per  re-derived every            (the peer's window closes):
//	                              second, messages and bytes     RateInterval (100 ms)       Stats.RateDeferred, PeerStats.RateDeferred
//	send queue (link, to a peer)  MaxQueue silent, ×8 live       on ack                      ErrBacklog, Stats.Backlogged
//	pending acks (link)           none needed: a cumulative ack  sent within Tick or after   —
//	                              and a 64-bit bitmap per peer   AckEvery frames; after      Stats.Duplicates
//	                                                             duplicates and replays one
//	                                                             at once per Tick
//	unpinned payloads             SenderQuota bytes per sender   sender's oldest first       StoreStats.QuotaRejects, QuotaEvictions
//	(broadcast.PayloadStore)      (default 64 MiB)
//	payload frames in the store   — (shared)                     copied to the heap, oldest  udp/xdp Stats.RehomedPayloads, Bytes
//	(PayloadStore, conduit)                                      first, under Watermark
//	pinned SENDs (bracha)         MaxOriginBytes per origin      SendExpiry (default 60 s)   ReasonQuota rejection (Stats.Rejected),
//	                              (default 256 MiB)                                          Stats.SendsExpired
//	kernel held-digest map        HeldMax/N entries per          store eviction; at quota    xdp Stats.Held.QuotaEvictions,
//	(netio/xdp)                   supplier                       the supplier's own oldest   InsertErrors
//	receive frames (udp, xdp)     — (the link's quotas keep      —                           udp Stats.NoFrame, xdp Stats.FillStarved
//	                              the pool from running dry)
//
// The largest payload is a config field (Config.MaxPayload, default
// DefaultMaxPayload, 8 MiB; netio/node's Config.MaxPayload, whose Submit
// refuses a larger payload before it is broadcast): Send refuses a larger
// one with ErrTooLarge,
// naming the limit. A payload needing more frames than half of PeerFrames
// is received into a heap buffer as it arrives (one counted copy), so that
// an 8 MiB payload arrives through the AF_XDP conduit's default 8 MiB UMEM.
//
// # Restarts
//
// An epoch names one incarnation of a node (its start time). A node sends
// no data to a peer before it knows the peer's epoch (it probes; the probe's
// answer carries it). A frame for an older incarnation is dropped and
// answered, so the sender learns of the restart; a frame with a newer
// sender epoch resets both streams with that peer, and the frames the old
// incarnation had not acknowledged are renumbered and sent to the new one.
// Frames an old incarnation acknowledged and then lost with its state are
// the protocol's business (Bracha has no state transfer: see the netio
// restart test).
//
// # Usage
//
//	cd, _ := udp.New(udp.Config{Self: id, Peers: addrs, Pool: pool})
//	l, _ := link.New(link.Config{Self: id, N: len(addrs), Conduit: cd, Metrics: metrics})
//	defer l.Close()
//	l.Send(peer, &msg) // borrows msg; retains its payload until acked
//	l.Flush()          // one sendmmsg for what was queued
//	in, _ := l.Recv(ctx)
//	use(in.Msg)
//	in.Release()
//
// Counters: Stats (retransmissions, duplicates, reassemblies, restarts,
// payload bytes the conduit copied on receive, and the budget's refusals
// and heap copies) and PeerStats (round trip, timeout, window and queue,
// frames held, refusals and pending messages per peer).
package link
