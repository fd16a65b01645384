package sim

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/pbft"
)

// adversaryNames are the behaviours built on Adversary and round-by-round
// Twins; the others existed before them.
var adversaryNames = []string{"splitvote", "equivocate-each", "impersonate", "twins-rounds",
	"pbft-splitvote", "pbft-ppequivocate", "pbft-newview", "pbft-forgevc", "pbft-stale", "pbft-future", "pbft-twins",
	"ds-repeat", "ds-outsider", "ds-edge"}

// split returns the adversaries of specs and the behaviours that existed
// before them.
func split(specs []BehaviourSpec) (adversaries, earlier []BehaviourSpec) {
	for _, b := range specs {
		if slices.Contains(adversaryNames, b.Name) {
			adversaries = append(adversaries, b)
		} else {
			earlier = append(earlier, b)
		}
	}
	return adversaries, earlier
}

func named(t *testing.T, specs []BehaviourSpec, name string) []BehaviourSpec {
	for _, b := range specs {
		if b.Name == name {
			return []BehaviourSpec{b}
		}
	}
	t.Fatalf("no behaviour %q", name)
	return nil
}

func sweep(t *testing.T, cfg Config, seeds uint64) *Summary {
	t.Helper()
	sum, err := Sweep(context.Background(), cfg, 1, seeds, runtime.GOMAXPROCS(0))
	require.NoError(t, err)
	require.Equal(t, int(seeds), sum.Runs)
	return sum
}

func TestEveryAdversaryIsRegistered(t *testing.T) {
	all := append(append(Behaviours(), PBFTBehaviours()...), DolevStrongBehaviours()...)
	adv, _ := split(all)
	require.Len(t, adv, len(adversaryNames))
	for _, b := range adv {
		assert.NotEmpty(t, b.Doc, b.Name)
	}
}

// TestAdversariesReplayBySeed: one seed, one trace, for every adversary.
func TestAdversariesReplayBySeed(t *testing.T) {
	pbftAdv, _ := split(append(Behaviours(), PBFTBehaviours()...))
	dsAdv, _ := split(DolevStrongBehaviours())
	for _, tc := range []struct {
		cfg Config
		bs  []BehaviourSpec
	}{
		{pbftConfig(4, broadcast.ModeDigest, nil), pbftAdv},
		{dsConfig(dolevstrong.Spec, 5, 4, 2, broadcast.ModeDigest, nil), dsAdv},
	} {
		for _, b := range tc.bs {
			cfg := tc.cfg
			cfg.Byzantine = []Assignment{{Count: 1, Behaviours: []BehaviourSpec{b}}}
			for seed := uint64(1); seed <= 3; seed++ {
				a, err := Run(cfg, seed)
				require.NoError(t, err)
				c, err := Run(cfg, seed)
				require.NoError(t, err)
				require.Equal(t, a.TraceHash, c.TraceHash, "%s seed %d", b.Name, seed)
			}
		}
	}
}

// --- what each adversary sends (read from the run's trace) ---

// traced is one message a Byzantine node sent, as delivered.
type traced struct {
	to, typ, inst, digest string
	round                 uint64
	at                    string
}

// byzantineTraffic runs cfg under seed and returns the messages its one
// Byzantine node sent, and the run's result.
func byzantineTraffic(t *testing.T, cfg Config, seed uint64) ([]traced, *Result) {
	t.Helper()
	var buf bytes.Buffer
	cfg.Trace = &buf
	res, err := Run(cfg, seed)
	require.NoError(t, err)
	require.Len(t, res.Byzantine, 1)
	byz, _, _ := strings.Cut(res.Byzantine[0], ":")
	var out []traced
	for line := range strings.SplitSeq(buf.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[1], byz+"→") {
			continue
		}
		r, err := strconv.ParseUint(strings.TrimPrefix(f[4], "r"), 10, 64)
		require.NoError(t, err, line)
		out = append(out, traced{to: strings.TrimPrefix(f[1], byz+"→"), typ: f[2], inst: f[3], round: r, digest: f[5], at: f[0]})
	}
	return out, res
}

