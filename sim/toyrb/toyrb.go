// Package toyrb is a minimal Bracha reliable broadcast, written only to
// exercise the simulator: it lets package sim test its engine, behaviours
// and checkers without depending on the production bracha package, and it
// carries a deliberately breakable quorum so that a test can prove the
// checkers catch a broken protocol.
//
// Every round (SEND, ECHO, READY) carries the payload, whatever the mode:
// the toy has no fetch path. Quorums are the textbook ones: ECHO ⌈(n+f+1)/2⌉,
// READY amplification f+1, delivery 2f+1. It supports up to 64 nodes.
//
// Use the production bracha package for anything else.
package toyrb

import (
	"fmt"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Message types.
const (
	TypeSend  broadcast.MsgType = 1
	TypeEcho  broadcast.MsgType = 2
	TypeReady broadcast.MsgType = 3
)

// MaxN is the largest cluster the toy supports (votes are 64-bit sets).
const MaxN = 64

// TypeName names the toy's message types.
func TypeName(t broadcast.MsgType) string {
	switch t {
	case TypeSend:
		return "SEND"
	case TypeEcho:
		return "ECHO"
	case TypeReady:
		return "READY"
	case broadcast.TypeFetch:
		return "FETCH"
	case broadcast.TypePayload:
		return "PAYLOAD"
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// MinN is the smallest cluster that tolerates f Byzantine nodes: 3f+1.
func MinN(f int) int { return 3*f + 1 }

// EchoQuorum is Bracha's ECHO threshold, ⌈(n+f+1)/2⌉.
func EchoQuorum(n, f int) int { return (n + f + 2) / 2 }

// Spec describes the toy to the simulator. unsafeEchoQuorum, when positive,
// replaces the ECHO quorum (a broken protocol, for checker tests).
func Spec(unsafeEchoQuorum int) broadcast.Spec {
	return broadcast.Spec{
		Name:  "toyrb",
		ID:    broadcast.ProtoTest,
		Class: broadcast.ReliableBroadcast,
		MinN:  MinN,
		New: func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
			return New(p, env, unsafeEchoQuorum)
		},
		TypeName:      TypeName,
		DefaultScheme: broadcast.SchemeNone,
	}
}

type tally struct {
	echo, ready uint64 // voters, one bit per node
}

type instance struct {
	tallies           map[broadcast.Digest]*tally
	sentEcho, sentRdy bool
	delivered         bool
	pinned            []broadcast.Digest
}

// Node is one node's toy broadcast state machine.
type Node struct {
	p         broadcast.Params
	store     *broadcast.PayloadStore
	echoQ     int
	seq       uint64
	instances map[broadcast.Instance]*instance
	out       []broadcast.Outbound
	dels      []broadcast.Delivery
}

// New builds node p.Self. unsafeEchoQuorum, when positive, replaces the ECHO
// quorum.
func New(p broadcast.Params, env broadcast.Env, unsafeEchoQuorum int) (*Node, error) {
	if err := p.Validate(MinN); err != nil {
		return nil, fmt.Errorf("toyrb: %w", err)
	}
	if p.N > MaxN {
		return nil, fmt.Errorf("toyrb: n = %d exceeds %d", p.N, MaxN)
	}
	if env.Store == nil {
		return nil, fmt.Errorf("toyrb: Env.Store is required")
	}
	q := EchoQuorum(p.N, p.F)
	if unsafeEchoQuorum > 0 {
		q = unsafeEchoQuorum
	}
	return &Node{p: p, store: env.Store, echoQ: q, instances: map[broadcast.Instance]*instance{}}, nil
}

func (nd *Node) inst(in broadcast.Instance) *instance {
	st := nd.instances[in]
	if st == nil {
		st = &instance{tallies: map[broadcast.Digest]*tally{}}
		nd.instances[in] = st
	}
	return st
}

func (st *instance) tally(d broadcast.Digest) *tally {
	t := st.tallies[d]
	if t == nil {
		t = &tally{}
		st.tallies[d] = t
	}
	return t
}

func popcount(x uint64) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// Submit broadcasts p in a new instance. It takes p's reference.
func (nd *Node) Submit(p bufpool.Buf) error {
	defer p.Release()
	d := broadcast.DigestOf(p)
	if err := nd.store.Put(nd.p.Self, d, p); err != nil {
		return fmt.Errorf("toyrb: store own payload: %w", err)
	}
	nd.seq++
	in := broadcast.Instance{Origin: nd.p.Self, Seq: nd.seq}
	st := nd.inst(in)
	nd.pin(st, d)
	nd.send(TypeSend, in, d)
	nd.echo(in, st, d)
	return nil
}

func (nd *Node) pin(st *instance, d broadcast.Digest) {
	for _, x := range st.pinned {
		if x == d {
			return
		}
	}
	if nd.store.Pin(d) {
		st.pinned = append(st.pinned, d)
	}
}

func (nd *Node) send(t broadcast.MsgType, in broadcast.Instance, d broadcast.Digest) {
	var m broadcast.Message
	m.Protocol = broadcast.ProtoTest
	m.Type = t
	m.Sender = nd.p.Self
	m.Instance = in
	if b, ok := nd.store.Get(d); ok {
		m.SetPayload(b, d)
	} else {
		m.Digest = d
	}
	nd.out = append(nd.out, broadcast.Outbound{To: broadcast.Everyone, Msg: m})
}

func (nd *Node) echo(in broadcast.Instance, st *instance, d broadcast.Digest) {
	if st.sentEcho {
		return
	}
	st.sentEcho = true
	nd.send(TypeEcho, in, d)
	nd.vote(in, st, d, nd.p.Self, TypeEcho)
}

func (nd *Node) ready(in broadcast.Instance, st *instance, d broadcast.Digest) {
	if st.sentRdy {
		return
	}
	st.sentRdy = true
	nd.send(TypeReady, in, d)
	nd.vote(in, st, d, nd.p.Self, TypeReady)
}

func (nd *Node) vote(in broadcast.Instance, st *instance, d broadcast.Digest, from broadcast.NodeID, t broadcast.MsgType) {
	tl := st.tally(d)
	bit := uint64(1) << from
	if t == TypeEcho {
		tl.echo |= bit
	} else {
		tl.ready |= bit
	}
	if popcount(tl.echo) >= nd.echoQ {
		nd.ready(in, st, d)
	}
	r := popcount(tl.ready)
	if r >= nd.p.F+1 {
		nd.ready(in, st, d)
	}
	if r >= 2*nd.p.F+1 && !st.delivered {
		if b, ok := nd.store.Get(d); ok {
			st.delivered = true
			nd.dels = append(nd.dels, broadcast.Delivery{Instance: in, Digest: d, Payload: b})
		}
	}
}

// Step handles one message. It borrows m.
func (nd *Node) Step(from broadcast.NodeID, m *broadcast.Message) error {
	if int(from) >= nd.p.N || int(m.Instance.Origin) >= nd.p.N {
		return broadcast.Reject(broadcast.ReasonSender, "sender %v or origin %v outside the cluster", from, m.Instance.Origin)
	}
	if m.Protocol != broadcast.ProtoTest {
		return broadcast.Reject(broadcast.ReasonProtocol, "protocol %v", m.Protocol)
	}
	switch m.Type {
	case TypeSend, TypeEcho, TypeReady:
	default:
		return broadcast.Reject(broadcast.ReasonType, "type %d", m.Type)
	}
	if m.Flags&broadcast.HasPayload == 0 || m.Payload.Len() != int(m.PayloadLen) {
		return broadcast.Reject(broadcast.ReasonLength, "%v without its whole payload", TypeName(m.Type))
	}
	if err := nd.store.Put(from, m.Digest, m.Payload); err != nil {
		return err
	}
	st := nd.inst(m.Instance)
	switch m.Type {
	case TypeSend:
		if from != m.Instance.Origin {
			return broadcast.Reject(broadcast.ReasonSender, "SEND for %v from %v", m.Instance, from)
		}
		if !st.sentEcho {
			nd.pin(st, m.Digest)
			nd.echo(m.Instance, st, m.Digest)
		}
	case TypeEcho, TypeReady:
		nd.pin(st, m.Digest)
		nd.vote(m.Instance, st, m.Digest, from, m.Type)
	}
	return nil
}

// Tick does nothing: the toy has no timers.
func (nd *Node) Tick(time.Duration) {}

// Ready returns the pending output; its slices are reused by the next call.
func (nd *Node) Ready() broadcast.Ready {
	rd := broadcast.Ready{Messages: nd.out, Deliveries: nd.dels}
	nd.out, nd.dels = nd.out[:0], nd.dels[:0]
	return rd
}
