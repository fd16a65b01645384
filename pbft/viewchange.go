package pbft

import (
	"slices"
	"sort"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/internal/mutant"
)

// View change. A replica whose timer expires while requests wait stops
// taking part in the view and sends VIEW-CHANGE(v+1): its stable checkpoint
// with the 2f+1 signatures that prove it, and for every sequence number above
// it a prepared certificate (the primary's signed PRE-PREPARE and 2f signed
// PREPAREs, over the batch digest). The content travels as the message's
// payload under its digest; the body carries the sender's signature of that
// digest. The new primary, holding 2f+1 of them, sends NEW-VIEW naming them
// by (sender, digest, signature); every replica recomputes from them which
// batch digest each sequence number gets (the one of the highest-view
// certificate, or the null batch) and the new primary re-issues those
// PRE-PREPAREs. No request payload is sent again: replicas that lack a batch
// or a request fetch it by digest.

func (nd *Node) startViewChange(v uint32) {
	if v <= nd.view || (nd.changing && v <= nd.target) {
		return
	}
	nd.changing, nd.target = true, v
	nd.stats.ViewChanges++
	nd.vcStreak++
	nd.timer = 0 // re-armed once 2f+1 replicas ask for v
	if nv := nd.newView; nv != nil && !nv.done && nv.view < v {
		for _, r := range nv.refs {
			delete(nd.wanted, r.Digest)
		}
		nd.newView = nil
	}
	vc := &ViewChange{NewView: v, StableSeq: nd.stable.seq, StableDigest: nd.stable.digest}
	for _, sv := range nd.stable.proof {
		st := statement(stmtCheckpoint, 0, nd.stable.seq, nd.stable.digest)
		if sv.Node == nd.self || nd.signer.Verify(sv.Node, &st, sv.Sig) == nil {
			vc.StableProof = append(vc.StableProof, sv)
		}
	}
	seqs := make([]uint64, 0, len(nd.slots))
	for seq, s := range nd.slots {
		if s.cert != nil && seq > nd.low {
			seqs = append(seqs, seq)
		}
	}
	sort.Slice(seqs, func(a, b int) bool { return seqs[a] < seqs[b] })
	for _, seq := range seqs {
		if c := nd.validCert(nd.slots[seq].cert); c != nil {
			vc.Prepared = append(vc.Prepared, *c)
		}
	}
	nd.journalView(v)
	enc := appendViewChange(nil, vc)
	d := broadcast.DigestOfBytes(enc)
	st := statement(stmtViewChange, v, 0, d)
	sig := nd.signer.Sign(&st)
	nd.recordViewChange(nd.self, &vcRecord{view: v, digest: d, sig: sig, content: vc}, bufpool.Wrap(enc))
	nd.emitViewChange()
	nd.maybeNewView(v)
	nd.armTimer()
}

func (nd *Node) emitViewChange() {
	r := nd.vcFor(nd.self, nd.target)
	if r == nil {
		return
	}
	b, ok := nd.store.Get(r.digest)
	if !ok {
		return
	}
	m := nd.send(broadcast.Everyone, TypeViewChange, r.view, r.content.StableSeq, r.digest, appendSig(nil, r.sig))
	m.SetPayload(b, r.digest)
}

// validCert returns c with only the prepares whose signatures verify, or
// nil if fewer than 2f remain. Signatures are checked here, lazily, rather
// than on every PREPARE: only a view change needs them.
func (nd *Node) validCert(c *PreparedCert) *PreparedCert {
	out := *c
	out.Prepares = nil
	p := nd.primary(c.View)
	for _, v := range c.Prepares {
		if v.Node == p {
			continue
		}
		if v.Node != nd.self {
			st := statement(stmtPrepare, c.View, c.Seq, c.Digest)
			if nd.signer.Verify(v.Node, &st, v.Sig) != nil {
				continue
			}
		}
		out.Prepares = append(out.Prepares, v)
	}
	if len(out.Prepares) < nd.quorum()-1 {
		return nil
	}
	if p != nd.self {
		st := statement(stmtPrePrepare, c.View, c.Seq, c.Digest)
		if nd.signer.Verify(p, &st, c.PPSig) != nil {
			return nil
		}
	}
	return &out
}

