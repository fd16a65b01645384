package pbft

import (
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/mem"
)

// macHarness is a cluster whose replicas hold keyrings, so that requests
// are authenticated by MAC vectors (the default with Keys).
func macHarness(t *testing.T, mode broadcast.Mode, fault mem.Fault) (*harness, []*broadcast.Keyring) {
	rings, err := broadcast.GenerateKeyrings(4, crand.Reader)
	require.NoError(t, err)
	h := newHarness(t, 4, 1, harnessOpt{mode: mode, signer: true, fault: fault,
		tweak: func(i int, c *Config) { c.Keys = rings[i] }})
	return h, rings
}

// submitOne submits op on a lone replica 3 built with ra and returns the
// authenticator its REQUEST carries.
func submitOne(t *testing.T, ring *broadcast.Keyring, ra RequestAuth) (broadcast.Digest, []byte) {
	nd, err := New(Config{Params: broadcast.Params{N: 4, F: 1, Self: 3, Mode: broadcast.ModeDigest},
		Store: broadcast.NewPayloadStore(broadcast.StoreConfig{}), Keys: ring, RequestAuth: ra})
	require.NoError(t, err)
	defer nd.Close()
	require.NoError(t, nd.Submit(bufpool.Wrap([]byte("x"))))
	rd := nd.Ready()
	defer rd.Release()
	require.NotEmpty(t, rd.Messages)
	m := rd.Messages[0].Msg
	require.Equal(t, TypeRequest, m.Type)
	require.Equal(t, uint64(1), m.Instance.Seq)
	_, _, auth, err := decodeRequestBody(m.Body, 4)
	require.NoError(t, err)
	return m.Digest, auth
}

func TestRequestsCarryMACVectorsByDefaultWithKeys(t *testing.T) {
	rings, err := broadcast.GenerateKeyrings(4, crand.Reader)
	require.NoError(t, err)
	d, auth := submitOne(t, rings[3], RequestAuthDefault)
	require.Len(t, auth, 4*broadcast.MACSize, "one MAC per replica")
	mac, err := broadcast.NewMAC(rings[3])
	require.NoError(t, err)
	st := statement(stmtRequest, 0, 1, d)
	assert.Equal(t, mac.Authenticate(nil, broadcast.Everyone, &st), auth)
	for i := range 3 {
		v, err := broadcast.NewMAC(rings[i])
		require.NoError(t, err)
		assert.NoError(t, MACVector{MAC: v, N: 4}.Verify(3, &st, auth), "replica %d checks its entry", i)
	}
}

func TestRequestSignedOptionKeepsSignatures(t *testing.T) {
	rings, err := broadcast.GenerateKeyrings(4, crand.Reader)
	require.NoError(t, err)
	d, auth := submitOne(t, rings[3], RequestSigned)
	require.NoError(t, err)
	require.Len(t, auth, 64, "an Ed25519 signature")
	ed, err := NewEd25519Signer(rings[0])
	require.NoError(t, err)
	st := statement(stmtRequest, 0, 1, d)
	assert.NoError(t, ed.Verify(3, &st, auth))

	_, err = New(Config{Params: broadcast.Params{N: 4, F: 1, Mode: broadcast.ModeDigest},
		Store: broadcast.NewPayloadStore(broadcast.StoreConfig{}), RequestAuth: RequestMACs})
	assert.Error(t, err, "MAC vectors need keys")
}

// A relayed request is accepted on the receiver's own MAC entry, and
// refused when that entry is wrong (whatever the other entries say).
func TestRelayedRequestIsCheckedOnTheReceiversMAC(t *testing.T) {
	h, rings := macHarness(t, broadcast.ModeDigest, nil)
	defer h.close()
	mac, err := broadcast.NewMAC(rings[3])
	require.NoError(t, err)
	for _, tamper := range []bool{true, false} {
		b, err := h.pool.Copy([]byte(fmt.Sprint("relayed", tamper)))
		require.NoError(t, err)
		d := broadcast.DigestOf(b)
		st := statement(stmtRequest, 0, 1, d)
		vec := mac.Authenticate(nil, broadcast.Everyone, &st)
		if tamper {
			vec[1*broadcast.MACSize] ^= 1 // replica 1's entry
		}
		m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeRequest, Sender: 2, Instance: broadcast.Instance{Seq: 1}}}
		m.Body = appendRequestBody(nil, 3, 0, vec)
		m.SetPayload(b, d)
		err = h.nodes[1].Step(2, &m)
		if tamper {
			require.ErrorIs(t, err, broadcast.ErrAuth)
			// Replica 0's entry is intact: it accepts the same vector.
			require.NoError(t, h.nodes[0].Step(2, &m))
		} else {
			require.NoError(t, err)
			assert.Equal(t, 1, h.nodes[1].clients[3].pending)
		}
		b.Release()
	}
	rd := h.nodes[0].Ready()
	rd.Release()
	rd = h.nodes[1].Ready()
	rd.Release()
}

