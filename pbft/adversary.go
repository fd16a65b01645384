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
