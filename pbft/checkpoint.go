package pbft

import (
	"encoding/binary"
	"sort"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/internal/mutant"
)

// Checkpoints, watermarks, garbage collection and state transfer.
//
// Every CheckpointInterval sequence numbers a replica serializes its state
// (the client windows and the application's snapshot) into a state blob,
// stores it in the PayloadStore under its digest, and sends CHECKPOINT with
// that digest and a signature. 2f+1 matching CHECKPOINTs make the checkpoint
// stable: the low watermark h moves to it and every slot, vote and payload
// pin at or below it is dropped. A replica that learns of a stable
// checkpoint beyond what it executed (it lagged, or restarted) fetches the
// blob by digest like any payload and restores it.

func (nd *Node) encodeState(seq uint64) ([]byte, error) {
	snap, err := nd.sm.Snapshot()
	if err != nil {
		return nil, err
	}
	b := binary.LittleEndian.AppendUint64(nil, seq)
	for i := range nd.clients {
		rec := &nd.clients[i]
		b = binary.LittleEndian.AppendUint64(b, rec.base)
		var done []*reqSlot
		// Only requests above base: which older ones a ring still caches
		// depends on when later requests arrived, which differs between
		// replicas, and the state digest must not.
		for j := range rec.slots {
			if rec.slots[j].state == reqDone && rec.slots[j].ts > rec.base {
				done = append(done, &rec.slots[j])
			}
		}
		sort.Slice(done, func(a, c int) bool { return done[a].ts < done[c].ts })
		b = binary.LittleEndian.AppendUint32(b, uint32(len(done)))
		for _, s := range done {
			b = binary.LittleEndian.AppendUint64(b, s.ts)
			b = append(b, s.op[:]...)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(s.result)))
			b = append(b, s.result...)
		}
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(snap)))
	return append(b, snap...), nil
}

// restoreState loads a state blob; it checks every length first and
// changes nothing if the blob is malformed.
func (nd *Node) restoreState(blob []byte) (uint64, error) {
	d := decoder{b: blob}
	seq := d.u64("state seq")
	recs := make([]clientRec, nd.n)
	for i := range recs {
		recs[i].slots = make([]reqSlot, nd.cfg.ClientWindow)
		recs[i].base = d.u64("state client base")
		cnt := int(d.u32("state client count"))
		if d.err == nil && cnt > nd.cfg.ClientWindow {
			d.fail("state client count")
		}
		for range cnt {
			if d.err != nil {
				break
			}
			ts := d.u64("state ts")
			op := d.digest("state op")
			res := d.take(int(d.u32("state result length")), "state result")
			if d.err == nil {
				s := recs[i].at(ts)
				*s = reqSlot{ts: ts, state: reqDone, op: op, result: append([]byte(nil), res...), resD: broadcast.DigestOfBytes(res)}
			}
		}
	}
	snap := d.take(int(d.u32("state snapshot length")), "state snapshot")
	if err := d.end("state"); err != nil {
		return 0, err
	}
	if err := nd.sm.Restore(snap); err != nil {
		return 0, broadcast.Reject(broadcast.ReasonBody, "pbft: restore snapshot: %v", err)
	}
	for i := range nd.clients {
		for j := range nd.clients[i].slots {
			if s := &nd.clients[i].slots[j]; s.state == reqPending {
				if recs[i].done(s.ts) {
					nd.store.Unpin(s.op)
				} else if s.ts > recs[i].base && s.ts <= recs[i].base+uint64(nd.cfg.ClientWindow) && recs[i].at(s.ts).state == reqEmpty {
					*recs[i].at(s.ts) = *s
					recs[i].pending++
				} else {
					nd.store.Unpin(s.op)
				}
			}
		}
	}
	nd.clients = recs
	return seq, nil
}

func (nd *Node) makeCheckpoint(seq uint64) {
	blob, err := nd.encodeState(seq)
	if err != nil {
		nd.log.Error("checkpoint snapshot failed", "seq", seq, "err", err)
		return
	}
	d := broadcast.DigestOfBytes(blob)
	if _, ok := nd.own[seq]; !ok {
		if err := nd.putPinned(nd.self, d, bufpool.Wrap(blob)); err != nil {
			nd.log.Error("checkpoint store failed", "seq", seq, "err", err)
			return
		}
		nd.own[seq] = d
		nd.saveCheckpoint(seq, blob)
	}
	st := statement(stmtCheckpoint, 0, seq, d)
	sig := nd.signer.Sign(&st)
	nd.send(broadcast.Everyone, TypeCheckpoint, 0, seq, d, appendSig(nil, sig))
	nd.stats.Checkpoints++
	nd.recordCheckpoint(nd.self, seq, d, sig)
}

