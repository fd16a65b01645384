package bracha_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/mem"
)

var (
	modes = []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest}
	sizes = []int{4, 7, 10}
)

// flushByz sends what the scripted Byzantine nodes queued.
func (h *harness) flushByz() { h.c.TickAll(h.c.Now) }

// Validity and totality with a correct sender: every correct node delivers
// every payload of every correct origin, exactly once, with the bytes the
// origin broadcast — in both modes, with MAC authenticators on the links.
func TestCorrectSenderEveryNodeDeliversEveryPayloadOnce(t *testing.T) {
	for _, n := range sizes {
		for _, mode := range modes {
			t.Run(fmt.Sprintf("n%d/%v", n, mode), func(t *testing.T) {
				h := newHarness(t, n, harnessOpt{mode: mode, auth: true})
				const per = 3
				for k := range per {
					for o := range n {
						h.broadcast(broadcast.NodeID(o), payloadFor(broadcast.NodeID(o), k, 100+1000*k+o))
					}
				}
				h.run()
				for _, id := range h.correct() {
					got := h.delivered(id)
					require.Len(t, got, n*per, "node %v", id)
					for in, p := range h.sent {
						assert.Equal(t, p, got[key{in, 0}], "node %v instance %v", id, in)
					}
					st := h.nodes[id].Stats()
					assert.Zero(t, st.Live, "every instance collected")
					assert.Zero(t, st.FetchesSent, "a correct sender leaves nothing to fetch")
					assert.Zero(t, h.stores[id].Stats().Held, "no payload left pinned")
					assert.Zero(t, h.c.StepErrors[id])
				}
			})
		}
	}
}

// The duplication figures the characterization leans on: with one correct
// origin, a receiver gets each payload byte once in digest mode, and 2n−1
// times in full mode (SEND, n−1 ECHOs, n−1 READYs).
func TestPayloadDuplicationFactorByMode(t *testing.T) {
	for _, n := range sizes {
		for _, mode := range modes {
			t.Run(fmt.Sprintf("n%d/%v", n, mode), func(t *testing.T) {
				h := newHarness(t, n, harnessOpt{mode: mode})
				for k := range 4 {
					h.broadcast(0, payloadFor(0, k, 1024))
				}
				h.run()
				want := 1.0
				if mode == broadcast.ModeFull {
					want = float64(2*n - 1)
				}
				for _, id := range h.correct()[1:] {
					s := h.c.Metrics[id].Snapshot()
					assert.Equal(t, want, s.PayloadDupFactor(), "node %v", id)
					assert.Greater(t, s.WireFactor(), s.PayloadDupFactor(), "headers cost something")
				}
			})
		}
	}
}

// The network may duplicate and reorder messages: nothing is delivered
// twice, and everything is delivered.
func TestDuplicatedAndReorderedMessagesDeliverOnce(t *testing.T) {
	for _, mode := range modes {
		for seed := uint64(1); seed <= 5; seed++ {
			t.Run(fmt.Sprintf("%v/seed%d", mode, seed), func(t *testing.T) {
				fault := func(_, _ broadcast.NodeID, _ *broadcast.Message, r *rand.Rand) mem.Decision {
					return mem.Decision{Duplicates: r.IntN(2), Reorder: r.IntN(2) == 0}
				}
				h := newHarness(t, 7, harnessOpt{mode: mode, fault: fault, seed: seed})
				for o := range 7 {
					h.broadcast(broadcast.NodeID(o), payloadFor(broadcast.NodeID(o), 0, 3000))
				}
				h.run()
				for _, id := range h.correct() {
					got := h.delivered(id)
					require.Len(t, got, 7)
					for in, p := range h.sent {
						assert.Equal(t, p, got[key{in, 0}])
					}
				}
			})
		}
	}
}

// equivocate makes Byzantine node 0 send SEND(p1) to the first half of the
// correct nodes and SEND(p2) to the rest, and every Byzantine node ECHO and
// READY each payload to the half that got it.
func equivocate(h *harness, p1, p2 []byte) {
	in := broadcast.Instance{Origin: 0}
	d1, d2 := broadcast.DigestOfBytes(p1), broadcast.DigestOfBytes(p2)
	correct := h.correct()
	half := len(correct) / 2
	for i, to := range correct {
		p, d := p1, d1
		if i >= half {
			p, d = p2, d2
		}
		h.byz[0].send(to, bracha.TypeSend, in, d, len(p), p)
		for _, b := range h.byz {
			b.send(to, bracha.TypeEcho, in, d, len(p), nil)
			b.send(to, bracha.TypeReady, in, d, len(p), nil)
		}
	}
	h.flushByz()
}

// Agreement: a Byzantine origin that equivocates cannot make two correct
// nodes deliver different payloads for one instance, whatever the order of
// messages.
func TestEquivocatingSenderNoTwoCorrectNodesDeliverDifferentPayloads(t *testing.T) {
	for _, n := range sizes {
		for _, mode := range modes {
			for seed := uint64(1); seed <= 4; seed++ {
				t.Run(fmt.Sprintf("n%d/%v/seed%d", n, mode, seed), func(t *testing.T) {
					f := (n - 1) / 3
					var byz []broadcast.NodeID
					for i := range f {
						byz = append(byz, broadcast.NodeID(i))
					}
					fault := func(_, _ broadcast.NodeID, _ *broadcast.Message, r *rand.Rand) mem.Decision {
						return mem.Decision{Reorder: seed > 1 && r.IntN(2) == 0}
					}
					h := newHarness(t, n, harnessOpt{mode: mode, byz: byz, fault: fault, seed: seed})
					equivocate(h, payloadFor(0, 1, 2000), payloadFor(0, 2, 2000))
					h.run()
					var agreed []byte
					for _, id := range h.correct() {
						got := h.delivered(id)
						require.LessOrEqual(t, len(got), 1)
						if p, ok := got[key{broadcast.Instance{Origin: 0}, 0}]; ok {
							if agreed == nil {
								agreed = p
							}
							require.Equal(t, agreed, p, "node %v delivered another payload", id)
						}
					}
				})
			}
		}
	}
}