// Clients reach only the primary: the backups accept each request from the
// PRE-PREPARE's entry on their own MAC (fetching the bytes in digest mode),
// and every replica executes everything.
func TestRequestsOnlyThePrimaryGotAreAcceptedOnTheirMACVectors(t *testing.T) {
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		t.Run(mode.String(), func(t *testing.T) {
			fault := func(from, to broadcast.NodeID, m *broadcast.Message, _ *rand.Rand) mem.Decision {
				return mem.Decision{Drop: m.Type == TypeRequest && to != 0}
			}
			h, _ := macHarness(t, mode, fault)
			defer h.close()
			for r := range 5 {
				for i := 1; i < 4; i++ {
					h.submit(i, fmt.Sprintf("op %d of %d", r, i))
				}
			}
			h.run(2 * time.Second)
			want := h.executed(0)
			require.Len(t, want, 15)
			for i := 1; i < 4; i++ {
				assert.Equal(t, want, h.executed(i), "replica %d", i)
				assert.Len(t, h.nodes[i].TakeResults(nil), 5, "client %d", i)
			}
			assert.Equal(t, uint32(0), h.nodes[1].View(), "no view change")
			h.checkSafety([]int{0, 1, 2, 3})
		})
	}
}

// A PRE-PREPARE naming a request whose MAC for a backup is bad, that the
// backup did not get from the client, is not accepted by that backup.
func TestPrePrepareWithABadMACForTheBackupIsNotAccepted(t *testing.T) {
	h, rings := macHarness(t, broadcast.ModeFull, nil)
	defer h.close()
	mac, err := broadcast.NewMAC(rings[3])
	require.NoError(t, err)
	b, err := h.pool.Copy([]byte("op"))
	require.NoError(t, err)
	defer b.Release()
	d := broadcast.DigestOf(b)
	st := statement(stmtRequest, 0, 1, d)
	vec := mac.Authenticate(nil, broadcast.Everyone, &st)
	bad := append([]byte(nil), vec...)
	bad[2*broadcast.MACSize] ^= 1
	for _, c := range []struct {
		auth []byte
		ok   bool
	}{{bad, false}, {vec, true}} {
		es := []Entry{{Client: 3, Timestamp: 1, Op: d, Len: uint32(b.Len()), Sig: c.auth}}
		enc := appendEntries(nil, es)
		bd := batchDigest(enc)
		pst := statement(stmtPrePrepare, 0, 1, bd)
		m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypePrePrepare, Sender: 0,
			Instance: broadcast.Instance{Seq: 1}, Digest: bd},
			Body: appendPrePrepareBody(nil, OracleSigner{Secret: [32]byte{7}, Self: 0}.Sign(&pst), enc)}
		m.SetPayload(b.Retain(), bd)
		require.NoError(t, h.nodes[2].Step(0, &m))
		m.Payload.Release()
		s := h.nodes[2].slots[1]
		require.NotNil(t, s)
		assert.Equal(t, c.ok, s.accepted, "accepted with auth ok=%v", c.ok)
		if !c.ok {
			// A later PRE-PREPARE for the slot in the same view is ignored
			// (one per view); drop the parked one to try the good vector.
			h.nodes[2].dropSlot(1)
		}
	}
	rd := h.nodes[2].Ready()
	rd.Release()
}

// OracleSigner's allocation-free HMAC is HMAC-SHA256 of (node, digest)
// under its secret, truncated to 16 bytes.
func TestOracleSignerIsHMACSHA256(t *testing.T) {
	o := OracleSigner{Secret: [32]byte{1, 2, 3, 250}, Self: 0x01020304}
	d := broadcast.DigestOfBytes([]byte("statement"))
	m := hmac.New(sha256.New, o.Secret[:])
	m.Write([]byte{4, 3, 2, 1})
	m.Write(d[:])
	assert.Equal(t, m.Sum(nil)[:16], o.Sign(&d))
	assert.NoError(t, o.Verify(o.Self, &d, o.Sign(&d)))
	assert.ErrorIs(t, o.Verify(o.Self+1, &d, o.Sign(&d)), broadcast.ErrAuth)
}
