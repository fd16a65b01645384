package pbft

import (
	"encoding/binary"
	"fmt"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Crash recovery. A replica that restarts must come back as the replica it
// was — one whose messages were merely slow — and never as a fresh one: a
// fresh replica may prepare a second batch at a (view, sequence number) it
// already prepared, or forget a batch that committed, and when the whole
// cluster restarts nothing else remembers. So a replica records, before it
// sends anything that depends on it ("persist, then send", as etcd's raft
// asks of its Ready):
//
//   - the highest view it entered or asked for (before PRE-PREPARE, PREPARE
//     or VIEW-CHANGE of that view);
//   - each prepared certificate, with the batch and its requests' bytes
//     (before it sends COMMIT), so that a NEW-VIEW built after a restart of
//     every replica still carries every batch that may have committed, and
//     its new primary can re-issue it;
//   - its stable checkpoint with the 2f+1 signatures that prove it;
//   - the state blob of its checkpoints (Journal.SaveCheckpoint).
//
// The executed batches above the checkpoint are the application's own log
// (kv's WAL), handed back in Recovery.Batches. A replica restarted from a
// Recovery restores the checkpoint, re-executes those batches (rebuilding
// the client windows and their cached replies exactly), takes back its
// certificates and stable checkpoint, and then asks for the view above the
// highest it recorded, exactly as a replica whose timer ran out: the
// others join it when f of them do too (a restart of f+1 or more, or of
// the whole cluster), and otherwise it catches up by state transfer at the
// next stable checkpoint and joins the next view change. It never acts
// again in a view it recorded.

// Journal makes durable what a replica must not forget across a restart.
// The replica calls it from Step and Tick; a driver may batch the writes,
// but must make them durable before it sends the messages of the Ready
// that follows (kv/replica syncs in its Ready). A Journal that fails makes
// the replica stop sending (Stats.JournalErrors), as a crashed one would.
type Journal interface {
	// Append records rec (borrowed) after every earlier record.
	Append(rec []byte) error
	// Compact replaces every record so far with rec (borrowed), which
	// holds all of them that still matter.
	Compact(rec []byte) error
	// SaveCheckpoint records the state blob (borrowed) of the replica's
	// checkpoint at seq: after it, the application's log needs nothing
	// at or below seq.
	SaveCheckpoint(seq uint64, blob []byte) error
}

// Recovery is what a restarted replica reloads.
type Recovery struct {
	// Checkpoint is the last state blob given to Journal.SaveCheckpoint,
	// or nil.
	Checkpoint []byte
	// Batches are the batches the application executed after the
	// checkpoint, in order, as it applied them (payloads borrowed).
	Batches []RecoveredBatch
	// Journal is every record the Journal holds, the compacted one first.
	Journal [][]byte
}

// Release drops the payload references the Recovery holds.
func (r *Recovery) Release() {
	if r == nil {
		return
	}
	for i := range r.Batches {
		for j := range r.Batches[i].Ops {
			r.Batches[i].Ops[j].Payload.Release()
		}
	}
}

// RecoveredBatch is one executed batch of the application's log.
type RecoveredBatch struct {
	Seq uint64
	Ops []Op
}

// Journal record types.
const (
	recView     = 1 // u32 view
	recPrepared = 2 // a prepared certificate, its batch and its requests
	recStable   = 3 // the stable checkpoint and its proof
	recState    = 4 // compacted: view, stable, prepared records
)

func (nd *Node) journal(rec []byte) {
	if nd.cfg.Journal == nil || nd.halted {
		return
	}
	if err := nd.cfg.Journal.Append(rec); err != nil {
		nd.halt(err)
	}
}

// halt stops the replica's output for good: it can no longer keep the
// promises its messages make.
func (nd *Node) halt(err error) {
	if !nd.halted {
		nd.log.Error("pbft: journal failed; replica stops sending", "err", err)
	}
	nd.halted = true
	nd.stats.JournalErrors++
}

// journalView records that the replica may send messages of view v.
func (nd *Node) journalView(v uint32) {
	if nd.journaled && v <= nd.journaledView {
		return
	}
	nd.journaled, nd.journaledView = true, v
	nd.journal(binary.LittleEndian.AppendUint32([]byte{recView}, v))
}

// appendPrepared encodes s's certificate with its batch and the bytes of
// the requests this replica holds.
func (nd *Node) appendPrepared(dst []byte, s *slot) []byte {
	c := s.cert
	dst = append(dst, recPrepared)
	dst = binary.LittleEndian.AppendUint64(dst, c.Seq)
	dst = binary.LittleEndian.AppendUint32(dst, c.View)
	dst = append(dst, c.Digest[:]...)
	dst = appendSig(dst, c.PPSig)
	dst = appendVotes(dst, c.Prepares)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s.enc)))
	dst = append(dst, s.enc...)
	var held []bufpool.Buf
	for _, e := range s.entries {
		if b, ok := nd.store.Get(e.Op); ok {
			held = append(held, b)
		}
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(held)))
	for _, b := range held {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(b.Len()))
		for seg := range b.Segments() {
			dst = append(dst, seg...)
		}
		b.Release()
	}
	return dst
}

