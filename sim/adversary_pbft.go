package sim

import (
	"math"
	"slices"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/pbft"
)

// PBFT adversaries built on Adversary. Everything they send is signed with
// the node's own simulated key (pbftSigner): receivers' signature checks
// pass, and only the protocol's rules can refuse the content.

// pbftKit is what every PBFT tactic shares: its own key, what it learnt
// from the traffic, and the forged contents it serves to FETCH.
type pbftKit struct {
	signer  pbft.Signer
	forged  map[broadcast.Digest]bufpool.Buf // content of forged VIEW-CHANGEs and NEW-VIEWs, served on FETCH
	digests []broadcast.Digest               // batch digests seen, newest last (bounded)
	batches [][]pbft.Entry                   // batches seen in PRE-PREPAREs (bounded)
	vcs     map[uint32][]heldVC              // VIEW-CHANGEs seen per view, own included
}

type heldVC struct {
	ref pbft.NewViewRef
	vc  *pbft.ViewChange
}

const kitKeep = 16

func newPBFTKit(c *Ctx) *pbftKit {
	return &pbftKit{signer: pbftSigner(c), forged: map[broadcast.Digest]bufpool.Buf{}, vcs: map[uint32][]heldVC{}}
}

// core returns the node's first PBFT core, if the run is PBFT.
func pbftCore(c *Ctx) *pbft.Node {
	nd := c.e.nodes[c.Self()]
	if len(nd.cores) == 0 {
		return nil
	}
	p, _ := nd.cores[0].(*pbft.Node)
	return p
}

// learn records digests, batches and view changes from a message sent or
// received.
func (k *pbftKit) learn(c *Ctx, m *broadcast.Message) {
	if m.Protocol != broadcast.ProtoPBFT {
		return
	}
	switch m.Type {
	case pbft.TypePrePrepare:
		if !slices.Contains(k.digests, m.Digest) {
			k.digests = append(k.digests, m.Digest)
			if len(k.digests) > kitKeep {
				k.digests = k.digests[1:]
			}
			if es, err := pbft.PrePrepareEntries(m, c.N()); err == nil && len(es) > 0 {
				k.batches = append(k.batches, es)
				if len(k.batches) > kitKeep {
					k.batches = k.batches[1:]
				}
			}
		}
	case pbft.TypeViewChange:
		if m.Flags&broadcast.HasPayload == 0 || broadcast.DigestOf(m.Payload) != m.Digest {
			return
		}
		vc, ref, err := pbft.ViewChangeOf(m, c.N(), 4096)
		if err != nil || vc.NewView != m.Round {
			return
		}
		for _, h := range k.vcs[m.Round] {
			if h.ref.Node == ref.Node {
				return
			}
		}
		k.vcs[m.Round] = append(k.vcs[m.Round], heldVC{ref: ref, vc: vc})
		for v := range k.vcs {
			if v+8 < m.Round {
				delete(k.vcs, v)
			}
		}
	}
}

// views lists the views of the VIEW-CHANGEs held, in order (a run must not
// depend on map order).
func (k *pbftKit) views() []uint32 {
	vs := make([]uint32, 0, len(k.vcs))
	for v := range k.vcs {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// serve answers a FETCH for forged content.
func (k *pbftKit) serve(c *Ctx, from broadcast.NodeID, m *broadcast.Message) {
	if m.Type != broadcast.TypeFetch {
		return
	}
	if b, ok := k.forged[m.Digest]; ok {
		out := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: broadcast.TypePayload, Round: m.Round}}
		out.SetPayload(b, m.Digest)
		c.Send(from, &out)
	}
}

// keepForged stores content under d for serving, bounded.
func (k *pbftKit) keepForged(c *Ctx, d broadcast.Digest, content []byte) bufpool.Buf {
	if b, ok := k.forged[d]; ok {
		return b
	}
	b := c.NewPayload(content)
	if len(k.forged) < 256 {
		k.forged[d] = b
		return b
	}
	b.Release()
	return bufpool.Buf{}
}

// otherDigest is a digest to vote for instead of d: another batch seen,
// the null batch, or one naming nothing.
func (k *pbftKit) otherDigest(c *Ctx, d broadcast.Digest) broadcast.Digest {
	r := c.Rand()
	switch r.IntN(3) {
	case 0:
		for range 3 {
			if len(k.digests) == 0 {
				break
			}
			if o := k.digests[r.IntN(len(k.digests))]; o != d {
				return o
			}
		}
	case 1:
		if n := pbft.NullBatchDigest(); n != d {
			return n
		}
	}
	return randomDigest(c)
}

