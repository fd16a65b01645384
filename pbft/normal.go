package pbft

import (
	"slices"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/internal/mutant"
)

// The normal case: requests, PRE-PREPARE, PREPARE, COMMIT, execution and
// replies.

type reqState uint8

const (
	reqEmpty reqState = iota
	reqPending
	reqDone
)

// reqSlot is one entry of a client's request window.
type reqSlot struct {
	ts       uint64
	state    reqState
	op       broadcast.Digest
	assigned uint32 // view+1 in which the primary ordered it, 0 if not
	sig      []byte // the client's signature
	checked  bool   // the signature was verified
	relayed  uint32 // view+1 in which this replica relayed it to all
	result   []byte
	resD     broadcast.Digest
}

// clientRec is what a replica holds for one client: a ring of ClientWindow
// requests. Every timestamp ≤ base is executed; those in (base,
// base+ClientWindow] may be pending or executed; later ones are refused. So
// a client, correct or not, occupies at most ClientWindow slots.
type clientRec struct {
	base    uint64
	slots   []reqSlot
	pending int
}

// advance moves base past every executed timestamp that follows it.
func (c *clientRec) advance() {
	for nx := c.at(c.base + 1); nx.ts == c.base+1 && nx.state == reqDone; nx = c.at(c.base + 1) {
		c.base++
	}
}

func (c *clientRec) at(ts uint64) *reqSlot { return &c.slots[ts%uint64(len(c.slots))] }

func (c *clientRec) lookup(ts uint64) *reqSlot {
	if s := c.at(ts); s.ts == ts && s.state != reqEmpty {
		return s
	}
	return nil
}

func (c *clientRec) done(ts uint64) bool {
	if ts <= c.base {
		return true
	}
	s := c.lookup(ts)
	return s != nil && s.state == reqDone
}

func (nd *Node) onRequest(from broadcast.NodeID, m *broadcast.Message) error {
	client, flags, sig, err := decodeRequestBody(m.Body, nd.n)
	if err != nil {
		return err
	}
	relayed := client != from
	if relayed {
		// Another replica relays it (its view-change timer ran out while
		// it held the request): only the client's signature vouches for it.
		if err := nd.verify(nd.reqAuth, client, stmtRequest, 0, m.Instance.Seq, m.Digest, sig); err != nil {
			return broadcast.Reject(broadcast.ReasonAuth, "pbft: request of client %v relayed by %v without a valid client signature", client, from)
		}
	}
	if m.Flags&broadcast.HasPayload == 0 || m.Payload.Len() > nd.cfg.MaxRequest {
		return broadcast.Reject(broadcast.ReasonLength, "pbft: request without payload or over %d bytes", nd.cfg.MaxRequest)
	}
	ts := m.Instance.Seq
	rec := &nd.clients[client]
	if ts == 0 {
		return broadcast.Reject(broadcast.ReasonBody, "pbft: request timestamp 0")
	}
	if s := rec.lookup(ts); s != nil && s.state == reqDone {
		if from != nd.self {
			nd.store.CountDuplicate(m.Payload.Len())
			nd.sendReply(client, ts, s, flags&requestFlagRetransmit != 0)
		}
		return nil
	}
	if ts <= rec.base {
		return nil // executed long ago; its reply is no longer cached
	}
	if ts > rec.base+uint64(len(rec.slots)) {
		return broadcast.Reject(broadcast.ReasonQuota, "pbft: request %d of %v beyond its window (%d, %d]", ts, client, rec.base, rec.base+uint64(len(rec.slots)))
	}
	s := rec.at(ts)
	if s.state == reqPending {
		if from != nd.self {
			nd.store.CountDuplicate(m.Payload.Len())
		}
		return nil // first request for a timestamp wins
	}
	if err := nd.putPinnedAs(mutant.PBFTRequestDigest, client, m.Digest, m.Payload); err != nil {
		return err
	}
	// The slot's authenticator buffer is reused: entries and bodies made
	// from it copy it.
	*s = reqSlot{ts: ts, state: reqPending, op: m.Digest, sig: append(s.sig[:0], sig...), checked: client == nd.self || relayed}
	rec.pending++
	nd.stats.Requests++
	if nd.isPrimary() && !nd.changing {
		nd.queue = append(nd.queue, reqRef{client, ts})
		nd.tryPropose()
	}
	nd.retryParked()
	nd.armTimer()
	return nil
}

