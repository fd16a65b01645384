package broadcast

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/cloudflare/circl/dh/x25519"
	"github.com/cloudflare/circl/sign/ed25519"
)

// Scheme names an authenticator kind.
type Scheme uint8

// Authenticator schemes.
const (
	SchemeNone    Scheme = iota // simulator only: the sim's links are authentic by construction
	SchemeEd25519               // one signature per message, verifiable by anyone
	SchemeMAC                   // HMAC-SHA256 with pairwise keys, one MAC or a vector of n
)

func (s Scheme) String() string {
	switch s {
	case SchemeNone:
		return "none"
	case SchemeEd25519:
		return "ed25519"
	case SchemeMAC:
		return "mac"
	}
	return fmt.Sprintf("scheme%d", uint8(s))
}

// Authenticator makes and checks the authenticator of a message: over its
// [SigningDigest], so over header, digest and body, never the payload.
// Implementations are safe for concurrent use.
type Authenticator interface {
	// Scheme names the kind.
	Scheme() Scheme
	// PerRecipient reports whether the authenticator differs per recipient
	// (MACs); when false, one authenticator serves every recipient.
	PerRecipient() bool
	// Transferable reports whether a third party can verify it (signatures),
	// which certificates and relayed messages need.
	Transferable() bool
	// Authenticate appends the authenticator for a message to `to` (or to
	// Everyone: a MAC vector) to dst.
	Authenticate(dst []byte, to NodeID, sd *Digest) []byte
	// Verify checks an authenticator that `from` made. It returns an error
	// wrapping ErrAuth when it does not hold.
	Verify(from NodeID, sd *Digest, auth []byte) error
}

// NoAuth authenticates nothing and accepts everything. It is for the
// simulator, whose links deliver the true sender by construction; the node
// runner refuses it on real transports.
type NoAuth struct{}

func (NoAuth) Scheme() Scheme                                      { return SchemeNone }
func (NoAuth) PerRecipient() bool                                  { return false }
func (NoAuth) Transferable() bool                                  { return false }
func (NoAuth) Authenticate(dst []byte, _ NodeID, _ *Digest) []byte { return dst }
func (NoAuth) Verify(NodeID, *Digest, []byte) error                { return nil }

// Ed25519 signs every message with the node's Ed25519 key (circl).
type Ed25519 struct {
	self NodeID
	priv ed25519.PrivateKey
	pubs []ed25519.PublicKey
}

// NewEd25519 builds an Ed25519 authenticator for node self from its keyring.
func NewEd25519(k *Keyring) (*Ed25519, error) {
	if int(k.Self) >= len(k.VerifyKeys) {
		return nil, fmt.Errorf("broadcast: keyring self %d out of range of %d verify keys", k.Self, len(k.VerifyKeys))
	}
	if len(k.SignKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("broadcast: keyring has no Ed25519 signing key")
	}
	return &Ed25519{self: k.Self, priv: k.SignKey, pubs: k.VerifyKeys}, nil
}

func (*Ed25519) Scheme() Scheme     { return SchemeEd25519 }
func (*Ed25519) PerRecipient() bool { return false }
func (*Ed25519) Transferable() bool { return true }

// Authenticate appends a 64-byte signature of sd.
func (a *Ed25519) Authenticate(dst []byte, _ NodeID, sd *Digest) []byte {
	return append(dst, ed25519.Sign(a.priv, sd[:])...)
}

// Verify checks from's signature of sd.
func (a *Ed25519) Verify(from NodeID, sd *Digest, auth []byte) error {
	if int(from) >= len(a.pubs) {
		return decodeErr(ReasonSender, "signer %d outside the cluster of %d", from, len(a.pubs))
	}
	if len(auth) != ed25519.SignatureSize {
		return decodeErr(ReasonAuth, "ed25519 signature of %d bytes", len(auth))
	}
	if !ed25519.Verify(a.pubs[from], sd[:], auth) {
		return decodeErr(ReasonAuth, "ed25519 signature of %v does not verify", from)
	}
	return nil
}

