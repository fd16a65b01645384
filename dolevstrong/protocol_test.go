package dolevstrong

import (
	"fmt"
	"testing"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sizes are the (n, f) pairs the scenario tests run: at least two correct
// nodes, so that agreement means something, and f large enough for chains
// of several Byzantine signers.
var sizes = []struct{ n, f int }{{4, 2}, {7, 4}}

func forEach(t *testing.T, fn func(t *testing.T, n, f int, v variant)) {
	for _, v := range variants {
		for _, sz := range sizes {
			t.Run(fmt.Sprintf("%s/n%d-f%d", v.name, sz.n, sz.f), func(t *testing.T) { fn(t, sz.n, sz.f, v) })
		}
	}
}

func TestValidityCorrectSenderEveryCorrectNodeDeliversItsValue(t *testing.T) {
	for _, v := range variants {
		for _, sz := range []struct{ n, f int }{{4, 1}, {4, 3}, {7, 6}, {10, 9}} {
			t.Run(fmt.Sprintf("%s/n%d-f%d", v.name, sz.n, sz.f), func(t *testing.T) {
				h := newHarness(t, sz.n, sz.f, v, harnessOpts{})
				defer h.close()
				val := h.value(3000, 1)
				require.NoError(t, h.c.Submit(2, h.buf(val)))
				h.run(1)
				in := broadcast.Instance{Origin: 2, Seq: 1}
				for id, o := range h.outcomes(in) {
					assert.True(t, o.delivered, "node %v did not deliver", id)
					assert.Equal(t, broadcast.DigestOfBytes(val), o.digest, "node %v", id)
				}
				for i, s := range h.stores {
					assert.Zero(t, s.Stats().Held, "node %d still pins a payload after the instance decided", i)
				}
			})
		}
	}
}

func TestValidityHoldsWithFByzantineNodesSilent(t *testing.T) {
	forEach(t, func(t *testing.T, n, f int, v variant) {
		h := newHarness(t, n, f, v, harnessOpts{byz: rangeIDs(n-f, n)})
		defer h.close()
		val := h.value(100, 2)
		require.NoError(t, h.c.Submit(0, h.buf(val)))
		h.run(1)
		for id, o := range h.outcomes(broadcast.Instance{Origin: 0, Seq: 1}) {
			assert.Equal(t, outcome{true, broadcast.DigestOfBytes(val)}, o, "node %v", id)
		}
	})
}

func TestSubmitsPipelineOneInstancePerSlot(t *testing.T) {
	h := newHarness(t, 4, 1, variants[1], harnessOpts{})
	defer h.close()
	vals := [][]byte{h.value(10, 1), h.value(10, 2), h.value(10, 3)}
	for _, val := range vals {
		require.NoError(t, h.c.Submit(1, h.buf(val)))
	}
	h.run(3)
	for seq, val := range vals {
		for id, o := range h.outcomes(broadcast.Instance{Origin: 1, Seq: uint64(seq) + 1}) {
			assert.Equal(t, outcome{true, broadcast.DigestOfBytes(val)}, o, "node %v seq %d", id, seq)
		}
	}
}

func TestAgreementEquivocatingSenderGivesBottomEverywhere(t *testing.T) {
	forEach(t, func(t *testing.T, n, f int, v variant) {
		h := newHarness(t, n, f, v, harnessOpts{byz: ids(0)})
		defer h.close()
		in := broadcast.Instance{Origin: 0, Seq: 1}
		a, b := h.value(500, 1), h.value(500, 2)
		half := n / 2
		h.byz[0].at(roundTime(1, 1), func(bz *byzNode) {
			bz.sendRelay(in, a, ids(0), true, rangeIDs(1, half)...)
			bz.sendRelay(in, b, ids(0), true, rangeIDs(half, n)...)
		})
		h.run(1)
		for id, o := range h.outcomes(in) {
			assert.Equal(t, outcome{delivered: true}, o, "node %v should output ⊥", id)
		}
	})
}

func TestAgreementSenderThatReachesOneNodeStillReachesAll(t *testing.T) {
	forEach(t, func(t *testing.T, n, f int, v variant) {
		h := newHarness(t, n, f, v, harnessOpts{byz: ids(0)})
		defer h.close()
		in := broadcast.Instance{Origin: 0, Seq: 1}
		val := h.value(700, 3)
		h.byz[0].at(roundTime(1, 1), func(bz *byzNode) { bz.sendRelay(in, val, ids(0), true, 1) })
		h.run(1)
		for id, o := range h.outcomes(in) {
			assert.Equal(t, outcome{true, broadcast.DigestOfBytes(val)}, o, "node %v", id)
		}
	})
}

func TestAgreementSenderThatSendsOnlyADigestIsFetchedFrom(t *testing.T) {
	for _, serves := range []bool{true, false} {
		t.Run(fmt.Sprintf("serves=%v", serves), func(t *testing.T) {
			forEach(t, func(t *testing.T, n, f int, v variant) {
				h := newHarness(t, n, f, v, harnessOpts{byz: ids(0)})
				defer h.close()
				in := broadcast.Instance{Origin: 0, Seq: 1}
				val := h.value(700, 4)
				if serves {
					h.byz[0].onStep = serveFetches(val)
				}
				h.byz[0].at(roundTime(1, 1), func(bz *byzNode) { bz.sendRelay(in, val, ids(0), false, 1, 2) })
				h.run(1)
				want := outcome{}
				if serves {
					want = outcome{true, broadcast.DigestOfBytes(val)}
				}
				for id, o := range h.outcomes(in) {
					assert.Equal(t, want, o, "node %v", id)
				}
			})
		})
	}
}

// A coalition of f Byzantine nodes (the sender among them) can build a
// proof of f signatures. Shown to one correct node in round f, it is
// accepted and relayed in time; shown in round f+1 it is too short and
// rejected. Either way the correct nodes agree.
func TestAgreementCoalitionProofOfFSignatures(t *testing.T) {
	for _, round := range []string{"f", "f+1"} {
		t.Run("round "+round, func(t *testing.T) {
			forEach(t, func(t *testing.T, n, f int, v variant) {
				coalition := rangeIDs(0, f)
				h := newHarness(t, n, f, v, harnessOpts{byz: coalition})
				defer h.close()
				in := broadcast.Instance{Origin: 0, Seq: 1}
				val := h.value(900, 5)
				r := f
				if round == "f+1" {
					r = f + 1
				}
				victim := broadcast.NodeID(n - 1)
				h.byz[0].at(roundTime(1, r), func(bz *byzNode) { bz.sendRelay(in, val, coalition, true, victim) })
				h.run(1)
				got, ok := h.agreement(in)
				require.True(t, ok, "correct nodes disagree")
				if round == "f" {
					assert.Equal(t, outcome{true, broadcast.DigestOfBytes(val)}, got)
				} else {
					assert.Equal(t, outcome{}, got)
					assert.Positive(t, h.nodes[victim].Stats().Stale, "the late proof was not refused as stale")
				}
			})
		})
	}
}

// A Byzantine relayer that alone holds the value forwards it to one correct
// node: with the payload, everyone delivers; as a bare digest while
// ignoring fetches, no one does.
func TestAgreementSelectiveByzantineRelayer(t *testing.T) {
	for _, withPayload := range []bool{true, false} {
		t.Run(fmt.Sprintf("payload=%v", withPayload), func(t *testing.T) {
			forEach(t, func(t *testing.T, n, f int, v variant) {
				h := newHarness(t, n, f, v, harnessOpts{byz: ids(0, 1)})
				defer h.close()
				in := broadcast.Instance{Origin: 0, Seq: 1}
				val := h.value(900, 6)
				h.byz[1].at(roundTime(1, 2), func(bz *byzNode) { bz.sendRelay(in, val, ids(0, 1), withPayload, 2) })
				h.run(1)
				got, ok := h.agreement(in)
				require.True(t, ok, "correct nodes disagree")
				if withPayload {
					assert.Equal(t, outcome{true, broadcast.DigestOfBytes(val)}, got)
				} else {
					assert.Equal(t, outcome{}, got)
				}
			})
		})
	}
}

// With f rounds instead of f+1, a proof of f Byzantine signatures shown to
// one correct node in the last round is accepted there and never reaches
// the others: agreement breaks. This is why Dolev–Strong needs f+1 rounds.
func TestBrokenVariantWithFRoundsViolatesAgreement(t *testing.T) {
	forEach(t, func(t *testing.T, n, f int, v variant) {
		coalition := rangeIDs(0, f)
		h := newHarness(t, n, f, v, harnessOpts{byz: coalition, unsafeRounds: f})
		defer h.close()
		in := broadcast.Instance{Origin: 0, Seq: 1}
		val := h.value(900, 7)
		victim := broadcast.NodeID(n - 1)
		h.byz[0].at(roundTime(1, f), func(bz *byzNode) { bz.sendRelay(in, val, coalition, true, victim) })
		h.run(1)
		_, ok := h.agreement(in)
		require.False(t, ok, "f rounds should lose agreement against a last-round proof")
		assert.Equal(t, outcome{true, broadcast.DigestOfBytes(val)}, h.outcomes(in)[victim])
	})
}

func TestForgedSignatureIsRejected(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			h := newHarness(t, 4, 1, v, harnessOpts{byz: ids(0)})
			defer h.close()
			in := broadcast.Instance{Origin: 0, Seq: 1}
			val := h.value(100, 8)
			other := h.value(100, 9)
			h.byz[0].at(roundTime(1, 1), func(bz *byzNode) {
				// A proof made for another value, attached to this one.
				body := bz.h.proofBody(in, broadcast.DigestOfBytes(other), ids(0))
				d := broadcast.DigestOfBytes(val)
				m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoDolevStrong, Type: TypeRelay,
					Instance: in, Round: 1, Digest: d, PayloadLen: uint32(len(val))}, Body: body}
				m.SetPayload(bz.h.buf(val), d)
				bz.out = append(bz.out, broadcast.Outbound{To: broadcast.Everyone, Msg: m})
			})
			h.run(1)
			got, ok := h.agreement(in)
			require.True(t, ok)
			assert.Equal(t, outcome{}, got)
			for i := 1; i < 4; i++ {
				assert.Equal(t, uint64(1), h.c.Metrics[i].Rejects.Get(broadcast.ReasonAuth), "node %d", i)
			}
		})
	}
}

