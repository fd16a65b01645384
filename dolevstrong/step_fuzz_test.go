package dolevstrong

import (
	"encoding/binary"
	"testing"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/stretchr/testify/require"
)

// FuzzStep feeds arbitrary relays, fetches and payloads to a node: Step
// must never panic, must reject with a *broadcast.RejectError or accept,
// and the node must keep working.
func FuzzStep(f *testing.F) {
	ks := clusterKeys(f, 4, false)
	in := broadcast.Instance{Origin: 1, Seq: 3}
	val := []byte("fuzzed value")
	d := broadcast.DigestOfBytes(val)
	var verifies uint64
	s, err := newEdScheme(ks.ed[1], 4, &verifies)
	require.NoError(f, err)
	good := AppendChain(nil, ids(1), [][]byte{s.sign(Statement(in, d))})
	f.Add(uint8(TypeRelay), uint32(1), uint64(3), d[:], good, val, true)
	f.Add(uint8(TypeRelay), uint32(1), uint64(3), d[:], good, []byte(nil), false)
	f.Add(uint8(broadcast.TypeFetch), uint32(1), uint64(3), d[:], []byte(nil), []byte(nil), false)
	f.Add(uint8(broadcast.TypePayload), uint32(1), uint64(3), d[:], []byte(nil), val, true)
	f.Add(uint8(TypeRelay), uint32(9), uint64(1<<63), []byte{1}, []byte{2, 0, 0}, []byte{}, true)
	f.Fuzz(func(t *testing.T, typ uint8, origin uint32, seq uint64, digest, body, payload []byte, hasPayload bool) {
		node, err := New(Config{Params: broadcast.Params{N: 4, F: 2, Self: 0, Mode: broadcast.ModeDigest},
			Store: broadcast.NewPayloadStore(broadcast.StoreConfig{}), Keys: ks.ed[0], RoundDuration: testDelta})
		require.NoError(t, err)
		node.Tick(3 * testDelta)
		m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoDolevStrong, Type: broadcast.MsgType(typ),
			Instance: broadcast.Instance{Origin: broadcast.NodeID(origin), Seq: seq}, Round: uint32(len(body))}, Body: body}
		copy(m.Digest[:], digest)
		if hasPayload {
			m.Flags |= broadcast.HasPayload
			m.Payload = bufpool.Wrap(payload)
			m.PayloadLen = uint32(len(payload))
		} else {
			m.PayloadLen = binary.LittleEndian.Uint32(append(append([]byte(nil), digest...), 0, 0, 0, 0))
		}
		for _, from := range []broadcast.NodeID{1, 2} {
			if err := node.Step(from, &m); err != nil {
				require.NotZero(t, broadcast.ReasonOf(err), "untyped error %v", err)
			}
		}
		node.Tick(10 * testDelta)
		rd := node.Ready()
		rd.Release()
		node.Close()
	})
}
