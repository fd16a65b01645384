package dolevstrong

import (
	"bytes"
	"testing"

	"github.com/onecast/onecast/broadcast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sig(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func TestBodyRoundTrip(t *testing.T) {
	chain := AppendChain(nil, ids(3, 0, 9), [][]byte{sig(1, 64), sig(2, 64), sig(3, 64)})
	b, err := DecodeBody(chain, 10)
	require.NoError(t, err)
	assert.Equal(t, KindChain, b.Kind)
	assert.Equal(t, ids(3, 0, 9), b.Signers)
	assert.Equal(t, sig(2, 64), b.Sigs[1])
	assert.Equal(t, chain, b.AppendBody(nil, 10))

	agg := AppendAggregate(nil, 10, ids(0, 9, 4), sig(7, BLSSignatureSize))
	b, err = DecodeBody(agg, 10)
	require.NoError(t, err)
	assert.Equal(t, KindAggregate, b.Kind)
	assert.Equal(t, ids(0, 4, 9), b.Signers, "bitmap order")
	assert.Equal(t, sig(7, BLSSignatureSize), b.Aggregate)
	assert.Equal(t, agg, b.AppendBody(nil, 10))
}

func TestDecodeBodyRejectsMalformedBodies(t *testing.T) {
	good := AppendChain(nil, ids(0, 1), [][]byte{sig(1, 64), sig(2, 64)})
	goodAgg := AppendAggregate(nil, 10, ids(0, 1), sig(7, BLSSignatureSize))
	cases := map[string][]byte{
		"empty":               nil,
		"short":               {KindChain, 1},
		"unknown kind":        append([]byte{9}, good[1:]...),
		"zero signers":        AppendChain(nil, nil, nil),
		"truncated chain":     good[:len(good)-1],
		"trailing bytes":      append(append([]byte(nil), good...), 0),
		"signer out of range": AppendChain(nil, ids(0, 10), [][]byte{sig(1, 64), sig(2, 64)}),
		"duplicate signer":    AppendChain(nil, ids(1, 1), [][]byte{sig(1, 64), sig(2, 64)}),
		"too many signers":    AppendChain(nil, rangeIDs(0, 11), make([][]byte, 11)),
		"bitmap too short":    append([]byte{KindAggregate, 1, 0, 3}, sig(7, BLSSignatureSize)...),
		"truncated aggregate": goodAgg[:len(goodAgg)-1],
		"bit beyond n":        append([]byte{KindAggregate, 2, 0, 1, 0x04}, sig(7, BLSSignatureSize)...),
		"empty bitmap":        append([]byte{KindAggregate, 2, 0, 0, 0}, sig(7, BLSSignatureSize)...),
	}
	for name, b := range cases {
		_, err := DecodeBody(b, 10)
		require.Error(t, err, name)
		assert.Equal(t, broadcast.ReasonBody, broadcast.ReasonOf(err), name)
	}
}

// FuzzDecodeBody checks that no body panics the decoder, and that every
// accepted body re-encodes to itself.
func FuzzDecodeBody(f *testing.F) {
	f.Add(AppendChain(nil, ids(0, 1), [][]byte{sig(1, 64), sig(2, 64)}), 4)
	f.Add(AppendAggregate(nil, 10, ids(0, 9), sig(7, BLSSignatureSize)), 10)
	f.Add([]byte{KindAggregate, 1, 0, 0xff}, 8)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		n = n%300 + 1
		if n <= 0 {
			n = -n + 1
		}
		body, err := DecodeBody(b, n)
		if err != nil {
			require.Equal(t, broadcast.ReasonBody, broadcast.ReasonOf(err))
			return
		}
		require.Equal(t, b, body.AppendBody(nil, n))
	})
}
