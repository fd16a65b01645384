package dolevstrong

import (
	"fmt"
	"time"

	"github.com/onecast/onecast/broadcast"
)

// MinN is the smallest cluster that tolerates f Byzantine nodes: f+1.
// Signatures make both agreement and validity hold for any f < n: a correct
// sender's signature cannot be forged, so no honest majority is needed.
func MinN(f int) int { return f + 1 }

// Spec describes Dolev–Strong with Ed25519 signature chains to the tools
// (simulator, benchmark, node runner, CLI). It builds nodes from
// Env.Keys (required), Env.Store and Env.Tuning.RoundDuration (Δ). Links
// need authentic senders only for fetches; relays carry their own
// signatures, so the default link authenticator is the cheap MAC.
var Spec = broadcast.Spec{
	Name:  "dolevstrong",
	ID:    broadcast.ProtoDolevStrong,
	Class: broadcast.ByzantineBroadcast,
	MinN:  MinN,
	New: func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		return newFromEnv(p, env, nil)
	},
	TypeName:      TypeName,
	DefaultScheme: broadcast.SchemeMAC,
}

// AggregateSpec is Spec for the BLS aggregate variant over the given
// cluster keyrings (one per node, from GenerateBLSKeyrings or
// NewBLSKeyring): node i is built with rings[i].
func AggregateSpec(rings []*BLSKeyring) broadcast.Spec {
	s := Spec
	s.Name = "dolevstrong-bls"
	s.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		if int(p.Self) >= len(rings) {
			return nil, fmt.Errorf("dolevstrong: no BLS keyring for node %v (have %d)", p.Self, len(rings))
		}
		return newFromEnv(p, env, rings[p.Self])
	}
	return s
}

// RoundFor is the round length Δ for a cluster whose one-way message delay
// between correct nodes — propagation, queueing and the serialization of the
// largest value, plus the clock skew between nodes — is bounded by maxDelay:
// maxDelay in full mode (a relay must arrive within its round), 3·maxDelay
// in digest mode (a relay, then a fetch and the payload answering it, within
// one round). Tools that run on real transports measure the delay (for
// instance the 99.9th percentile of one-way latency under load, plus the
// value's transmission time) and pass it here; a bound that is exceeded
// costs agreement, so measure generously.
func RoundFor(mode broadcast.Mode, maxDelay time.Duration) time.Duration {
	if mode == broadcast.ModeDigest {
		return 3 * maxDelay
	}
	return maxDelay
}

func newFromEnv(p broadcast.Params, env broadcast.Env, ring *BLSKeyring) (broadcast.Protocol, error) {
	delta := env.Tuning.RoundDuration
	if delta == 0 && env.Tuning.MaxDelay > 0 {
		delta = RoundFor(p.Mode, env.Tuning.MaxDelay)
	}
	return New(Config{Params: p, Store: env.Store, Keys: env.Keys, BLS: ring, RoundDuration: delta})
}
