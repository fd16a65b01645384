package pbft

import (
	"slices"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/internal/mutant"
)

// Fetching payloads by digest. Later rounds carry only digests, so a
// replica sometimes lacks bytes that it must hold: a batch it committed, a
// request in a batch, a VIEW-CHANGE named by a NEW-VIEW, a checkpoint's
// state. It asks ONE replica at a time — first those known to hold the
// bytes (the replicas that voted for the digest, the VIEW-CHANGE's sender,
// the checkpoint's signers), then the others in turn — and moves on to the
// next when no answer comes within a timeout that doubles with each try.
// Asking everyone on every tick, as a first version did, multiplied every
// payload by n−1 on the wire and let one slow payload flood the cluster.
// Whatever arrives is hashed against the digest before anything keeps it
// (PayloadStore.Put), so a wrong answer costs only the try.
//
// Answers are a service to peers and have a budget: each peer may take
// Config.FetchAnswerRate bytes per second of answers (a token bucket over
// logical time, with a burst of one second's worth; one answer may overdraw
// it, so a state blob larger than the burst still goes out, and the peer
// then waits). A FETCH beyond the budget is dropped and counted
// (Stats.FetchRefused); a correct peer, which asks one replica at a time
// and backs off, stays far below it.

// fetchState is one wanted digest: who to ask, in order, and when to move on.
type fetchState struct {
	sources []broadcast.NodeID
	next    int           // index in sources of the replica to ask next
	due     time.Duration // when the current ask times out
	tries   int
}

// answerBucket is a peer's budget of fetch answers, in bytes.
type answerBucket struct {
	tokens float64
	at     time.Duration
}

// fetchTimeout is how long a try waits before asking the next replica.
func (nd *Node) fetchTimeout(tries int) time.Duration {
	return nd.cfg.Timeout / 2 << min(tries, 4)
}

// fetch asks for the bytes of d, first from the replicas in holders, then
// from every other replica in turn (holders is borrowed).
func (nd *Node) fetch(d broadcast.Digest, holders ...broadcast.NodeID) {
	if _, ok := nd.wanted[d]; ok {
		return
	}
	fs := &fetchState{sources: make([]broadcast.NodeID, 0, nd.n-1)}
	for _, h := range holders {
		if h != nd.self && int(h) < nd.n && !slices.Contains(fs.sources, h) {
			fs.sources = append(fs.sources, h)
		}
	}
	// The rest in a per-replica rotation, so that the replicas do not all
	// turn to the same one first.
	for k := 1; k < nd.n; k++ {
		r := broadcast.NodeID((int(nd.self) + k) % nd.n)
		if !slices.Contains(fs.sources, r) {
			fs.sources = append(fs.sources, r)
		}
	}
	nd.wanted[d] = fs
	nd.askNext(d, fs)
	nd.armTimer()
}

// askNext sends FETCH(d) to the next source and sets its timeout.
func (nd *Node) askNext(d broadcast.Digest, fs *fetchState) {
	if len(fs.sources) == 0 {
		return
	}
	to := fs.sources[fs.next%len(fs.sources)]
	fs.next++
	fs.due = nd.now + nd.fetchTimeout(fs.tries)
	fs.tries++
	nd.stats.FetchesSent++
	nd.send(to, broadcast.TypeFetch, nd.view, 0, d, nil)
}

// retryFetches moves every wanted digest whose try timed out on to its next
// source, and forgets those now held. It reports whether any is still
// wanted.
func (nd *Node) retryFetches() bool {
	if len(nd.wanted) == 0 {
		return false
	}
	ds := make([]broadcast.Digest, 0, len(nd.wanted))
	for d := range nd.wanted {
		ds = append(ds, d)
	}
	slices.SortFunc(ds, func(a, b broadcast.Digest) int { return slices.Compare(a[:], b[:]) })
	for _, d := range ds {
		if nd.store.Has(d) {
			delete(nd.wanted, d)
			continue
		}
		if fs := nd.wanted[d]; nd.now >= fs.due {
			nd.askNext(d, fs)
		}
	}
	return len(nd.wanted) > 0
}

// holdersOf returns the replicas that voted, in s's view, for s's batch —
// they accepted it, so they hold the batch and its requests — with the
// view's primary first.
func (nd *Node) holdersOf(s *slot) []broadcast.NodeID {
	out := []broadcast.NodeID{nd.primary(s.view)}
	for _, vs := range [][]vote{s.commits, s.prepares} {
		for i, v := range vs {
			if v.ok && v.view == s.view && v.d == s.digest && !slices.Contains(out, broadcast.NodeID(i)) {
				out = append(out, broadcast.NodeID(i))
			}
		}
	}
	return out
}

func (nd *Node) onFetch(from broadcast.NodeID, m *broadcast.Message) error {
	b, ok := nd.store.Get(m.Digest)
	if !ok {
		return nil
	}
	if !nd.spendAnswer(from, b.Len()) {
		b.Release()
		nd.stats.FetchRefused++
		nd.stats.FetchRefusedBytes += uint64(b.Len())
		return nil
	}
	nd.stats.FetchAnswered++
	nd.stats.FetchAnsweredBytes += uint64(b.Len())
	out := nd.send(from, broadcast.TypePayload, nd.view, 0, m.Digest, nil)
	out.SetPayload(b, m.Digest)
	return nil
}

// spendAnswer takes size bytes from from's answer budget, reporting whether
// the budget allowed the answer.
func (nd *Node) spendAnswer(from broadcast.NodeID, size int) bool {
	rate := float64(nd.cfg.FetchAnswerRate)
	bk := &nd.answers[from]
	if bk.at == 0 && bk.tokens == 0 {
		bk.tokens, bk.at = rate, nd.now // a full burst to begin with
	}
	bk.tokens = min(rate, bk.tokens+rate*(nd.now-bk.at).Seconds())
	bk.at = nd.now
	if bk.tokens <= 0 {
		return false
	}
	bk.tokens -= float64(size)
	return true
}

func (nd *Node) onPayload(from broadcast.NodeID, m *broadcast.Message) error {
	d := m.Digest
	if _, ok := nd.wanted[d]; !ok {
		if m.Flags&broadcast.HasPayload != 0 {
			nd.store.CountDuplicate(m.Payload.Len())
		}
		return nil
	}
	if m.Flags&broadcast.HasPayload == 0 {
		return broadcast.Reject(broadcast.ReasonLength, "pbft: payload message without payload")
	}
	if err := nd.put(mutant.PBFTFetchDigest, from, d, m.Payload); err != nil {
		return err
	}
	delete(nd.wanted, d)
	nd.progress()
	return nil
}

// progress retries everything that waits for a payload.
func (nd *Node) progress() {
	nd.continueTransfer()
	nd.continueNewView()
	nd.reissue()
	nd.retryParked()
	nd.executeReady()
}
