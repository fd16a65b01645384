package bracha

import (
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/internal/mutant"
)

// How a payload is fetched — the one place that decides it.
//
// A node fetches only when it must act on a digest whose payload it lacks:
// 2f+1 READYs name a candidate it holds no payload for, and the SEND has not
// come within FetchDelay; or the SEND came without its payload (cut in the
// kernel because the digest was held, and evicted before the SEND was
// processed), so the node cannot echo: it fetches the SEND's payload, the
// origin first among the vouchers, and echoes when it arrives. At most MaxFetching instances fetch at once. It
// asks one peer at a time, never everyone (a naive pull costs O(n²|M|)), choosing among the
// nodes that vouched for the digest: first those that sent ECHO (a correct
// one had the SEND, so holds the payload), then those that sent READY.
// Among those it prefers the peers with the fewest strikes (a strike is a
// FETCH of this node that the peer left unanswered past FetchTimeout or
// answered with bytes that miss the digest), and breaks ties by an order
// rotated by the node's ID and the instance, so that requesters and
// concurrent instances spread over the holders. A peer that fails is passed
// over for the next at once; after the last, the round starts again, with
// the timeout doubled (up to 64 times), so that a node that fell far behind
// does not flood its peers. The
// first PAYLOAD whose bytes hash to the digest wins, from any peer asked in
// any round (an answer may come after its timeout); later ones are counted
// as duplicates, and a PAYLOAD from a peer never asked is never stored.
//
// On the serving side a peer is answered at most maxServes times per
// instance, and the
// bytes sent to each peer go through a token bucket (ServeRate, ServeBurst):
// a Byzantine peer cannot make the node serve more than the payloads it
// holds, nor faster than the rate.

// startFetch marks in as wanting its target's payload. The first FETCH
// goes out after FetchDelay, when a slot is free.
// Bits of instance.asked.
const (
	askedRound uint8 = 1 << iota // asked in the current round
	askedEver                    // asked in some round: its answer is welcome
)

// maxServes is how often a peer is sent one instance's payload: more than
// once, for an answer that came after the requester had moved on and
// cleared its round, but a bounded number of times.
const maxServes = 4

// fetchCand is the candidate an instance fetches: the one to deliver, once
// known, otherwise the one its SEND named.
func fetchCand(in *instance) int {
	if in.target >= 0 {
		return in.target
	}
	return in.sendCand
}

func (nd *Node) startFetch(in *instance) {
	if in.fetching {
		return
	}
	in.fetching = true
	in.lastAsked = -1
	nd.fetching = append(nd.fetching, in)
	if nd.cfg.FetchDelay > 0 {
		in.fetchDeadline = nd.now + nd.cfg.FetchDelay
		return
	}
	in.fetchDeadline = nd.now
	nd.activate(in)
}

// activate gives in a fetch slot and sends its first FETCH, if a slot is
// free.
func (nd *Node) activate(in *instance) bool {
	if nd.activeFetches >= nd.cfg.MaxFetching {
		return false
	}
	in.fetchActive = true
	nd.activeFetches++
	nd.askNext(in)
	return true
}

func (nd *Node) stopFetch(in *instance) {
	if !in.fetching {
		return
	}
	in.fetching = false
	for i, x := range nd.fetching {
		if x == in {
			last := len(nd.fetching) - 1
			nd.fetching[i] = nd.fetching[last]
			nd.fetching[last] = nil
			nd.fetching = nd.fetching[:last]
			break
		}
	}
	if in.fetchActive {
		in.fetchActive = false
		nd.activeFetches--
		// Hand the slot on to an instance whose delay is over.
		for _, x := range nd.fetching {
			if !x.fetchActive && x.fetchDeadline <= nd.now {
				nd.activate(x)
				break
			}
		}
	}
}

// tickFetches retries FETCHes that timed out (a strike for the peer that
// did not answer) and starts those whose delay is over, within the slots.
func (nd *Node) tickFetches() {
	for _, in := range nd.fetching {
		switch {
		case in.fetchDeadline > nd.now:
		case in.fetchActive:
			nd.strike(int(in.lastAsked))
			nd.stats.FetchRetries++
			nd.askNext(in)
		default:
			nd.activate(in)
		}
	}
}

// nextPeer picks the next voucher of the target candidate not yet asked in
// this round: ECHO voters before READY voters, and among those the peer
// with the fewest strikes (unanswered or wrong answers to this node's
// earlier FETCHes), so that a Byzantine voucher is asked first at most a
// few times; ties go round from a point that depends on the node and the
// instance, so concurrent fetches spread over the vouchers. It returns -1
// when none is left.
func (nd *Node) nextPeer(in *instance) int {
	fc := fetchCand(in)
	want := int16(fc + 1)
	// The origin vouches for the candidate its SEND named.
	origin := -1
	if fc == in.sendCand {
		origin = int(in.id.Origin)
	}
	for pass := range 2 {
		votes := in.echoVote
		if pass == 1 {
			votes = in.readyVote
		}
		best := -1
		start := int(nd.self) + int(in.id.Origin) + int(in.id.Seq%uint64(nd.n))
		for k := range nd.n {
			j := (start + k) % nd.n
			if j == int(nd.self) {
				continue
			}
			vouched := votes[j] == want || pass == 0 && j == origin
			if vouched && in.asked[j]&askedRound == 0 && (best < 0 || nd.strikes[j] < nd.strikes[best]) {
				best = j
			}
		}
		if best >= 0 {
			return best
		}
	}
	return -1
}