// TestSplitVoteSendsEachMessageToExactlyAThreshold: every message the
// splitvote node sends reaches exactly one, f, f+1 or 2f peers (the same
// ones on every retransmission), and over a few runs each size occurs.
func TestSplitVoteSendsEachMessageToExactlyAThreshold(t *testing.T) {
	const n, f = 7, 2
	cfg := Config{Spec: brachaSpec(0), N: n, Mode: broadcast.ModeDigest, Net: DefaultNetwork(),
		Byzantine: []Assignment{{Count: 1, Behaviours: named(t, Behaviours(), "splitvote")}}, Workload: Workload{PerNode: 2, PayloadSize: 128}}
	sizes := map[int]int{}
	for seed := uint64(1); seed <= 10; seed++ {
		msgs, res := byzantineTraffic(t, cfg, seed)
		require.Empty(t, res.Violations)
		to := map[string]map[string]bool{}
		for _, m := range msgs {
			k := m.typ + m.inst + strconv.FormatUint(m.round, 10) + m.digest
			if to[k] == nil {
				to[k] = map[string]bool{}
			}
			to[k][m.to] = true
		}
		for k, rs := range to {
			require.Contains(t, []int{1, f, f + 1, 2 * f}, len(rs), "seed %d message %s went to %v", seed, k, rs)
			sizes[len(rs)]++
		}
	}
	for _, k := range []int{1, f, f + 1, 2 * f} {
		assert.Positive(t, sizes[k], "no message went to exactly %d peers: %v", k, sizes)
	}
}

// TestEquivocateEachShowsEveryPeerOneVersion: each peer sees one digest
// per instance in the node's SEND and ECHO (its version), and peers see
// different ones.
func TestEquivocateEachShowsEveryPeerOneVersion(t *testing.T) {
	cfg := Config{Spec: brachaSpec(0), N: 7, Mode: broadcast.ModeFull, Net: DefaultNetwork(),
		Byzantine: []Assignment{{Count: 1, Behaviours: named(t, Behaviours(), "equivocate-each")}}, Workload: Workload{PayloadSize: 128}}
	split := 0
	for seed := uint64(1); seed <= 5; seed++ {
		msgs, res := byzantineTraffic(t, cfg, seed)
		require.Empty(t, res.Violations)
		seen := map[string]string{}              // recipient+instance → digest
		versions := map[string]map[string]bool{} // instance → digests
		for _, m := range msgs {
			if m.typ != "SEND" && m.typ != "ECHO" {
				continue // its core may READY a version others were shown
			}
			k := m.to + " " + m.inst
			if d, ok := seen[k]; ok {
				require.Equal(t, d, m.digest, "seed %d: %s got two versions", seed, k)
			}
			seen[k] = m.digest
			if versions[m.inst] == nil {
				versions[m.inst] = map[string]bool{}
			}
			versions[m.inst][m.digest] = true
		}
		for _, ds := range versions {
			if len(ds) > 1 {
				split++
			}
		}
	}
	assert.Positive(t, split, "no instance was shown in two versions")
}