func (nd *Node) onCheckpoint(from broadcast.NodeID, m *broadcast.Message) error {
	sig, err := decodeSigBody(m.Body)
	if err != nil {
		return err
	}
	seq := m.Instance.Seq
	if seq == 0 || seq%nd.cfg.CheckpointInterval != 0 {
		return broadcast.Reject(broadcast.ReasonBody, "pbft: checkpoint at %d, not a multiple of %d", seq, nd.cfg.CheckpointInterval)
	}
	if seq <= nd.low {
		return nil
	}
	if seq > nd.low+nd.cfg.Window {
		// Beyond our window: we may be lagging. Verify the signature so a
		// Byzantine replica alone cannot send us fetching.
		st := statement(stmtCheckpoint, 0, seq, m.Digest)
		if err := nd.signer.Verify(from, &st, sig); err != nil {
			return err
		}
		nd.noteFar(from, seq, m.Digest, sig)
		return nil
	}
	// Checked on receipt (one per replica every K sequence numbers): the
	// stable checkpoint's proof must convince others in a view change.
	st := statement(stmtCheckpoint, 0, seq, m.Digest)
	if err := nd.signer.Verify(from, &st, sig); err != nil {
		return err
	}
	nd.recordCheckpoint(from, seq, m.Digest, append([]byte(nil), sig...))
	return nil
}

func (nd *Node) recordCheckpoint(from broadcast.NodeID, seq uint64, d broadcast.Digest, sig []byte) {
	cv := nd.ckpts[seq]
	if cv == nil {
		cv = &ckptVotes{votes: make([]vote, nd.n)}
		nd.ckpts[seq] = cv
	}
	cv.votes[from] = vote{d: d, sig: sig, ok: true}
	cnt := 0
	var proof []SignedVote
	for i, v := range cv.votes {
		if v.ok && v.d == d {
			cnt++
			proof = append(proof, SignedVote{Node: broadcast.NodeID(i), Sig: v.sig})
		}
	}
	if cnt >= nd.quorum()-nd.f*nd.cfg.Mutations.Bit(mutant.PBFTCheckpointWeak) {
		nd.makeStable(seq, d, proof)
	}
}

// far remembers, per replica, the newest checkpoint it announced beyond our
// window (bounded: one per replica).
func (nd *Node) noteFar(from broadcast.NodeID, seq uint64, d broadcast.Digest, sig []byte) {
	if nd.far == nil {
		nd.far = make([]farCkpt, nd.n)
	}
	if nd.far[from].seq >= seq {
		return
	}
	nd.far[from] = farCkpt{seq: seq, d: d, sig: append([]byte(nil), sig...)}
	// 2f+1 replicas vouch for the same checkpoint: it is stable. f+1: at
	// least one is correct, so the state it names is the true one; fetch
	// it, without calling it stable (a view change must prove that).
	cnt := 0
	var proof []SignedVote
	for i, o := range nd.far {
		if o.seq == seq && o.d == d {
			cnt++
			proof = append(proof, SignedVote{Node: broadcast.NodeID(i), Sig: o.sig})
		}
	}
	switch {
	case cnt >= nd.quorum():
		nd.makeStable(seq, d, proof)
	case cnt >= nd.weakQuorum() && (nd.transfer == nil || nd.transferAt < seq) && nd.lastExec < seq:
		nd.startTransfer(seq, d)
	}
}

type farCkpt struct {
	seq uint64
	d   broadcast.Digest
	sig []byte
}