// checkViewChange validates a VIEW-CHANGE's content: its checkpoint proof
// and every prepared certificate.
func (nd *Node) checkViewChange(vc *ViewChange) error {
	if vc.StableSeq%nd.cfg.CheckpointInterval != 0 {
		return broadcast.Reject(broadcast.ReasonBody, "pbft: view change from checkpoint %d", vc.StableSeq)
	}
	if vc.StableSeq > 0 {
		if err := nd.checkVotes(vc.StableProof, nd.quorum(), func(broadcast.NodeID) broadcast.Digest {
			return statement(stmtCheckpoint, 0, vc.StableSeq, vc.StableDigest)
		}, broadcast.Everyone); err != nil {
			return err
		}
	}
	seen := map[uint64]bool{}
	for i := range vc.Prepared {
		c := &vc.Prepared[i]
		if c.Seq <= vc.StableSeq || c.Seq > vc.StableSeq+nd.cfg.Window || c.View >= vc.NewView || seen[c.Seq] {
			return broadcast.Reject(broadcast.ReasonBody, "pbft: certificate for seq %d view %d out of range", c.Seq, c.View)
		}
		seen[c.Seq] = true
		p := nd.primary(c.View)
		st := statement(stmtPrePrepare, c.View, c.Seq, c.Digest)
		if err := nd.signer.Verify(p, &st, c.PPSig); err != nil {
			return err
		}
		if err := nd.checkVotes(c.Prepares, nd.quorum()-1, func(broadcast.NodeID) broadcast.Digest {
			return statement(stmtPrepare, c.View, c.Seq, c.Digest)
		}, p); err != nil {
			return err
		}
	}
	return nil
}

// checkVotes requires at least need distinct signers (excluding `exclude`)
// whose signatures verify. Signatures that do not verify are ignored, not
// held against the sender: a correct replica may have been handed them.
func (nd *Node) checkVotes(vs []SignedVote, need int, stmt func(broadcast.NodeID) broadcast.Digest, exclude broadcast.NodeID) error {
	seen := make([]bool, nd.n)
	good := 0
	for _, v := range vs {
		if v.Node == exclude || seen[v.Node] && !nd.cfg.Mutations.Has(mutant.PBFTCertDupSigner) {
			continue
		}
		st := stmt(v.Node)
		if nd.signer.Verify(v.Node, &st, v.Sig) != nil {
			continue
		}
		seen[v.Node] = true
		good++
	}
	if good < need {
		return broadcast.Reject(broadcast.ReasonBody, "pbft: certificate of %d signatures, need %d", good, need)
	}
	return nil
}