func (k *pbftKit) Close() {
	for _, b := range k.forged {
		b.Release()
	}
	clear(k.forged)
}

// pbftTactic is a PBFT tactic: a plan function over the shared kit.
type pbftTactic struct {
	*pbftKit
	plan func(t *pbftTactic, c *Ctx, m *broadcast.Message) *Plan
	// onInbound, if set, sees every inbound message after the kit.
	onInbound func(t *pbftTactic, c *Ctx, from broadcast.NodeID, m *broadcast.Message)
	state     any
}

func (t *pbftTactic) Plan(c *Ctx, m *broadcast.Message) *Plan {
	t.learn(c, m)
	if m.Protocol != broadcast.ProtoPBFT {
		return nil
	}
	return t.plan(t, c, m)
}

func (t *pbftTactic) Close() {
	t.pbftKit.Close()
	if cl, ok := t.state.(Closer); ok {
		cl.Close()
	}
}

func (t *pbftTactic) Inbound(c *Ctx, from broadcast.NodeID, m *broadcast.Message) bool {
	t.learn(c, m)
	t.serve(c, from, m)
	if t.onInbound != nil {
		t.onInbound(t, c, from, m)
	}
	return true
}

func newPBFTAdversary(c *Ctx, plan func(t *pbftTactic, c *Ctx, m *broadcast.Message) *Plan) *pbftTactic {
	return &pbftTactic{pbftKit: newPBFTKit(c), plan: plan}
}

// isVote reports whether m is a PREPARE, COMMIT or CHECKPOINT.
func isVote(m *broadcast.Message) bool {
	return m.Type == pbft.TypePrepare || m.Type == pbft.TypeCommit || m.Type == pbft.TypeCheckpoint
}

// --- pbft-splitvote ---

// planSplitVote sends each PREPARE, COMMIT and CHECKPOINT truthfully to
// exactly a drawn subset (one, f, f+1 or 2f peers) and, to each of the
// others, nothing or a validly signed vote for another digest or another
// view.
func planSplitVote(t *pbftTactic, c *Ctx, m *broadcast.Message) *Plan {
	if !isVote(m) {
		return nil
	}
	p := NewPlan(c.N())
	truth := randomPeers(c, splitSize(c))
	for _, j := range peers(c) {
		if slices.Contains(truth, j) {
			p.Original(j, 0)
			continue
		}
		r := c.Rand()
		if r.IntN(3) == 0 {
			continue
		}
		view, d := m.Round, m.Digest
		if m.Type != pbft.TypeCheckpoint && r.IntN(3) == 0 {
			view = uint32(int64(view) + int64(1-2*r.IntN(2)))
		} else {
			d = t.otherDigest(c, d)
		}
		if v, ok := pbft.ForgeVote(m.Type, view, m.Instance.Seq, d, t.signer); ok {
			p.Give(j, &v, 0)
		}
	}
	return p
}

// --- pbft-ppequivocate ---

// planPPEquivocate gives, as primary, every backup its own batch for each
// PRE-PREPARE — the original, its entries reversed or rotated, a part of
// them, a batch seen earlier, or the null batch — all validly signed for
// the same view and sequence number; or the original's signed digest over
// another batch's body.
func planPPEquivocate(t *pbftTactic, c *Ctx, m *broadcast.Message) *Plan {
	if m.Type != pbft.TypePrePrepare {
		return nil
	}
	es, err := pbft.PrePrepareEntries(m, c.N())
	if err != nil {
		return nil
	}
	var variants [][]pbft.Entry
	variants = append(variants, nil) // the null batch
	if len(es) > 1 {
		rev := slices.Clone(es)
		slices.Reverse(rev)
		variants = append(variants, rev, es[:len(es)/2], es[len(es)/2:], append(slices.Clone(es[1:]), es[0]))
	}
	for _, b := range t.batches {
		variants = append(variants, b)
	}
	msgs := make([]broadcast.Message, len(variants))
	for i, v := range variants {
		msgs[i] = pbft.ForgePrePrepare(m.Round, m.Instance.Seq, v, t.signer)
	}
	// And one whose body is another batch than the digest it was signed
	// for claims (a backup must check the batch against its digest).
	if len(variants) > 1 {
		if sw, ok := pbft.SwapPrePrepareBody(m, variants[1+c.Rand().IntN(len(variants)-1)]); ok {
			msgs = append(msgs, sw)
		}
	}
	p := NewPlan(c.N())
	for _, j := range peers(c) {
		k := c.Rand().IntN(len(msgs) + 1)
		if k == len(msgs) {
			p.Original(j, 0)
		} else {
			p.Give(j, &msgs[k], 0)
		}
	}
	return p
}

