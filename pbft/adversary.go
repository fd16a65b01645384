package pbft

import (
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// SpecWith returns Spec with tweak applied to every replica's Config before
// it is built: the simulator uses it to plug in an OracleSigner, tests to
// set UnsafeCommitQuorum.
func SpecWith(name string, tweak func(*Config)) broadcast.Spec {
	s := Spec
	s.Name = name
	s.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		cfg := Config{Params: p, Store: env.Store, Keys: env.Keys, Batch: env.Tuning.Batch, Timeout: env.Tuning.Timeout}
		if tweak != nil {
			tweak(&cfg)
		}
		return New(cfg)
	}
	return s
}

// ConflictingPrePrepare builds, from a primary's PRE-PREPARE m, a different
// PRE-PREPARE for the same view and sequence number — the batch reversed, or
// the null batch for a single request — signed with the primary's signer:
// what an equivocating primary sends to some backups. It borrows m; the
// result carries no payload. ok is false if m is not a PRE-PREPARE.
func ConflictingPrePrepare(m *broadcast.Message, n int, signer Signer) (out broadcast.Message, ok bool) {
	if m.Type != TypePrePrepare {
		return out, false
	}
	_, enc, err := decodePrePrepareBody(m.Body)
	if err != nil {
		return out, false
	}
	alt := nullBatch
	if es, err := decodeEntries(enc, n, maxBatch); err == nil && len(es) > 1 {
		for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
			es[i], es[j] = es[j], es[i]
		}
		alt = appendEntries(nil, es)
	}
	d := batchDigest(alt)
	st := statement(stmtPrePrepare, m.Round, m.Instance.Seq, d)
	out = broadcast.Message{Header: m.Header}
	out.Flags &^= broadcast.HasPayload
	out.PayloadLen = 0
	out.Digest = d
	out.Body = appendPrePrepareBody(nil, signer.Sign(&st), alt)
	out.Payload = bufpool.Buf{}
	return out, true
}

// WrongVote rewrites a PREPARE, COMMIT or CHECKPOINT m in place to vote for
// digest d instead, validly signed with signer: a Byzantine backup's wrong
// digest. It reports whether m was such a vote.
func WrongVote(m *broadcast.Message, d broadcast.Digest, signer Signer) bool {
	switch m.Type {
	case TypePrepare, TypeCheckpoint:
		kind := stmtPrepare
		if m.Type == TypeCheckpoint {
			kind = stmtCheckpoint
		}
		st := statement(kind, m.Round, m.Instance.Seq, d)
		m.Digest = d
		m.Body = appendSig(nil, signer.Sign(&st))
		return true
	case TypeCommit:
		m.Digest = d
		return true
	}
	return false
}

// The helpers below build PBFT messages with content of a Byzantine
// replica's choosing, validly signed with its own signer: what the
// simulator's adversaries send. None can sign as another replica.

// ForgeVote builds a PREPARE, COMMIT or CHECKPOINT for (view, seq, d),
// signed with signer (COMMIT carries no signature; CHECKPOINT has view 0).
// ok is false for any other type.
func ForgeVote(t broadcast.MsgType, view uint32, seq uint64, d broadcast.Digest, signer Signer) (m broadcast.Message, ok bool) {
	m.Header = broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: t, Instance: broadcast.Instance{Seq: seq}, Round: view, Digest: d}
	switch t {
	case TypePrepare:
		st := statement(stmtPrepare, view, seq, d)
		m.Body = appendSig(nil, signer.Sign(&st))
	case TypeCheckpoint:
		m.Round = 0
		st := statement(stmtCheckpoint, 0, seq, d)
		m.Body = appendSig(nil, signer.Sign(&st))
	case TypeCommit:
	default:
		return m, false
	}
	return m, true
}

// PrePrepareEntries decodes the batch of a PRE-PREPARE m for a cluster of
// n. It borrows m; the entries alias nothing of it.
func PrePrepareEntries(m *broadcast.Message, n int) ([]Entry, error) {
	if m.Type != TypePrePrepare {
		return nil, broadcast.Reject(broadcast.ReasonType, "pbft: %s is not a pre-prepare", TypeName(m.Type))
	}
	_, enc, err := decodePrePrepareBody(m.Body)
	if err != nil {
		return nil, err
	}
	es, err := decodeEntries(enc, n, maxBatch)
	if err != nil {
		return nil, err
	}
	for i := range es {
		es[i].Sig = append([]byte(nil), es[i].Sig...)
	}
	return es, nil
}

// ForgePrePrepare builds a PRE-PREPARE for (view, seq) ordering entries,
// signed with signer, digest-only (no op bytes: replicas that lack them
// fetch them). Entries may be empty (the null batch).
func ForgePrePrepare(view uint32, seq uint64, entries []Entry, signer Signer) broadcast.Message {
	enc := appendEntries(nil, entries)
	d := batchDigest(enc)
	st := statement(stmtPrePrepare, view, seq, d)
	return broadcast.Message{
		Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypePrePrepare, Instance: broadcast.Instance{Seq: seq}, Round: view, Digest: d},
		Body:   appendPrePrepareBody(nil, signer.Sign(&st), enc),
	}
}

