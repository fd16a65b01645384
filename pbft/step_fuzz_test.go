package pbft

import (
	"log/slog"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// stepFuzzN, stepFuzzF: the fuzzed replica is 6 in a cluster of 7; the f = 2
// Byzantine replicas 0 and 1 — the primaries of views 0 and 1 — send it
// everything the fuzzer makes up.
const (
	stepFuzzN    = 7
	stepFuzzF    = 2
	stepFuzzSelf = 6
	// stepFuzzMaxSteps bounds one program.
	stepFuzzMaxSteps = 64
)

var stepFuzzSecret = [32]byte{'f', 'u', 'z', 'z'}

// fuzzReader hands out the fuzzer's bytes; past the end it reads zeros.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) u8() uint8 {
	if len(r.b) == 0 {
		return 0
	}
	x := r.b[0]
	r.b = r.b[1:]
	return x
}

func (r *fuzzReader) bytes(n int) []byte {
	n = min(n, len(r.b))
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *fuzzReader) digest() (d broadcast.Digest) {
	copy(d[:], r.bytes(len(d)))
	return d
}

// stepFuzz is one fuzzed replica and what the Byzantine senders know.
type stepFuzz struct {
	t     *testing.T
	nd    *Node
	store *broadcast.PayloadStore
	now   time.Duration
	// known are digests the program has used (requests, batches, contents),
	// so that votes and fetches can name something that exists.
	known []broadcast.Digest
	ts    [stepFuzzN]uint64 // per Byzantine client, its last request timestamp
	fed   int64             // payload and body bytes fed
	view  uint32
	tgt   uint32
}

func (s *stepFuzz) sign(as broadcast.NodeID, kind byte, v uint32, seq uint64, d broadcast.Digest, valid bool) []byte {
	st := statement(kind, v, seq, d)
	if !valid {
		as = (as + 1) % stepFuzzN // another replica's key: does not verify as `as`
	}
	return OracleSigner{Secret: stepFuzzSecret, Self: as}.Sign(&st)
}

func (s *stepFuzz) pick(r *fuzzReader) broadcast.Digest {
	sel := r.u8()
	if sel%2 == 0 && len(s.known) > 0 {
		return s.known[int(sel/2)%len(s.known)]
	}
	return r.digest()
}

func (s *stepFuzz) learn(d broadcast.Digest) {
	if len(s.known) < 64 {
		s.known = append(s.known, d)
	}
}