// Digest mode: the payload crosses the wire once per node; full mode: once
// per relayer.
func TestDigestModeReceivesEachPayloadOnce(t *testing.T) {
	const n, size = 7, 5000
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			h := newHarness(t, n, n-1, v, harnessOpts{})
			defer h.close()
			require.NoError(t, h.c.Submit(0, h.buf(h.value(size, 10))))
			h.run(1)
			for i := 1; i < n; i++ {
				snap := h.c.Metrics[i].Snapshot()
				recv := snap.Totals().RecvPayload
				if v.mode == broadcast.ModeDigest {
					assert.Equal(t, uint64(size), recv, "node %d", i)
					assert.InDelta(t, 1.0, snap.PayloadDupFactor(), 1e-9)
				} else {
					assert.Equal(t, uint64(size*(n-1)), recv, "node %d", i)
				}
			}
		})
	}
}

func TestLateAndEarlyRelaysAreIgnored(t *testing.T) {
	h := newHarness(t, 4, 1, variants[0], harnessOpts{byz: ids(0)})
	defer h.close()
	val := h.value(100, 11)
	late := broadcast.Instance{Origin: 0, Seq: 0}  // rounds 1–2 are slots 0–1
	early := broadcast.Instance{Origin: 0, Seq: 4} // slot 4: two slots early (one is tolerated)
	h.byz[0].at(roundTime(2, 1), func(bz *byzNode) {
		bz.sendRelay(late, val, ids(0), true, 1)
		bz.sendRelay(early, val, ids(0), true, 2)
	})
	h.run(10)
	assert.Equal(t, outcome{}, h.outcomes(late)[1])
	assert.Equal(t, outcome{}, h.outcomes(early)[2])
	assert.Equal(t, uint64(1), h.nodes[1].Stats().Late)
	assert.Equal(t, uint64(1), h.nodes[2].Stats().Early)
}

