package pbft

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// script drives PBFT replicas message by message: the test decides which
// queued message reaches which replica, and when, so that a schedule the
// paper's proofs must survive is reached on purpose rather than by seed.
type script struct {
	t     *testing.T
	nodes []*Node
	now   time.Duration
	queue []envelope
	held  []bufpool.Buf // payload references of queued messages, released at the end
	// executed[i][seq] is the batch digest replica i executed at seq.
	executed []map[uint64]broadcast.Digest
}

type envelope struct {
	from, to broadcast.NodeID
	m        broadcast.Message
}

func newScript(t *testing.T, n, f int) *script {
	t.Helper()
	return newMutatedScript(t, n, f, 0)
}

// collect queues replica i's output, one envelope per recipient.
func (s *script) collect(i int) {
	rd := s.nodes[i].Ready()
	for _, o := range rd.Messages {
		if o.Msg.Payload.Len() > 0 || o.Msg.Flags&broadcast.HasPayload != 0 {
			s.held = append(s.held, o.Msg.Payload)
		}
		for to := range s.nodes {
			if to == i || (o.To != broadcast.Everyone && o.To != broadcast.NodeID(to)) {
				continue
			}
			s.queue = append(s.queue, envelope{from: broadcast.NodeID(i), to: broadcast.NodeID(to), m: o.Msg})
		}
	}
	for _, d := range rd.Deliveries {
		d.Payload.Release()
	}
}

// submit issues a request from replica i's hosted client.
func (s *script) submit(i int, op string) {
	require.NoError(s.t, s.nodes[i].Submit(bufpool.Wrap([]byte(op))))
	s.collect(i)
}

// tick moves the clock to now and ticks the given replicas.
func (s *script) tick(now time.Duration, ids ...int) {
	s.now = now
	for _, i := range ids {
		s.nodes[i].Tick(now)
		s.collect(i)
	}
}

// deliver steps every queued message that match accepts, and the messages
// those produce, until none matching is left; the rest stay queued.
func (s *script) deliver(match func(e envelope) bool) {
	for {
		var next, rest []envelope
		for _, e := range s.queue {
			if match(e) {
				next = append(next, e)
			} else {
				rest = append(rest, e)
			}
		}
		if len(next) == 0 {
			return
		}
		s.queue = rest
		for _, e := range next {
			_ = s.nodes[e.to].Step(e.from, &e.m)
			s.collect(int(e.to))
		}
	}
}

// drop forgets the queued messages that match accepts.
func (s *script) drop(match func(e envelope) bool) {
	rest := s.queue[:0]
	for _, e := range s.queue {
		if !match(e) {
			rest = append(rest, e)
		}
	}
	s.queue = rest
}

// timeOutTwice runs the given replicas' view-change timers out twice (the
// first expiry relays pending requests, delivered among them; the second
// starts a view change), leaving their VIEW-CHANGEs queued.
func (s *script) timeOutTwice(ids ...int) {
	s.tick(s.now+150*time.Millisecond, ids...)
	s.deliver(func(e envelope) bool { return within(ids...)(e) && e.is(TypeRequest) })
	s.drop(func(e envelope) bool { return e.is(TypeRequest) })
	s.tick(s.now+500*time.Millisecond, ids...)
}

func among(ids ...int) func(broadcast.NodeID) bool {
	return func(id broadcast.NodeID) bool {
		for _, i := range ids {
			if broadcast.NodeID(i) == id {
				return true
			}
		}
		return false
	}
}

func within(ids ...int) func(e envelope) bool {
	in := among(ids...)
	return func(e envelope) bool { return in(e.from) && in(e.to) }
}

func (e envelope) is(t broadcast.MsgType) bool { return e.m.Type == t }