// TestPBFTAdversariesSendWhatTheyClaim checks each PBFT adversary's
// signature move in the trace of a few runs.
func TestPBFTAdversariesSendWhatTheyClaim(t *testing.T) {
	// twoDigests reports whether the node sent one (type, instance, view)
	// under two digests.
	twoDigests := func(typ string) func([]traced, *Result) bool {
		return func(ms []traced, _ *Result) bool {
			ds := map[string]string{}
			for _, m := range ms {
				if m.typ != typ {
					continue
				}
				k := m.inst + "/" + strconv.FormatUint(m.round, 10)
				if d, ok := ds[k]; ok && d != m.digest {
					return true
				}
				ds[k] = m.digest
			}
			return false
		}
	}
	for _, tc := range []struct {
		name string
		sent func([]traced, *Result) bool
	}{
		{"pbft-splitvote", twoDigests("PREPARE")},
		{"pbft-ppequivocate", twoDigests("PRE-PREPARE")},
		{"pbft-newview", twoDigests("NEW-VIEW")},
		{"pbft-forgevc", func(ms []traced, r *Result) bool {
			return twoDigests("VIEW-CHANGE")(ms, r) && r.Correct.Rejects["bad body"]+r.Correct.Rejects["bad authenticator"] > 0
		}},
		{"pbft-stale", func(ms []traced, _ *Result) bool { // a vote for a view below one it voted in before
			top := map[string]uint64{}
			for _, m := range ms {
				if m.typ != "PREPARE" && m.typ != "COMMIT" {
					continue
				}
				if m.round < top[m.inst] {
					return true
				}
				top[m.inst] = max(top[m.inst], m.round)
			}
			return false
		}},
		{"pbft-future", func(ms []traced, _ *Result) bool { // beyond any window, or a view far ahead
			for _, m := range ms {
				if m.typ != "PRE-PREPARE" {
					continue
				}
				_, s, _ := strings.Cut(m.inst, "/")
				seq, _ := strconv.ParseUint(s, 10, 64)
				if seq > 4096 || m.round >= 1000 {
					return true
				}
			}
			return false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pbftConfig(4, broadcast.ModeDigest, nil)
			cfg.Workload.PerNode = 4
			cfg.Byzantine = []Assignment{{Count: 1, Behaviours: named(t, PBFTBehaviours(), tc.name)}}
			for seed := uint64(1); seed <= 60; seed++ {
				msgs, res := byzantineTraffic(t, cfg, seed)
				require.Empty(t, res.Violations, "seed %d", seed)
				if tc.sent(msgs, res) {
					t.Logf("seen at seed %d", seed)
					return
				}
			}
			t.Fatalf("%s never did what it claims in 60 runs", tc.name)
		})
	}
}

// TestForgedChainsAreRefused: the Dolev–Strong adversaries' chains with a
// repeated signer or a signer outside the cluster reach correct nodes and
// are refused as malformed bodies.
func TestForgedChainsAreRefused(t *testing.T) {
	for _, name := range []string{"ds-repeat", "ds-outsider"} {
		t.Run(name, func(t *testing.T) {
			cfg := dsConfig(dolevstrong.Spec, 5, 4, 2, broadcast.ModeDigest, named(t, DolevStrongBehaviours(), name))
			sum := sweep(t, cfg, 10)
			require.Zero(t, sum.Failed, "%v", sum.FirstFailure)
			assert.Positive(t, sum.Correct.Rejects["bad body"]+sum.Correct.Rejects["bad authenticator"], "%v", sum.Correct.Rejects)
		})
	}
}

// --- correct protocols pass ---

// TestAdversariesKeepCorrectProtocolsCorrect runs the correct protocols
// against the new adversaries only (f of them per run): PBFT at n = 4,
// Bracha at n = 7, Dolev–Strong at n = 5 with f = 4.
func TestAdversariesKeepCorrectProtocolsCorrect(t *testing.T) {
	seeds := uint64(simSeeds(t, 300))
	t.Run("pbft/n4", func(t *testing.T) {
		adv, _ := split(append(Behaviours(), PBFTBehaviours()...))
		cfg := pbftConfig(4, broadcast.ModeDigest, nil)
		cfg.Byzantine = []Assignment{{Count: 1, Behaviours: adv}}
		sum := sweep(t, cfg, seeds)
		require.Nil(t, sum.FirstFailure, "%d failed %v", sum.Failed, sum.ByProperty)
		assert.Zero(t, sum.Ended[EndBudget], "no run may exhaust its event budget")
		assert.Positive(t, sum.Deliveries)
	})
	t.Run("bracha/n7", func(t *testing.T) {
		adv, _ := split(Behaviours())
		cfg := Config{Spec: brachaSpec(0), N: 7, Mode: broadcast.ModeDigest, Net: HostileNetwork(), Pool: checkedPool(t),
			Byzantine: []Assignment{{Count: 2, Behaviours: adv}}, Workload: Workload{PayloadSize: 256}}
		sum := sweep(t, cfg, seeds)
		require.Nil(t, sum.FirstFailure, "%d failed %v", sum.Failed, sum.ByProperty)
		assert.Zero(t, sum.Ended[EndBudget], "no run may exhaust its event budget")
		require.NoError(t, cfg.Pool.CheckLeaks())
	})
	t.Run("dolevstrong/n5", func(t *testing.T) {
		adv, _ := split(append(DolevStrongBehaviours(), Behaviours()...))
		cfg := dsConfig(dolevstrong.Spec, 5, 4, 2, broadcast.ModeDigest, adv)
		sum := sweep(t, cfg, seeds)
		require.Nil(t, sum.FirstFailure, "%d failed %v", sum.Failed, sum.ByProperty)
		assert.Positive(t, sum.Deliveries)
	})
}

