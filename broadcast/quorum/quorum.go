// Package quorum is the one place where onecast's quorum sizes live.
//
// Bracha's reliable broadcast needs three thresholds for n ≥ 3f+1:
//
//   - [BrachaEcho], ⌈(n+f+1)/2⌉ ECHOs: any two such sets intersect in at
//     least one correct node, so no two correct nodes can send READY for
//     different payloads of one instance;
//   - [BrachaReadyAmplify], f+1 READYs: at least one came from a correct
//     node, so a node may join it (amplification);
//   - [BrachaDeliver], 2f+1 READYs: at least f+1 came from correct nodes, who
//     will make every correct node amplify, so every correct node delivers.
//
// PBFT's prepare and commit certificates need [PBFTQuorum], 2f+1 of n ≥ 3f+1.
//
// Each function takes (n, f) and returns a vote count; [MaxFaults] gives the
// largest f a cluster of n tolerates. The functions do not validate their
// arguments beyond what their doc comment says: callers validate n and f once
// when they build a node (see [Valid]).
package quorum

import "fmt"

// MinN returns the smallest cluster that tolerates f Byzantine faults in
// the protocols that need n ≥ 3f+1 (Bracha, PBFT).
func MinN(f int) int { return 3*f + 1 }

// MaxFaults returns the largest f with n ≥ 3f+1, or 0 for n < 1.
func MaxFaults(n int) int {
	if n < 1 {
		return 0
	}
	return (n - 1) / 3
}

// Valid reports an error when n and f do not satisfy n ≥ 3f+1, f ≥ 0.
func Valid(n, f int) error {
	switch {
	case n <= 0:
		return fmt.Errorf("quorum: n must be positive, got %d", n)
	case f < 0:
		return fmt.Errorf("quorum: f must not be negative, got %d", f)
	case n < MinN(f):
		return fmt.Errorf("quorum: n = %d is too small for f = %d (need n ≥ %d)", n, f, MinN(f))
	}
	return nil
}

// BrachaEcho returns Bracha's ECHO quorum ⌈(n+f+1)/2⌉: the number of ECHOs
// for one payload after which a node sends READY.
func BrachaEcho(n, f int) int { return (n + f + 2) / 2 }

// BrachaReadyAmplify returns f+1: the number of READYs for one payload after
// which a node that has not sent READY sends it.
func BrachaReadyAmplify(f int) int { return f + 1 }

// BrachaDeliver returns 2f+1: the number of READYs for one payload after
// which a node delivers it.
func BrachaDeliver(f int) int { return 2*f + 1 }

// PBFTQuorum returns 2f+1: the size of PBFT's prepare and commit
// certificates (with the primary's PRE-PREPARE counted as the prepare of the
// primary).
func PBFTQuorum(f int) int { return 2*f + 1 }