// step decodes one step of the program and runs it.
func (s *stepFuzz) step(r *fuzzReader) {
	op := r.u8()
	from := broadcast.NodeID(r.u8() % stepFuzzF)
	v := uint32(r.u8() % 16)
	seq := uint64(r.u8() % 48)
	valid := r.u8()%4 != 0
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Sender: from,
		Instance: broadcast.Instance{Seq: seq}, Round: v}}
	setPayload := func(p []byte) {
		m.Flags |= broadcast.HasPayload
		m.PayloadLen = uint32(len(p))
		m.Payload = bufpool.Wrap(p)
	}
	if op&0x80 != 0 {
		// Raw: every field from the fuzzer, nothing made consistent.
		m.Type = broadcast.MsgType(r.u8())
		m.Flags = broadcast.Flags(r.u8())
		m.Digest = r.digest()
		m.Body = r.bytes(int(r.u8()))
		m.BodyLen = uint16(len(m.Body))
		p := r.bytes(int(r.u8()))
		m.PayloadLen = uint32(len(p))
		if m.Flags&broadcast.HasPayload != 0 {
			m.Payload = bufpool.Wrap(p)
		}
		s.deliver(from, &m)
		return
	}
	switch op % 12 {
	case 0: // REQUEST of the Byzantine client `from`, signed by it
		p := r.bytes(int(r.u8() % 64))
		s.ts[from]++
		if r.u8()%8 == 0 {
			s.ts[from] = uint64(r.u8()) // a replayed or far timestamp
		}
		m.Type, m.Instance.Seq, m.Round = TypeRequest, s.ts[from], 0
		m.Digest = broadcast.DigestOfBytes(p)
		m.Body = appendRequestBody(nil, from, r.u8()&requestFlagRetransmit, s.sign(from, stmtRequest, 0, s.ts[from], m.Digest, valid))
		setPayload(p)
		s.learn(m.Digest)
	case 1: // PRE-PREPARE of a batch of known requests (from the primary of v only if the fuzzer says so)
		var es []Entry
		for range r.u8() % 4 {
			c := broadcast.NodeID(r.u8() % stepFuzzF)
			op := s.pick(r)
			es = append(es, Entry{Client: c, Timestamp: uint64(r.u8() % 8), Op: op, Len: uint32(r.u8()),
				Sig: s.sign(c, stmtRequest, 0, 0, op, valid)})
		}
		enc := appendEntries(nil, es)
		d := batchDigest(enc)
		if r.u8()%8 == 0 {
			d = s.pick(r) // a header digest that does not name the batch
		}
		m.Type, m.Digest = TypePrePrepare, d
		m.Body = appendPrePrepareBody(nil, s.sign(from, stmtPrePrepare, v, seq, d, valid), enc)
		s.learn(batchDigest(enc))
	case 2, 3: // PREPARE or COMMIT
		m.Type = TypePrepare
		if op%12 == 3 {
			m.Type = TypeCommit
		}
		m.Digest = s.pick(r)
		m.Body = appendSig(nil, s.sign(from, stmtPrepare, v, seq, m.Digest, valid))
	case 4: // REPLY to the hosted client
		m.Type, m.Digest = TypeReply, s.pick(r)
		m.Instance.Seq = uint64(r.u8() % 4)
		if r.u8()%2 == 0 {
			setPayload(r.bytes(int(r.u8() % 16)))
		}
	case 5: // CHECKPOINT
		m.Type, m.Round, m.Digest = TypeCheckpoint, 0, s.pick(r)
		m.Instance.Seq = uint64(r.u8()%24) * 4
		m.Body = appendSig(nil, s.sign(from, stmtCheckpoint, 0, m.Instance.Seq, m.Digest, valid))
	case 6: // VIEW-CHANGE, perhaps with a certificate of Byzantine prepares
		vc := &ViewChange{NewView: v}
		if r.u8()%2 == 0 {
			cs, cv := uint64(1+r.u8()%16), uint32(r.u8()%16)
			d := s.pick(r)
			c := PreparedCert{Seq: cs, View: cv, Digest: d, PPSig: s.sign(from, stmtPrePrepare, cv, cs, d, valid)}
			for _, b := range []broadcast.NodeID{0, 1} {
				c.Prepares = append(c.Prepares, SignedVote{Node: b, Sig: s.sign(b, stmtPrepare, cv, cs, d, valid)})
			}
			vc.Prepared = append(vc.Prepared, c)
		}
		enc := appendViewChange(nil, vc)
		m.Type, m.Digest, m.Instance.Seq = TypeViewChange, broadcast.DigestOfBytes(enc), 0
		if r.u8()%8 == 0 {
			enc = append(enc, r.u8()) // content that misses its digest
		}
		m.Body = appendSig(nil, s.sign(from, stmtViewChange, v, 0, m.Digest, valid))
		setPayload(enc)
		s.learn(m.Digest)
	case 7: // NEW-VIEW naming known contents
		var refs []NewViewRef
		for i := range int(r.u8() % 6) {
			node := broadcast.NodeID(i)
			d := s.pick(r)
			refs = append(refs, NewViewRef{Node: node, Digest: d, Sig: s.sign(node, stmtViewChange, v, 0, d, valid)})
		}
		enc := appendNewView(nil, v, refs)
		m.Type, m.Digest, m.Instance.Seq = TypeNewView, broadcast.DigestOfBytes(enc), 0
		m.Body = appendSig(nil, s.sign(from, stmtNewView, v, 0, m.Digest, valid))
		setPayload(enc)
	case 8: // FETCH
		m.Type, m.Digest = broadcast.TypeFetch, s.pick(r)
	case 9: // PAYLOAD, matching its digest or not
		p := r.bytes(int(r.u8() % 64))
		m.Type, m.Digest = broadcast.TypePayload, broadcast.DigestOfBytes(p)
		if r.u8()%4 == 0 {
			m.Digest = s.pick(r)
		}
		setPayload(p)
	case 10: // time passes: timers, retransmissions, view changes
		s.now += time.Duration(r.u8()) * 10 * time.Millisecond
		s.nd.Tick(s.now)
		s.drain()
		return
	case 11: // the hosted client submits a request
		require.NoError(s.t, s.nd.Submit(bufpool.Wrap(append([]byte("op"), r.bytes(int(r.u8()%32))...))))
		s.drain()
		return
	}
	m.BodyLen = uint16(len(m.Body))
	s.deliver(from, &m)
}

func (s *stepFuzz) deliver(from broadcast.NodeID, m *broadcast.Message) {
	s.fed += int64(len(m.Body) + m.Payload.Len())
	// Twice: the second copy takes the duplicate paths.
	for range 2 {
		if err := s.nd.Step(from, m); err != nil {
			require.NotZero(s.t, broadcast.ReasonOf(err), "untyped error for %s: %v", TypeName(m.Type), err)
		}
	}
	s.drain()
}

// drain takes the replica's output; with only f Byzantine peers it must
// never execute anything.
func (s *stepFuzz) drain() {
	rd := s.nd.Ready()
	require.Empty(s.t, rd.Deliveries, "executed without a commit quorum")
	rd.Release()
}

