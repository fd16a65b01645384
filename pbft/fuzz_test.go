package pbft

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
)

// FuzzBodies feeds arbitrary bytes to every PBFT body decoder: none may
// panic, and whatever decodes must re-encode to the same bytes.
func FuzzBodies(f *testing.F) {
	es := []Entry{{Client: 1, Timestamp: 7, Len: 3}, {Client: 2, Timestamp: 9, Sig: []byte{1, 2, 3}}}
	f.Add(uint8(0), appendEntries(nil, es))
	f.Add(uint8(1), appendPrePrepareBody(nil, make([]byte, 64), appendEntries(nil, es)))
	f.Add(uint8(2), appendRequestBody(nil, 3, requestFlagRetransmit, []byte{4, 5}))
	f.Add(uint8(3), appendSig(nil, make([]byte, 64)))
	vc := &ViewChange{NewView: 2, StableSeq: 32, StableProof: []SignedVote{{Node: 1, Sig: []byte{1, 2}}},
		Prepared: []PreparedCert{{Seq: 33, View: 1, PPSig: []byte{9}, Prepares: []SignedVote{{Node: 2, Sig: []byte{3}}}}}}
	f.Add(uint8(4), appendViewChange(nil, vc))
	f.Add(uint8(5), appendNewView(nil, 3, []NewViewRef{{Node: 1, Sig: []byte{1}}, {Node: 2}}))
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		const n = 7
		switch kind % 6 {
		case 0:
			if es, err := decodeEntries(b, n, 1024); err == nil {
				require.Equal(t, b, appendEntries(nil, es))
			} else {
				require.Error(t, err)
				require.Equal(t, broadcast.ReasonBody, broadcast.ReasonOf(err))
			}
		case 1:
			if sig, enc, err := decodePrePrepareBody(b); err == nil {
				require.Equal(t, b, appendPrePrepareBody(nil, sig, enc))
			}
		case 2:
			if c, fl, sig, err := decodeRequestBody(b, n); err == nil {
				require.Equal(t, b, appendRequestBody(nil, c, fl, sig))
			}
		case 3:
			if s, err := decodeSigBody(b); err == nil && len(b) > 0 {
				require.Equal(t, b, appendSig(nil, s))
			}
		case 4:
			if vc, err := decodeViewChange(b, n, 64); err == nil {
				require.Equal(t, b, appendViewChange(nil, vc))
			} else {
				require.Equal(t, broadcast.ReasonBody, broadcast.ReasonOf(err))
			}
		case 5:
			if v, refs, err := decodeNewView(b, n); err == nil {
				require.Equal(t, b, appendNewView(nil, v, refs))
			}
		}
	})
}

func TestStateBlobRejectsGarbage(t *testing.T) {
	h := newHarness(t, 4, 1, harnessOpt{})
	defer h.close()
	for _, b := range [][]byte{nil, {1, 2, 3}, make([]byte, 200)} {
		_, err := h.nodes[1].restoreState(b)
		require.Error(t, err)
	}
}
