// Package pbft is Castro–Liskov Practical Byzantine Fault Tolerance: state
// machine replication for n ≥ 3f+1 replicas, as a pure state machine on
// onecast's shared message format (broadcast.Protocol).
//
// # Usage loop
//
//	nd, err := pbft.New(pbft.Config{Params: broadcast.Params{N: 4, F: 1, Self: id, Mode: broadcast.ModeDigest},
//		Store: store, Keys: keys, StateMachine: app})
//	nd.Submit(op)                  // a request of the client this node hosts
//	nd.Step(from, msg)             // each authenticated message
//	nd.Tick(now)                   // when the clock passes rd.NextWake
//	rd := nd.Ready()               // messages to send; executed requests
//	results := nd.TakeResults(nil) // the hosted client's accepted results
//
// The same Node runs under the simulator, netio/mem.Cluster and the node
// runner; pbft.Spec builds it for tools that run any protocol.
//
// # Clients
//
// A client is a [Client] state machine hosted by a node; its identity is the
// node's ID, so its requests are authenticated by the node's links: a
// replica accepts REQUEST(client c, timestamp t) only on the link from c.
// broadcast.Protocol.Submit on node i is a request of client i. The client
// numbers requests 1, 2, …, keeps at most ClientWindow outstanding, sends
// each to every replica, accepts the result once f+1 replicas returned the
// same result digest and it holds the bytes, and retransmits after Timeout.
// kv's front end is such a client.
//
// # Wire
//
// Each message is one broadcast.Header (ProtoPBFT, Instance{0, seq}, Round =
// view, Digest = batch / request / result / state digest) plus a small body
// (codec.go): REQUEST carries client and flags with the op as payload;
// PRE-PREPARE the primary's signature and the batch's entries (client,
// timestamp, op digest, length); PREPARE a signature; COMMIT nothing;
// REPLY the result as payload or only its digest; CHECKPOINT a signature
// over the state digest. A batch digest is SHA-256 of the entries, so
// agreeing on it is agreeing on who asked for what.
//
// # Modes
//
//   - Full: the client's request reaches every replica and the PRE-PREPARE
//     carries the batch's op bytes again (the classic duplication), and every
//     replica sends its reply with the result bytes.
//   - Digest: the PRE-PREPARE carries entries only and references requests
//     that replicas already hold by digest; only the designated replica
//     (timestamp mod n) returns result bytes, the others the digest.
//     A replica that must execute a batch whose ops it lacks fetches them by
//     digest (broadcast.TypeFetch / TypePayload), as it does batches and view
//     changes named in a NEW-VIEW.
//
// PREPARE and COMMIT carry digests in both modes, as in the paper. In full
// mode the PRE-PREPARE's Header.Digest is the batch digest, not the hash of
// the concatenated ops it carries; each op is checked against its entry.
//
// # Authentication
//
// Links are authenticated by the driver (MAC vectors in the normal case, or
// Ed25519 throughout). What must convince a third party is signed inside
// the body with Config.Signer (Ed25519 from Env.Keys by default): the
// PRE-PREPARE and each PREPARE (so that a prepared certificate can be shown
// in a view change), CHECKPOINT (the stable-checkpoint proof), VIEW-CHANGE
// and NEW-VIEW. A PREPARE's signature is verified only when the vote would
// complete a prepared certificate (2f verifications per replica per batch,
// none for votes beyond the quorum), and a CHECKPOINT's on receipt (one per
// replica every CheckpointInterval sequence numbers), so that every prepared
// slot and every stable checkpoint carries a proof that convinces the others
// in a view change, whatever a Byzantine replica signed.
//
// # Bounded state
//
// Per client, a ring of ClientWindow requests (timestamps in (base,
// base+ClientWindow]); per sequence number in the watermark window (h,
// h+Window], one slot with one PREPARE and one COMMIT per replica; one
// checkpoint vote per replica per checkpoint in the window; the newest four
// VIEW-CHANGEs per replica; one kept future-view PRE-PREPARE per sequence
// number, their payload bytes within Config.FutureQuota per primary (beyond
// it they are kept as digests). Payloads live in the broadcast.PayloadStore,
// pinned while a request, batch, checkpoint or view change needs them; what
// no state pins is bounded by the store's per-sender quota.
//
// # Fetching
//
// A replica that lacks bytes it must hold asks one replica at a time — the
// ones known to hold them first (voters of the batch, the VIEW-CHANGE's
// sender, the checkpoint's signers), then the others in turn — moving on
// when a try times out, with a timeout that doubles (fetch.go). Answers are
// a budgeted service: each peer may take Config.FetchAnswerRate bytes per
// second; FETCHes beyond it are dropped and counted (Stats.FetchRefused).
//
// # Deviations from the paper, and why
//
//   - A backup accepts a PRE-PREPARE only once it holds the bytes of every
//     request it names (from the client, from the full-mode PRE-PREPARE, or
//     fetched by digest on the retransmission tick), so that a committed
//     batch is always executable: f+1 correct replicas hold it. A request it
//     did not get from the client's own link (or got differently) must carry
//     a valid client signature. Batches re-issued in a new view are exempt
//     from these checks: a prepared certificate already shows 2f+1 replicas
//     accepted them, and replicas keep certified batches pinned.
//   - A replica whose view-change timer runs out while requests wait first
//     relays those requests to every replica (once per view), so that a
//     client that reached only some replicas cannot make only those leave
//     the view; the next expiry starts the view change.
//   - PRE-PREPAREs for a view not yet entered are kept (one per sequence
//     number) and replayed once its NEW-VIEW is processed.
//   - VIEW-CHANGE and NEW-VIEW contents travel as payloads under their
//     digest, signed in the body, so a replica that missed one fetches it by
//     digest; NEW-VIEW names the view changes, and every replica recomputes
//     the batches of the new view from them instead of receiving a list.
//   - Protocol messages are retransmitted on a timer while work is pending,
//     so that loss costs time, not liveness.
//   - Clients authenticate their requests (Config.RequestAuth) so that a
//     backup that missed a request, or got a different one under the same
//     timestamp from an equivocating client, accepts the primary's choice on
//     the client's authenticator: by default (with Keys) a vector of n MACs,
//     one per replica under the pairwise keys of the keyrings, as in Castro
//     and Liskov's MAC variant, which travels with the request when it is
//     relayed and inside the PRE-PREPARE's entry so that each replica checks
//     its own MAC; or (RequestSigned) a signature with Config.Signer. A
//     backup that holds the very request it received on the client's link
//     checks nothing; the primary checks each request once before ordering
//     it. With MAC vectors a Byzantine client can give some replicas bad
//     MACs and so delay its own request until a view change, never break
//     safety.
//   - A replica in a view change arms its timer only once 2f+1 replicas
//     asked for its target view (as in the paper), and joins the smallest
//     view that f+1 others ask for; so correct replicas never drift apart.
//
// # Restarts
//
// With a Config.Journal, a replica records, before it sends what depends on
// them, the views it entered or asked for, its prepared certificates with
// their batches, its stable checkpoint and its checkpoint blobs; restarted
// with Config.Recovery it re-executes its application's log from the
// checkpoint, takes back its certificates and asks for the next view, never
// acting again in a view it recorded (recovery.go). So any 2f+1 replicas —
// the whole cluster included — restarted on their disks form a view and
// serve again, and no committed batch is lost. The hosted client resumes
// its numbering after the last request the replica executed. Without a
// Journal, a restarted replica is a new one: it must rejoin by state
// transfer, and the whole cluster must not restart.
package pbft