// --- a checker counts only if it has caught a bug ---

// caught compares, on one broken protocol, the failing runs of an
// adversary with those of the behaviours that existed before it.
func caught(t *testing.T, cfg Config, seeds uint64, adversary, earlier []BehaviourSpec, count int) (adv, old *Summary) {
	t.Helper()
	cfg.Byzantine = []Assignment{{Count: count, Behaviours: adversary}}
	adv = sweep(t, cfg, seeds)
	cfg.Byzantine = []Assignment{{Count: count, Behaviours: earlier}}
	old = sweep(t, cfg, seeds)
	t.Logf("%s: %d of %d runs fail %v; earlier behaviours: %d of %d %v", adversary[0].Name, adv.Failed, adv.Runs, adv.ByProperty, old.Failed, old.Runs, old.ByProperty)
	return adv, old
}

// TestDSRepeatCatchesChainEntryCounting: a verifier that counts chain
// entries instead of distinct signers (so a signer may repeat) loses
// agreement to ds-repeat, which shows some correct nodes another value with
// a chain of the coalition's signatures repeated up to the last round's
// length. No earlier behaviour ever sends such a chain.
func TestDSRepeatCatchesChainEntryCounting(t *testing.T) {
	all := append(DolevStrongBehaviours(), Behaviours()...)
	_, earlier := split(all)
	cfg := dsConfig(dsUnsafeSpec(true, false), 5, 4, 2, broadcast.ModeDigest, nil)
	adv, old := caught(t, cfg, 30, named(t, all, "ds-repeat"), earlier, 2)
	assert.Positive(t, adv.ByProperty["byzantine-broadcast/agreement"])
	assert.Zero(t, old.Failed)
}

// TestDSEdgeCatchesOneShortProofs: a node that accepts a proof one
// signature short of its round loses agreement to ds-edge (another value,
// f coalition signatures, at the last instant of round f+1) far more often
// than to the earlier behaviours, ds-late included.
func TestDSEdgeCatchesOneShortProofs(t *testing.T) {
	all := append(DolevStrongBehaviours(), Behaviours()...)
	_, earlier := split(all)
	cfg := dsConfig(dsUnsafeSpec(false, true), 7, 3, 3, broadcast.ModeDigest, nil)
	adv, old := caught(t, cfg, 30, named(t, all, "ds-edge"), earlier, 3)
	assert.Positive(t, adv.ByProperty["byzantine-broadcast/agreement"])
	assert.Greater(t, adv.Failed, 2*old.Failed)
}

// TestImpersonateCatchesBrachaTrustingTheOrigin: a Bracha that takes a
// SEND's origin from its header instead of the link breaks validity under
// impersonate, which no earlier behaviour provokes.
func TestImpersonateCatchesBrachaTrustingTheOrigin(t *testing.T) {
	_, earlier := split(Behaviours())
	cfg := Config{Spec: originTrustingSpec(), N: 7, Mode: broadcast.ModeDigest, Net: HostileNetwork()}
	adv, old := caught(t, cfg, 100, named(t, Behaviours(), "impersonate"), earlier, 2)
	assert.Positive(t, adv.Failed)
	assert.Zero(t, old.Failed)
}

// TestForgeVCCatchesPBFTTrustingViewChanges: a PBFT that believes the
// certificates and checkpoint proofs inside VIEW-CHANGEs enters views on a
// checkpoint nobody holds under pbft-forgevc and stops executing; the
// earlier behaviours sign no such VIEW-CHANGE and do not provoke it. The
// network partitions often before a GST of 2 s, so that views change.
func TestForgeVCCatchesPBFTTrustingViewChanges(t *testing.T) {
	_, earlier := split(append(Behaviours(), PBFTBehaviours()...))
	cfg := pbftConfig(4, broadcast.ModeDigest, nil)
	cfg.Spec = certTrustingSpec()
	cfg.Net.Partitions, cfg.Net.GST = 4, 2*time.Second
	cfg.Workload.PerNode, cfg.Workload.Spread = 10, 2*time.Second
	adv, old := caught(t, cfg, 100, named(t, PBFTBehaviours(), "pbft-forgevc"), earlier, 1)
	assert.Positive(t, adv.Failed)
	assert.Greater(t, adv.Failed, old.Failed)
}