// relayPending is what a replica does when its view-change timer first
// runs out in a view: it relays every request it still waits for to all
// replicas (dropping those whose client signature does not verify), so that
// a client that reached only some replicas cannot make only those leave the
// view: either the primary orders the request now, or every correct replica
// holds it and times out together. It reports whether it relayed any.
func (nd *Node) relayPending() bool {
	any := false
	for c := range nd.clients {
		rec := &nd.clients[c]
		for j := range rec.slots {
			s := &rec.slots[j]
			if s.state != reqPending || s.relayed == nd.view+1 {
				continue
			}
			if !s.checked {
				if nd.verify(nd.reqAuth, broadcast.NodeID(c), stmtRequest, 0, s.ts, s.op, s.sig) != nil {
					nd.store.Unpin(s.op)
					*s = reqSlot{}
					rec.pending--
					continue
				}
				s.checked = true
			}
			b, ok := nd.store.Get(s.op)
			if !ok {
				continue
			}
			s.relayed = nd.view + 1
			m := nd.send(broadcast.Everyone, TypeRequest, 0, s.ts, s.op, appendRequestBody(nil, broadcast.NodeID(c), requestFlagRetransmit, s.sig))
			m.SetPayload(b, s.op)
			any = true
		}
	}
	return any
}

// tryPropose orders queued requests while the pipeline and the watermark
// window have room and the queue is worth a batch (batchDue).
func (nd *Node) tryPropose() {
	for nd.isPrimary() && !nd.changing && nd.newViewReady() && len(nd.queue) > 0 &&
		nd.nextSeq < nd.low+nd.cfg.Window && nd.nextSeq-nd.lastExec < uint64(nd.cfg.Pipeline) && nd.batchDue() {
		var es []Entry
		i := 0
		for ; i < len(nd.queue) && len(es) < nd.cfg.Batch; i++ {
			r := nd.queue[i]
			s := nd.clients[r.client].lookup(r.ts)
			if s == nil || s.state != reqPending || s.assigned == nd.view+1 {
				continue
			}
			if !s.checked {
				// Backups that lack this request, or hold another one for
				// the same timestamp, accept it on the client's signature:
				// never propose one whose signature does not verify.
				if nd.verify(nd.reqAuth, r.client, stmtRequest, 0, r.ts, s.op, s.sig) != nil {
					continue
				}
				s.checked = true
			}
			s.assigned = nd.view + 1
			es = append(es, Entry{Client: r.client, Timestamp: r.ts, Op: s.op, Sig: s.sig})
		}
		nd.queue = nd.queue[i:]
		if len(es) == 0 {
			continue
		}
		for k := range es {
			if b, ok := nd.store.Get(es[k].Op); ok {
				es[k].Len = uint32(b.Len())
				b.Release()
			}
		}
		nd.nextSeq++
		enc := appendEntries(nil, es)
		nd.sendPrePrepare(nd.nextSeq, enc, batchDigest(enc))
		nd.stats.Batches++
	}
	if len(nd.queue) == 0 {
		nd.queue = nil
	}
}

// batchDue is adaptive batching: an idle pipeline orders whatever is
// queued at once (a lone request waits for nothing), while with batches in
// flight (pre-prepared, not executed) the primary proposes only full
// batches of Config.Batch; until then the batch grows with the queue, and
// the next execution proposes whatever it holds. So under load the
// per-batch signatures are spread over Batch requests, and a request never
// waits for more than the batches already in flight. Only with
// Config.AdaptiveBatch.
func (nd *Node) batchDue() bool {
	if !nd.cfg.AdaptiveBatch || nd.nextSeq <= nd.lastExec {
		return true
	}
	return len(nd.queue) >= nd.cfg.Batch
}

