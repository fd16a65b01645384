package dolevstrong

import (
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/internal/mutant"
)

// put stores a value's payload from the network under d, checking that it
// hashes to d — unless the mutation check (package internal/mutant) seeded
// DSPayloadDigest.
func (p *Node) put(from broadcast.NodeID, d broadcast.Digest, b bufpool.Buf) error {
	if p.muts.Has(mutant.DSPayloadDigest) {
		return p.store.PutOwn(from, d, b)
	}
	return p.store.Put(from, d, b)
}
