package toyrb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

func TestEchoQuorumIsCeilNPlusFPlusOneHalf(t *testing.T) {
	for _, tc := range []struct{ n, f, want int }{{4, 1, 3}, {7, 2, 5}, {10, 3, 7}, {5, 1, 4}, {6, 1, 4}} {
		assert.Equal(t, tc.want, EchoQuorum(tc.n, tc.f), "n=%d f=%d", tc.n, tc.f)
	}
}

func newNode(t *testing.T, self broadcast.NodeID) (*Node, *broadcast.PayloadStore) {
	st := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	t.Cleanup(st.Close)
	nd, err := New(broadcast.Params{N: 4, F: 1, Self: self, Mode: broadcast.ModeFull}, broadcast.Env{Store: st}, 0)
	require.NoError(t, err)
	return nd, st
}

func vote(typ broadcast.MsgType, origin broadcast.NodeID, p bufpool.Buf) broadcast.Message {
	var m broadcast.Message
	m.Protocol, m.Type = broadcast.ProtoTest, typ
	m.Instance = broadcast.Instance{Origin: origin, Seq: 1}
	m.SetPayload(p, broadcast.DigestOf(p))
	return m
}

// TestReadyAmplificationThenDelivery: f+1 READYs make a node send its own
// READY, which makes 2f+1 with them: it delivers.
func TestReadyAmplificationThenDelivery(t *testing.T) {
	nd, _ := newNode(t, 0)
	p := bufpool.Wrap([]byte("value"))
	m := vote(TypeReady, 1, p)
	require.NoError(t, nd.Step(1, &m))
	rd := nd.Ready()
	assert.True(t, rd.Empty(), "one READY is not enough for anything")
	m = vote(TypeReady, 1, p)
	require.NoError(t, nd.Step(2, &m))
	rd = nd.Ready()
	require.Len(t, rd.Messages, 1)
	assert.Equal(t, TypeReady, rd.Messages[0].Msg.Type)
	require.Len(t, rd.Deliveries, 1)
	assert.Equal(t, "value", string(rd.Deliveries[0].Payload.Bytes()))
	rd.Release()
	p.Release()
}

func TestRejectsBadMessages(t *testing.T) {
	nd, _ := newNode(t, 0)
	p := bufpool.Wrap([]byte("value"))
	defer p.Release()
	send := vote(TypeSend, 1, p)
	require.Error(t, nd.Step(2, &send), "SEND from a node that is not the origin")
	bad := vote(9, 1, p)
	require.Error(t, nd.Step(1, &bad), "unknown type")
	wrong := vote(TypeEcho, 1, p)
	wrong.Digest[0] ^= 1
	require.Error(t, nd.Step(1, &wrong), "payload does not hash to the digest")
	out := vote(TypeEcho, 9, p)
	require.Error(t, nd.Step(1, &out), "origin outside the cluster")
	rd := nd.Ready()
	assert.True(t, rd.Empty())
}
