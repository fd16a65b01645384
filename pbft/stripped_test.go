package pbft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// stripped is m as it arrives when the AF_XDP program cut its content on
// the way in, because the receiver held a payload of that digest.
func stripped(m *broadcast.Message) *broadcast.Message {
	c := *m
	c.Payload = bufpool.Buf{}
	c.Flags = c.Flags&^broadcast.HasPayload | broadcast.Stripped
	return &c
}

// TestStrippedViewChangeTakesTheHeldContent: replicas in the same state
// send identical VIEW-CHANGE contents, so a replica that holds its own
// receives the others' stripped by the kernel. It must take the content
// from its store — rejecting them left a kv cluster restarted over AF_XDP
// in view changes for good — and refuse a stripped one it does not hold.
func TestStrippedViewChangeTakesTheHeldContent(t *testing.T) {
	nd := paperReplica(t, 2)
	vc := viewChange(0, 2)
	err := nd.Step(0, stripped(vc))
	require.Error(t, err, "stripped, and the content is not held")
	assert.Contains(t, err.Error(), "view change without content")
	assert.Nil(t, nd.vcFor(0, 2))

	require.NoError(t, nd.store.Put(2, vc.Digest, vc.Payload), "the replica holds the same content")
	require.NoError(t, nd.Step(0, stripped(vc)))
	rec := nd.vcFor(0, 2)
	require.NotNil(t, rec, "the VIEW-CHANGE counts")
	assert.Equal(t, vc.Digest, rec.digest)
}
