// Package mutant names the seeded bugs of onecast's mutation check: small,
// realistic one-line-class changes to Bracha, PBFT and Dolev–Strong
// (a quorum off by one, a view check or a digest check left out, the wrong
// certificate chosen) that the simulator must catch.
//
// Each protocol's Config has a Mutations field of type Set. It is a test-only
// switch, like UnsafeEchoQuorum or UnsafeCommitQuorum: the zero Set is the
// correct protocol, and every hook is a bit test on a value the replica
// holds, so an unmutated node pays one AND and one branch at each hook and
// parallel runs with different mutants share nothing.
//
// All lists every mutant with its protocol, what it breaks and where its
// hook is; package mutcheck runs them under the simulator, and
// `onecast mutate` reports, per mutant, how many seeds it takes to catch.
//
// A mutant must be able to break a property: an equivalent one (no
// execution tells it from the correct protocol) only measures the
// simulator's patience. One was found and replaced:
//
// pbft-cert-no-pp-sig (a VIEW-CHANGE's prepared certificate accepted
// without verifying its PRE-PREPARE signature) is equivalent, and was
// replaced by pbft-cert-dup-signer. Proof. The mutant still requires 2f
// PREPARE signatures for (c, s, d) from distinct replicas other than
// primary(c); at most f signers are faulty, so (f ≥ 1) some correct replica
// R signed PREPARE(c, s, d). A correct replica signs a PREPARE only in
// acceptPrePrepare, for a PRE-PREPARE(c, s, d) it received on an
// authenticated link from primary(c) (onPrePrepare rejects any other
// sender), whose batch hashes to d and which, if s lies in the range of
// NEW-VIEW(c), agrees with it; and it accepts one PRE-PREPARE per (c, s).
// PBFT's safety argument uses a certificate carried in a VIEW-CHANGE only
// through (1) no two certificates of one view name different digests for
// one sequence number and (2) a certificate's digest is the one NEW-VIEW(c)
// assigned to s. (2) is R's check. For (1): two certificates (c, s, d) and
// (c, s, d') have 2f + 2f signers among the 3f non-primaries, so they share
// f of them; if primary(c) is faulty, at most f−1 non-primaries are, so a
// shared signer is correct and accepted two PRE-PREPAREs for (c, s) —
// impossible; if primary(c) is correct, the certificates have correct
// signers that accepted PRE-PREPARE(c, s, d) and (c, s, d') from it — a
// correct primary sends one. The PRE-PREPARE signature is read nowhere
// else (O uses view and digest; a replica re-sends only certificates it
// built itself, with the signature it verified). So every VIEW-CHANGE the
// mutant accepts and the correct code refuses carries only certificates
// that facts (1) and (2) already cover, and the mutant accepts a superset
// of VIEW-CHANGEs, so it loses no NEW-VIEW: it can break neither safety nor
// liveness. (With MAC-authenticated PREPAREs, as in Castro & Liskov's BFT,
// the signature would matter; here PREPAREs carry signatures.)
//
// pbft-commits-any-view, also suspected, is not equivalent: the schedule
// of pbft's TestMutantCommitsAnyViewBreaksAgreement (four views, one
// preparer each, a stale COMMIT counted) breaks agreement with it. The
// mutation check reaches that schedule in its viewsplit configuration
// (sim.ScheduleViewSplit's relay template).
//
// Adding a mutant: a constant below, its entry in all, and one line in the
// protocol that consults Config.Mutations (Has for a check left out, Bit for
// a quorum off by one; a helper in the package's mutants.go when the change
// is more than an expression). Then `onecast mutate --only NAME`, and
// `onecast mutate --record sim/testdata/mutants.json` to commit its catch.
package mutant

import (
	"fmt"
	"strings"
)

// ID names one seeded bug. The zero ID is no mutant.
type ID uint8