// TestTwinsRoundsCatchesWeakPBFTQuorumsMoreOften: PBFT with quorums of 2f
// (UnsafeCommitQuorum) loses agreement under both Twins; the round-by-round
// partitions of twins-rounds find it in more runs than the fixed split of
// twins.
func TestTwinsRoundsCatchesWeakPBFTQuorumsMoreOften(t *testing.T) {
	cfg := pbftConfig(4, broadcast.ModeDigest, func(c *pbft.Config) { c.UnsafeCommitQuorum = 2 })
	adv, old := caught(t, cfg, 60, named(t, Behaviours(), "twins-rounds"), named(t, Behaviours(), "twins"), 1)
	assert.Positive(t, adv.ByProperty["smr/agreement"])
	assert.Greater(t, adv.Failed, old.Failed)
}

// TestEnumeratedPBFTTwinsScenarios enumerates every two-view Twins
// scenario at n = 4 (64: each view, every split of the three peers between
// the two twins, correct nodes partitioned alike before GST): the correct
// PBFT passes them all, and the one with quorums of 2f fails some.
func TestEnumeratedPBFTTwinsScenarios(t *testing.T) {
	scen := TwinsScenarios(4, 2, 0, true)
	require.Len(t, scen, 64)
	seen := map[string]bool{}
	for _, s := range scen {
		seen[s.String()] = true
	}
	require.Len(t, seen, 64, "scenarios repeat")
	run := func(tweak func(*pbft.Config)) (failed int) {
		for i, s := range scen {
			cfg := pbftConfig(4, broadcast.ModeDigest, tweak)
			cfg.Byzantine = []Assignment{{Count: 1, Behaviours: []BehaviourSpec{TwinsBehaviour("pbft-twins-enum", s)}}}
			res, err := Run(cfg, uint64(i+1))
			require.NoError(t, err)
			if tweak == nil {
				require.Empty(t, res.Violations, "scenario %s seed %d", s, i+1)
			}
			if res.Failed() {
				failed++
			}
		}
		return failed
	}
	require.Zero(t, run(nil))
	broken := run(func(c *pbft.Config) { c.UnsafeCommitQuorum = 2 })
	t.Logf("quorums of 2f: %d of %d scenarios fail", broken, len(scen))
	assert.Positive(t, broken)
}

func TestTwinsScenariosCount(t *testing.T) {
	for _, tc := range []struct{ n, rounds, want int }{{4, 1, 8}, {4, 2, 64}, {4, 3, 512}, {5, 2, 256}} {
		t.Run(fmt.Sprintf("n%d/r%d", tc.n, tc.rounds), func(t *testing.T) {
			s := TwinsScenarios(tc.n, tc.rounds, time.Millisecond, false)
			require.Len(t, s, tc.want)
			for _, x := range s {
				require.Len(t, x.Rounds, tc.rounds)
				for _, r := range x.Rounds {
					require.Len(t, r.Group, tc.n-1)
					require.Equal(t, [2]uint8{0, 1}, r.Twin)
				}
			}
		})
	}
}

// TestEquivocateEachCatchesBrachaKeepingTwoCandidates: a Bracha that keeps
// two candidate values per instance and counts votes for a third as votes
// for the second loses agreement when an origin shows three values
// (equivocate-each); two values (equivocate, twins) never reach a third,
// and random digests (wrongdigest) break validity and totality, not
// agreement.
func TestEquivocateEachCatchesBrachaKeepingTwoCandidates(t *testing.T) {
	_, earlier := split(Behaviours())
	cfg := Config{Spec: twoCandidatesSpec(), N: 7, Mode: broadcast.ModeFull, Net: HostileNetwork()}
	adv, old := caught(t, cfg, 60, named(t, Behaviours(), "equivocate-each"), earlier, 2)
	const agreement = "reliable-broadcast/agreement"
	assert.Positive(t, adv.ByProperty[agreement])
	assert.Greater(t, adv.ByProperty[agreement], 3*old.ByProperty[agreement])
}
