package pbft

import (
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/internal/mutant"
)

// The helpers of the mutation check's hooks (package internal/mutant): each
// is the correct behaviour unless Config.Mutations seeds its mutant.

// vcQuorum is the number of VIEW-CHANGEs a NEW-VIEW needs: 2f+1.
func (nd *Node) vcQuorum() int {
	return nd.quorum() - nd.cfg.Mutations.Bit(mutant.PBFTViewChangeQuorum)
}

// joinQuorum is the number of replicas asking for higher views that makes
// this one join a view change: f+1, so that one of them is correct.
func (nd *Node) joinQuorum() int {
	return nd.weakQuorum() - nd.cfg.Mutations.Bit(mutant.PBFTJoinOnF)
}

// batchDigestOf is the digest of a PRE-PREPARE's batch, hashed from enc.
func (nd *Node) batchDigestOf(m *broadcast.Message, enc []byte) broadcast.Digest {
	if nd.cfg.Mutations.Has(mutant.PBFTBatchDigest) {
		return m.Digest
	}
	return batchDigest(enc)
}

// certSources are the VIEW-CHANGEs whose prepared certificates a NEW-VIEW
// orders: all of them.
func (nd *Node) certSources(vcs []*ViewChange, best *ViewChange) []*ViewChange {
	if nd.cfg.Mutations.Has(mutant.PBFTCertBestOnly) {
		return []*ViewChange{best}
	}
	return vcs
}

// put stores bytes from the network under d, checking that they hash to d.
func (nd *Node) put(id mutant.ID, from broadcast.NodeID, d broadcast.Digest, b bufpool.Buf) error {
	if nd.cfg.Mutations.Has(id) {
		return nd.store.PutOwn(from, d, b)
	}
	return nd.store.Put(from, d, b)
}

// putPinnedAs is putPinned through put.
func (nd *Node) putPinnedAs(id mutant.ID, from broadcast.NodeID, d broadcast.Digest, b bufpool.Buf) error {
	if err := nd.put(id, from, d, b); err != nil {
		return err
	}
	nd.store.Pin(d)
	return nil
}