// makeStable moves the low watermark to seq and collects garbage below it.
func (nd *Node) makeStable(seq uint64, d broadcast.Digest, proof []SignedVote) {
	if seq <= nd.low {
		return
	}
	if nd.stablePinned {
		nd.store.Unpin(nd.stable.digest)
	}
	if od, ok := nd.own[seq]; ok && od == d {
		delete(nd.own, seq) // its pin passes to the stable checkpoint
		nd.stablePinned = true
	} else {
		// Not held when we lag: the transfer pins it once fetched.
		nd.stablePinned = nd.store.Pin(d)
	}
	nd.stable = stableCkpt{seq: seq, digest: d, proof: proof}
	nd.low = seq
	nd.stats.StableCheckpoints++
	for s, od := range nd.own {
		if s < seq {
			nd.store.Unpin(od)
			delete(nd.own, s)
		}
	}
	for s := range nd.slots {
		if s <= seq {
			nd.dropSlot(s)
		}
	}
	for s := range nd.ckpts {
		if s <= seq {
			delete(nd.ckpts, s)
		}
	}
	if nd.nextSeq < seq {
		nd.nextSeq = seq
	}
	nd.compactJournal()
	if nd.lastExec < seq {
		nd.startTransfer(seq, d)
	}
	nd.tryPropose()
}

func (nd *Node) startTransfer(seq uint64, d broadcast.Digest) {
	if nd.transfer != nil {
		delete(nd.wanted, *nd.transfer) // a newer checkpoint supersedes it
	}
	nd.transfer, nd.transferAt = &d, seq
	nd.stats.StateTransfers++
	if !nd.store.Has(d) {
		nd.fetch(d, nd.checkpointSigners(seq, d)...)
		return
	}
	nd.continueTransfer()
}

func (nd *Node) continueTransfer() {
	if nd.transfer == nil {
		return
	}
	d := *nd.transfer
	b, ok := nd.store.Get(d)
	if !ok {
		return
	}
	if nd.lastExec >= nd.transferAt {
		b.Release() // caught up meanwhile: never roll back
		nd.transfer = nil
		return
	}
	blob := b.Bytes()
	seq, err := nd.restoreState(blob)
	if err == nil && seq == nd.transferAt {
		nd.saveCheckpoint(seq, blob)
	}
	b.Release()
	if err != nil || seq != nd.transferAt {
		nd.log.Error("state transfer: bad state blob", "seq", nd.transferAt, "err", err)
		nd.transfer = nil
		return
	}
	if nd.stable.digest == d && !nd.stablePinned {
		nd.stablePinned = nd.store.Pin(d)
	}
	nd.transfer = nil
	nd.lastExec = seq
	if nd.nextSeq < seq {
		nd.nextSeq = seq
	}
	for s := range nd.slots {
		if s <= seq {
			nd.dropSlot(s)
		}
	}
	nd.log.Debug("state transfer complete", "seq", seq)
	nd.vouchTransferred(seq, d)
	nd.executeReady()
}

// vouchTransferred has a replica that restored checkpoint (seq, d) by state
// transfer sign that checkpoint as its own, as if it had executed up to it
// (its state is now exactly d): its CHECKPOINT goes to the others, and its
// vote joins the ones that sent it there. Without it, a transfer begun on
// f+1 votes could never become stable at this replica when only f+1 others
// vouch — its low watermark would stay behind, and its window closed.
func (nd *Node) vouchTransferred(seq uint64, d broadcast.Digest) {
	if seq <= nd.low {
		return
	}
	st := statement(stmtCheckpoint, 0, seq, d)
	sig := nd.signer.Sign(&st)
	nd.send(broadcast.Everyone, TypeCheckpoint, 0, seq, d, appendSig(nil, sig))
	if seq > nd.low+nd.cfg.Window {
		nd.noteFar(nd.self, seq, d, sig)
	} else {
		nd.recordCheckpoint(nd.self, seq, d, sig)
	}
}

// checkpointSigners returns the replicas known to have signed checkpoint
// (seq, d): they hold its state.
func (nd *Node) checkpointSigners(seq uint64, d broadcast.Digest) []broadcast.NodeID {
	var out []broadcast.NodeID
	if cv := nd.ckpts[seq]; cv != nil {
		for i, v := range cv.votes {
			if v.ok && v.d == d {
				out = append(out, broadcast.NodeID(i))
			}
		}
	}
	for i, o := range nd.far {
		if o.seq == seq && o.d == d {
			out = append(out, broadcast.NodeID(i))
		}
	}
	if nd.stable.seq == seq && nd.stable.digest == d {
		for _, v := range nd.stable.proof {
			out = append(out, v.Node)
		}
	}
	return out
}