func (nd *Node) onViewChange(from broadcast.NodeID, m *broadcast.Message) error {
	sig, err := decodeSigBody(m.Body)
	if err != nil {
		return err
	}
	v := m.Round
	content, release, ok := nd.contentOf(m)
	if !ok {
		return broadcast.Reject(broadcast.ReasonLength, "pbft: view change without content")
	}
	defer release()
	if v <= nd.view {
		nd.relayNewView(from, v)
		return nil
	}
	if nd.vcFor(from, v) != nil {
		return nil
	}
	st := statement(stmtViewChange, v, 0, m.Digest)
	if err := nd.signer.Verify(from, &st, sig); err != nil {
		return err
	}
	if broadcast.DigestOf(content) != m.Digest {
		return broadcast.Reject(broadcast.ReasonDigestMismatch, "pbft: view change content does not match its digest")
	}
	vc, err := decodeViewChange(content.Bytes(), nd.n, int(nd.cfg.Window))
	if err != nil {
		return err
	}
	if vc.NewView != v {
		return broadcast.Reject(broadcast.ReasonBody, "pbft: view change content for view %d in a message for %d", vc.NewView, v)
	}
	if err := nd.checkViewChange(vc); err != nil {
		return err
	}
	nd.recordViewChange(from, &vcRecord{view: v, digest: m.Digest, sig: append([]byte(nil), sig...), content: vc}, content)
	// f+1 replicas want a view above ours: at least one is correct, so join
	// the smallest view that f+1 of them ask for.
	cur := nd.view
	if nd.changing {
		cur = nd.target
	}
	var views []uint32
	for _, rs := range nd.vcs {
		if len(rs) > 0 && rs[len(rs)-1].view > cur {
			views = append(views, rs[len(rs)-1].view)
		}
	}
	if len(views) >= nd.joinQuorum() {
		sort.Slice(views, func(a, b int) bool { return views[a] > views[b] })
		nd.startViewChange(views[nd.joinQuorum()-1])
	}
	nd.maybeNewView(v)
	nd.continueNewView()
	nd.armTimer()
	return nil
}

// maxVCsPerSender bounds the VIEW-CHANGEs kept per sender: its newest few
// views, so that a replica that moved on still counts for a view the others
// are completing.
const maxVCsPerSender = 4

// vcFor returns from's VIEW-CHANGE for view v, if held.
func (nd *Node) vcFor(from broadcast.NodeID, v uint32) *vcRecord {
	for _, r := range nd.vcs[from] {
		if r.view == v {
			return r
		}
	}
	return nil
}

// recordViewChange keeps one of from's VIEW-CHANGEs, its content pinned in
// the store (borrowing content).
func (nd *Node) recordViewChange(from broadcast.NodeID, r *vcRecord, content bufpool.Buf) {
	if err := nd.store.Put(from, r.digest, content); err != nil {
		nd.log.Warn("view change not stored", "from", from, "err", err)
		if from == nd.self {
			content.Release()
		}
		return
	}
	nd.store.Pin(r.digest)
	rs := append(nd.vcs[from], r)
	sort.Slice(rs, func(a, b int) bool { return rs[a].view < rs[b].view })
	if len(rs) > maxVCsPerSender {
		nd.store.Unpin(rs[0].digest)
		rs = append(rs[:0], rs[1:]...)
	}
	nd.vcs[from] = rs
	if from == nd.self {
		content.Release() // ours was freshly wrapped
	}
}

// maybeNewView sends NEW-VIEW(v) if this replica is v's primary and holds
// 2f+1 VIEW-CHANGEs for v.
func (nd *Node) maybeNewView(v uint32) {
	if nd.primary(v) != nd.self || nd.nvSent >= v || !nd.acceptsNewView(v) {
		return
	}
	var refs []NewViewRef
	for i := range nd.vcs {
		if r := nd.vcFor(broadcast.NodeID(i), v); r != nil && len(refs) < nd.vcQuorum() {
			refs = append(refs, NewViewRef{Node: broadcast.NodeID(i), Digest: r.digest, Sig: r.sig})
		}
	}
	if len(refs) < nd.vcQuorum() {
		return
	}
	nd.nvSent = v
	enc := appendNewView(nil, v, refs)
	d := broadcast.DigestOfBytes(enc)
	st := statement(stmtNewView, v, 0, d)
	sig := nd.signer.Sign(&st)
	m := nd.send(broadcast.Everyone, TypeNewView, v, 0, d, appendSig(nil, sig))
	m.SetPayload(bufpool.Wrap(enc), d)
	nd.newView = &nvState{view: v, refs: refs, sig: sig}
	nd.continueNewView()
}

// acceptsNewView reports whether this replica may enter view v through a
// NEW-VIEW (its own, as v's primary, or one received): v must lie above
// the current view and, during a view change, must not lie below the view
// this replica asked for (Castro & Liskov, TOCS 2002, §4.4: a replica that
// sent VIEW-CHANGE for v+1 accepts no message of a lower view).
func (nd *Node) acceptsNewView(v uint32) bool {
	if v <= nd.view {
		return false
	}
	return !nd.changing || v >= nd.target || nd.cfg.Mutations.Has(mutant.PBFTNewViewBelowTarget)
}