// The mutants. Each constant is referenced at its hook in the protocol's
// source (TestEveryHookIsInItsFile checks that the Location file names it).
const (
	_ ID = iota

	// Bracha.
	BrachaEchoQuorum     // ECHO quorum ⌈(n+f+1)/2⌉ − 1
	BrachaReadyAmplify   // READY amplification on f READYs instead of f+1
	BrachaDeliverQuorum  // delivery on 2f READYs instead of 2f+1
	BrachaDoubleVote     // a second ECHO or READY from one node counted again
	BrachaSendFromAnyone // a SEND accepted from a node other than the origin
	BrachaPayloadDigest  // a message's payload stored without checking its digest
	BrachaFetchDigest    // a FETCH answer stored without checking its digest

	// PBFT.
	PBFTPrepareQuorum      // prepared on 2f−1 PREPAREs instead of 2f
	PBFTCommitQuorum       // committed on 2f COMMITs instead of 2f+1
	PBFTCheckpointWeak     // checkpoint stable on f+1 CHECKPOINTs instead of 2f+1
	PBFTViewChangeQuorum   // NEW-VIEW on 2f VIEW-CHANGEs instead of 2f+1
	PBFTJoinOnF            // view-change join rule on f VIEW-CHANGEs instead of f+1
	PBFTActWhileChanging   // keeps preparing and committing in a view it asked to leave
	PBFTNewViewBelowTarget // accepts NEW-VIEW below the view it asked for
	PBFTPrePrepareOldView  // accepts a PRE-PREPARE of a view it has left
	PBFTCommitsAnyView     // counts COMMITs of another view towards the quorum
	PBFTCertLowestView     // new view takes the lowest-view certificate per sequence number
	PBFTCertBestOnly       // new view takes certificates only from the VIEW-CHANGE with the highest checkpoint
	PBFTCertDupSigner      // a signer counted twice in a VIEW-CHANGE's checkpoint proof or prepared certificate
	PBFTBatchDigest        // PRE-PREPARE's batch digest trusted from the header, not computed
	PBFTRequestDigest      // request payload stored without checking its digest
	PBFTFetchDigest        // fetch answer stored without checking its digest
	PBFTNoNewViewRelay     // NEW-VIEW not handed to replicas still asking for its view

	// Dolev–Strong.
	DSRoundsF       // f rounds instead of f+1
	DSShortChain    // accepts a chain one signature shorter than the round
	DSNoRelayRoundF // does not relay what it accepts in round f
	DSDecideFirst   // decides the first value, not ⊥, when it accepted two
	DSOneValue      // accepts (and relays) only one value per instance
	DSNoOriginSig   // accepts a chain that lacks the origin's signature
	DSPayloadDigest // value payload (relay or fetch answer) stored without checking its digest
	numIDs
)

// Set is a set of mutants, one bit per ID. The zero Set is the correct
// protocol.
type Set uint64

// Of returns the set of ids.
func Of(ids ...ID) Set {
	var s Set
	for _, id := range ids {
		s |= 1 << id
	}
	return s
}

// Has reports whether id is in s.
func (s Set) Has(id ID) bool { return s&(1<<id) != 0 }

// Bit is 1 if id is in s, else 0: the off-by-one of a quorum hook.
func (s Set) Bit(id ID) int { return int(s>>id) & 1 }

// Mutant describes one seeded bug.
type Mutant struct {
	ID ID
	// Name is the stable identifier used on the command line and in
	// testdata ("pbft-commit-quorum").
	Name string
	// Protocol is the simulator's name of the protocol ("bracha", "pbft",
	// "dolevstrong").
	Protocol string
	// Hook is the Go name of the ID constant, as the hook spells it.
	Hook string
	// Description says in one line what the bug does.
	Description string
	// Location is the file and function of the hook.
	Location string
}

// Set returns the set holding only m.
func (m Mutant) Set() Set { return Of(m.ID) }