// sendPrePrepare sends the PRE-PREPARE for (view, seq) and accepts it
// locally. In full mode it carries the batch's op bytes.
func (nd *Node) sendPrePrepare(seq uint64, enc []byte, d broadcast.Digest) {
	es, err := decodeEntries(enc, nd.n, maxBatch)
	if err != nil {
		nd.log.Error("own batch does not decode", "err", err)
		return
	}
	sig := nd.sign(stmtPrePrepare, nd.view, seq, d)
	nd.emitPrePrepare(seq, d, sig, enc, es)
	nd.acceptPrePrepare(nd.getSlot(seq), nd.view, d, enc, es, sig)
}

func (nd *Node) emitPrePrepare(seq uint64, d broadcast.Digest, sig, enc []byte, es []Entry) {
	m := nd.send(broadcast.Everyone, TypePrePrepare, nd.view, seq, d, appendPrePrepareBody(nil, sig, enc))
	if nd.cfg.Mode == broadcast.ModeFull && len(es) > 0 {
		if p, ok := nd.batchPayload(es); ok {
			m.SetPayload(p, d)
		}
	}
}

// batchPayload concatenates a batch's op bytes: the full mode's PRE-PREPARE
// payload (one copy, the baseline's cost).
func (nd *Node) batchPayload(es []Entry) (bufpool.Buf, bool) {
	total := 0
	for _, e := range es {
		total += int(e.Len)
	}
	buf := make([]byte, 0, total)
	for _, e := range es {
		b, ok := nd.store.Get(e.Op)
		if !ok || b.Len() != int(e.Len) {
			if ok {
				b.Release()
			}
			return bufpool.Buf{}, false
		}
		for seg := range b.Segments() {
			buf = append(buf, seg...)
		}
		b.Release()
	}
	if total == 0 {
		return bufpool.Buf{}, false
	}
	return bufpool.Wrap(buf), true
}

// sortedSlots returns the slots' sequence numbers in order (output must
// not depend on map order: the simulator replays runs by seed).
func (nd *Node) sortedSlots() []uint64 {
	out := make([]uint64, 0, len(nd.slots))
	for seq := range nd.slots {
		out = append(out, seq)
	}
	slices.Sort(out)
	return out
}

func (nd *Node) getSlot(seq uint64) *slot {
	s := nd.slots[seq]
	if s == nil {
		votes := make([]vote, 2*nd.n)
		s = &slot{seq: seq, prepares: votes[:nd.n:nd.n], commits: votes[nd.n:]}
		nd.slots[seq] = s
	}
	return s
}

func (nd *Node) inWindow(seq uint64) bool { return seq > nd.low && seq <= nd.low+nd.cfg.Window }