func (nd *Node) onNewView(from broadcast.NodeID, m *broadcast.Message) error {
	sig, err := decodeSigBody(m.Body)
	if err != nil {
		return err
	}
	v := m.Round
	content, release, ok := nd.contentOf(m)
	if !ok {
		return broadcast.Reject(broadcast.ReasonLength, "pbft: new view without content")
	}
	defer release()
	// A replica accepts NEW-VIEW(v) only for a view above the one it is in
	// and not below the one it has asked to move to: once it sent
	// VIEW-CHANGE(t) it accepts no message of a view below t (Castro &
	// Liskov, TOCS 2002, §4.4). Its VIEW-CHANGE(t) described its prepared
	// certificates as of then; entering an earlier view would let it
	// prepare — and help commit — a batch that the NEW-VIEW of t, built
	// from that VIEW-CHANGE, does not carry.
	if !nd.acceptsNewView(v) || (nd.newView != nil && nd.newView.view >= v) {
		return nil
	}
	// The primary's signature makes a NEW-VIEW a proof that any replica
	// may relay (relayNewView): it is checked against v's primary, whoever
	// handed it over.
	st := statement(stmtNewView, v, 0, m.Digest)
	if err := nd.signer.Verify(nd.primary(v), &st, sig); err != nil {
		return err
	}
	if broadcast.DigestOf(content) != m.Digest {
		return broadcast.Reject(broadcast.ReasonDigestMismatch, "pbft: new view content does not match its digest")
	}
	cv, refs, err := decodeNewView(content.Bytes(), nd.n)
	if err != nil {
		return err
	}
	if cv != v {
		return broadcast.Reject(broadcast.ReasonBody, "pbft: new view content for view %d in a message for %d", cv, v)
	}
	seen := make([]bool, nd.n)
	for _, r := range refs {
		if seen[r.Node] {
			return broadcast.Reject(broadcast.ReasonBody, "pbft: new view names %v twice", r.Node)
		}
		seen[r.Node] = true
		st := statement(stmtViewChange, v, 0, r.Digest)
		if err := nd.signer.Verify(r.Node, &st, r.Sig); err != nil {
			return err
		}
	}
	if len(refs) < nd.vcQuorum() {
		return broadcast.Reject(broadcast.ReasonBody, "pbft: new view on %d view changes, need %d", len(refs), nd.quorum())
	}
	nd.newView = &nvState{view: v, refs: refs, sig: append([]byte(nil), sig...), via: from}
	nd.continueNewView()
	return nil
}

// relayNewView hands the NEW-VIEW of the last view entered to a replica
// that still asks, by VIEW-CHANGE(v), for a view v it leads to. Without it
// a Byzantine primary could split the correct replicas for good: handing
// its NEW-VIEW(v) to one of them only, it moves that one into v (and on,
// towards v+1, once v makes no progress) while the others wait for
// VIEW-CHANGE(v)s that the one which moved on will never send — fewer than
// 2f+1 ask for v and fewer than f+1 for v+1, so no timer runs and no
// quorum forms (Castro's BFT library resends NEW-VIEW to replicas that
// report a lower view for the same reason; Castro, PhD thesis, 2001,
// §5.2). The NEW-VIEW is the primary's signed proof, so relaying it is
// safe; at most one relay per peer per half timeout.
func (nd *Node) relayNewView(to broadcast.NodeID, v uint32) {
	nv := nd.entered
	if nv == nil || nv.view < v || to == nd.self || nd.now < nd.nvRelayed[to] || nd.cfg.Mutations.Has(mutant.PBFTNoNewViewRelay) {
		return
	}
	nd.nvRelayed[to] = nd.now + nd.cfg.Timeout/2
	enc := appendNewView(nil, nv.view, nv.refs)
	d := broadcast.DigestOfBytes(enc)
	m := nd.send(to, TypeNewView, nv.view, 0, d, appendSig(nil, nv.sig))
	m.SetPayload(bufpool.Wrap(enc), d)
	nd.stats.NewViewsRelayed++
}

