package bracha

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

func testPool(t *testing.T) *bufpool.Pool {
	p := bufpool.MustNew(bufpool.Config{FrameSize: 4096, Frames: 256, Checked: true, Name: t.Name()})
	t.Cleanup(func() { require.NoError(t, p.CheckLeaks()) })
	return p
}

func testNode(t *testing.T, self broadcast.NodeID, mode broadcast.Mode, tune func(*Config)) *Node {
	cfg := Config{N: 4, F: 1, Self: self, Mode: mode}
	if tune != nil {
		tune(&cfg)
	}
	nd, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(nd.Close) // runs before the pool's leak check
	return nd
}

func vote(t broadcast.MsgType, from broadcast.NodeID, in broadcast.Instance, d broadcast.Digest, plen int) *broadcast.Message {
	return &broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoBracha, Type: t, Sender: from, Instance: in, Digest: d, PayloadLen: uint32(plen)}}
}

func withPayload(m *broadcast.Message, b bufpool.Buf) *broadcast.Message {
	m.Payload = b
	m.Flags |= broadcast.HasPayload
	return m
}

func drain(nd *Node) broadcast.Ready {
	rd := nd.Ready()
	out := broadcast.Ready{Messages: append([]broadcast.Outbound(nil), rd.Messages...), Deliveries: append([]broadcast.Delivery(nil), rd.Deliveries...), NextWake: rd.NextWake}
	return out
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"n too small", Config{N: 3, F: 1, Mode: broadcast.ModeFull}},
		{"self outside", Config{N: 4, F: 1, Self: 4, Mode: broadcast.ModeFull}},
		{"no mode", Config{N: 4, F: 1}},
		{"unsafe quorum above n", Config{N: 4, F: 1, Mode: broadcast.ModeFull, UnsafeEchoQuorum: 5}},
		{"in flight above window", Config{N: 4, F: 1, Mode: broadcast.ModeFull, Window: 8, MaxInFlight: 9}},
		{"negative retention", Config{N: 4, F: 1, Mode: broadcast.ModeFull, Retention: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.Error(t, err)
		})
	}
}

// Bad input never panics and changes nothing: each case is refused with a
// typed rejection of the right reason, and the node tracks no instance.
func TestStepRejectsMalformedMessagesWithoutChangingState(t *testing.T) {
	pool := testPool(t)
	payload := []byte("some payload bytes")
	d := broadcast.DigestOfBytes(payload)
	in := broadcast.Instance{Origin: 0, Seq: 0}
	good := func() *broadcast.Message { return vote(TypeEcho, 0, in, d, len(payload)) }
	cases := []struct {
		name   string
		from   broadcast.NodeID
		msg    func() *broadcast.Message
		reason broadcast.Reason
	}{
		{"other protocol", 0, func() *broadcast.Message { m := good(); m.Protocol = broadcast.ProtoPBFT; return m }, broadcast.ReasonProtocol},
		{"from outside", 9, func() *broadcast.Message { m := good(); m.Sender = 9; return m }, broadcast.ReasonSender},
		{"from self", 3, func() *broadcast.Message { m := good(); m.Sender = 3; return m }, broadcast.ReasonSender},
		{"sender mismatch", 1, good, broadcast.ReasonSender},
		{"origin outside", 0, func() *broadcast.Message { m := good(); m.Instance.Origin = 4; return m }, broadcast.ReasonSender},
		{"body", 0, func() *broadcast.Message { m := good(); m.Body = []byte{1}; m.BodyLen = 1; return m }, broadcast.ReasonBody},
		{"fragment", 0, func() *broadcast.Message { m := good(); m.Flags |= broadcast.Fragment; return m }, broadcast.ReasonFlags},
		{"unknown layout", 0, func() *broadcast.Message { m := good(); m.Round = 7; return m }, broadcast.ReasonBody},
		{"payload too long", 0, func() *broadcast.Message { m := good(); m.PayloadLen = 1 << 30; return m }, broadcast.ReasonLength},
		{"zero digest", 0, func() *broadcast.Message { m := good(); m.Digest = broadcast.Digest{}; return m }, broadcast.ReasonBody},
		{"unknown type", 0, func() *broadcast.Message { m := good(); m.Type = 9; return m }, broadcast.ReasonType},
		{"send from non-origin", 1, func() *broadcast.Message { m := vote(TypeSend, 1, in, d, len(payload)); return m }, broadcast.ReasonSender},
		{"send without payload", 0, func() *broadcast.Message { return vote(TypeSend, 0, in, d, len(payload)) }, broadcast.ReasonLength},
		{"beyond window", 0, func() *broadcast.Message { m := good(); m.Instance.Seq = 1 << 40; return m }, broadcast.ReasonQuota},
		{"payload without bytes", 0, func() *broadcast.Message { return vote(broadcast.TypePayload, 0, in, d, len(payload)) }, broadcast.ReasonLength},
		{"payload shorter than announced", 0, func() *broadcast.Message {
			return withPayload(vote(TypeSend, 0, in, d, len(payload)+1), bufpool.Wrap(payload))
		}, broadcast.ReasonLength},
		{"payload misses digest", 0, func() *broadcast.Message {
			return withPayload(vote(TypeSend, 0, in, broadcast.DigestOfBytes([]byte("other")), len(payload)), bufpool.Wrap(payload))
		}, broadcast.ReasonDigestMismatch},
		{"batch container broken", 0, func() *broadcast.Message {
			m := withPayload(vote(TypeSend, 0, in, d, len(payload)), bufpool.Wrap(payload))
			m.Round = LayoutBatch
			return m
		}, broadcast.ReasonBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nd := testNode(t, 3, broadcast.ModeDigest, nil)
			m := tc.msg()
			err := nd.Step(tc.from, m)
			require.Error(t, err)
			assert.Equal(t, tc.reason, broadcast.ReasonOf(err), "%v", err)
			assert.Zero(t, nd.Stats().Live)
			assert.Empty(t, nd.Ready().Messages)
			assert.Equal(t, uint64(1), nd.Stats().Rejected)
		})
	}
	_ = pool
}