// --- pbft-newview ---

// newViewState remembers, per view it was primary of, who was sent which
// NEW-VIEW: held peers get an alternative as soon as another VIEW-CHANGE
// arrives.
type newViewState struct {
	view    uint32
	sentRef [][]pbft.NewViewRef // per peer: the refs it was shown, nil if held back
}

// planNewView splits the replicas, for each NEW-VIEW its core sends as
// primary: some get it now; the others are held back (the core's version
// arrives one Δ late) and get, as soon as another VIEW-CHANGE for the view
// arrives, a NEW-VIEW naming a different 2f+1 of them; a few get a
// NEW-VIEW naming a stale VIEW-CHANGE (of an earlier view) or too few, and
// a few get it only several Δ later, when they may have left for a later
// view.
func planNewView(t *pbftTactic, c *Ctx, m *broadcast.Message) *Plan {
	if m.Type != pbft.TypeNewView {
		return nil
	}
	v, refs, err := pbft.NewViewRefs(m, c.N())
	if err != nil {
		return nil
	}
	st := &newViewState{view: v, sentRef: make([][]pbft.NewViewRef, c.N())}
	t.state = st
	p := NewPlan(c.N())
	r := c.Rand()
	for _, j := range peers(c) {
		switch r.IntN(5) {
		case 0, 1:
			p.Original(j, 0)
			st.sentRef[j] = refs
		case 2:
			p.Original(j, c.Now()+c.Delta())
		case 4: // stale by the time it arrives: the replica may have moved on
			p.Original(j, c.Now()+time.Duration(2+r.IntN(8))*c.Delta())
			st.sentRef[j] = refs
		case 3:
			alt := slices.Clone(refs)
			if old := t.staleRef(v); old != nil && r.IntN(2) == 0 {
				alt[r.IntN(len(alt))] = *old
			} else {
				alt = alt[:len(alt)-1]
			}
			nm, content := pbft.ForgeNewView(v, alt, t.signer)
			if b := t.keepForged(c, nm.Digest, content); b.Len() > 0 {
				nm.SetPayload(p.Hold(b.Retain()), nm.Digest)
				p.Give(j, &nm, 0)
			}
			p.Original(j, c.Now()+c.Delta())
		}
	}
	return p
}

// staleRef is a VIEW-CHANGE reference of a view before v, if one was seen.
func (t *pbftTactic) staleRef(v uint32) *pbft.NewViewRef {
	for w := v - 1; w+8 >= v && w < v; w-- {
		if hs := t.vcs[w]; len(hs) > 0 {
			return &hs[0].ref
		}
	}
	return nil
}

// newViewInbound sends the held-back peers a NEW-VIEW on a different
// quorum once a VIEW-CHANGE arrives that the sent one did not name.
func newViewInbound(t *pbftTactic, c *Ctx, from broadcast.NodeID, m *broadcast.Message) {
	st, _ := t.state.(*newViewState)
	if st == nil || m.Type != pbft.TypeViewChange || m.Round != st.view {
		return
	}
	held := t.vcs[st.view]
	q := 2*c.F() + 1
	if len(held) <= q {
		return
	}
	// A quorum that includes the newest VIEW-CHANGE and leaves out an
	// older one.
	refs := []pbft.NewViewRef{held[len(held)-1].ref}
	perm := c.Rand().Perm(len(held) - 1)
	for _, i := range perm[:q-1] {
		refs = append(refs, held[i].ref)
	}
	nm, content := pbft.ForgeNewView(st.view, refs, t.signer)
	b := t.keepForged(c, nm.Digest, content)
	if b.Len() == 0 {
		return
	}
	nm.SetPayload(b, nm.Digest)
	for _, j := range peers(c) {
		if st.sentRef[j] == nil {
			st.sentRef[j] = refs
			c.Send(j, &nm)
		}
	}
}