// continueNewView completes a NEW-VIEW once every VIEW-CHANGE it names is
// at hand (fetching the missing ones by digest), then enters the view.
func (nd *Node) continueNewView() {
	nv := nd.newView
	if nv == nil || nv.done {
		return
	}
	vcs := make([]*ViewChange, 0, len(nv.refs))
	missing := false
	for _, r := range nv.refs {
		if rec := nd.vcFor(r.Node, nv.view); rec != nil && rec.digest == r.Digest {
			vcs = append(vcs, rec.content)
			continue
		}
		b, ok := nd.store.Get(r.Digest)
		if !ok {
			nd.fetch(r.Digest, r.Node, nv.via, nd.primary(nv.view))
			missing = true
			continue
		}
		vc, err := decodeViewChange(b.Bytes(), nd.n, int(nd.cfg.Window))
		b.Release()
		if err == nil && vc.NewView == nv.view {
			err = nd.checkViewChange(vc)
		}
		if err != nil {
			nd.log.Warn("new view names a bad view change", "view", nv.view, "from", r.Node, "err", err)
			nd.newView = nil
			return
		}
		vcs = append(vcs, vc)
	}
	if missing {
		return
	}
	// Compute O: from the highest stable checkpoint, for each sequence
	// number the digest of the highest-view certificate, else null.
	var best *ViewChange
	for _, vc := range vcs {
		if best == nil || vc.StableSeq > best.StableSeq {
			best = vc
		}
	}
	nv.lowO, nv.highO = best.StableSeq, best.StableSeq
	certs := map[uint64]*PreparedCert{}
	for _, vc := range nd.certSources(vcs, best) {
		for i := range vc.Prepared {
			c := &vc.Prepared[i]
			if c.Seq <= nv.lowO {
				continue
			}
			if old := certs[c.Seq]; old == nil || (c.View > old.View) != nd.cfg.Mutations.Has(mutant.PBFTCertLowestView) {
				certs[c.Seq] = c
			}
			nv.highO = max(nv.highO, c.Seq)
		}
	}
	nv.o = map[uint64]broadcast.Digest{}
	null := batchDigest(nullBatch)
	carried := map[uint64]struct{}{}
	for seq := nv.lowO + 1; seq <= nv.highO; seq++ {
		if c := certs[seq]; c != nil {
			nv.o[seq] = c.Digest
			if c.Digest != null {
				carried[seq] = struct{}{}
				nd.stats.CertsCarried++
				if _, twice := nd.carried[seq]; twice {
					nd.stats.CertCarriedTwice++
				}
			}
		} else {
			nv.o[seq] = null
		}
	}
	nd.carried = carried
	nd.stats.ViewsEntered++
	nd.viewRun++
	nd.stats.MaxConsecutiveViews = max(nd.stats.MaxConsecutiveViews, nd.viewRun)
	nv.done = true
	nd.enterView(nv, best)
}