// MACSize is the length of one MAC: HMAC-SHA256 truncated to 128 bits.
const MACSize = 16

// MAC authenticates with HMAC-SHA256 under keys shared pairwise, as PBFT's
// normal case does. To one recipient it is one MAC; to Everyone it is a
// vector of n MACs indexed by node ID, so that one encoded message serves
// all. MACs do not convince a third party: protocols that forward proofs use
// signatures there.
type MAC struct {
	self NodeID
	// pads[j] holds the HMAC inner and outer key pads for the key shared
	// with node j, precomputed so that a MAC costs two SHA-256 blocks and no
	// allocation.
	pads [][2][sha256.BlockSize]byte
}

// NewMAC builds a MAC authenticator for node self from its keyring.
func NewMAC(k *Keyring) (*MAC, error) {
	if len(k.MACKeys) == 0 || int(k.Self) >= len(k.MACKeys) {
		return nil, fmt.Errorf("broadcast: keyring of node %d has %d MAC keys", k.Self, len(k.MACKeys))
	}
	m := &MAC{self: k.Self, pads: make([][2][sha256.BlockSize]byte, len(k.MACKeys))}
	for j, key := range k.MACKeys {
		for i := range sha256.BlockSize {
			var kb byte
			if i < len(key) {
				kb = key[i]
			}
			m.pads[j][0][i] = kb ^ 0x36
			m.pads[j][1][i] = kb ^ 0x5c
		}
	}
	return m, nil
}

func (*MAC) Scheme() Scheme     { return SchemeMAC }
func (*MAC) PerRecipient() bool { return true }
func (*MAC) Transferable() bool { return false }

// mac computes the truncated HMAC of sd under the key shared with peer.
func (a *MAC) mac(peer NodeID, sd *Digest) [MACSize]byte {
	var buf [sha256.BlockSize + sha256.Size]byte
	copy(buf[:], a.pads[peer][0][:])
	copy(buf[sha256.BlockSize:], sd[:])
	inner := sha256.Sum256(buf[:])
	copy(buf[:], a.pads[peer][1][:])
	copy(buf[sha256.BlockSize:], inner[:])
	outer := sha256.Sum256(buf[:])
	var out [MACSize]byte
	copy(out[:], outer[:MACSize])
	return out
}

// Authenticate appends one MAC for `to`, or a vector of n MACs for Everyone.
func (a *MAC) Authenticate(dst []byte, to NodeID, sd *Digest) []byte {
	if to != Everyone {
		m := a.mac(to, sd)
		return append(dst, m[:]...)
	}
	for j := range a.pads {
		m := a.mac(NodeID(j), sd)
		dst = append(dst, m[:]...)
	}
	return dst
}

// Verify checks a single MAC or this node's entry of a MAC vector.
func (a *MAC) Verify(from NodeID, sd *Digest, auth []byte) error {
	if int(from) >= len(a.pads) {
		return decodeErr(ReasonSender, "sender %d outside the cluster of %d", from, len(a.pads))
	}
	var got []byte
	switch len(auth) {
	case MACSize:
		got = auth
	case MACSize * len(a.pads):
		got = auth[int(a.self)*MACSize : (int(a.self)+1)*MACSize]
	default:
		return decodeErr(ReasonAuth, "MAC authenticator of %d bytes", len(auth))
	}
	want := a.mac(from, sd)
	if !hmac.Equal(want[:], got) {
		return decodeErr(ReasonAuth, "MAC from %v does not verify", from)
	}
	return nil
}

// Keyring is what one node knows of the cluster's keys.
type Keyring struct {
	Self NodeID
	// SignKey is this node's Ed25519 private key.
	SignKey ed25519.PrivateKey
	// VerifyKeys are every node's Ed25519 public keys, indexed by NodeID.
	VerifyKeys []ed25519.PublicKey
	// MACKeys[j] is the key this node shares with node j (MACKeys[Self] is
	// this node's key with itself, used for messages to itself).
	MACKeys [][32]byte
}