// --- pbft-forgevc ---

// planForgeVC replaces each VIEW-CHANGE its core sends by, per recipient,
// the truth or a self-signed lie: a prepared certificate it cannot prove
// (its own signatures only) for any slot up to the next free one, or
// naming another batch in the latest view for a slot it has a certificate
// for; certificates from a
// view before the one it knows, certificates left out, a stale stable
// checkpoint, or a checkpoint it cannot prove (its own signature, 2f+1
// times). Receivers must reject what is unprovable.
func planForgeVC(t *pbftTactic, c *Ctx, m *broadcast.Message) *Plan {
	if m.Type != pbft.TypeViewChange || m.Flags&broadcast.HasPayload == 0 {
		return nil
	}
	vc, _, err := pbft.ViewChangeOf(m, c.N(), 4096)
	if err != nil {
		return nil
	}
	p := NewPlan(c.N())
	r := c.Rand()
	// Half the time every replica is told one lie (or the truth), half the
	// time each its own.
	var same *broadcast.Message
	uniform, kind := r.IntN(2) == 0, r.IntN(7)
	for _, j := range peers(c) {
		if uniform && same != nil {
			p.Give(j, same, 0)
			continue
		}
		if !uniform {
			kind = r.IntN(7)
		}
		lie := *vc
		lie.Prepared = slices.Clone(vc.Prepared)
		switch kind {
		case 0:
			p.Original(j, 0)
			continue
		case 1: // a certificate it cannot prove, for a slot up to the next free one
			top := lie.StableSeq + 1
			for _, pc := range lie.Prepared {
				top = max(top, pc.Seq+1)
			}
			if core := pbftCore(c); core != nil {
				top = max(top, core.LastExecuted()+1)
			}
			// Mostly at the frontier, where replicas differ in what they
			// executed.
			seq := top - r.Uint64N(min(top-lie.StableSeq, 2))
			if r.IntN(4) == 0 {
				seq = lie.StableSeq + 1 + r.Uint64N(top-lie.StableSeq)
			}
			keep := lie.Prepared[:0]
			for _, pc := range lie.Prepared {
				if pc.Seq != seq {
					keep = append(keep, pc)
				}
			}
			lie.Prepared = keep
			d := t.otherDigest(c, broadcast.Digest{})
			view := lie.NewView - 1
			if lie.NewView == 0 {
				view = 0
			}
			own := pbft.SignedVote{Node: c.Self(), Sig: pbft.SignStatement(t.signer, pbft.TypePrepare, view, seq, d)}
			fake := pbft.SignedVote{Node: (c.Self() + 1) % broadcast.NodeID(c.N()), Sig: own.Sig}
			lie.Prepared = append(lie.Prepared, pbft.PreparedCert{Seq: seq, View: view, Digest: d,
				PPSig: pbft.SignStatement(t.signer, pbft.TypePrePrepare, view, seq, d), Prepares: []pbft.SignedVote{own, fake}})
		case 2: // certificates from an earlier view it saw (provable, stale)
			for i := range lie.Prepared {
				if old := t.olderCert(lie.Prepared[i]); old != nil {
					lie.Prepared[i] = *old
				}
			}
		case 3: // certificates left out
			if len(lie.Prepared) > 0 {
				lie.Prepared = lie.Prepared[:r.IntN(len(lie.Prepared))]
			}
		case 4: // a stale stable checkpoint it saw (provable), or none
			lie.StableSeq, lie.StableDigest, lie.StableProof = 0, broadcast.Digest{}, nil
			if old := t.olderStable(vc.StableSeq); old != nil {
				lie.StableSeq, lie.StableDigest, lie.StableProof = old.StableSeq, old.StableDigest, old.StableProof
			}
			keep := lie.Prepared[:0]
			for _, pc := range lie.Prepared {
				if pc.Seq > lie.StableSeq {
					keep = append(keep, pc)
				}
			}
			lie.Prepared = keep
		case 6: // a certificate it holds, rewritten to another batch in the latest view
			if len(lie.Prepared) > 0 && lie.NewView > 0 {
				i := r.IntN(len(lie.Prepared))
				pc := &lie.Prepared[i]
				pc.View, pc.Digest = lie.NewView-1, t.otherDigest(c, pc.Digest)
				pc.PPSig = pbft.SignStatement(t.signer, pbft.TypePrePrepare, pc.View, pc.Seq, pc.Digest)
				pc.Prepares = []pbft.SignedVote{{Node: c.Self(), Sig: pbft.SignStatement(t.signer, pbft.TypePrepare, pc.View, pc.Seq, pc.Digest)}}
			}
		case 5: // a checkpoint it cannot prove (its own vote only, repeated
			// to the size of a quorum), ahead by a multiple of every usual
			// checkpoint interval
			lie.StableSeq = (lie.StableSeq/128 + 1) * 128
			keep := lie.Prepared[:0]
			for _, pc := range lie.Prepared {
				if pc.Seq > lie.StableSeq {
					keep = append(keep, pc)
				}
			}
			lie.Prepared = keep
			lie.StableDigest = randomDigest(c)
			own := pbft.SignedVote{Node: c.Self(), Sig: pbft.SignStatement(t.signer, pbft.TypeCheckpoint, 0, lie.StableSeq, lie.StableDigest)}
			lie.StableProof = slices.Repeat([]pbft.SignedVote{own}, 2*c.F()+1)
		}
		nm, content := pbft.ForgeViewChange(&lie, t.signer)
		if b := t.keepForged(c, nm.Digest, content); b.Len() > 0 {
			nm.SetPayload(p.Hold(b.Retain()), nm.Digest)
			p.Give(j, &nm, 0)
			same = &nm
		}
	}
	return p
}