func (nd *Node) enterView(nv *nvState, best *ViewChange) {
	nd.journalView(nv.view)
	nd.view, nd.changing = nv.view, false
	nd.timer = 0
	nd.keepEntered(nv)
	nd.log.Debug("entered view", "view", nv.view, "o", len(nv.o))
	for i, rs := range nd.vcs {
		keep := rs[:0]
		for _, r := range rs {
			if r.view <= nv.view {
				nd.store.Unpin(r.digest)
			} else {
				keep = append(keep, r)
			}
		}
		nd.vcs[i] = keep
	}
	if best.StableSeq > nd.low {
		nd.makeStable(best.StableSeq, best.StableDigest, best.StableProof)
	}
	for _, s := range nd.slots {
		s.accepted, s.parked, s.sentPrep, s.sentCmt, s.prepared = false, false, false, false, false
	}
	for i := range nd.clients {
		for j := range nd.clients[i].slots {
			nd.clients[i].slots[j].assigned = 0
		}
	}
	nd.queue = nil
	if nd.isPrimary() {
		nd.nextSeq = max(nv.highO, nd.low)
		nd.reissue()
		var refs []reqRef
		for i := range nd.clients {
			for j := range nd.clients[i].slots {
				if s := &nd.clients[i].slots[j]; s.state == reqPending {
					refs = append(refs, reqRef{broadcast.NodeID(i), s.ts})
				}
			}
		}
		sort.Slice(refs, func(a, b int) bool {
			if refs[a].ts != refs[b].ts {
				return refs[a].ts < refs[b].ts
			}
			return refs[a].client < refs[b].client
		})
		nd.queue = refs
		nd.tryPropose()
	}
	nd.replayFuture()
	nd.armTimer()
	nd.executeReady()
}

// keepEntered makes nv the NEW-VIEW of the last view entered, pinning the
// VIEW-CHANGEs it names (those held) and unpinning the previous one's.
func (nd *Node) keepEntered(nv *nvState) {
	if old := nd.entered; old != nil {
		for _, d := range old.kept {
			nd.store.Unpin(d)
		}
		old.kept = nil
	}
	nd.entered = nv
	for _, r := range nv.refs {
		if nd.store.Pin(r.Digest) {
			nv.kept = append(nv.kept, r.Digest)
		}
	}
}

// replayFuture steps the PRE-PREPAREs kept for the view just entered and
// drops those of older views.
func (nd *Node) replayFuture() {
	seqs := make([]uint64, 0, len(nd.future))
	for seq := range nd.future {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		m := nd.future[seq]
		if m.Round > nd.view {
			continue
		}
		if m.Round == nd.view {
			if err := nd.onPrePrepare(m.Sender, m); err != nil {
				nd.log.Debug("kept pre-prepare rejected", "seq", seq, "err", err)
			}
		}
		nd.dropFuture(seq)
	}
}

// dropFuture forgets the PRE-PREPARE kept for seq, returning its bytes to
// its primary's quota.
func (nd *Node) dropFuture(seq uint64) {
	m := nd.future[seq]
	if m == nil {
		return
	}
	delete(nd.future, seq)
	nd.futureBytes[m.Sender] -= m.Payload.Len()
	m.Payload.Release()
}

// reissue has the new primary send the PRE-PREPAREs of O, fetching batches
// it does not hold.
func (nd *Node) reissue() {
	nv := nd.newView
	if nv == nil || !nv.done || nv.view != nd.view || !nd.isPrimary() {
		return
	}
	for seq := nv.lowO + 1; seq <= nv.highO; seq++ {
		if !nd.inWindow(seq) {
			continue
		}
		if s := nd.slots[seq]; s != nil && s.accepted && s.view == nd.view {
			continue
		}
		d := nv.o[seq]
		var enc []byte
		if d == batchDigest(nullBatch) {
			enc = nullBatch
		} else if s := nd.slots[seq]; s != nil && s.digest == d && s.enc != nil {
			enc = s.enc
		} else if b, ok := nd.store.Get(d); ok {
			enc = append([]byte(nil), b.Bytes()...)
			b.Release()
		} else {
			nd.fetch(d, nd.certHolders(nv, seq)...)
			continue
		}
		nd.sendPrePrepare(seq, enc, d)
	}
}

