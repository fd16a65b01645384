package pbft

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
)

// submitAll has every correct node's client issue `per` requests.
func submitAll(h *harness, correct []int, per int) {
	for r := range per {
		for _, i := range correct {
			h.submit(i, fmt.Sprintf("op %d of %d", r, i))
		}
	}
}

func requireAllAnswered(t *testing.T, h *harness, correct []int, per int) {
	t.Helper()
	for _, i := range correct {
		res := h.nodes[i].TakeResults(nil)
		require.Len(t, res, per, "client %d", i)
	}
}

func TestViewChangeReplacesASilentPrimary(t *testing.T) {
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		t.Run(mode.String(), func(t *testing.T) {
			h := newHarness(t, 4, 1, harnessOpt{mode: mode, batch: 4, signer: true, byz: map[int]Behavior{0: Silent}})
			defer h.close()
			correct := []int{1, 2, 3}
			submitAll(h, correct, 10)
			h.run(10 * time.Second)
			h.checkSafety(correct)
			requireAllAnswered(t, h, correct, 10)
			for _, i := range correct {
				assert.GreaterOrEqual(t, h.nodes[i].View(), uint32(1))
				assert.Equal(t, h.sms[1].state, h.sms[i].state)
			}
		})
	}
}

func TestViewChangeAfterAnEquivocatingPrimaryKeepsAgreement(t *testing.T) {
	for _, n := range []int{4, 7} {
		for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
			t.Run(fmt.Sprintf("%v/n=%d", mode, n), func(t *testing.T) {
				f := (n - 1) / 3
				h := newHarness(t, n, f, harnessOpt{mode: mode, batch: 4, k: 4, signer: true, byz: map[int]Behavior{0: Equivocate}})
				defer h.close()
				var correct []int
				for i := 1; i < n; i++ {
					correct = append(correct, i)
				}
				submitAll(h, correct, 12)
				h.run(20 * time.Second)
				h.checkSafety(correct)
				requireAllAnswered(t, h, correct, 12)
			})
		}
	}
}

func TestWrongDigestBackupsDoNotStopProgress(t *testing.T) {
	for _, n := range []int{4, 7} {
		f := (n - 1) / 3
		byz := map[int]Behavior{}
		for i := range f {
			byz[n-1-i] = WrongDigest
		}
		h := newHarness(t, n, f, harnessOpt{batch: 4, k: 4, signer: true, byz: byz})
		correct := []int{}
		for i := range n - f {
			correct = append(correct, i)
		}
		submitAll(h, correct, 10)
		h.run(10 * time.Second)
		h.checkSafety(correct)
		requireAllAnswered(t, h, correct, 10)
		assert.Equal(t, uint32(0), h.nodes[0].View(), "a correct primary stays")
		h.close()
	}
}

func TestReplayedRequestsExecuteOnce(t *testing.T) {
	h := newHarness(t, 4, 1, harnessOpt{batch: 4, signer: true, byz: map[int]Behavior{3: Replay}})
	defer h.close()
	correct := []int{0, 1, 2}
	submitAll(h, correct, 10)
	h.submit(3, "byzantine client op")
	h.run(10 * time.Second)
	h.checkSafety(correct)
	requireAllAnswered(t, h, correct, 10)
}

func TestBrokenCommitQuorumIsCaught(t *testing.T) {
	// With the quorum lowered to 1 an equivocating primary splits the
	// correct replicas; the same scenario with the real quorum does not.
	h := newHarness(t, 4, 1, harnessOpt{batch: 4, signer: true, unsafeQ: 1, byz: map[int]Behavior{0: Equivocate}})
	defer h.close()
	correct := []int{1, 2, 3}
	submitAll(h, correct, 4)
	h.run(5 * time.Second)
	ok := func() (ok bool) {
		defer func() {
			if recover() != nil {
				ok = false
			}
		}()
		ft := &fakeT{}
		h2 := *h
		h2.t = ft
		h2.checkSafety(correct)
		return !ft.failed
	}()
	assert.False(t, ok, "the broken variant must violate agreement")
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()                           {}
func (f *fakeT) Errorf(format string, args ...any) { f.failed = true }
func (f *fakeT) FailNow()                          { f.failed = true; panic("failnow") }