// NodeKeys are one node's secret keys, as keygen writes them.
type NodeKeys struct {
	Sign ed25519.PrivateKey
	DH   x25519.Key // static X25519 key from which pairwise MAC keys derive
}

// PublicKeys are what every node publishes.
type PublicKeys struct {
	Verify ed25519.PublicKey
	DH     x25519.Key
}

// GenerateNodeKeys makes a node's secret keys and their public halves.
func GenerateNodeKeys(rand io.Reader) (NodeKeys, PublicKeys, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return NodeKeys{}, PublicKeys{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	var sk, pk x25519.Key
	if _, err := io.ReadFull(rand, sk[:]); err != nil {
		return NodeKeys{}, PublicKeys{}, fmt.Errorf("generate x25519 key: %w", err)
	}
	x25519.KeyGen(&pk, &sk)
	return NodeKeys{Sign: priv, DH: sk}, PublicKeys{Verify: pub, DH: pk}, nil
}

// NewKeyring derives node self's keyring from its secret keys and every
// node's public keys: pairwise MAC keys come from X25519 agreement, so no
// shared secret is ever distributed.
func NewKeyring(self NodeID, own NodeKeys, pubs []PublicKeys) (*Keyring, error) {
	if int(self) >= len(pubs) {
		return nil, fmt.Errorf("broadcast: node %d outside a cluster of %d", self, len(pubs))
	}
	k := &Keyring{Self: self, SignKey: own.Sign, VerifyKeys: make([]ed25519.PublicKey, len(pubs)), MACKeys: make([][32]byte, len(pubs))}
	for j, p := range pubs {
		k.VerifyKeys[j] = p.Verify
		var shared x25519.Key
		if !x25519.Shared(&shared, &own.DH, &p.DH) {
			return nil, fmt.Errorf("broadcast: x25519 agreement with node %d failed (low-order public key)", j)
		}
		lo, hi := min(int(self), j), max(int(self), j)
		h := sha256.New()
		h.Write([]byte("onecast/mac-key/v1"))
		h.Write([]byte{byte(lo), byte(lo >> 8), byte(lo >> 16), byte(lo >> 24), byte(hi), byte(hi >> 8), byte(hi >> 16), byte(hi >> 24)})
		h.Write(shared[:])
		h.Sum(k.MACKeys[j][:0])
	}
	return k, nil
}

// GenerateKeyrings makes keyrings for a whole cluster of n nodes in one
// process, for tests, the simulator and in-process benchmarks.
func GenerateKeyrings(n int, rand io.Reader) ([]*Keyring, error) {
	secrets := make([]NodeKeys, n)
	pubs := make([]PublicKeys, n)
	for i := range n {
		var err error
		if secrets[i], pubs[i], err = GenerateNodeKeys(rand); err != nil {
			return nil, err
		}
	}
	rings := make([]*Keyring, n)
	for i := range n {
		var err error
		if rings[i], err = NewKeyring(NodeID(i), secrets[i], pubs); err != nil {
			return nil, err
		}
	}
	return rings, nil
}

// NewAuthenticator builds the authenticator of a scheme from a keyring.
func NewAuthenticator(s Scheme, k *Keyring) (Authenticator, error) {
	switch s {
	case SchemeNone:
		return NoAuth{}, nil
	case SchemeEd25519:
		return NewEd25519(k)
	case SchemeMAC:
		return NewMAC(k)
	}
	return nil, fmt.Errorf("broadcast: unknown authenticator scheme %d", s)
}

// ParseScheme maps a name ("none", "ed25519", "mac") to a Scheme.
func ParseScheme(name string) (Scheme, error) {
	for _, s := range []Scheme{SchemeNone, SchemeEd25519, SchemeMAC} {
		if s.String() == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("unknown authenticator %q (want none, ed25519 or mac)", name)
}