func TestNewValidatesConfig(t *testing.T) {
	k := clusterKeys(t, 4, false)
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{})
	ok := Config{Params: broadcast.Params{N: 4, F: 3, Self: 1, Mode: broadcast.ModeDigest}, Store: store, Keys: k.ed[1]}
	_, err := New(ok)
	require.NoError(t, err)
	for name, mut := range map[string]func(c *Config){
		"f ≥ n":          func(c *Config) { c.F = 4 },
		"no store":       func(c *Config) { c.Store = nil },
		"no keys":        func(c *Config) { c.Keys = nil },
		"someone's keys": func(c *Config) { c.Keys = k.ed[2] },
		"no mode":        func(c *Config) { c.Mode = 0 },
		"negative Δ":     func(c *Config) { c.RoundDuration = -1 },
	} {
		c := ok
		mut(&c)
		_, err := New(c)
		assert.Error(t, err, name)
	}
}

// Two nodes whose drivers' clocks started at different times agree on the
// rounds once each sets its offset to the common epoch.
func TestClockOffsetAlignsRoundsAcrossDrivers(t *testing.T) {
	k := clusterKeys(t, 2, false)
	mk := func(self broadcast.NodeID, offset time.Duration) *Node {
		node, err := New(Config{Params: broadcast.Params{N: 2, F: 1, Self: self, Mode: broadcast.ModeFull},
			Store: broadcast.NewPayloadStore(broadcast.StoreConfig{}), Keys: k.ed[self], RoundDuration: testDelta, ClockOffset: offset})
		require.NoError(t, err)
		return node
	}
	// Node 0's driver started at epoch+35Δ, node 1's at epoch+7Δ.
	a, b := mk(0, 35*testDelta), mk(1, 7*testDelta)
	assert.Equal(t, testDelta, a.Ready().NextWake, "next boundary, in the driver's own time")
	require.NoError(t, a.Submit(bufpool.Wrap([]byte("x"))))
	a.Tick(testDelta) // epoch+36Δ: slot 36 starts
	rd := a.Ready()
	require.Len(t, rd.Messages, 1)
	assert.Equal(t, uint64(36), rd.Messages[0].Msg.Instance.Seq)
	b.Tick(29 * testDelta) // the same instant for node 1: epoch+36Δ
	m := rd.Messages[0].Msg
	m.Sender = 0
	require.NoError(t, b.Step(0, &m))
	assert.Zero(t, b.Stats().Early+b.Stats().Late)
	b.Tick(31 * testDelta) // epoch+38Δ: the end of round 2
	got := b.Ready()
	require.Len(t, got.Deliveries, 1)
	assert.Equal(t, []byte("x"), got.Deliveries[0].Payload.Bytes())
	got.Release()
	rd.Release()
}

