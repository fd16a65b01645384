package sim

import (
	"slices"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/pbft"
)

// Seeded bugs: protocol variants broken on purpose, each the kind of
// validation slip one of the adversaries is built to expose. The tests in
// adversary_test.go show the adversary finds the bug within a small seed
// budget while the behaviours that existed before it miss it, or find it
// far less often.

// dsUnsafeSpec is Dolev–Strong with its test-only verifier bugs:
// entries counts chain entries instead of distinct signers (a repeated
// signer passes), oneShort accepts a proof one signature short of its
// round.
func dsUnsafeSpec(entries, oneShort bool) broadcast.Spec {
	s := dolevstrong.Spec
	s.Name = "dolevstrong-unsafe"
	s.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		return dolevstrong.New(dolevstrong.Config{Params: p, Store: env.Store, Keys: env.Keys,
			RoundDuration: env.Tuning.RoundDuration, UnsafeCountChainEntries: entries, UnsafeAcceptOneShort: oneShort})
	}
	return s
}

// originTrusting is Bracha with a missing sender check: a SEND counts as
// its instance's origin's whoever's link it came on (the header's origin is
// believed), emulated by stepping it as if the origin had sent it.
type originTrusting struct {
	*bracha.Node
	n    int
	self broadcast.NodeID
}

func (o originTrusting) Step(from broadcast.NodeID, m *broadcast.Message) error {
	if m.Type == bracha.TypeSend && m.Instance.Origin != from && int(m.Instance.Origin) < o.n && m.Instance.Origin != o.self {
		mm := *m
		mm.Sender = m.Instance.Origin
		return o.Node.Step(m.Instance.Origin, &mm)
	}
	return o.Node.Step(from, m)
}

func originTrustingSpec() broadcast.Spec {
	s := bracha.Spec
	s.Name = "bracha-origin-trusting"
	s.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		nd, err := bracha.New(bracha.Config{N: p.N, F: p.F, Self: p.Self, Mode: p.Mode, Keys: env.Keys, Store: env.Store,
			Batch: env.Tuning.Batch, FetchTimeout: env.Tuning.Timeout})
		if err != nil {
			return nil, err
		}
		return originTrusting{Node: nd, n: p.N, self: p.Self}, nil
	}
	return s
}

// certTrusting is PBFT with its view-change certificates unchecked: a
// replica believes every prepared certificate and stable checkpoint a
// VIEW-CHANGE claims. It is emulated with the simulator's signature oracle:
// before the replica sees a VIEW-CHANGE, every claimed signature is
// re-made by its claimed signer (and missing ones added up to the quorum),
// and NEW-VIEWs are re-pointed at the re-made contents.
type certTrusting struct {
	*pbft.Node
	n, f  int
	remap map[broadcast.Digest]pbft.NewViewRef // a VIEW-CHANGE's digest → its re-made one
}

func oracle(id broadcast.NodeID) pbft.Signer {
	return pbft.OracleSigner{Secret: pbftSimSecret, Self: id}
}

// believe re-makes the claimed votes and adds votes of other nodes until
// need distinct signers (other than exclude) vouch.
func (t *certTrusting) believe(vs []pbft.SignedVote, need int, exclude broadcast.NodeID, sig func(broadcast.NodeID) []byte) []pbft.SignedVote {
	seen := make([]bool, t.n)
	var out []pbft.SignedVote
	add := func(id broadcast.NodeID) {
		if id != exclude && !seen[id] && len(out) < need {
			seen[id] = true
			out = append(out, pbft.SignedVote{Node: id, Sig: sig(id)})
		}
	}
	for _, v := range vs {
		add(v.Node)
	}
	for j := range t.n {
		add(broadcast.NodeID(j))
	}
	return out
}

