package sim

import (
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/pbft"
)

// pbftSimSecret keys the simulated certificate signatures of PBFT runs
// (pbft.OracleSigner): unforgeable by behaviours, which sign only as their
// own node, and far cheaper than Ed25519 over thousands of runs.
var pbftSimSecret = [32]byte{'o', 'n', 'e', 'c', 'a', 's', 't', '/', 's', 'i', 'm', '/', 'p', 'b', 'f', 't'}

// PBFTSpec is pbft.Spec with simulated certificate signatures; tweak, if
// set, adjusts each replica's Config further (tests use it to break the
// protocol on purpose).
func PBFTSpec(tweak func(*pbft.Config)) broadcast.Spec {
	return pbft.SpecWith("pbft", func(c *pbft.Config) {
		c.Signer = pbft.OracleSigner{Secret: pbftSimSecret, Self: c.Self}
		if c.Timeout == 0 {
			c.Timeout = 100 * time.Millisecond // Tuning.Timeout, when set, wins
		}
		if tweak != nil {
			tweak(c)
		}
	})
}

func pbftSigner(c *Ctx) pbft.Signer { return pbft.OracleSigner{Secret: pbftSimSecret, Self: c.Self()} }

// PBFTBehaviours returns Byzantine behaviours aimed at PBFT, which sign
// validly as their own node (never as another): equivocating primaries and
// new primaries, split and wrong votes, forged view changes, stale and
// far-future messages, and view-by-view Twins.
func PBFTBehaviours() []BehaviourSpec {
	return []BehaviourSpec{
		{"pbft-equivocate", "as primary, sends a conflicting, validly signed PRE-PREPARE to a random half of the backups", newPBFTEquivocate},
		{"pbft-wrongvote", "signs PREPARE, COMMIT and CHECKPOINT for random digests, to a random half of the peers", newPBFTWrongVote},
		{"pbft-splitvote", "sends each PREPARE, COMMIT and CHECKPOINT to exactly one, f, f+1 or 2f peers, and to others nothing or a signed vote for another digest or view", newPBFTSplitVote},
		{"pbft-ppequivocate", "as primary, gives every backup its own validly signed batch (reversed, halved, rotated, null, an old one) at each sequence number, or a body that is not the batch its signed digest names", newPBFTPPEquivocate},
		{"pbft-newview", "as new primary, sends NEW-VIEWs on different 2f+1 VIEW-CHANGE quorums to different replicas, some on stale or too few", newPBFTNewView},
		{"pbft-forgevc", "signs VIEW-CHANGEs with unprovable certificates or checkpoints, certificates of earlier views, omissions; a different one per replica", newPBFTForgeVC},
		{"pbft-stale", "replays its own messages of earlier views and slots, and re-signs current votes for earlier views", newPBFTStale},
		{"pbft-future", "signs PRE-PREPAREs beyond the watermarks and for far-future views it leads, votes and VIEW-CHANGEs for far-future views", newPBFTFuture},
		{"pbft-newview-to-one", "as new primary, withholds its VIEW-CHANGEs, hands NEW-VIEW to one replica (one that did not ask for the view, if any), then orders nothing in that view", newPBFTNewViewToOne},
		{"pbft-twins", "Twins: two cores share one identity; each view a new partition of the peers between them and of the correct nodes", newPBFTTwins},
		{"pbft-viewchange-storm", "asks for view v+1, with a valid empty VIEW-CHANGE signed with its own key, as soon as view v is installed, and again every 2Δ", newPBFTViewChangeStorm},
	}
}

type pbftEquivocate struct{ other []bool }

func newPBFTEquivocate(c *Ctx) Behaviour { return &pbftEquivocate{other: randomHalf(c)} }

func (b *pbftEquivocate) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	if b.other[to] {
		if alt, ok := pbft.ConflictingPrePrepare(m, c.N(), pbftSigner(c)); ok {
			c.Send(to, &alt)
			return
		}
	}
	c.Send(to, m)
}

type pbftWrongVote struct{ other []bool }

func newPBFTWrongVote(c *Ctx) Behaviour { return &pbftWrongVote{other: randomHalf(c)} }

func (b *pbftWrongVote) Outbound(c *Ctx, to broadcast.NodeID, m *broadcast.Message) {
	if b.other[to] {
		mm := *m
		var d broadcast.Digest
		for i := 0; i < len(d); i += 8 {
			v := c.Rand().Uint64()
			for j := range 8 {
				d[i+j] = byte(v >> (8 * j))
			}
		}
		if pbft.WrongVote(&mm, d, pbftSigner(c)) {
			c.Send(to, &mm)
			return
		}
	}
	c.Send(to, m)
}
