package bracha

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// FuzzDecodeBatch: any bytes either decode into entries that tile the
// container exactly, and re-encode to the same bytes, or are refused with
// ReasonBody. Never a panic.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 1, 0, 0, 0, 'a'})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 'h', 'i'})
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		spans, err := decodeBatch(bufpool.Wrap(b), 1024, nil)
		if err != nil {
			require.Equal(t, broadcast.ReasonBody, broadcast.ReasonOf(err))
			return
		}
		parts := make([]bufpool.Buf, len(spans))
		for i, s := range spans {
			parts[i] = bufpool.Wrap(b[s.off : s.off+s.n])
		}
		again, err := EncodeBatch(nil, parts)
		require.NoError(t, err)
		require.Equal(t, b, again.Bytes())
	})
}

// FuzzStep: any frame, parsed by the codec and stepped into a node from any
// peer, never panics; a refusal is a typed rejection; and the node's state
// stays within its bounds.
func FuzzStep(f *testing.F) {
	seed := func(t broadcast.MsgType, sender, origin broadcast.NodeID, seq uint64, layout uint32, payload []byte) []byte {
		h := broadcast.Header{Protocol: broadcast.ProtoBracha, Type: t, Sender: sender, Instance: broadcast.Instance{Origin: origin, Seq: seq},
			Round: layout, PayloadLen: uint32(len(payload)), Digest: broadcast.DigestOfBytes(payload)}
		if payload != nil {
			h.Flags = broadcast.HasPayload
		}
		m := broadcast.Message{Header: h}
		out, err := broadcast.AppendPrefix(nil, &m)
		if err != nil {
			panic(err)
		}
		return append(out, payload...)
	}
	batch := binary.LittleEndian.AppendUint32(nil, 1)
	batch = binary.LittleEndian.AppendUint32(batch, 2)
	batch = append(batch, 'o', 'k')
	f.Add(seed(TypeSend, 0, 0, 0, LayoutSingle, []byte("hello")))
	f.Add(seed(TypeSend, 1, 1, 3, LayoutBatch, batch))
	f.Add(seed(TypeEcho, 1, 0, 0, LayoutSingle, nil))
	f.Add(seed(TypeReady, 2, 0, 0, LayoutSingle, nil))
	f.Add(seed(broadcast.TypeFetch, 2, 0, 0, LayoutSingle, nil))
	f.Add(seed(broadcast.TypePayload, 1, 0, 0, LayoutSingle, []byte("hello")))
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, off, err := broadcast.ParseFrame(frame, nil)
		if err != nil {
			return
		}
		if m.Flags&broadcast.HasPayload != 0 {
			m.Payload = bufpool.Wrap(frame[off:])
		}
		for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
			nd, err := New(Config{N: 4, F: 1, Self: 3, Mode: mode, Window: 16})
			require.NoError(t, err)
			// Twice: the second copy exercises the duplicate paths.
			for range 2 {
				if err := nd.Step(m.Sender, &m); err != nil {
					require.NotZero(t, broadcast.ReasonOf(err), "untyped error %v", err)
				}
			}
			require.LessOrEqual(t, nd.Stats().Live, 1)
			for _, in := range nd.insts {
				require.LessOrEqual(t, len(in.cands), 2*nd.n+1)
			}
			rd := nd.Ready()
			rd.Release()
			nd.Close()
		}
	})
}