func (t *certTrusting) Step(from broadcast.NodeID, m *broadcast.Message) error {
	switch m.Type {
	case pbft.TypeViewChange:
		vc, _, err := pbft.ViewChangeOf(m, t.n, 4096)
		if err != nil || vc.NewView != m.Round || broadcast.DigestOf(m.Payload) != m.Digest {
			break
		}
		for i := range vc.Prepared {
			pc := &vc.Prepared[i]
			p := broadcast.NodeID(pc.View % uint32(t.n))
			pc.PPSig = pbft.SignStatement(oracle(p), pbft.TypePrePrepare, pc.View, pc.Seq, pc.Digest)
			pc.Prepares = t.believe(pc.Prepares, 2*t.f, p, func(id broadcast.NodeID) []byte {
				return pbft.SignStatement(oracle(id), pbft.TypePrepare, pc.View, pc.Seq, pc.Digest)
			})
		}
		if vc.StableSeq > 0 {
			vc.StableProof = t.believe(vc.StableProof, 2*t.f+1, broadcast.Everyone, func(id broadcast.NodeID) []byte {
				return pbft.SignStatement(oracle(id), pbft.TypeCheckpoint, 0, vc.StableSeq, vc.StableDigest)
			})
		}
		nm, content := pbft.ForgeViewChange(vc, oracle(from))
		nm.Sender = from
		nm.SetPayload(bufpool.Wrap(content), nm.Digest)
		defer nm.Payload.Release()
		if _, ref, err := pbft.ViewChangeOf(&nm, t.n, 4096); err == nil {
			t.remap[m.Digest] = ref
		}
		return t.Node.Step(from, &nm)
	case pbft.TypeNewView:
		v, refs, err := pbft.NewViewRefs(m, t.n)
		if err != nil || v != m.Round {
			break
		}
		for i, r := range refs {
			if nr, ok := t.remap[r.Digest]; ok && nr.Node == r.Node {
				refs[i] = nr
			}
		}
		nm, content := pbft.ForgeNewView(v, refs, oracle(from))
		nm.Sender = from
		nm.SetPayload(bufpool.Wrap(content), nm.Digest)
		defer nm.Payload.Release()
		return t.Node.Step(from, &nm)
	}
	return t.Node.Step(from, m)
}

func certTrustingSpec() broadcast.Spec {
	s := PBFTSpec(nil)
	inner := s.New
	s.Name = "pbft-cert-trusting"
	s.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		nd, err := inner(p, env)
		if err != nil {
			return nil, err
		}
		return &certTrusting{Node: nd.(*pbft.Node), n: p.N, f: p.F, remap: map[broadcast.Digest]pbft.NewViewRef{}}, nil
	}
	return s
}

// twoCandidates is Bracha with a bounded-state slip: it keeps two
// candidate values per instance, and a vote for a third is counted for the
// second (emulated by renaming the third digest before the node sees it,
// without its payload). An origin that shows three values provokes it; one
// that shows two never does.
type twoCandidates struct {
	*bracha.Node
	seen map[broadcast.Instance][]broadcast.Digest
}

func (b *twoCandidates) Step(from broadcast.NodeID, m *broadcast.Message) error {
	if (m.Type == bracha.TypeSend || m.Type == bracha.TypeEcho || m.Type == bracha.TypeReady) && !m.Digest.IsZero() {
		ds := b.seen[m.Instance]
		if !slices.Contains(ds, m.Digest) {
			if len(ds) < 2 {
				b.seen[m.Instance] = append(ds, m.Digest)
			} else {
				mm := *m
				mm.Digest = ds[1]
				mm.Payload = bufpool.Buf{}
				mm.Flags &^= broadcast.HasPayload
				if mm.Type == bracha.TypeSend {
					mm.Flags |= broadcast.Stripped
				}
				return b.Node.Step(from, &mm)
			}
		}
	}
	return b.Node.Step(from, m)
}

func twoCandidatesSpec() broadcast.Spec {
	s := bracha.Spec
	s.Name = "bracha-two-candidates"
	s.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		nd, err := bracha.New(bracha.Config{N: p.N, F: p.F, Self: p.Self, Mode: p.Mode, Keys: env.Keys, Store: env.Store,
			Batch: env.Tuning.Batch, FetchTimeout: env.Tuning.Timeout})
		if err != nil {
			return nil, err
		}
		return &twoCandidates{Node: nd, seen: map[broadcast.Instance][]broadcast.Digest{}}, nil
	}
	return s
}
