package bracha

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
)

// stripped is a SEND as the kernel leaves it when the digest was held on
// arrival: header only, Stripped set.
func stripped(from broadcast.NodeID, in broadcast.Instance, d broadcast.Digest, plen int) *broadcast.Message {
	m := vote(TypeSend, from, in, d, plen)
	m.Flags = broadcast.Stripped
	return m
}

func echoes(rd broadcast.Ready, in broadcast.Instance) int {
	n := 0
	for _, o := range rd.Messages {
		if o.Msg.Type == TypeEcho && o.Msg.Instance == in && o.Msg.Sender != o.Msg.Instance.Origin {
			n++
		}
	}
	return n
}

// TestStrippedSendWhosePayloadWasEvictedIsFetchedThenEchoed: the kernel cut
// a SEND's payload because the digest was held, and the store evicted the
// payload before the SEND was processed. The node does not stall without
// payload and without ECHO: it fetches the payload from the origin, and
// echoes when it arrives.
func TestStrippedSendWhosePayloadWasEvictedIsFetchedThenEchoed(t *testing.T) {
	pool := testPool(t)
	nd := testNode(t, 3, broadcast.ModeDigest, func(c *Config) { c.FetchDelay = -1 })
	p := []byte("a payload held, stripped in the kernel, then evicted")
	d := broadcast.DigestOfBytes(p)
	id := broadcast.Instance{Origin: 1, Seq: 0}
	require.NoError(t, nd.Step(1, stripped(1, id, d, len(p))))
	rd := nd.Ready()
	assert.Zero(t, echoes(rd, id), "no ECHO without the payload")
	require.Len(t, rd.Messages, 1, "one FETCH")
	assert.Equal(t, broadcast.TypeFetch, rd.Messages[0].Msg.Type)
	assert.Equal(t, broadcast.NodeID(1), rd.Messages[0].To, "asked of the origin, which sent the SEND")
	rd.Release()

	b, err := pool.Copy(p)
	require.NoError(t, err)
	require.NoError(t, nd.Step(1, withPayload(vote(broadcast.TypePayload, 1, id, d, len(p)), b)))
	b.Release()
	rd = nd.Ready()
	assert.Equal(t, 1, echoes(rd, id), "the node echoes once the payload is back")
	rd.Release()
	assert.True(t, nd.Store().Has(d))
	assert.Equal(t, uint64(1), nd.Stats().PayloadsFetched)
}

// TestStrippedSendEchoedWhenAVoteBringsThePayload: in full mode the
// payload comes back with another node's ECHO; the node echoes then,
// without fetching.
func TestStrippedSendEchoedWhenAVoteBringsThePayload(t *testing.T) {
	pool := testPool(t)
	nd := testNode(t, 3, broadcast.ModeFull, nil)
	p := []byte("payload that comes back with an ECHO")
	d := broadcast.DigestOfBytes(p)
	id := broadcast.Instance{Origin: 1, Seq: 0}
	require.NoError(t, nd.Step(1, stripped(1, id, d, len(p))))
	rd := nd.Ready()
	assert.Zero(t, echoes(rd, id))
	rd.Release()
	b, err := pool.Copy(p)
	require.NoError(t, err)
	require.NoError(t, nd.Step(2, withPayload(vote(TypeEcho, 2, id, d, len(p)), b)))
	b.Release()
	rd = nd.Ready()
	assert.Equal(t, 1, echoes(rd, id))
	rd.Release()
}

// TestPinnedSendsExpire: SENDs pinned for instances that never deliver (a
// Byzantine origin that sends to too few nodes) are unpinned after
// SendExpiry: the origin's pinned bytes go back to zero, the store lets
// the payloads go, and the origin may send again.
func TestPinnedSendsExpire(t *testing.T) {
	pool := testPool(t)
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	t.Cleanup(store.Close)
	nd := testNode(t, 3, broadcast.ModeDigest, func(c *Config) {
		c.MaxOriginBytes = 10 << 10
		c.SendExpiry = time.Second
		c.Store = store
	})
	send := func(seq uint64) error {
		p := make([]byte, 1024)
		p[0], p[1] = byte(seq), 0xEE
		b, err := pool.Copy(p)
		require.NoError(t, err)
		defer b.Release()
		return nd.Step(1, withPayload(vote(TypeSend, 1, broadcast.Instance{Origin: 1, Seq: seq}, broadcast.DigestOfBytes(p), len(p)), b))
	}
	for seq := range uint64(10) {
		require.NoError(t, send(seq))
	}
	require.Equal(t, broadcast.ReasonQuota, broadcast.ReasonOf(send(10)), "at the cap")
	assert.NotZero(t, nd.Ready().NextWake, "the node asks to be woken for the expiry")
	nd.Tick(999 * time.Millisecond)
	assert.Equal(t, 10, store.Stats().Held)
	nd.Tick(time.Second + 250*time.Millisecond)
	assert.Zero(t, store.Stats().Held, "expired SENDs are unpinned and evicted")
	assert.Equal(t, uint64(10), nd.Stats().SendsExpired)
	require.NoError(t, send(11), "the origin's budget is back")
	rd := nd.Ready()
	rd.Release()
}
