package xdp

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/link"
)

// TestLink8MiBPayloadOverTheDefaultUMEM: with the default configuration
// (a UMEM of 4096 frames of 2 KiB, 8 MiB) an 8 MiB payload — about 6200
// frames — arrives over the link on AF_XDP: the receiver takes it into the
// heap as it arrives instead of holding every frame until the end, so the
// fill ring never starves and acks keep flowing.
func TestLink8MiBPayloadOverTheDefaultUMEM(t *testing.T) {
	_, cs := pair(t, func(_ int, cfg *Config) { cfg.Frames, cfg.RingSize = 0, 0 })
	require.Equal(t, 4096, cs[0].Pool().Frames(), "the default UMEM")
	links := make([]*link.Link, 2)
	for i, c := range cs {
		l, err := link.New(link.Config{Self: broadcast.NodeID(i), N: 2, Conduit: c})
		require.NoError(t, err)
		links[i] = l
		t.Cleanup(func() { require.NoError(t, l.Close()) })
	}
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	payload := bufpool.Wrap(data)
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Sender: 0,
		Instance: broadcast.Instance{Origin: 0, Seq: 1}}}
	m.SetPayload(payload, broadcast.DigestOf(payload))
	start := time.Now()
	require.NoError(t, links[0].Send(1, &m))
	require.NoError(t, links[0].Flush())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in, err := links[1].Recv(ctx)
	require.NoError(t, err, "the 8 MiB payload arrived")
	took := time.Since(start)
	assert.Equal(t, 8<<20, in.Msg.Payload.Len())
	assert.Equal(t, m.Digest, broadcast.DigestOf(in.Msg.Payload))
	in.Release()
	payload.Release()
	st := links[1].Stats()
	assert.Equal(t, uint64(1), st.HeapReassembled)
	assert.Equal(t, uint64(8<<20), st.HeapCopiedBytes, "one counted copy, into the heap")
	xs, err := cs[1].XDPStats()
	require.NoError(t, err)
	t.Logf("8 MiB in %v: receiver %d frames, pool %+v, fill starved %d; sender retransmits %d",
		took, st.FramesReceived, xs.Pool, xs.FillStarved, links[0].Stats().Retransmits)
}
