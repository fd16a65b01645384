package broadcast

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seededReader is a deterministic io.Reader for key generation in tests.
type seededReader struct{ r *rand.ChaCha8 }

func (s seededReader) Read(p []byte) (int, error) { return s.r.Read(p) }

func testKeyrings(t testing.TB, n int) []*Keyring {
	t.Helper()
	rings, err := GenerateKeyrings(n, seededReader{rand.NewChaCha8([32]byte{1})})
	require.NoError(t, err)
	return rings
}

func TestPairwiseMACKeysAgree(t *testing.T) {
	rings := testKeyrings(t, 4)
	for i := range rings {
		for j := range rings {
			assert.Equal(t, rings[i].MACKeys[j], rings[j].MACKeys[i], "key between %d and %d", i, j)
			if i != j {
				assert.NotEqual(t, rings[i].MACKeys[j], rings[i].MACKeys[(j+1)%4], "distinct pairs get distinct keys")
			}
		}
	}
}

func TestAuthenticators(t *testing.T) {
	rings := testKeyrings(t, 4)
	h := sampleHeader()
	h.Sender = 1
	sd := SigningDigest(&h, nil)
	other := sd
	other[0] ^= 1

	for _, scheme := range []Scheme{SchemeEd25519, SchemeMAC} {
		t.Run(scheme.String(), func(t *testing.T) {
			auths := make([]Authenticator, 4)
			for i := range auths {
				var err error
				auths[i], err = NewAuthenticator(scheme, rings[i])
				require.NoError(t, err)
			}
			sender, receiver, bystander := auths[1], auths[2], auths[3]

			tag := sender.Authenticate(nil, 2, &sd)
			require.NoError(t, receiver.Verify(1, &sd, tag))
			assert.ErrorIs(t, receiver.Verify(1, &other, tag), ErrAuth, "covers the signing digest")
			assert.ErrorIs(t, receiver.Verify(0, &sd, tag), ErrAuth, "bound to the sender")
			assert.ErrorIs(t, receiver.Verify(1, &sd, tag[:len(tag)-1]), ErrAuth, "length checked")
			assert.ErrorIs(t, receiver.Verify(9, &sd, tag), ErrSender, "sender outside the cluster")
			tampered := append([]byte(nil), tag...)
			tampered[0] ^= 1
			assert.ErrorIs(t, receiver.Verify(1, &sd, tampered), ErrAuth)

			if sender.Transferable() {
				assert.NoError(t, bystander.Verify(1, &sd, tag), "a signature convinces a third party")
			} else {
				assert.Error(t, bystander.Verify(1, &sd, tag), "a MAC for node 2 does not convince node 3")
			}

			vec := sender.Authenticate(nil, Everyone, &sd)
			for j := range auths {
				if j != 1 {
					assert.NoError(t, auths[j].Verify(1, &sd, vec), "node %d checks its entry", j)
				}
			}
		})
	}
}

func TestMACVectorEntryIsPerRecipient(t *testing.T) {
	rings := testKeyrings(t, 4)
	sender, err := NewMAC(rings[0])
	require.NoError(t, err)
	recv, err := NewMAC(rings[2])
	require.NoError(t, err)
	sd := DigestOfBytes([]byte("x"))
	vec := sender.Authenticate(nil, Everyone, &sd)
	require.Len(t, vec, 4*MACSize)
	vec[2*MACSize] ^= 1 // corrupt only node 2's entry
	assert.ErrorIs(t, recv.Verify(0, &sd, vec), ErrAuth)
}

func TestNewAuthenticatorRejectsIncompleteKeyrings(t *testing.T) {
	_, err := NewEd25519(&Keyring{Self: 0})
	require.Error(t, err)
	_, err = NewMAC(&Keyring{Self: 3, MACKeys: make([][32]byte, 2)})
	require.Error(t, err)
	_, err = ParseScheme("rot13")
	require.Error(t, err)
	s, err := ParseScheme("mac")
	require.NoError(t, err)
	assert.Equal(t, SchemeMAC, s)
}

func BenchmarkMACAuthenticate(b *testing.B) {
	rings := testKeyrings(b, 4)
	a, _ := NewMAC(rings[0])
	sd := DigestOfBytes([]byte("x"))
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		dst = a.Authenticate(dst[:0], 1, &sd)
	}
}

func BenchmarkEd25519Verify(b *testing.B) {
	rings := testKeyrings(b, 2)
	s, _ := NewEd25519(rings[0])
	v, _ := NewEd25519(rings[1])
	sd := DigestOfBytes([]byte("x"))
	sig := s.Authenticate(nil, 1, &sd)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(0, &sd, sig); err != nil {
			b.Fatal(err)
		}
	}
}
