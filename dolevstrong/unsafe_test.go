package dolevstrong

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// The broken verifiers exist for the simulator's seeded-bug tests; these
// tests pin down what each lets through that the real one refuses.

// unsafeRelay steps into node 2 of a cluster of 4 (f = 3), in round 3 of
// instance (0, 10), a relay of a value signed by the given chain, and
// returns the error and whether the node accepted (and so relayed) it.
func unsafeRelay(t *testing.T, cfg Config, chain []broadcast.NodeID) (error, bool) {
	t.Helper()
	k := clusterKeys(t, 4, false)
	st := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	defer st.Close()
	cfg.Params = broadcast.Params{N: 4, F: 3, Self: 2, Mode: broadcast.ModeFull}
	cfg.Store, cfg.Keys = st, k.ed[2]
	nd, err := New(cfg)
	require.NoError(t, err)
	defer nd.Close()
	const seq = 10
	nd.Tick(time.Duration(seq+2)*nd.RoundDuration() + 1) // round 3
	in := broadcast.Instance{Origin: 0, Seq: seq}
	value := []byte("a value")
	d := broadcast.DigestOfBytes(value)
	signers := make([]*Node, 4)
	for i := range signers {
		s := broadcast.NewPayloadStore(broadcast.StoreConfig{})
		defer s.Close()
		signers[i], err = New(Config{Params: broadcast.Params{N: 4, F: 3, Self: broadcast.NodeID(i), Mode: broadcast.ModeFull}, Store: s, Keys: k.ed[i]})
		require.NoError(t, err)
	}
	sigs := make([][]byte, len(chain))
	for i, id := range chain {
		sigs[i] = signers[id].Sign(in, d)
	}
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoDolevStrong, Type: TypeRelay, Sender: 1,
		Instance: in, Round: 3}, Body: AppendChain(nil, chain, sigs)}
	m.SetPayload(bufpool.Wrap(value), d)
	err = nd.Step(1, &m)
	rd := nd.Ready()
	defer rd.Release()
	return err, len(rd.Messages) > 0
}

func TestUnsafeCountChainEntriesAcceptsARepeatedSigner(t *testing.T) {
	chain := []broadcast.NodeID{0, 1, 0} // three entries, two signers
	err, relayed := unsafeRelay(t, Config{}, chain)
	var re *broadcast.RejectError
	require.True(t, errors.As(err, &re), "%v", err)
	assert.Equal(t, broadcast.ReasonBody, re.Reason)
	assert.False(t, relayed)

	err, relayed = unsafeRelay(t, Config{UnsafeCountChainEntries: true}, chain)
	require.NoError(t, err)
	assert.True(t, relayed, "the broken verifier counts three signatures in round 3")
}

func TestUnsafeAcceptOneShortAcceptsAShortProof(t *testing.T) {
	chain := []broadcast.NodeID{0, 1} // two signers in round 3
	err, relayed := unsafeRelay(t, Config{}, chain)
	require.NoError(t, err)
	assert.False(t, relayed, "stale: round 3 needs three signatures")

	err, relayed = unsafeRelay(t, Config{UnsafeAcceptOneShort: true}, chain)
	require.NoError(t, err)
	assert.True(t, relayed)
}
