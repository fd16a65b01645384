package replica

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/kv"
	"github.com/onecast/onecast/netio/mem"
	"github.com/onecast/onecast/pbft"
)

// TestSimConcurrentClients reproduces a PBFT liveness problem found while
// wiring kv: four hosted clients with 150 requests each in flight at once
// (no faults, in-memory network) complete only 196 of 600 — with pbft's own
// HashChain state machine as well, so it was pbft's, not kv's. pbft's
// liveness fixes cured it; this test keeps it cured.
func TestSimConcurrentClients(t *testing.T) {
	for _, hash := range []bool{true, false} {
		t.Run(fmt.Sprint("hashchain=", hash), func(t *testing.T) { simConcurrent(t, hash) })
	}
}

func simConcurrent(t *testing.T, hash bool) {
	s := newSimCluster(t, nil, 1)
	if hash {
		s.close()
		s = &simCluster{t: t, dir: t.TempDir(), hash: true, nodes: s.nodes[:0:0]}
		s.nodes, s.protos, s.stores, s.sms, s.journals = make([]*pbft.Node, 4), make([]broadcast.Protocol, 4), make([]*broadcast.PayloadStore, 4), make([]*durableSM, 4), make([]*journal, 4)
		s.secret[0] = 42
		for i := range 4 {
			s.build(i, 1)
		}
		s.c = mem.NewCluster(mem.NewNetwork(4, mem.WithSeed(1)), s.protos)
	}
	defer s.close()
	nonce := uint64(0)
	for i := range 150 {
		for c := range 4 {
			nonce++
			s.set(c, fmt.Sprintf("c%d-%d", c, i), "v", nonce)
		}
	}
	s.c.Run(s.c.Now+30*time.Second, 50_000_000)
	n := 0
	for c := range 4 {
		for _, r := range s.nodes[c].TakeResults(nil) {
			if hash || string(r.Value[8:]) == kv.ReplyStored {
				n++
			}
		}
	}
	require.Equal(t, 600, n)
}