func (nd *Node) onPrePrepare(from broadcast.NodeID, m *broadcast.Message) error {
	v, seq := m.Round, m.Instance.Seq
	if from != nd.primary(v) {
		return broadcast.Reject(broadcast.ReasonSender, "pbft: pre-prepare for view %d from %v, not its primary", v, from)
	}
	sig, enc, err := decodePrePrepareBody(m.Body)
	if err != nil {
		return err
	}
	d := nd.batchDigestOf(m, enc)
	if d != m.Digest {
		return broadcast.Reject(broadcast.ReasonDigestMismatch, "pbft: pre-prepare digest does not name its batch")
	}
	es, err := decodeEntries(enc, nd.n, maxBatch)
	if err != nil {
		return err
	}
	if v > nd.view && nd.inWindow(seq) && (!nd.changing || v >= nd.target) {
		// The primary of a view we have not entered yet (its NEW-VIEW is
		// on its way): keep the newest per sequence number for then.
		if old := nd.future[seq]; old == nil || old.Round < v {
			if old != nil {
				nd.dropFuture(seq)
			}
			c := *m
			c.Body = append([]byte(nil), m.Body...)
			c.Auth = nil
			if nd.futureBytes[from]+m.Payload.Len() > nd.cfg.FutureQuota {
				// Over its primary's quota: keep the batch's digests, not
				// its bytes (fetched by digest if the view comes).
				c.Payload = bufpool.Buf{}
				c.Flags &^= broadcast.HasPayload
				c.PayloadLen = 0
				nd.stats.FutureStripped++
			} else {
				c.Payload = m.Payload.Retain()
				nd.futureBytes[from] += c.Payload.Len()
			}
			nd.future[seq] = &c
		}
		return nil
	}
	if v != nd.view && !(v < nd.view && nd.cfg.Mutations.Has(mutant.PBFTPrePrepareOldView)) || nd.changing && !nd.cfg.Mutations.Has(mutant.PBFTActWhileChanging) || !nd.inWindow(seq) {
		return nil // another view, or outside the watermarks
	}
	s := nd.getSlot(seq)
	if (s.accepted || s.parked) && s.view == v {
		if s.digest != d {
			nd.log.Debug("primary equivocates", "view", v, "seq", seq)
		}
		return nil
	}
	inO := false
	if nv := nd.newView; nv != nil && nv.view == v && seq > nv.lowO && seq <= nv.highO {
		if nv.o[seq] != d {
			return broadcast.Reject(broadcast.ReasonBody, "pbft: pre-prepare at %d contradicts the new view", seq)
		}
		inO = true
	}
	if m.Flags&broadcast.HasPayload != 0 {
		off := 0
		for _, e := range es {
			if off+int(e.Len) > m.Payload.Len() {
				return broadcast.Reject(broadcast.ReasonLength, "pbft: batch payload shorter than its entries")
			}
			if err := nd.store.Put(from, e.Op, m.Payload.Slice(off, int(e.Len))); err != nil {
				return err
			}
			off += int(e.Len)
		}
	}
	if !inO && !nd.requestsKnown(es) {
		s.view, s.digest, s.enc, s.entries, s.ppSig, s.parked, s.accepted = v, d, append([]byte(nil), enc...), es, append([]byte(nil), sig...), true, false
		nd.armTimer() // the retransmission tick fetches what is missing
		return nil
	}
	nd.acceptPrePrepare(s, v, d, enc, es, sig)
	return nil
}

// requestsKnown reports whether every entry of a batch is a request of its
// client: one this replica received from the client itself (or executed),
// or else one whose client signature verifies. A primary cannot order a
// request no client sent.
//
// It also requires the op bytes to be held (fetched on the retransmission
// timer if the client's copy does not arrive), so
// that 2f+1 acceptances — hence f+1 correct replicas — guarantee that a
// committed batch can be executed: a Byzantine primary cannot get a batch
// committed whose bytes only it has.
func (nd *Node) requestsKnown(es []Entry) bool {
	for i, e := range es {
		rec := &nd.clients[e.Client]
		if !rec.done(e.Timestamp) && !nd.store.Has(e.Op) {
			return false // the client's copy is likely on its way; retransmit fetches it
		}
		if !rec.done(e.Timestamp) {
			if s := rec.lookup(e.Timestamp); s == nil || s.op != e.Op {
				if e.Timestamp > rec.base+uint64(len(rec.slots)) || nd.verify(nd.reqAuth, e.Client, stmtRequest, 0, e.Timestamp, e.Op, e.Sig) != nil {
					return false
				}
			}
		}
		for _, o := range es[:i] {
			if o.Client == e.Client && o.Timestamp == e.Timestamp {
				return false
			}
		}
	}
	return true
}

func (nd *Node) retryParked() {
	any := false
	for _, s := range nd.slots {
		if s.parked {
			any = true
			break
		}
	}
	if !any {
		return
	}
	for _, seq := range nd.sortedSlots() {
		s := nd.slots[seq]
		if s == nil {
			continue // collected by a checkpoint an earlier acceptance made stable
		}
		if s.parked && s.view == nd.view && !nd.changing && nd.requestsKnown(s.entries) {
			nd.acceptPrePrepare(s, s.view, s.digest, s.enc, s.entries, s.ppSig)
		}
	}
}

