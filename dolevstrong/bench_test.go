package dolevstrong

import (
	"fmt"
	"testing"

	"github.com/onecast/onecast/broadcast"
	"github.com/stretchr/testify/require"
)

// BenchmarkVerifyFullProof measures checking a proof of n signers — the
// longest a relay carries (f+1 with f = n−1) — as an Ed25519 chain and as
// one BLS aggregate, with the body size each puts on the wire.
func BenchmarkVerifyFullProof(b *testing.B) {
	for _, n := range []int{4, 7, 10, 16} {
		for _, v := range []variant{variants[1], variants[2]} {
			b.Run(fmt.Sprintf("%s/n%d", v.name, n), func(b *testing.B) {
				h := &harness{t: b, n: n, v: v, keys: clusterKeys(b, n, v.bls)}
				in := broadcast.Instance{Origin: 0, Seq: 5}
				d := broadcast.DigestOfBytes([]byte("value"))
				body := h.proofBody(in, d, rangeIDs(0, n))
				dec, err := DecodeBody(body, n)
				require.NoError(b, err)
				stmt := Statement(in, d)
				var verifies uint64
				var sch scheme
				if v.bls {
					sch = &blsScheme{k: h.keys.bls[0], verifies: &verifies}
				} else {
					sch, err = newEdScheme(h.keys.ed[0], n, &verifies)
					require.NoError(b, err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if err := sch.newProof(n).absorb(stmt, &dec); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(body)), "body-bytes")
			})
		}
	}
}

// BenchmarkSign measures making one signature on a statement.
func BenchmarkSign(b *testing.B) {
	for _, v := range []variant{variants[1], variants[2]} {
		b.Run(v.name, func(b *testing.B) {
			ks := clusterKeys(b, 4, v.bls)
			var verifies uint64
			var sch scheme = &blsScheme{k: ks.bls[0], verifies: &verifies}
			if !v.bls {
				var err error
				sch, err = newEdScheme(ks.ed[0], 4, &verifies)
				require.NoError(b, err)
			}
			stmt := Statement(broadcast.Instance{Origin: 0, Seq: 1}, broadcast.DigestOfBytes([]byte("v")))
			b.ReportAllocs()
			for range b.N {
				sch.sign(stmt)
			}
		})
	}
}