// certHolders returns the replicas whose VIEW-CHANGE, named by nv, carries
// a certificate for seq with the digest O chose: they prepared that batch.
func (nd *Node) certHolders(nv *nvState, seq uint64) []broadcast.NodeID {
	var out []broadcast.NodeID
	for _, r := range nv.refs {
		rec := nd.vcFor(r.Node, nv.view)
		if rec == nil || rec.digest != r.Digest {
			continue
		}
		for _, c := range rec.content.Prepared {
			if c.Seq == seq && c.Digest == nv.o[seq] {
				out = append(out, r.Node)
				for _, p := range c.Prepares {
					out = append(out, p.Node)
				}
			}
		}
	}
	return out
}

// newViewReady reports whether the primary has re-issued all of O (new
// requests get sequence numbers after it).
func (nd *Node) newViewReady() bool {
	nv := nd.newView
	if nv == nil || nv.view != nd.view {
		return true
	}
	for seq := nv.lowO + 1; seq <= nv.highO; seq++ {
		if !nd.inWindow(seq) {
			continue
		}
		if s := nd.slots[seq]; s == nil || !s.accepted || s.view != nd.view {
			return false
		}
	}
	return true
}

// retransmit resends this replica's own protocol messages for work that has
// not completed, so that a lost message costs a timeout, not liveness.
func (nd *Node) retransmit() {
	work := false
	if nd.changing {
		nd.emitViewChange()
		work = true
	}
	if nv := nd.newView; nv != nil && nd.isPrimary() && nv.view == nd.view && nd.nvSent == nd.view {
		if !nv.done {
			work = true
		}
	}
	for _, seq := range nd.sortedSlots() {
		s := nd.slots[seq]
		if s == nil {
			continue
		}
		if s.parked && s.view == nd.view && !nd.changing {
			work = true
			for _, e := range s.entries {
				if !nd.clients[e.Client].done(e.Timestamp) && !nd.store.Has(e.Op) {
					nd.fetch(e.Op, nd.holdersOf(s)...)
				}
			}
		}
		if seq <= nd.lastExec || !s.accepted || s.view != nd.view || nd.changing {
			continue
		}
		work = true
		if nd.isPrimary() {
			nd.emitPrePrepare(seq, s.digest, s.ppSig, s.enc, s.entries)
		}
		if s.sentPrep {
			nd.send(broadcast.Everyone, TypePrepare, s.view, seq, s.digest, appendSig(nil, s.prepares[nd.self].sig))
		}
		if s.sentCmt {
			nd.send(broadcast.Everyone, TypeCommit, s.view, seq, s.digest, nil)
		}
	}
	if nd.retryFetches() {
		work = true
	}
	if nd.hasPending() {
		work = true
		// A laggard learns of stable checkpoints from these.
		if nd.stable.seq > 0 && nd.stable.seq == nd.low {
			if cv := nd.stable.proof; len(cv) > 0 {
				for _, v := range cv {
					if v.Node == nd.self {
						nd.send(broadcast.Everyone, TypeCheckpoint, 0, nd.stable.seq, nd.stable.digest, appendSig(nil, v.Sig))
					}
				}
			}
		}
		nd.retryParked()
		nd.executeReady()
	}
	if work {
		// Back off while a view change drags on (a silent cluster).
		nd.resend = nd.now + nd.cfg.Timeout/2<<min(nd.vcStreak, 4)
	}
}

// contentOf returns the content a VIEW-CHANGE or NEW-VIEW m carries —
// or, when the AF_XDP program cut it on the way in because this replica
// held a payload of that digest (broadcast.Stripped: identical contents
// are common, such as the view changes of replicas in the same state), the
// store's copy — and the function that releases it once the message is
// handled. False when m carries none and the store does not hold it.
func (nd *Node) contentOf(m *broadcast.Message) (bufpool.Buf, func(), bool) {
	if m.Flags&broadcast.HasPayload != 0 {
		return m.Payload, func() {}, true
	}
	if m.Flags&broadcast.Stripped == 0 {
		return bufpool.Buf{}, nil, false
	}
	b, ok := nd.store.Get(m.Digest)
	if !ok {
		return bufpool.Buf{}, nil, false
	}
	return b, b.Release, true
}