var all = []Mutant{
	{BrachaEchoQuorum, "bracha-echo-quorum", "bracha", "BrachaEchoQuorum", "ECHO quorum ⌈(n+f+1)/2⌉ lowered by one", "bracha/node.go New"},
	{BrachaReadyAmplify, "bracha-ready-amplify", "bracha", "BrachaReadyAmplify", "sends READY after f READYs instead of f+1", "bracha/node.go New"},
	{BrachaDeliverQuorum, "bracha-deliver-quorum", "bracha", "BrachaDeliverQuorum", "delivers on 2f READYs instead of 2f+1", "bracha/node.go New"},
	{BrachaDoubleVote, "bracha-double-vote", "bracha", "BrachaDoubleVote", "counts a second ECHO or READY from the same node", "bracha/node.go onProtocol"},
	{BrachaSendFromAnyone, "bracha-send-from-anyone", "bracha", "BrachaSendFromAnyone", "accepts a SEND from a node other than the instance's origin", "bracha/node.go onProtocol"},
	{BrachaPayloadDigest, "bracha-payload-digest", "bracha", "BrachaPayloadDigest", "stores a SEND/ECHO/READY payload without checking it hashes to the digest", "bracha/node.go onProtocol"},
	{BrachaFetchDigest, "bracha-fetch-digest", "bracha", "BrachaFetchDigest", "stores a FETCH answer without checking it hashes to the digest", "bracha/fetch.go onPayload"},

	{PBFTPrepareQuorum, "pbft-prepare-quorum", "pbft", "PBFTPrepareQuorum", "prepared on 2f−1 matching PREPAREs instead of 2f", "pbft/normal.go checkSlot"},
	{PBFTCommitQuorum, "pbft-commit-quorum", "pbft", "PBFTCommitQuorum", "committed on 2f matching COMMITs instead of 2f+1", "pbft/node.go commitQuorum"},
	{PBFTCheckpointWeak, "pbft-checkpoint-weak", "pbft", "PBFTCheckpointWeak", "checkpoint stable on f+1 matching CHECKPOINTs instead of 2f+1", "pbft/checkpoint.go recordCheckpoint"},
	{PBFTViewChangeQuorum, "pbft-viewchange-quorum", "pbft", "PBFTViewChangeQuorum", "NEW-VIEW sent and accepted on 2f VIEW-CHANGEs instead of 2f+1", "pbft/viewchange.go maybeNewView, onNewView"},
	{PBFTJoinOnF, "pbft-join-f", "pbft", "PBFTJoinOnF", "joins a view change on f VIEW-CHANGEs for higher views instead of f+1", "pbft/viewchange.go onViewChange"},
	{PBFTActWhileChanging, "pbft-act-while-changing", "pbft", "PBFTActWhileChanging", "keeps accepting PRE-PREPAREs and committing in a view after sending VIEW-CHANGE for the next", "pbft/normal.go onPrePrepare, checkSlot"},
	{PBFTNewViewBelowTarget, "pbft-newview-below-target", "pbft", "PBFTNewViewBelowTarget", "accepts NEW-VIEW for a view below the one it asked for (TOCS §4.4)", "pbft/viewchange.go acceptsNewView"},
	{PBFTPrePrepareOldView, "pbft-preprepare-old-view", "pbft", "PBFTPrePrepareOldView", "accepts a PRE-PREPARE of a view it has left", "pbft/normal.go onPrePrepare"},
	{PBFTCommitsAnyView, "pbft-commits-any-view", "pbft", "PBFTCommitsAnyView", "counts COMMITs of other views for the same digest towards the commit quorum", "pbft/normal.go checkSlot"},
	{PBFTCertLowestView, "pbft-cert-lowest-view", "pbft", "PBFTCertLowestView", "new view orders, per sequence number, the prepared certificate of the lowest view", "pbft/viewchange.go continueNewView"},
	{PBFTCertBestOnly, "pbft-cert-best-only", "pbft", "PBFTCertBestOnly", "new view ignores certificates of VIEW-CHANGEs other than the one with the highest stable checkpoint", "pbft/viewchange.go continueNewView"},
	{PBFTCertDupSigner, "pbft-cert-dup-signer", "pbft", "PBFTCertDupSigner", "counts a signer twice in a VIEW-CHANGE's checkpoint proof or prepared certificate", "pbft/viewchange.go checkVotes"},
	{PBFTBatchDigest, "pbft-batch-digest", "pbft", "PBFTBatchDigest", "takes a PRE-PREPARE's batch digest from its header instead of hashing the batch", "pbft/normal.go onPrePrepare"},
	{PBFTRequestDigest, "pbft-request-digest", "pbft", "PBFTRequestDigest", "stores a request's payload without checking it hashes to the request digest", "pbft/normal.go onRequest"},
	{PBFTFetchDigest, "pbft-fetch-digest", "pbft", "PBFTFetchDigest", "stores a fetch answer without checking it hashes to the wanted digest", "pbft/fetch.go onPayload"},
	{PBFTNoNewViewRelay, "pbft-no-newview-relay", "pbft", "PBFTNoNewViewRelay", "does not hand the NEW-VIEW of a view it entered to replicas still asking for that view (liveness; Castro's thesis §5.2)", "pbft/viewchange.go relayNewView"},

	{DSRoundsF, "ds-rounds-f", "dolevstrong", "DSRoundsF", "runs f rounds instead of f+1", "dolevstrong/protocol.go New"},
	{DSShortChain, "ds-short-chain", "dolevstrong", "DSShortChain", "accepts a value whose chain is one signature shorter than the round", "dolevstrong/protocol.go tryAccept"},
	{DSNoRelayRoundF, "ds-no-relay-round-f", "dolevstrong", "DSNoRelayRoundF", "does not relay a value it accepts in round f (only round f+1 should not)", "dolevstrong/protocol.go tryAccept"},
	{DSDecideFirst, "ds-decide-first", "dolevstrong", "DSDecideFirst", "decides the first accepted value instead of ⊥ when it accepted two", "dolevstrong/protocol.go decide"},
	{DSOneValue, "ds-one-value", "dolevstrong", "DSOneValue", "accepts and relays only the first value of an instance", "dolevstrong/protocol.go tryAccept"},
	{DSNoOriginSig, "ds-no-origin-sig", "dolevstrong", "DSNoOriginSig", "accepts a chain without the origin's signature", "dolevstrong/protocol.go onRelay"},
	{DSPayloadDigest, "ds-payload-digest", "dolevstrong", "DSPayloadDigest", "stores a value's payload (relay or fetch answer) without checking it hashes to the digest", "dolevstrong/protocol.go hold"},
}

// All returns every mutant, in ID order.
func All() []Mutant { return append([]Mutant(nil), all...) }

// Lookup returns the mutant named name.
func Lookup(name string) (Mutant, error) {
	for _, m := range all {
		if m.Name == name {
			return m, nil
		}
	}
	names := make([]string, len(all))
	for i, m := range all {
		names[i] = m.Name
	}
	return Mutant{}, fmt.Errorf("mutant: no mutant %q (have %s)", name, strings.Join(names, ", "))
}