// The test-only knob works: with the ECHO quorum lowered to f+1, the same
// equivocation splits a cluster of n = 3f+2 — which is what the checkers of
// the simulator must catch. With the correct quorum nobody delivers.
func TestUnsafeEchoQuorumBreaksAgreement(t *testing.T) {
	for _, unsafe := range []bool{false, true} {
		t.Run(fmt.Sprintf("unsafe=%v", unsafe), func(t *testing.T) {
			opt := harnessOpt{mode: broadcast.ModeDigest, byz: []broadcast.NodeID{0}}
			if unsafe {
				opt.cfg = func(c *bracha.Config) { c.UnsafeEchoQuorum = c.F + 1 }
			}
			h := newHarness(t, 5, opt)
			p1, p2 := payloadFor(0, 1, 500), payloadFor(0, 2, 500)
			equivocate(h, p1, p2)
			h.run()
			distinct := map[string]bool{}
			for _, id := range h.correct() {
				for _, p := range h.delivered(id) {
					distinct[string(p)] = true
				}
			}
			if unsafe {
				assert.Len(t, distinct, 2, "the broken quorum lets both payloads through")
			} else {
				assert.Empty(t, distinct, "the correct quorum lets neither through")
			}
		})
	}
}

// withholding makes Byzantine origin 0 give the payload to only f+1
// correct nodes, while every Byzantine node ECHOes and READYs its digest to
// all, and answers FETCHes with answer.
func withholding(h *harness, p []byte, answer func(m *broadcast.Message) []byte) {
	in := broadcast.Instance{Origin: 0}
	d := broadcast.DigestOfBytes(p)
	for i, to := range h.correct() {
		if i < h.f+1 {
			h.byz[0].send(to, bracha.TypeSend, in, d, len(p), p)
		}
	}
	for _, b := range h.byz {
		b.answer = answer
		b.send(broadcast.Everyone, bracha.TypeEcho, in, d, len(p), nil)
		b.send(broadcast.Everyone, bracha.TypeReady, in, d, len(p), nil)
	}
	h.flushByz()
}

func byzantineIDs(n int) []broadcast.NodeID {
	var ids []broadcast.NodeID
	for i := range (n - 1) / 3 {
		ids = append(ids, broadcast.NodeID(i))
	}
	return ids
}

// Totality in digest mode: a Byzantine origin that gives its payload to
// only f+1 correct nodes cannot keep the others from delivering — they
// FETCH it, one voucher at a time, passing over Byzantine vouchers that do
// not answer.
func TestWithheldPayloadIsFetchedByEveryCorrectNode(t *testing.T) {
	for _, n := range sizes {
		for _, mode := range modes {
			t.Run(fmt.Sprintf("n%d/%v", n, mode), func(t *testing.T) {
				h := newHarness(t, n, harnessOpt{mode: mode, byz: byzantineIDs(n)})
				p := payloadFor(0, 9, 5000)
				withholding(h, p, nil)
				h.run()
				var fetched, sent uint64
				for _, id := range h.correct() {
					got := h.delivered(id)
					require.Len(t, got, 1, "node %v", id)
					assert.Equal(t, p, got[key{broadcast.Instance{Origin: 0}, 0}])
					st := h.nodes[id].Stats()
					fetched += st.PayloadsFetched
					sent += st.FetchesSent
					assert.Zero(t, st.Live)
				}
				if mode == broadcast.ModeDigest {
					assert.EqualValues(t, len(h.correct())-(h.f+1), fetched, "each node without the SEND fetched once")
					// One FETCH per Byzantine voucher passed over at most,
					// plus the one that succeeded: never everyone at once.
					assert.LessOrEqual(t, sent, fetched*uint64(h.f+1))
				} else {
					assert.Zero(t, sent, "full mode: ECHOs carry the payload")
				}
			})
		}
	}
}

// A Byzantine voucher that answers FETCH with wrong bytes is rejected
// (digest mismatch), another peer's answer is accepted, and the stored
// payload is the right one.
func TestWrongFetchAnswerIsRejectedAndAnotherAccepted(t *testing.T) {
	for _, n := range sizes {
		t.Run(fmt.Sprintf("n%d", n), func(t *testing.T) {
			h := newHarness(t, n, harnessOpt{mode: broadcast.ModeDigest, byz: byzantineIDs(n)})
			p := payloadFor(0, 3, 4096)
			withholding(h, p, func(m *broadcast.Message) []byte { return payloadFor(7, 7, int(m.PayloadLen)) })
			h.run()
			var bad, mismatches uint64
			d := broadcast.DigestOfBytes(p)
			for _, id := range h.correct() {
				got := h.delivered(id)
				require.Len(t, got, 1)
				assert.Equal(t, p, got[key{broadcast.Instance{Origin: 0}, 0}])
				bad += h.nodes[id].Stats().BadPayloads
				mismatches += h.stores[id].Stats().Mismatches
				for _, dl := range h.c.Delivered[id] {
					assert.Equal(t, d, broadcast.DigestOf(dl.Payload), "delivered bytes match the digest")
				}
			}
			var answered int
			for _, b := range h.byz {
				answered += b.fetches
			}
			require.Positive(t, answered, "the scenario must reach a Byzantine voucher")
			assert.EqualValues(t, answered, bad, "every wrong answer rejected")
			assert.Equal(t, bad, mismatches)
		})
	}
}