// olderCert is a certificate for the same slot from an earlier view, seen
// in a VIEW-CHANGE.
func (t *pbftTactic) olderCert(pc pbft.PreparedCert) *pbft.PreparedCert {
	var best *pbft.PreparedCert
	for _, v := range t.views() {
		for _, h := range t.vcs[v] {
			for i := range h.vc.Prepared {
				o := &h.vc.Prepared[i]
				if o.Seq == pc.Seq && o.View < pc.View && (best == nil || o.View < best.View) {
					best = o
				}
			}
		}
	}
	return best
}

// olderStable is a VIEW-CHANGE seen with a stable checkpoint below seq.
func (t *pbftTactic) olderStable(seq uint64) *pbft.ViewChange {
	var best *pbft.ViewChange
	for _, v := range t.views() {
		for _, h := range t.vcs[v] {
			if h.vc.StableSeq < seq && (best == nil || h.vc.StableSeq < best.StableSeq) {
				best = h.vc
			}
		}
	}
	return best
}

// --- pbft-stale ---

// staleState keeps the node's own earlier messages for replay, each with
// its own payload reference.
type staleState struct {
	log []broadcast.Message
}

func (st *staleState) Close() {
	for i := range st.log {
		st.log[i].Payload.Release()
	}
	st.log = nil
}

// planStale sends each message as is and, to a random peer now and then,
// a stale one: a message of its own recorded earlier (of an earlier view or
// slot), or a vote of the current slot re-signed for an earlier view.
func planStale(t *pbftTactic, c *Ctx, m *broadcast.Message) *Plan {
	st, _ := t.state.(*staleState)
	if st == nil {
		st = &staleState{}
		t.state = st
	}
	p := NewPlan(c.N())
	for _, j := range peers(c) {
		p.Original(j, 0)
	}
	r := c.Rand()
	for range 2 {
		j := randomPeers(c, 1)
		if len(j) == 0 {
			break
		}
		switch r.IntN(3) {
		case 0:
			if len(st.log) > 0 {
				old := &st.log[r.IntN(len(st.log))]
				if old.Round < m.Round || old.Instance.Seq < m.Instance.Seq {
					p.GiveCopy(j[0], old, 0)
				}
			}
		case 1:
			if isVote(m) && m.Type != pbft.TypeCheckpoint && m.Round > 0 {
				back := 1 + uint32(r.IntN(int(min(m.Round, 4))))
				if v, ok := pbft.ForgeVote(m.Type, m.Round-back, m.Instance.Seq, t.otherDigest(c, m.Digest), t.signer); ok {
					p.Give(j[0], &v, 0)
				}
			}
		}
	}
	if m.Type != broadcast.TypeFetch && m.Type != broadcast.TypePayload && m.Type != pbft.TypeReply && r.IntN(2) == 0 {
		rec := clone(m)
		if m.Flags&broadcast.HasPayload != 0 {
			rec.SetPayload(m.Payload.Retain(), m.Digest)
		}
		if len(st.log) < 64 {
			st.log = append(st.log, rec)
		} else {
			i := r.IntN(len(st.log))
			st.log[i].Payload.Release()
			st.log[i] = rec
		}
	}
	return p
}