// A sender whose first Tick after Submit comes late in the chosen slot (a
// driver that had not ticked it yet) moves the instance to the next slot
// instead of sending a round-1 message that might arrive in round 2. This
// was found by the simulator (seed 7179 of the n = 4 sweep).
func TestLateFirstTickMovesOwnInstanceToTheNextSlot(t *testing.T) {
	h := newHarness(t, 4, 1, variants[0], harnessOpts{})
	defer h.close()
	node := h.nodes[0]
	require.NoError(t, node.Submit(h.buf([]byte("v"))))
	node.Tick(testDelta + testDelta/2) // slot 1, half gone
	rd := node.Ready()
	assert.Empty(t, rd.Messages, "sent half a round late")
	assert.Equal(t, 2*testDelta, rd.NextWake)
	node.Tick(2 * testDelta)
	rd = node.Ready()
	require.Len(t, rd.Messages, 1)
	assert.Equal(t, uint64(2), rd.Messages[0].Msg.Instance.Seq)
	rd.Release()
	require.NoError(t, node.Submit(h.buf([]byte("w"))))
	node.Tick(3 * testDelta)
	rd = node.Ready()
	require.Len(t, rd.Messages, 1)
	assert.Equal(t, uint64(3), rd.Messages[0].Msg.Instance.Seq, "sequence numbers keep increasing")
	rd.Release()
}

// A node stepped before its first Tick does not know which round a message
// belongs to: it holds the message and judges it at the first Tick.
func TestMessagesBeforeTheFirstTickWaitForIt(t *testing.T) {
	k := clusterKeys(t, 2, false)
	mk := func(self broadcast.NodeID) *Node {
		node, err := New(Config{Params: broadcast.Params{N: 2, F: 1, Self: self, Mode: broadcast.ModeFull},
			Store: broadcast.NewPayloadStore(broadcast.StoreConfig{}), Keys: k.ed[self], RoundDuration: testDelta})
		require.NoError(t, err)
		return node
	}
	a, b := mk(0), mk(1)
	a.Tick(4 * testDelta)
	require.NoError(t, a.Submit(bufpool.Wrap([]byte("x"))))
	a.Tick(5 * testDelta)
	rd := a.Ready()
	require.Len(t, rd.Messages, 1)
	m := rd.Messages[0].Msg
	m.Sender = 0
	require.NoError(t, b.Step(0, &m)) // b's clock still reads 0: slot 5 would look early
	rd.Release()
	b.Tick(5*testDelta + 1)
	assert.Zero(t, b.Stats().Early)
	b.Tick(7 * testDelta)
	got := b.Ready()
	require.Len(t, got.Deliveries, 1)
	assert.Equal(t, []byte("x"), got.Deliveries[0].Payload.Bytes())
	got.Release()
}
