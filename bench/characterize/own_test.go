package characterize

import (
	"crypto/sha256"

	"github.com/onecast/onecast/broadcast"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassifySplitsWithinAndBetweenRoundsByContent(t *testing.T) {
	r := newRecorder()
	v := make([]byte, 120) // random: no 32-byte piece repeats inside it
	for i := range v {
		v[i] = byte(i*i*7 + i*13 + i>>3*101)
	}
	hv := sha256.Sum256(v)
	batch := append([]byte{1, 0, 0, 0}, v...)
	hb := sha256.Sum256(batch)
	r.contents[hv], r.contents[hb] = v, batch
	r.held = []reception{{to: 3, content: hv, payload: len(v)}}
	add := func(to broadcast.NodeID, typ broadcast.MsgType, n int, h [32]byte, size int) {
		for range n {
			r.recs = append(r.recs, reception{to: to, typ: typ, content: h, payload: size})
		}
	}
	const send, echo, ready = 1, 2, 3
	add(1, send, 1, hv, 120)
	add(1, echo, 3, hb, 124) // the value inside a batch: 4 bytes of framing
	add(1, ready, 2, hv, 120)
	add(1, ready, 1, [32]byte{}, 0) // a digest-only vote
	add(3, echo, 2, hv, 120)        // node 3 submitted v itself
	add(2, send, 5, hv, 120)        // node 2 is Byzantine
	got, err := r.classify(func(t broadcast.MsgType) string { return []string{"", "SEND", "ECHO", "READY"}[t] }, map[broadcast.NodeID]bool{2: true}, false)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, TypeDup{Type: "SEND", Messages: 1, PayloadMessages: 1, PayloadBytes: 120, FirstBytes: 120}, got[0])
	assert.Equal(t, TypeDup{Type: "ECHO", Messages: 5, PayloadMessages: 5, PayloadBytes: 3*124 + 240, BetweenBytes: 240, WithinBytes: 360, OtherBytes: 12}, got[1])
	assert.Equal(t, TypeDup{Type: "READY", Messages: 3, PayloadMessages: 2, PayloadBytes: 240, BetweenBytes: 120, WithinBytes: 120}, got[2])
}

// TestBrachaFullModeIsTwoNMinusOneAndAgreesWithSimulator checks the
// textbook figure: in full mode each correct node receives every remote
// payload 2n−1 times (1 SEND, n−1 ECHOs, n−1 READYs), of which 1 is needed,
// 2(n−2) are within-round and 2 between-round copies, and its own payload
// 2(n−1) times (ECHOs and READYs, all duplicates); so n(2n−1)(n−1) + 2n(n−1)
// payloads are received for n(n−1) remote deliveries, a factor of 2n+1 —
// and the trace's counts equal the simulator's counters.
func TestBrachaFullModeIsTwoNMinusOneAndAgreesWithSimulator(t *testing.T) {
	for _, n := range []int{4, 7} {
		r := RunOwn(OwnPoint{Protocol: "bracha", N: n, F: (n - 1) / 3, Payload: 1000, Batch: 1, PerNode: 1}, 1)
		require.Empty(t, r.Err)
		require.Empty(t, r.Violations)
		assert.True(t, r.Agree, "trace and simulator counters agree")
		assert.InDelta(t, float64(2*n+1), r.DupFactor, 1e-9)
		p := int64(1000)
		nn := int64(n)
		assert.Equal(t, nn*(nn-1)*p, r.First, "one needed copy per remote payload")
		assert.Equal(t, 2*nn*(nn-1)*p+2*nn*p, r.Between, "ECHO and READY carry each payload again")
		assert.Equal(t, 2*(nn-2)*nn*(nn-1)*p+2*(nn-2)*nn*p, r.Within, "n−2 extra ECHOs and READYs per payload")
	}
}

func TestEveryProtocolRunsAndAgrees(t *testing.T) {
	for _, proto := range OwnProtocols {
		r := RunOwn(OwnPoint{Protocol: proto, N: 4, F: 1, Payload: 512, Batch: 1, PerNode: 1}, 1)
		require.Empty(t, r.Err, proto)
		assert.Empty(t, r.Violations, proto)
		assert.True(t, r.Agree, proto)
		assert.Greater(t, r.DupFactor, 1.0, proto)
	}
}