func (nd *Node) journalPrepared(s *slot) {
	if nd.cfg.Journal == nil || s.cert == nil || s.enc == nil {
		return
	}
	nd.journal(nd.appendPrepared(nil, s))
}

func appendStable(dst []byte, st *stableCkpt) []byte {
	dst = append(dst, recStable)
	dst = binary.LittleEndian.AppendUint64(dst, st.seq)
	dst = append(dst, st.digest[:]...)
	return appendVotes(dst, st.proof)
}

// compactJournal replaces the journal with what still matters at a new
// stable checkpoint: the view, the checkpoint and the certificates above it.
func (nd *Node) compactJournal() {
	if nd.cfg.Journal == nil || nd.halted {
		return
	}
	v := max(nd.view, nd.journaledView)
	if nd.changing {
		v = max(v, nd.target)
	}
	rec := []byte{recState}
	rec = binary.LittleEndian.AppendUint32(rec, v)
	rec = appendStable(rec, &nd.stable)
	var parts [][]byte
	for _, seq := range nd.sortedSlots() {
		if s := nd.slots[seq]; s != nil && s.cert != nil && s.enc != nil && s.digest == s.cert.Digest && seq > nd.low {
			parts = append(parts, nd.appendPrepared(nil, s))
		}
	}
	rec = binary.LittleEndian.AppendUint16(rec, uint16(len(parts)))
	for _, p := range parts {
		rec = binary.LittleEndian.AppendUint32(rec, uint32(len(p)))
		rec = append(rec, p...)
	}
	if err := nd.cfg.Journal.Compact(rec); err != nil {
		nd.halt(err)
	}
}

func (nd *Node) saveCheckpoint(seq uint64, blob []byte) {
	if nd.cfg.Journal == nil || nd.halted {
		return
	}
	if err := nd.cfg.Journal.SaveCheckpoint(seq, blob); err != nil {
		nd.halt(err)
	}
}

// recovered is the protocol state read back from the journal.
type recovered struct {
	view     uint32
	stable   *stableCkpt
	prepared map[uint64]*recoveredCert
}

type recoveredCert struct {
	cert PreparedCert
	enc  []byte
	ops  [][]byte
}