// askNext sends one FETCH for the target candidate to the next voucher.
func (nd *Node) askNext(in *instance) {
	peer := nd.nextPeer(in)
	if peer < 0 {
		for i := range in.asked { // a new round over the same vouchers, slower
			in.asked[i] &^= askedRound
		}
		in.fetchRounds++
		peer = nd.nextPeer(in)
	}
	in.fetchDeadline = nd.now + nd.cfg.FetchTimeout<<min(in.fetchRounds, 6)
	in.lastAsked = int16(peer)
	if peer < 0 {
		return // nobody vouched but this node: wait for votes
	}
	in.asked[peer] |= askedRound | askedEver
	var m broadcast.Message
	nd.header(&m, broadcast.TypeFetch, in, &in.cands[fetchCand(in)])
	nd.out = append(nd.out, broadcast.Outbound{To: broadcast.NodeID(peer), Msg: m})
	nd.stats.FetchesSent++
}

// strike records that peer failed a FETCH: no answer in time, or a wrong
// one.
func (nd *Node) strike(peer int) {
	if peer >= 0 && nd.strikes[peer] < 1<<31 {
		nd.strikes[peer]++
	}
}

// onPayload accepts an answer to one of this node's FETCHes.
func (nd *Node) onPayload(from broadcast.NodeID, m *broadcast.Message) error {
	if !hasPayload(m) {
		return broadcast.Reject(broadcast.ReasonLength, "PAYLOAD for %v without payload", m.Instance)
	}
	in := nd.insts[m.Instance]
	if in == nil || !in.fetching || in.asked[from]&askedEver == 0 || fetchCand(in) < 0 {
		nd.stats.Unsolicited++
		nd.store.CountDuplicate(m.Payload.Len())
		return nil
	}
	fc := fetchCand(in)
	c := &in.cands[fc]
	if c.digest != m.Digest || c.plen != m.PayloadLen || c.layout != m.Round {
		nd.stats.Unsolicited++
		nd.store.CountDuplicate(m.Payload.Len())
		return nil
	}
	if err := nd.put(mutant.BrachaFetchDigest, from, m.Digest, m.Payload); err != nil {
		nd.stats.BadPayloads++
		nd.stats.FetchRetries++
		nd.strike(int(from))
		nd.askNext(in)
		return err
	}
	nd.stats.PayloadsFetched++
	if fc != in.target {
		// The SEND's payload, fetched to echo it. Echoed, or held and
		// refused by the origin's quota: fetching again would not help.
		// Evicted at once by the store's quota: the timeout retries.
		echoed := nd.echoSend(in)
		if echoed || nd.store.Has(c.digest) {
			nd.stopFetch(in)
		}
		if echoed {
			nd.progress(in, fc)
		}
		return nil
	}
	if !nd.pin(in, in.target) {
		return nil // evicted at once by a quota: the timeout retries
	}
	nd.deliver(in)
	return nil
}

// onFetch answers a FETCH, within the limits.
func (nd *Node) onFetch(from broadcast.NodeID, m *broadcast.Message) {
	in := nd.insts[m.Instance]
	ci := -1
	if in != nil {
		ci = in.find(m.Digest, m.PayloadLen, m.Round)
	}
	if ci < 0 || !in.cands[ci].pinned {
		nd.stats.ServeUnknown++
		return
	}
	c := &in.cands[ci]
	if in.served[from] >= maxServes || !nd.spend(from, int64(c.plen)) {
		nd.stats.ServeDenied++
		return
	}
	b, ok := nd.store.Get(c.digest)
	if !ok {
		nd.stats.ServeUnknown++
		return
	}
	in.served[from]++
	var out broadcast.Message
	nd.header(&out, broadcast.TypePayload, in, c)
	out.SetPayload(b, c.digest)
	nd.out = append(nd.out, broadcast.Outbound{To: from, Msg: out})
	nd.stats.Served++
	nd.stats.ServedBytes += uint64(c.plen)
}

// spend takes n bytes from peer's token bucket, refilled at ServeRate per
// second of logical time up to ServeBurst.
func (nd *Node) spend(peer broadcast.NodeID, n int64) bool {
	b := &nd.serve[peer]
	if dt := nd.now - b.last; dt > 0 {
		refill := int64(float64(nd.cfg.ServeRate) * dt.Seconds())
		b.tokens = min(nd.cfg.ServeBurst, b.tokens+refill)
		b.last = nd.now
	}
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}