// One Byzantine voter spraying digests cannot grow a node's memory without
// bound: one vote per node per instance counts, and only Window instances
// per origin are tracked.
func TestByzantineVoterSprayingDigestsKeepsStateBounded(t *testing.T) {
	nd := testNode(t, 3, broadcast.ModeDigest, func(c *Config) { c.Window = 64 })
	quota := 0
	for seq := range uint64(5000) {
		for k := range 4 {
			d := broadcast.DigestOfBytes(fmt.Appendf(nil, "junk %d %d", seq, k))
			for _, typ := range []broadcast.MsgType{TypeEcho, TypeReady} {
				err := nd.Step(1, vote(typ, 1, broadcast.Instance{Origin: 2, Seq: seq}, d, 100))
				if broadcast.ReasonOf(err) == broadcast.ReasonQuota {
					quota++
				} else {
					require.NoError(t, err)
				}
			}
		}
	}
	st := nd.Stats()
	assert.Equal(t, 64, st.Live, "only the window is tracked")
	assert.Equal(t, 2*4*(5000-64), quota, "everything beyond the window refused")
	assert.EqualValues(t, 2*3*64, st.DupVotes, "one ECHO and one READY per node per instance")
	for _, in := range nd.insts {
		assert.LessOrEqual(t, len(in.cands), 2*nd.n+1)
	}
	assert.Empty(t, nd.Ready().Messages, "one voter moves nothing")
}

// A Byzantine origin cannot make a node pin more than MaxOriginBytes of its
// undelivered payloads.
func TestByzantineOriginPinnedBytesAreBounded(t *testing.T) {
	pool := testPool(t)
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	t.Cleanup(store.Close)
	nd := testNode(t, 3, broadcast.ModeDigest, func(c *Config) { c.MaxOriginBytes = 10 << 10; c.Store = store })
	refused := 0
	for seq := range uint64(40) {
		p := make([]byte, 1024)
		p[0], p[1] = byte(seq), 0xEE
		b, err := pool.Copy(p)
		require.NoError(t, err)
		err = nd.Step(1, withPayload(vote(TypeSend, 1, broadcast.Instance{Origin: 1, Seq: seq}, broadcast.DigestOfBytes(p), len(p)), b))
		b.Release()
		if broadcast.ReasonOf(err) == broadcast.ReasonQuota {
			refused++
		} else {
			require.NoError(t, err)
		}
	}
	assert.Equal(t, 30, refused)
	assert.LessOrEqual(t, store.Stats().HeldBytes, int64(10<<10))
	rd := nd.Ready()
	rd.Release()
}

