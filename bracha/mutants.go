package bracha

import (
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/internal/mutant"
)

// put stores payload bytes from the network under d, checking that they hash
// to d — unless the mutation check seeded mutant id, which skips the check.
func (nd *Node) put(id mutant.ID, from broadcast.NodeID, d broadcast.Digest, b bufpool.Buf) error {
	if nd.cfg.Mutations.Has(id) {
		return nd.store.PutOwn(from, d, b)
	}
	return nd.store.Put(from, d, b)
}