// check asserts the replica's invariants and bounds after every step.
func (s *stepFuzz) check() {
	t, nd := s.t, s.nd
	// Safety: f Byzantine replicas and this one are never a quorum.
	require.Zero(t, nd.lastExec, "executed without a commit quorum")
	require.Zero(t, nd.stats.Executed)
	require.Zero(t, nd.low, "a checkpoint became stable without 2f+1 signatures")
	require.Zero(t, nd.view, "entered a view without 2f+1 VIEW-CHANGEs")
	require.LessOrEqual(t, nd.lastExec, nd.low+nd.cfg.Window)
	require.GreaterOrEqual(t, nd.view, s.view, "view went back")
	s.view = nd.view
	if nd.changing {
		require.Greater(t, nd.target, nd.view)
		require.GreaterOrEqual(t, nd.target, s.tgt, "view-change target went back")
		s.tgt = nd.target
	}
	// Memory: everything a peer can make the replica hold is bounded.
	require.LessOrEqual(t, uint64(len(nd.slots)), nd.cfg.Window)
	for seq := range nd.slots {
		require.True(t, nd.inWindow(seq), "slot %d outside (%d, %d]", seq, nd.low, nd.low+nd.cfg.Window)
	}
	require.LessOrEqual(t, uint64(len(nd.future)), nd.cfg.Window)
	require.LessOrEqual(t, uint64(len(nd.ckpts)), nd.cfg.Window/nd.cfg.CheckpointInterval)
	for i, rs := range nd.vcs {
		require.LessOrEqual(t, len(rs), maxVCsPerSender, "view changes of %d", i)
	}
	require.LessOrEqual(t, len(nd.wanted), int(nd.cfg.Window)*(maxBatch+1)+stepFuzzN*maxVCsPerSender+2)
	for i := range nd.clients {
		require.LessOrEqual(t, nd.clients[i].pending, nd.cfg.ClientWindow)
	}
	require.LessOrEqual(t, nd.store.Stats().HeldBytes, s.fed+1<<16, "store holds more than it was fed")
}

// FuzzStep feeds one replica programs of messages from the f Byzantine
// replicas — well-formed and validly signed, badly signed, or raw fields —
// interleaved with ticks and requests of its own client. Step never panics,
// a refusal is a typed rejection, and after every step the replica's
// invariants hold (no execution, stable checkpoint or new view without a
// quorum; view monotone) and what it holds stays bounded.
func FuzzStep(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 1, 5, 'h', 'e', 'l', 'l', 'o', 0})
	f.Add([]byte{11, 0, 0, 0, 0, 4, 'a', 'b', 'c', 'd', 10, 0, 0, 0, 0, 30, 10, 0, 0, 0, 0, 60})
	f.Add([]byte{0, 0, 0, 1, 1, 3, 'a', 'b', 'c', 0, 0, 1, 5, 1, 1, 2, 0, 1, 0, 0, 0, 2, 0, 5, 1, 1, 0, 3, 0, 5, 1, 1, 0})
	f.Add([]byte{6, 0, 1, 0, 1, 0, 3, 9, 0, 0, 6, 1, 1, 0, 1, 1, 7, 0, 1, 0, 1, 5, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 0, 0, 0, 1, 0, 8, 5, 1, 0, 0, 1, 0, 8, 8, 0, 0, 0, 1, 0, 9, 0, 0, 0, 1, 4, 'x', 'y', 'z', 'w', 1})
	f.Add([]byte{0x82, 0, 3, 7, 1, 2, 1})
	// A request of client 0, its PRE-PREPARE from 0 (view 0's primary), a
	// PREPARE and a COMMIT from 1 for that batch, time passing.
	f.Add([]byte{0, 0, 0, 0, 1, 3, 'a', 'b', 'c', 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 3, 1, 2, 1, 0, 1, 1, 2, 3, 1, 0, 1, 1, 2, 10, 0, 0, 0, 0, 50})
	f.Fuzz(func(t *testing.T, prog []byte) {
		// A replica that loops forever would stall the fuzzer silently: crash
		// instead, so that the input is saved.
		watchdog := time.AfterFunc(10*time.Second, func() {
			debug.SetTraceback("all")
			panic("pbft FuzzStep: one input ran for over 10s")
		})
		defer watchdog.Stop()
		store := broadcast.NewPayloadStore(broadcast.StoreConfig{})
		defer store.Close()
		nd, err := New(Config{Params: broadcast.Params{N: stepFuzzN, F: stepFuzzF, Self: stepFuzzSelf, Mode: broadcast.ModeDigest},
			Store: store, Signer: OracleSigner{Secret: stepFuzzSecret, Self: stepFuzzSelf}, CheckpointInterval: 4, Window: 16,
			ClientWindow: 8, Timeout: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		defer nd.Close()
		s := &stepFuzz{t: t, nd: nd, store: store}
		nd.Tick(0)
		r := &fuzzReader{b: prog}
		for i := 0; i < stepFuzzMaxSteps && len(r.b) > 0; i++ {
			s.step(r)
			s.check()
		}
		s.now += time.Second
		nd.Tick(s.now)
		s.drain()
		s.check()
	})
}