// FETCH answers are limited: a peer gets an instance's payload a bounded
// number of times, and the bytes sent to a peer follow its token bucket.
func TestFetchAnswersAreRateLimited(t *testing.T) {
	pool := testPool(t)
	p := make([]byte, 2000)
	d := broadcast.DigestOfBytes(p)
	setup := func(t *testing.T, burst int64) *Node {
		nd := testNode(t, 1, broadcast.ModeDigest, func(c *Config) { c.ServeBurst = burst; c.ServeRate = 1000 })
		for seq := range uint64(2) {
			b, err := pool.Copy(p)
			require.NoError(t, err)
			require.NoError(t, nd.Step(0, withPayload(vote(TypeSend, 0, broadcast.Instance{Origin: 0, Seq: seq}, d, len(p)), b)))
			b.Release()
		}
		rd := nd.Ready()
		rd.Release()
		return nd
	}
	fetch := func(nd *Node, from broadcast.NodeID, seq uint64) int {
		require.NoError(t, nd.Step(from, vote(broadcast.TypeFetch, from, broadcast.Instance{Origin: 0, Seq: seq}, d, len(p))))
		rd := nd.Ready()
		n := 0
		for _, o := range rd.Messages {
			if o.Msg.Type == broadcast.TypePayload {
				assert.Equal(t, from, o.To)
				assert.Equal(t, p, o.Msg.Payload.Bytes())
				n++
			}
		}
		rd.Release()
		return n
	}
	t.Run("token bucket", func(t *testing.T) {
		nd := setup(t, 3000)
		assert.Equal(t, 1, fetch(nd, 2, 0), "first request answered")
		assert.Equal(t, 0, fetch(nd, 2, 1), "bucket holds 1000 bytes: not enough")
		assert.Equal(t, 1, fetch(nd, 3, 1), "another peer has its own bucket")
		nd.Tick(time.Second)
		assert.Equal(t, 1, fetch(nd, 2, 1), "the bucket refilled")
		assert.Equal(t, 0, fetch(nd, 2, 5), "an unknown instance is not served")
		st := nd.Stats()
		assert.EqualValues(t, 3, st.Served)
		assert.EqualValues(t, 1, st.ServeDenied)
		assert.EqualValues(t, 1, st.ServeUnknown)
	})
	t.Run("per instance", func(t *testing.T) {
		nd := setup(t, 1<<20)
		served := 0
		for range 10 {
			served += fetch(nd, 2, 0)
		}
		assert.Equal(t, maxServes, served, "a peer gets one instance's payload a bounded number of times")
		assert.EqualValues(t, 10-maxServes, nd.Stats().ServeDenied)
	})
}

// An answer that comes after its timeout, when the requester has moved on
// to other peers and even to a new round, is still accepted.
func TestLateFetchAnswerIsAccepted(t *testing.T) {
	nd := testNode(t, 3, broadcast.ModeDigest, func(c *Config) { c.FetchTimeout = 10 * time.Millisecond; c.FetchDelay = -1 })
	p := []byte("slow answer")
	d := broadcast.DigestOfBytes(p)
	in := broadcast.Instance{Origin: 0}
	for _, from := range []broadcast.NodeID{0, 1, 2} {
		require.NoError(t, nd.Step(from, vote(TypeReady, from, in, d, len(p))))
	}
	var first broadcast.NodeID
	rd := nd.Ready()
	for _, o := range rd.Messages {
		if o.Msg.Type == broadcast.TypeFetch {
			first = o.To
		}
	}
	for _, ms := range []int{10, 20, 30} { // three timeouts: a new round began
		nd.Tick(time.Duration(ms) * time.Millisecond)
		nd.Ready()
	}
	require.NoError(t, nd.Step(first, withPayload(vote(broadcast.TypePayload, first, in, d, len(p)), bufpool.Wrap(p))))
	rd = nd.Ready()
	require.Len(t, rd.Deliveries, 1)
	rd.Release()
	assert.Zero(t, nd.Stats().Unsolicited)
}