func (nd *Node) acceptPrePrepare(s *slot, v uint32, d broadcast.Digest, enc []byte, es []Entry, sig []byte) {
	if s.digest != d || s.enc == nil || s.parked {
		// Pins of a batch this slot held in an earlier view stay until the
		// checkpoint collects the slot: a replica that lags may still need
		// to fetch those bytes from this one. A slot that was parked holds
		// the batch but no pins yet: pin now, or the requests fetched
		// while it waited are evicted and, once committed, the batch can
		// never execute anywhere (sim seed 37962).
		s.enc = append([]byte(nil), enc...)
		s.entries = es
		if s.pinned == nil {
			s.pinned = make([]broadcast.Digest, 0, 1+2*len(es)) // the batch, its ops, their execution pins
		}
		if d != batchDigest(nullBatch) {
			if nd.putPinned(nd.self, d, bufpool.Wrap(s.enc)) == nil {
				s.pinned = append(s.pinned, d)
			}
		}
		for _, e := range es {
			if nd.store.Pin(e.Op) {
				s.pinned = append(s.pinned, e.Op)
			}
		}
	}
	s.view, s.digest, s.ppSig, s.ppOK = v, d, s.keep(sig, nd.n), false
	s.accepted, s.parked, s.sentPrep, s.sentCmt, s.prepared = true, false, false, false, false
	for _, e := range es {
		if r := nd.clients[e.Client].lookup(e.Timestamp); r != nil && r.state == reqPending {
			r.assigned = v + 1
		}
	}
	if nd.primary(v) != nd.self {
		body := appendSig(nil, nd.sign(stmtPrepare, v, s.seq, d))
		nd.send(broadcast.Everyone, TypePrepare, v, s.seq, d, body)
		s.prepares[nd.self] = vote{view: v, d: d, sig: body[1:len(body):len(body)], ok: true}
		s.sentPrep = true
	}
	nd.armTimer()
	nd.checkSlot(s)
}

func (nd *Node) onVote(from broadcast.NodeID, m *broadcast.Message) error {
	sig, err := decodeSigBody(m.Body)
	if err != nil {
		return err
	}
	v, seq := m.Round, m.Instance.Seq
	if m.Type == TypePrepare && from == nd.primary(v) {
		return broadcast.Reject(broadcast.ReasonSender, "pbft: prepare from the primary of view %d", v)
	}
	if v < nd.view || !nd.inWindow(seq) {
		return nil
	}
	s := nd.getSlot(seq)
	votes := s.commits
	if m.Type == TypePrepare {
		votes = s.prepares
	}
	if old := votes[from]; old.ok && old.view > v {
		return nil
	}
	votes[from] = vote{view: v, d: m.Digest, sig: s.keep(sig, nd.n), ok: true}
	nd.checkSlot(s)
	return nil
}

// checkSlot advances a slot: prepared (the pre-prepare and 2f matching
// prepares) → send COMMIT; committed-local (prepared and 2f+1 matching
// commits) → execute in order.
func (nd *Node) checkSlot(s *slot) {
	if !s.accepted || s.view != nd.view || nd.changing && !nd.cfg.Mutations.Has(mutant.PBFTActWhileChanging) {
		return
	}
	if !s.prepared {
		need := nd.quorum() - 1 - nd.cfg.Mutations.Bit(mutant.PBFTPrepareQuorum)
		if nd.cfg.UnsafeCommitQuorum > 0 {
			need = nd.cfg.UnsafeCommitQuorum - 1
		}
		cnt := 0
		for i, p := range s.prepares {
			if p.ok && p.view == s.view && p.d == s.digest && broadcast.NodeID(i) != nd.primary(s.view) {
				cnt++
			}
		}
		if cnt < need {
			return
		}
		// The votes would complete a certificate: check the signatures now
		// (once per vote), so that every prepared slot has a certificate
		// that convinces others in a view change.
		if !s.ppOK && nd.primary(s.view) != nd.self {
			if nd.verify(nd.signer, nd.primary(s.view), stmtPrePrepare, s.view, s.seq, s.digest, s.ppSig) != nil {
				return // a Byzantine primary: the view-change timer will act
			}
		}
		s.ppOK = true
		cert := &PreparedCert{Seq: s.seq, View: s.view, Digest: s.digest, PPSig: s.ppSig, Prepares: make([]SignedVote, 0, nd.n)}
		for i := range s.prepares {
			p := &s.prepares[i]
			if !p.ok || p.view != s.view || p.d != s.digest || broadcast.NodeID(i) == nd.primary(s.view) {
				continue
			}
			if !p.verified && broadcast.NodeID(i) != nd.self {
				if nd.verify(nd.signer, broadcast.NodeID(i), stmtPrepare, s.view, s.seq, s.digest, p.sig) != nil {
					*p = vote{}
					continue
				}
			}
			p.verified = true
			cert.Prepares = append(cert.Prepares, SignedVote{Node: broadcast.NodeID(i), Sig: p.sig})
		}
		if len(cert.Prepares) < need {
			return
		}
		s.prepared, s.cert = true, cert
		nd.pinCert(s)
		nd.journalPrepared(s) // before COMMIT leaves
	}
	if !s.sentCmt {
		nd.send(broadcast.Everyone, TypeCommit, s.view, s.seq, s.digest, nil)
		s.commits[nd.self] = vote{view: s.view, d: s.digest, ok: true}
		s.sentCmt = true
	}
	if !s.commit {
		cnt := 0
		for _, c := range s.commits {
			if c.ok && (c.view == s.view || nd.cfg.Mutations.Has(mutant.PBFTCommitsAnyView)) && c.d == s.digest {
				cnt++
			}
		}
		if cnt < nd.commitQuorum() {
			return
		}
		s.commit = true
	}
	nd.executeReady()
}