// --- pbft-future ---

// planFutureTactic sends, besides each message, validly signed
// PRE-PREPAREs beyond the receivers' watermarks (a window or more ahead, up
// to the largest sequence number) and for far-future views this node leads
// (up to the largest view), and votes and VIEW-CHANGEs for far-future
// views, each to a split of its peers.
func planFutureTactic(t *pbftTactic, c *Ctx, m *broadcast.Message) *Plan {
	if m.Type == broadcast.TypeFetch || m.Type == broadcast.TypePayload || m.Type == pbft.TypeReply {
		return nil
	}
	p := NewPlan(c.N())
	for _, j := range peers(c) {
		p.Original(j, 0)
	}
	r := c.Rand()
	if r.IntN(2) == 0 {
		return p
	}
	n := uint32(c.N())
	low := uint64(0)
	view := m.Round
	if core := pbftCore(c); core != nil {
		low, view = core.StableCheckpoint(), max(view, core.View())
	}
	var es []pbft.Entry
	if len(t.batches) > 0 {
		es = t.batches[r.IntN(len(t.batches))]
	}
	// A view this node leads, some way ahead or near the top.
	lead := func(ahead uint32) uint32 {
		v := view + ahead
		if v < view || v > math.MaxUint32-2*n {
			v = math.MaxUint32 - 2*n
		}
		l := v - v%n + uint32(c.Self())
		if l < v {
			l += n
		}
		return l
	}
	var extra []broadcast.Message
	switch r.IntN(5) {
	case 0: // beyond the watermarks, in a view it leads
		for _, w := range []uint64{8, 64, 4096} {
			extra = append(extra, pbft.ForgePrePrepare(lead(0), low+w+1+uint64(r.IntN(3)), es, t.signer))
		}
	case 1:
		extra = append(extra, pbft.ForgePrePrepare(lead(0), math.MaxUint64, es, t.signer))
	case 2: // far-future views, in the window
		seq := low + 1 + uint64(r.IntN(4))
		extra = append(extra, pbft.ForgePrePrepare(lead(n*uint32(1+r.IntN(1000))), seq, es, t.signer),
			pbft.ForgePrePrepare(lead(math.MaxUint32), seq, es, t.signer))
	case 3:
		if isVote(m) && m.Type != pbft.TypeCheckpoint {
			if v, ok := pbft.ForgeVote(m.Type, lead(n*uint32(1+r.IntN(1000)))+1, m.Instance.Seq, m.Digest, t.signer); ok {
				extra = append(extra, v)
			}
		}
	case 4:
		if hs := t.vcs[view+1]; len(hs) > 0 {
			vc := *hs[0].vc
			vc.NewView = lead(n * uint32(1+r.IntN(1000)))
			nm, content := pbft.ForgeViewChange(&vc, t.signer)
			if b := t.keepForged(c, nm.Digest, content); b.Len() > 0 {
				nm.SetPayload(p.Hold(b.Retain()), nm.Digest)
				extra = append(extra, nm)
			}
		}
	}
	for i := range extra {
		for _, j := range randomPeers(c, splitSize(c)) {
			p.Give(j, &extra[i], 0)
		}
	}
	return p
}

// PBFT behaviour constructors.

func newPBFTSplitVote(c *Ctx) Behaviour {
	return NewAdversary(newPBFTAdversary(c, planSplitVote))
}

func newPBFTPPEquivocate(c *Ctx) Behaviour {
	return NewAdversary(newPBFTAdversary(c, planPPEquivocate))
}

func newPBFTNewView(c *Ctx) Behaviour {
	t := newPBFTAdversary(c, planNewView)
	t.onInbound = newViewInbound
	return NewAdversary(t)
}

func newPBFTForgeVC(c *Ctx) Behaviour {
	return NewAdversary(newPBFTAdversary(c, planForgeVC))
}

func newPBFTStale(c *Ctx) Behaviour {
	return NewAdversary(newPBFTAdversary(c, planStale))
}

func newPBFTFuture(c *Ctx) Behaviour {
	return NewAdversary(newPBFTAdversary(c, planFutureTactic))
}