// TestPaper_4_4_NoNewViewBelowTheViewAReplicaAskedFor scripts the schedule
// that broke agreement (sim seed 234487): replicas 2 and 3 time out waiting
// for NEW-VIEW(1) and send VIEW-CHANGE(2) carrying no certificate; the late
// NEW-VIEW(1) then reaches them. Had they entered view 1, a batch A could
// commit there (replicas 1, 2, 3) while NEW-VIEW(2) — built from their
// certificate-free VIEW-CHANGE(2)s and replica 0's — orders another batch B
// at the same sequence number, which replica 0 executes. Castro & Liskov
// (TOCS 2002, §4.4): a replica that sent VIEW-CHANGE(v+1) accepts no
// message of a lower view.
func TestPaper_4_4_NoNewViewBelowTheViewAReplicaAskedFor(t *testing.T) {
	s := newScript(t, 4, 1)
	notZero := func(e envelope) bool { return e.from != 0 && e.to != 0 }
	// Replica 0, view 0's primary, is cut off; replica 3's client asks for A.
	s.submit(3, "A")
	s.deliver(func(e envelope) bool { return notZero(e) && e.is(TypeRequest) })
	s.drop(func(e envelope) bool { return !notZero(e) })
	// 1, 2 and 3 time out in view 0 (the first time out relays the request)
	// and ask for view 1; replica 1, its primary, enters it, but its
	// NEW-VIEW is held back.
	s.timeOutTwice(1, 2, 3)
	s.deliver(func(e envelope) bool { return notZero(e) && !e.is(TypeNewView) && !e.is(TypePrePrepare) })
	require.Equal(t, uint32(1), s.nodes[1].View())
	// 2 and 3 give up on view 1 and ask for view 2 (no certificate: nothing
	// prepared yet).
	s.tick(2*time.Second, 2, 3)
	require.Equal(t, uint64(2), s.nodes[2].Stats().ViewChanges)
	require.Equal(t, uint64(2), s.nodes[3].Stats().ViewChanges)
	heldVC2 := func(e envelope) bool { return e.is(TypeViewChange) && e.m.Round == 2 }
	// The late NEW-VIEW(1), then view 1's normal case among 1, 2, 3.
	s.deliver(func(e envelope) bool { return notZero(e) && !heldVC2(e) })
	assert.Equal(t, uint32(0), s.nodes[2].View(), "replica 2 asked for view 2 and must refuse NEW-VIEW(1)")
	assert.Equal(t, uint32(0), s.nodes[3].View(), "replica 3 asked for view 2 and must refuse NEW-VIEW(1)")
	assert.Empty(t, s.executed[2], "nothing may commit in view 1 without 2 or 3")
	// Replica 0 returns; the VIEW-CHANGE(2)s reach it and everyone, and its
	// client asks for B.
	s.submit(0, "B")
	s.tick(3*time.Second, 0, 1, 2, 3)
	s.deliver(func(envelope) bool { return true })
	s.tick(6*time.Second, 0, 1, 2, 3)
	s.deliver(func(envelope) bool { return true })
	// Agreement: whatever two replicas executed at one sequence number is
	// the same batch.
	for seq := uint64(1); seq <= 4; seq++ {
		var first *broadcast.Digest
		for i := range s.nodes {
			if d, ok := s.executed[i][seq]; ok {
				if first == nil {
					first = &d
				}
				require.Equal(t, *first, d, "replicas executed different batches at seq %d", seq)
			}
		}
	}
	for i := range s.nodes {
		require.NotEmpty(t, s.executed[i], "replica %d executed nothing: the cluster must recover", i)
	}
}

// TestPaper_4_4_PrimaryOfAnEarlierViewSendsNoNewViewAfterAskingForALaterOne
// checks the sibling of the rule above on the sending side: view 1's
// primary, once it joined view 2, neither sends NEW-VIEW(1) nor enters view
// 1 when 2f+1 VIEW-CHANGE(1)s finally reach it.
func TestPaper_4_4_PrimaryOfAnEarlierViewSendsNoNewViewAfterAskingForALaterOne(t *testing.T) {
	s := newScript(t, 4, 1)
	notZero := func(e envelope) bool { return e.from != 0 && e.to != 0 }
	s.submit(3, "A")
	s.deliver(func(e envelope) bool { return notZero(e) && e.is(TypeRequest) })
	s.drop(func(e envelope) bool { return !notZero(e) })
	// 1 (view 1's primary) asks for view 1 but hears no one; the others'
	// VIEW-CHANGE(1) are held. Then 1 joins view 2 on f+1 VIEW-CHANGE(2).
	s.timeOutTwice(1, 2, 3)
	vc := func(v uint32) func(e envelope) bool {
		return func(e envelope) bool { return e.is(TypeViewChange) && e.m.Round == v }
	}
	s.drop(func(e envelope) bool { return vc(1)(e) && e.to == 1 })
	// 2 and 3 exchange VIEW-CHANGE(1) and time out again towards view 2.
	s.deliver(func(e envelope) bool { return within(2, 3)(e) && vc(1)(e) })
	s.deliver(func(e envelope) bool { return vc(1)(e) && e.from == 1 })
	s.tick(2*time.Second, 2, 3)
	s.deliver(func(e envelope) bool { return vc(2)(e) && e.to == 1 })
	require.Equal(t, uint64(2), s.nodes[1].Stats().ViewChanges, "replica 1 joins view 2 on f+1 requests")
	// Now the VIEW-CHANGE(1)s it missed arrive: 2f+1 of them, but replica 1
	// asked for view 2 and must not start view 1.
	s.queue = append(s.queue, envelope{from: 2, to: 1, m: ownVCMessage(t, s, 2, 1)}, envelope{from: 3, to: 1, m: ownVCMessage(t, s, 3, 1)})
	s.deliver(func(e envelope) bool { return e.to == 1 && vc(1)(e) })
	require.Equal(t, uint32(0), s.nodes[1].View())
	for _, e := range s.queue {
		require.False(t, e.from == 1 && e.is(TypeNewView), "replica 1 sent NEW-VIEW(%d) after asking for view 2", e.m.Round)
	}
}