// executeReady executes committed batches in sequence order, fetching any
// op bytes this replica lacks.
func (nd *Node) executeReady() {
	for nd.transfer == nil {
		s := nd.slots[nd.lastExec+1]
		if s == nil || !s.commit {
			return
		}
		if s.enc == nil {
			nd.fetch(s.digest, nd.holdersOf(s)...)
			return
		}
		missing := false
		for _, e := range s.entries {
			if !nd.clients[e.Client].done(e.Timestamp) && !nd.store.Has(e.Op) {
				nd.fetch(e.Op, nd.holdersOf(s)...)
				missing = true
			}
		}
		if missing {
			return
		}
		nd.execute(s)
	}
}

// execPos is an entry execute applies and its index in the batch.
type execPos struct {
	e   Entry
	idx int
}

func (nd *Node) execute(s *slot) {
	ops, at := nd.execOps[:0], nd.execAt[:0]
	if nd.deliveries == nil {
		nd.deliveries = make([]broadcast.Delivery, 0, len(s.entries))
	}
	for i, e := range s.entries {
		rec := &nd.clients[e.Client]
		if rec.done(e.Timestamp) || e.Timestamp > rec.base+uint64(len(rec.slots)) {
			nd.stats.Skipped++
			continue
		}
		dup := false
		for _, p := range at {
			if p.e.Client == e.Client && p.e.Timestamp == e.Timestamp {
				dup = true
			}
		}
		if dup {
			nd.stats.Skipped++
			continue
		}
		b, _ := nd.store.Get(e.Op)
		// The log keeps executed bytes until the checkpoint collects the
		// slot: a replica that lags fetches them from here.
		if nd.store.Pin(e.Op) {
			s.pinned = append(s.pinned, e.Op)
		}
		ops = append(ops, Op{Client: e.Client, Timestamp: e.Timestamp, Payload: b})
		at = append(at, execPos{e, i})
	}
	var results [][]byte
	if len(ops) > 0 {
		results = nd.sm.Apply(s.seq, ops)
	}
	for k, p := range at {
		rec := &nd.clients[p.e.Client]
		r := rec.at(p.e.Timestamp)
		if r.ts == p.e.Timestamp && r.state == reqPending {
			nd.store.Unpin(r.op)
			rec.pending--
		}
		var res []byte
		if k < len(results) {
			res = results[k]
		}
		*r = reqSlot{ts: p.e.Timestamp, state: reqDone, op: p.e.Op, result: res, resD: broadcast.DigestOfBytes(res), sig: r.sig[:0]}
		rec.advance()
		nd.deliveries = append(nd.deliveries, broadcast.Delivery{
			Instance: broadcast.Instance{Origin: p.e.Client, Seq: s.seq}, Index: p.idx, Digest: p.e.Op, Payload: ops[k].Payload})
		nd.stats.Executed++
		nd.sendReply(p.e.Client, p.e.Timestamp, r, false)
	}
	clear(ops)
	clear(at)
	nd.execOps, nd.execAt = ops[:0], at[:0]
	s.executed = true
	nd.lastExec = s.seq
	if nd.cfg.OnExecute != nil {
		nd.cfg.OnExecute(s.seq, s.digest, s.entries)
	}
	nd.timer, nd.vcStreak, nd.viewRun, nd.carried = 0, 0, 0, nil
	nd.armTimer()
	if s.seq%nd.cfg.CheckpointInterval == 0 {
		nd.makeCheckpoint(s.seq)
	}
	nd.tryPropose()
}

