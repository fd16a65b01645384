package quorum

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxN bounds the exhaustive checks: every (n, f) with n ≤ maxN.
const maxN = 200

func TestBrachaEchoIsCeilingOfHalfNPlusFPlusOne(t *testing.T) {
	for n := 1; n <= maxN; n++ {
		for f := 0; MinN(f) <= n; f++ {
			num := n + f + 1
			want := num / 2
			if num%2 != 0 {
				want++
			}
			require.Equal(t, want, BrachaEcho(n, f), "n=%d f=%d", n, f)
		}
	}
}

// Two ECHO quorums intersect in more than f nodes, so in at least one
// correct node: the lemma that makes READYs for one instance agree.
func TestBrachaEchoQuorumsIntersectInACorrectNode(t *testing.T) {
	for n := 1; n <= maxN; n++ {
		for f := 0; MinN(f) <= n; f++ {
			q := BrachaEcho(n, f)
			assert.Greater(t, 2*q-n, f, "n=%d f=%d q=%d", n, f, q)
		}
	}
}

// An ECHO quorum is reachable from correct nodes alone, so a correct
// sender's broadcast is never stuck on Byzantine silence.
func TestBrachaEchoQuorumReachableWithoutFaultyNodes(t *testing.T) {
	for n := 1; n <= maxN; n++ {
		for f := 0; MinN(f) <= n; f++ {
			assert.LessOrEqual(t, BrachaEcho(n, f), n-f, "n=%d f=%d", n, f)
		}
	}
}

// f+1 READYs contain a correct node's; 2f+1 READYs contain f+1 correct
// ones, enough to make every correct node amplify; and 2f+1 is reachable
// from correct nodes alone.
func TestBrachaReadyThresholds(t *testing.T) {
	for n := 1; n <= maxN; n++ {
		for f := 0; MinN(f) <= n; f++ {
			amp, del := BrachaReadyAmplify(f), BrachaDeliver(f)
			assert.Equal(t, f+1, amp)
			assert.Equal(t, 2*f+1, del)
			assert.Greater(t, amp, f, "amplify threshold must exceed the faulty nodes")
			assert.GreaterOrEqual(t, del-f, amp, "a delivery quorum must hold an amplify quorum of correct nodes")
			assert.LessOrEqual(t, del, n-f, "a delivery quorum must be reachable by correct nodes")
			assert.LessOrEqual(t, BrachaEcho(n, f), n, "n=%d f=%d", n, f)
		}
	}
}

// Two PBFT certificates intersect in at least one correct replica, and one
// is reachable from correct replicas alone.
func TestPBFTQuorumIntersectsAndIsReachable(t *testing.T) {
	for n := 1; n <= maxN; n++ {
		for f := 0; MinN(f) <= n; f++ {
			q := PBFTQuorum(f)
			if n == MinN(f) {
				assert.Greater(t, 2*q-n, f, "n=%d f=%d", n, f)
			}
			assert.LessOrEqual(t, q, n-f, "n=%d f=%d", n, f)
		}
	}
}

func TestMaxFaultsIsLargestTolerated(t *testing.T) {
	assert.Equal(t, 0, MaxFaults(0))
	for n := 1; n <= maxN; n++ {
		f := MaxFaults(n)
		assert.LessOrEqual(t, MinN(f), n, "n=%d", n)
		assert.Greater(t, MinN(f+1), n, "n=%d", n)
		require.NoError(t, Valid(n, f))
		require.Error(t, Valid(n, f+1))
	}
}

func TestValidRejectsBadArguments(t *testing.T) {
	for _, tc := range []struct{ n, f int }{{0, 0}, {-1, 0}, {4, -1}, {3, 1}, {6, 2}} {
		t.Run(fmt.Sprintf("n%d_f%d", tc.n, tc.f), func(t *testing.T) {
			require.Error(t, Valid(tc.n, tc.f))
		})
	}
}

func TestKnownValues(t *testing.T) {
	for _, tc := range []struct{ n, f, echo, amp, del int }{
		{1, 0, 1, 1, 1}, {4, 1, 3, 2, 3}, {7, 2, 5, 3, 5}, {10, 3, 7, 4, 7}, {5, 1, 4, 2, 3}, {100, 33, 67, 34, 67},
	} {
		assert.Equal(t, tc.echo, BrachaEcho(tc.n, tc.f), "echo n=%d f=%d", tc.n, tc.f)
		assert.Equal(t, tc.amp, BrachaReadyAmplify(tc.f))
		assert.Equal(t, tc.del, BrachaDeliver(tc.f))
		assert.Equal(t, tc.del, PBFTQuorum(tc.f))
	}
}

func BenchmarkBrachaEcho(b *testing.B) {
	b.ReportAllocs()
	s := 0
	for i := 0; b.Loop(); i++ {
		s += BrachaEcho(i&1023+4, i&255)
	}
	_ = s
}