// SwapPrePrepareBody returns a copy of the PRE-PREPARE m that keeps m's
// header — its digest — and its primary's signature but carries the batch
// entries instead: a body that does not hash to the digest it claims,
// which a correct backup refuses (the batch digest check). It borrows m;
// the result carries no payload. ok is false if m is not a PRE-PREPARE.
func SwapPrePrepareBody(m *broadcast.Message, entries []Entry) (out broadcast.Message, ok bool) {
	if m.Type != TypePrePrepare {
		return out, false
	}
	sig, _, err := decodePrePrepareBody(m.Body)
	if err != nil {
		return out, false
	}
	enc := nullBatch
	if len(entries) > 0 {
		enc = appendEntries(nil, entries)
	}
	out = broadcast.Message{Header: m.Header}
	out.Flags &^= broadcast.HasPayload
	out.PayloadLen = 0
	out.Body = appendPrePrepareBody(nil, append([]byte(nil), sig...), enc)
	return out, true
}

// ViewChangeOf decodes the content of a VIEW-CHANGE m (its payload) for a
// cluster of n with a watermark window of at most window sequence numbers,
// and returns it with the sender's reference as a NEW-VIEW would name it.
// It checks shape only, not certificates. It borrows m.
func ViewChangeOf(m *broadcast.Message, n, window int) (*ViewChange, NewViewRef, error) {
	if m.Type != TypeViewChange || m.Flags&broadcast.HasPayload == 0 {
		return nil, NewViewRef{}, broadcast.Reject(broadcast.ReasonType, "pbft: not a view change with content")
	}
	sig, err := decodeSigBody(m.Body)
	if err != nil {
		return nil, NewViewRef{}, err
	}
	vc, err := decodeViewChange(m.Payload.Bytes(), n, window)
	if err != nil {
		return nil, NewViewRef{}, err
	}
	return vc, NewViewRef{Node: m.Sender, Digest: m.Digest, Sig: append([]byte(nil), sig...)}, nil
}

// ForgeViewChange encodes vc as a VIEW-CHANGE for vc.NewView signed with
// signer, whatever it claims. It returns the message without its payload
// and the content bytes, which the caller attaches (SetPayload) under
// m.Digest.
func ForgeViewChange(vc *ViewChange, signer Signer) (m broadcast.Message, content []byte) {
	content = appendViewChange(nil, vc)
	d := broadcast.DigestOfBytes(content)
	st := statement(stmtViewChange, vc.NewView, 0, d)
	m.Header = broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeViewChange,
		Instance: broadcast.Instance{Seq: vc.StableSeq}, Round: vc.NewView, Digest: d}
	m.Body = appendSig(nil, signer.Sign(&st))
	return m, content
}

// NewViewRefs decodes the VIEW-CHANGEs a NEW-VIEW m names (its payload).
// It borrows m; the references alias nothing of it.
func NewViewRefs(m *broadcast.Message, n int) (uint32, []NewViewRef, error) {
	if m.Type != TypeNewView || m.Flags&broadcast.HasPayload == 0 {
		return 0, nil, broadcast.Reject(broadcast.ReasonType, "pbft: not a new view with content")
	}
	v, refs, err := decodeNewView(m.Payload.Bytes(), n)
	for i := range refs {
		refs[i].Sig = append([]byte(nil), refs[i].Sig...)
	}
	return v, refs, err
}

// ForgeNewView encodes a NEW-VIEW for view naming refs, signed with signer,
// whatever the refs are. It returns the message without its payload and
// the content bytes, which the caller attaches under m.Digest.
func ForgeNewView(view uint32, refs []NewViewRef, signer Signer) (m broadcast.Message, content []byte) {
	content = appendNewView(nil, view, refs)
	d := broadcast.DigestOfBytes(content)
	st := statement(stmtNewView, view, 0, d)
	m.Header = broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeNewView, Round: view, Digest: d}
	m.Body = appendSig(nil, signer.Sign(&st))
	return m, content
}

// NullBatchDigest is the digest of the empty batch a new primary orders in
// a gap.
func NullBatchDigest() broadcast.Digest { return batchDigest(nullBatch) }

// SignStatement is signer's signature of what a message of type t for
// (view, seq, d) signs: the certificate entries of a PRE-PREPARE, PREPARE
// or CHECKPOINT (view 0), or of a VIEW-CHANGE or NEW-VIEW (seq 0, d the
// content's digest). It is nil for a type that carries no signature.
func SignStatement(signer Signer, t broadcast.MsgType, view uint32, seq uint64, d broadcast.Digest) []byte {
	var kind byte
	switch t {
	case TypePrePrepare:
		kind = stmtPrePrepare
	case TypePrepare:
		kind = stmtPrepare
	case TypeCheckpoint:
		kind = stmtCheckpoint
	case TypeViewChange:
		kind = stmtViewChange
	case TypeNewView:
		kind = stmtNewView
	default:
		return nil
	}
	st := statement(kind, view, seq, d)
	return signer.Sign(&st)
}