// An unsolicited PAYLOAD is not stored: a peer cannot push data.
func TestUnsolicitedPayloadIsNotStored(t *testing.T) {
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	t.Cleanup(store.Close)
	nd := testNode(t, 1, broadcast.ModeDigest, func(c *Config) { c.Store = store })
	p := []byte("pushed")
	require.NoError(t, nd.Step(2, withPayload(vote(broadcast.TypePayload, 2, broadcast.Instance{Origin: 0}, broadcast.DigestOfBytes(p), len(p)), bufpool.Wrap(p))))
	assert.Zero(t, store.Stats().Held)
	assert.EqualValues(t, 1, nd.Stats().Unsolicited)
}

// A node that reaches 2f+1 READYs without the payload asks one voucher at a
// time, ECHO voters first, and moves to the next on timeout.
func TestFetchAsksOneVoucherAtATimeAndRetriesOnTimeout(t *testing.T) {
	nd := testNode(t, 3, broadcast.ModeDigest, func(c *Config) { c.FetchTimeout = 10 * time.Millisecond; c.FetchDelay = -1 })
	p := []byte("withheld")
	d := broadcast.DigestOfBytes(p)
	in := broadcast.Instance{Origin: 0}
	require.NoError(t, nd.Step(1, vote(TypeEcho, 1, in, d, len(p))))
	require.NoError(t, nd.Step(2, vote(TypeEcho, 2, in, d, len(p))))
	for _, from := range []broadcast.NodeID{0, 1, 2} {
		require.NoError(t, nd.Step(from, vote(TypeReady, from, in, d, len(p))))
	}
	rd := drain(nd)
	var fetches []broadcast.NodeID
	for _, o := range rd.Messages {
		if o.Msg.Type == broadcast.TypeFetch {
			fetches = append(fetches, o.To)
		}
	}
	require.Equal(t, []broadcast.NodeID{1}, fetches, "one ECHO voter asked (0 sent only READY)")
	require.Equal(t, 10*time.Millisecond, rd.NextWake)
	var order []broadcast.NodeID
	// The second round waits twice as long: 30ms + 20ms.
	for _, ms := range []int{10, 20, 30, 40, 50} {
		nd.Tick(time.Duration(ms) * time.Millisecond)
		for _, o := range nd.Ready().Messages {
			order = append(order, o.To)
		}
	}
	assert.Equal(t, []broadcast.NodeID{2, 0, 1, 2}, order, "ECHO voters, then READY voters, then around again, slower")
	// The answer from a peer asked delivers.
	require.NoError(t, nd.Step(2, withPayload(vote(broadcast.TypePayload, 2, in, d, len(p)), bufpool.Wrap(p))))
	rd = nd.Ready()
	require.Len(t, rd.Deliveries, 1)
	assert.Equal(t, p, rd.Deliveries[0].Payload.Bytes())
	rd.Release()
	assert.Equal(t, 50*time.Millisecond+10*time.Second, nd.Ready().NextWake, "only the retention wake is left")
}

// A node that reaches 2f+1 READYs first waits FetchDelay for the SEND: if
// it comes, nothing is fetched.
func TestFetchWaitsForALateSend(t *testing.T) {
	pool := testPool(t)
	nd := testNode(t, 3, broadcast.ModeDigest, func(c *Config) { c.FetchTimeout = 10 * time.Millisecond })
	p := []byte("late send")
	d := broadcast.DigestOfBytes(p)
	in := broadcast.Instance{Origin: 0}
	for _, from := range []broadcast.NodeID{0, 1, 2} {
		require.NoError(t, nd.Step(from, vote(TypeReady, from, in, d, len(p))))
	}
	rd := drain(nd)
	assert.Equal(t, 5*time.Millisecond, rd.NextWake, "FetchDelay is FetchTimeout/2")
	nd.Tick(4 * time.Millisecond)
	b, err := pool.Copy(p)
	require.NoError(t, err)
	require.NoError(t, nd.Step(0, withPayload(vote(TypeSend, 0, in, d, len(p)), b)))
	b.Release()
	rd = nd.Ready()
	require.Len(t, rd.Deliveries, 1)
	for _, o := range rd.Messages {
		assert.NotEqual(t, broadcast.TypeFetch, o.Msg.Type)
	}
	rd.Release()
	nd.Tick(time.Second)
	assert.Empty(t, nd.Ready().Messages)
	assert.Zero(t, nd.Stats().FetchesSent)
}