// ownVCMessage re-creates replica i's VIEW-CHANGE(v) as it sent it.
func ownVCMessage(t *testing.T, s *script, i int, v uint32) broadcast.Message {
	t.Helper()
	r := s.nodes[i].vcFor(broadcast.NodeID(i), v)
	require.NotNil(t, r, "replica %d holds no VIEW-CHANGE(%d) of its own", i, v)
	b, ok := s.nodes[i].store.Get(r.digest)
	require.True(t, ok)
	s.held = append(s.held, b)
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeViewChange, Sender: broadcast.NodeID(i),
		Round: v, Instance: broadcast.Instance{Seq: r.content.StableSeq}, Digest: r.digest}, Body: appendSig(nil, r.sig)}
	m.SetPayload(b, r.digest)
	return m
}

// TestPaper_4_5_NewViewIsHandedOnToReplicasStillAskingForIt scripts the
// split that stalled the cluster for good (sim seed 635998): a Byzantine
// primary of view 1 (replica 1) hands its NEW-VIEW(1) to replica 0 only,
// which was cut off while 2 and 3 asked for view 1 and so never asked for
// it itself. 0 enters view 1 and, as 1 orders nothing, moves on towards
// view 2; 2 and 3 hold VIEW-CHANGE(1) from each other only — fewer than
// 2f+1, so their timers never run — and VIEW-CHANGE(2) from 0 only —
// fewer than f+1, so they do not join view 2. The liveness argument of
// §4.5 needs every correct replica to reach the view the others are in:
// 0 hands the NEW-VIEW(1) it entered to replicas still asking for view 1
// (relayNewView; Castro's thesis, §5.2, resends NEW-VIEW for the same
// reason), 2 and 3 enter view 1, time out, and view 2 forms.
func TestPaper_4_5_NewViewIsHandedOnToReplicasStillAskingForIt(t *testing.T) {
	s := newScript(t, 4, 1)
	cut0 := func(e envelope) bool { return e.from == 0 || e.to == 0 }
	// Replica 0 is cut off; 3's client asks for A, and 1, 2, 3 ask for
	// view 1. 1 (view 1's primary, Byzantine from here on) hears all three
	// and builds NEW-VIEW(1), but its own VIEW-CHANGE(1) and the NEW-VIEW
	// reach neither 2 nor 3.
	s.submit(3, "A")
	s.deliver(func(e envelope) bool { return !cut0(e) && e.is(TypeRequest) })
	s.drop(cut0)
	s.timeOutTwice(1, 2, 3)
	byzTo23 := func(e envelope) bool { return e.from == 1 && (e.to == 2 || e.to == 3) }
	s.drop(func(e envelope) bool { return cut0(e) || byzTo23(e) })
	s.deliver(func(e envelope) bool { return !cut0(e) && !byzTo23(e) && e.is(TypeViewChange) })
	require.Equal(t, uint32(1), s.nodes[1].View(), "replica 1 enters view 1 on 2f+1 VIEW-CHANGE(1)s")
	s.drop(func(e envelope) bool { return cut0(e) || byzTo23(e) })
	require.Equal(t, uint32(0), s.nodes[2].View())
	// 0 comes back and gets 1's NEW-VIEW(1) (and, on FETCH, the
	// VIEW-CHANGEs it names); then 1 falls silent.
	nv := ownNewViewMessage(t, s, 1)
	s.queue = append(s.queue, envelope{from: 1, to: 0, m: nv})
	s.deliver(func(e envelope) bool {
		return (e.from == 0 || e.to == 0) && !(e.from == 0 && e.to == 2) && !(e.from == 0 && e.to == 3)
	})
	require.Equal(t, uint32(1), s.nodes[0].View(), "replica 0 enters view 1 through the NEW-VIEW it was handed")
	silent1 := func(e envelope) bool { return e.from == 1 || e.to == 1 }
	s.drop(silent1)
	// Replica 0's client asks for B; time passes. 2 and 3 retransmit their
	// VIEW-CHANGE(1); 0 times out in view 1 and asks for view 2.
	s.submit(0, "B")
	for k := 1; k <= 40; k++ {
		s.tick(s.now+250*time.Millisecond, 0, 2, 3)
		s.drop(silent1)
		s.deliver(func(e envelope) bool { return !silent1(e) })
	}
	assert.Positive(t, s.nodes[0].Stats().NewViewsRelayed, "replica 0 hands NEW-VIEW(1) to those still asking for view 1")
	for _, i := range []int{0, 2, 3} {
		assert.GreaterOrEqual(t, s.nodes[i].View(), uint32(2), "replica %d must reach a view with a correct primary", i)
		assert.Len(t, s.executed[i], 2, "replica %d must execute A and B", i)
	}
}

// ownNewViewMessage re-creates the NEW-VIEW replica i sent for its
// current view.
func ownNewViewMessage(t *testing.T, s *script, i int) broadcast.Message {
	t.Helper()
	nv := s.nodes[i].newView
	require.NotNil(t, nv, "replica %d holds no NEW-VIEW", i)
	enc := appendNewView(nil, nv.view, nv.refs)
	d := broadcast.DigestOfBytes(enc)
	b := bufpool.Wrap(enc)
	s.held = append(s.held, b)
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeNewView, Sender: broadcast.NodeID(i),
		Round: nv.view, Digest: d}, Body: appendSig(nil, nv.sig)}
	m.SetPayload(b, d)
	return m
}