// sendReply answers client c's request ts. In full mode, on a
// retransmission, and from the designated replier (ts mod n) the reply
// carries the result; otherwise only its digest.
func (nd *Node) sendReply(c broadcast.NodeID, ts uint64, r *reqSlot, retransmit bool) {
	if c == nd.self {
		_ = nd.client.OnReply(nd.self, ts, r.resD, r.result, true)
		return
	}
	m := nd.send(c, TypeReply, nd.view, ts, r.resD, nil)
	if nd.cfg.Mode == broadcast.ModeFull || retransmit || ts%uint64(nd.n) == uint64(nd.self) {
		if len(r.result) > 0 {
			m.SetPayload(bufpool.Wrap(r.result), r.resD)
		} else {
			m.Flags |= broadcast.HasPayload
		}
	}
}

func (nd *Node) unpinSlot(s *slot) {
	for _, d := range s.pinned {
		nd.store.Unpin(d)
	}
	s.pinned = s.pinned[:0]
}

// pinCert pins the batch and ops of the slot's prepared certificate, apart
// from the pins of whatever PRE-PREPARE the slot holds: a later view may
// replace that, but a view change may still order the certified batch, and
// this replica is one of the f+1 correct holders its bytes are fetched from.
func (nd *Node) pinCert(s *slot) {
	for _, d := range s.certPins {
		nd.store.Unpin(d)
	}
	s.certPins = s.certPins[:0]
	if s.certPins == nil {
		s.certPins = make([]broadcast.Digest, 0, 1+len(s.entries))
	}
	if nd.store.Pin(s.digest) {
		s.certPins = append(s.certPins, s.digest)
	}
	for _, e := range s.entries {
		if nd.store.Pin(e.Op) {
			s.certPins = append(s.certPins, e.Op)
		}
	}
}

func (nd *Node) dropSlot(seq uint64) {
	if s := nd.slots[seq]; s != nil {
		nd.unpinSlot(s)
		for _, d := range s.certPins {
			nd.store.Unpin(d)
		}
		delete(nd.slots, seq)
	}
}

// verify checks sig, by signer, of from's statement (kind, view, seq, d).
// The statement lives in the Node, so that checking allocates nothing.
func (nd *Node) verify(signer Signer, from broadcast.NodeID, kind byte, view uint32, seq uint64, d broadcast.Digest, sig []byte) error {
	nd.stmt = statement(kind, view, seq, d)
	return signer.Verify(from, &nd.stmt, sig)
}

// sign signs this replica's statement (kind, view, seq, d) with its Signer.
func (nd *Node) sign(kind byte, view uint32, seq uint64, d broadcast.Digest) []byte {
	nd.stmt = statement(kind, view, seq, d)
	return nd.signer.Sign(&nd.stmt)
}

// keep copies a signature into the slot's arena (one allocation per slot for
// its votes), never reused: certificates and view changes borrow it.
func (s *slot) keep(sig []byte, n int) []byte {
	if len(sig) == 0 {
		return nil
	}
	if cap(s.arena)-len(s.arena) < len(sig) {
		s.arena = make([]byte, 0, max(2*n*len(sig), 256))
	}
	at := len(s.arena)
	s.arena = append(s.arena, sig...)
	return s.arena[at:len(s.arena):len(s.arena)]
}