func (nd *Node) decodeRecord(b []byte, into *recovered) error {
	d := decoder{b: b}
	switch t := d.u8("journal record type"); t {
	case recView:
		into.view = max(into.view, d.u32("journal view"))
	case recStable:
		st := &stableCkpt{seq: d.u64("journal stable seq"), digest: d.digest("journal stable digest")}
		st.proof = d.votes(nd.n, "journal stable proof")
		if d.err == nil && (into.stable == nil || st.seq > into.stable.seq) {
			into.stable = st
		}
	case recPrepared:
		rc := &recoveredCert{cert: PreparedCert{Seq: d.u64("journal cert seq"), View: d.u32("journal cert view")}}
		rc.cert.Digest = d.digest("journal cert digest")
		rc.cert.PPSig = d.sig("journal cert pre-prepare signature")
		rc.cert.Prepares = d.votes(nd.n, "journal cert prepares")
		rc.enc = d.take(int(d.u32("journal batch length")), "journal batch")
		cnt := int(d.u16("journal op count"))
		for range cnt {
			if d.err != nil {
				break
			}
			rc.ops = append(rc.ops, d.take(int(d.u32("journal op length")), "journal op"))
		}
		if d.err == nil {
			if old := into.prepared[rc.cert.Seq]; old == nil || old.cert.View <= rc.cert.View {
				into.prepared[rc.cert.Seq] = rc
			}
		}
	case recState:
		// The view, the stable record, then the certificates, each
		// length-prefixed.
		into.view = max(into.view, d.u32("journal state view"))
		if d.u8("journal state stable type") != recStable {
			d.fail("journal state stable type")
		}
		st := &stableCkpt{seq: d.u64("journal stable seq"), digest: d.digest("journal stable digest")}
		st.proof = d.votes(nd.n, "journal stable proof")
		if d.err == nil && st.seq > 0 && (into.stable == nil || st.seq > into.stable.seq) {
			into.stable = st
		}
		cnt := int(d.u16("journal state certificate count"))
		for range cnt {
			part := d.take(int(d.u32("journal state certificate length")), "journal state certificate")
			if d.err != nil {
				break
			}
			if err := nd.decodeRecord(part, into); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("pbft: journal record of unknown type %d", t)
	}
	return d.end("journal record")
}

// recover rebuilds the replica from rec (see the top of this file).
func (nd *Node) recover(rec *Recovery) error {
	if rec.Checkpoint != nil {
		seq, err := nd.restoreState(rec.Checkpoint)
		if err != nil {
			return fmt.Errorf("pbft: recovery: checkpoint: %w", err)
		}
		nd.lastExec, nd.nextSeq = seq, seq
		d := broadcast.DigestOfBytes(rec.Checkpoint)
		if err := nd.putPinned(nd.self, d, bufpool.Wrap(append([]byte(nil), rec.Checkpoint...))); err != nil {
			return fmt.Errorf("pbft: recovery: checkpoint: %w", err)
		}
		nd.own[seq] = d
	}
	for i := range rec.Batches {
		b := &rec.Batches[i]
		if b.Seq <= nd.lastExec {
			continue
		}
		if b.Seq != nd.lastExec+1 {
			return fmt.Errorf("pbft: recovery: batch %d follows %d", b.Seq, nd.lastExec)
		}
		nd.replay(b)
	}
	state := recovered{prepared: map[uint64]*recoveredCert{}}
	for i, r := range rec.Journal {
		if err := nd.decodeRecord(r, &state); err != nil {
			return fmt.Errorf("pbft: recovery: journal record %d: %w", i, err)
		}
	}
	nd.view, nd.journaled, nd.journaledView = state.view, true, state.view
	if st := state.stable; st != nil && st.seq > nd.low {
		if d, ok := nd.own[st.seq]; ok && d != st.digest {
			return fmt.Errorf("pbft: recovery: stable checkpoint %d is %v, the replica's own state there is %v", st.seq, st.digest, d)
		}
		nd.makeStable(st.seq, st.digest, st.proof)
	}
	for seq, rc := range state.prepared {
		if seq <= nd.low || seq > nd.low+nd.cfg.Window {
			continue
		}
		es, err := decodeEntries(rc.enc, nd.n, maxBatch)
		if err != nil || batchDigest(rc.enc) != rc.cert.Digest {
			return fmt.Errorf("pbft: recovery: certificate at %d does not match its batch", seq)
		}
		for _, op := range rc.ops {
			_ = nd.putPinned(nd.self, broadcast.DigestOfBytes(op), bufpool.Wrap(append([]byte(nil), op...)))
		}
		s := nd.getSlot(seq)
		s.view, s.digest, s.entries, s.ppSig = rc.cert.View, rc.cert.Digest, es, rc.cert.PPSig
		s.enc = append([]byte(nil), rc.enc...)
		if d := rc.cert.Digest; d != batchDigest(nullBatch) && nd.putPinned(nd.self, d, bufpool.Wrap(s.enc)) == nil {
			s.pinned = append(s.pinned, d)
		}
		for _, e := range es {
			if nd.store.Pin(e.Op) {
				s.pinned = append(s.pinned, e.Op)
			}
			nd.store.Unpin(e.Op) // the pin putPinned took above
		}
		c := rc.cert
		s.cert = &c
		nd.pinCert(s)
		nd.stats.CertsRecovered++
	}
	nd.client.resume(nd.clients[nd.self].lastTimestamp())
	nd.stats.Recoveries++
	nd.log.Info("recovered", "executed", nd.lastExec, "stable", nd.low, "view", nd.view, "certificates", nd.stats.CertsRecovered)
	// Never act again in a view it recorded: ask for the next one.
	nd.startViewChange(nd.view + 1)
	return nil
}

// replay re-executes one batch of the application's log, as execute did.
func (nd *Node) replay(b *RecoveredBatch) {
	results := nd.sm.Apply(b.Seq, b.Ops)
	for k, op := range b.Ops {
		rec := &nd.clients[op.Client]
		var res []byte
		if k < len(results) {
			res = results[k]
		}
		*rec.at(op.Timestamp) = reqSlot{ts: op.Timestamp, state: reqDone, op: broadcast.DigestOf(op.Payload), result: res, resD: broadcast.DigestOfBytes(res)}
		rec.advance()
	}
	nd.stats.Replayed++
	nd.lastExec, nd.nextSeq = b.Seq, max(nd.nextSeq, b.Seq)
	if b.Seq%nd.cfg.CheckpointInterval == 0 {
		if blob, err := nd.encodeState(b.Seq); err == nil {
			d := broadcast.DigestOfBytes(blob)
			if nd.putPinned(nd.self, d, bufpool.Wrap(blob)) == nil {
				for s, od := range nd.own {
					nd.store.Unpin(od)
					delete(nd.own, s)
				}
				nd.own[b.Seq] = d
			}
		}
	}
}

// lastTimestamp is the highest timestamp of the client's that this replica
// executed.
func (c *clientRec) lastTimestamp() uint64 {
	ts := c.base
	for i := range c.slots {
		if s := &c.slots[i]; s.state == reqDone && s.ts > ts {
			ts = s.ts
		}
	}
	return ts
}