// At most MaxFetching instances fetch at once; a finished one hands its
// slot on.
func TestFetchSlotsAreBounded(t *testing.T) {
	nd := testNode(t, 3, broadcast.ModeDigest, func(c *Config) { c.MaxFetching = 1; c.FetchDelay = -1 })
	payloads := [][]byte{[]byte("first"), []byte("second")}
	for seq, p := range payloads {
		in := broadcast.Instance{Origin: 0, Seq: uint64(seq)}
		for _, from := range []broadcast.NodeID{0, 1, 2} {
			require.NoError(t, nd.Step(from, vote(TypeReady, from, in, broadcast.DigestOfBytes(p), len(p))))
		}
	}
	fetches := func() []broadcast.Instance {
		var out []broadcast.Instance
		rd := nd.Ready()
		for _, o := range rd.Messages {
			if o.Msg.Type == broadcast.TypeFetch {
				out = append(out, o.Msg.Instance)
			}
		}
		rd.Release()
		return out
	}
	require.Equal(t, []broadcast.Instance{{Origin: 0, Seq: 0}}, fetches(), "one slot")
	var peer broadcast.NodeID // whoever was asked answers
	for _, from := range []broadcast.NodeID{0, 1, 2} {
		if nd.insts[broadcast.Instance{Origin: 0}].asked[from] != 0 {
			peer = from
		}
	}
	require.NoError(t, nd.Step(peer, withPayload(vote(broadcast.TypePayload, peer, broadcast.Instance{Origin: 0}, broadcast.DigestOfBytes(payloads[0]), len(payloads[0])), bufpool.Wrap(payloads[0]))))
	assert.Equal(t, []broadcast.Instance{{Origin: 0, Seq: 1}}, fetches(), "the slot passed on")
}

// TestDefaultServeRateBoundsAFetchFlooder: with the default configuration,
// a peer that asks again and again for every payload a node holds gets at
// most ServeBurst plus a second of ServeRate in a second — 24 MiB, where
// the old defaults (1 GiB/s, 64 MiB) let it draw every payload the four
// times maxServes allows, 160 MiB here, and the node's CPU and uplink
// with them (bench --byzantine 1:fetch-flood: 0.41–0.47× the fault-free
// throughput then, 0.85–0.88× now).
func TestDefaultServeRateBoundsAFetchFlooder(t *testing.T) {
	nd := testNode(t, 1, broadcast.ModeDigest, nil)
	const instances, size = 40, 1 << 20
	digests := make([]broadcast.Digest, instances)
	for seq := range uint64(instances) {
		p := make([]byte, size)
		p[0], p[1] = byte(seq), byte(seq>>8)
		digests[seq] = broadcast.DigestOfBytes(p)
		b := bufpool.Wrap(p)
		require.NoError(t, nd.Step(0, withPayload(vote(TypeSend, 0, broadcast.Instance{Origin: 0, Seq: seq}, digests[seq], size), b)))
		b.Release()
	}
	rd := nd.Ready()
	rd.Release()
	served := 0
	for round := range 4 {
		nd.Tick(time.Duration(round) * 250 * time.Millisecond)
		for seq := range uint64(instances) {
			_ = nd.Step(2, vote(broadcast.TypeFetch, 2, broadcast.Instance{Origin: 0, Seq: seq}, digests[seq], size))
			rd := nd.Ready()
			for _, o := range rd.Messages {
				if o.Msg.Type == broadcast.TypePayload {
					served += o.Msg.Payload.Len()
				}
			}
			rd.Release()
		}
	}
	assert.LessOrEqual(t, served, 24<<20, "a flooder draws at most the burst and a second of the rate")
	assert.GreaterOrEqual(t, served, 16<<20, "the burst is served at once")
	assert.Positive(t, nd.Stats().ServeDenied)
}
