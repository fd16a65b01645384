package link

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/onecast/onecast/broadcast"
)

// RateInterval is how often the link re-derives each peer's receive rate
// from what its peers sent in the last interval (Config.RateFactor).
const RateInterval = 100 * time.Millisecond

// RateBurst is the span of traffic a peer's token buckets hold: a peer may
// send this long's worth of its rate at once. It is longer than
// RateInterval so that traffic that starts at once from every peer passes
// at full speed until the rates follow it.
const RateBurst = time.Second

// bucket is a token bucket: rate tokens per second, at most burst of them
// saved up. A rate of 0 or less means no limit.
type bucket struct {
	rate, burst, tokens float64
	at                  time.Time
}

// set changes the rate (tokens per second); the burst follows it
// (RateBurst of traffic, at least least tokens).
func (b *bucket) set(rate, least float64) {
	b.rate = rate
	b.burst = max(rate*RateBurst.Seconds(), least)
	b.tokens = min(b.tokens, b.burst)
}

// refill adds the tokens earned since the last refill.
func (b *bucket) refill(now time.Time) {
	if b.at.IsZero() {
		b.tokens, b.at = b.burst, now
		return
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.at = now
	}
}

// rateLimit is a peer's receive budget: one token bucket for messages and
// one for bytes, and what the peer offered in the current interval (from
// which the next interval's rates are derived).
type rateLimit struct {
	msgs, bytes bucket
	// offered in the current RateInterval: frames filed in the receive
	// window, admitted yet or not, so that a peer held back by its budget
	// still shows its demand
	offeredMsgs, offeredBytes float64
	// waiting is the sequence number of the frame that found the bucket
	// empty (0: none), so that each held-back frame counts once.
	waiting uint64
}

// frameCost returns what frame f (a link data frame, link header
// included) costs a peer's budget: one message if it starts a message
// (a whole message, a first fragment, the first piece of a spilt prefix;
// not a continuation or a later piece), and its bytes. It reads two
// bytes at fixed offsets: nothing is decoded before the budget admits it.
func frameCost(f []byte) (msgs, bytes float64) {
	bytes = float64(len(f))
	switch Kind(f[2]) {
	case KindPrefix:
		if len(f) >= HeaderSize+PieceHeaderSize && binary.LittleEndian.Uint32(f[HeaderSize+4:]) != 0 {
			return 0, bytes
		}
	case KindData:
		if at := HeaderSize + broadcast.FlagsOffset; len(f) > at && broadcast.Flags(f[at])&broadcast.Fragment != 0 {
			return 0, bytes
		}
	}
	return 1, bytes
}

// admit charges frame f, next in order from the peer, to its budget at
// now. It reports false, and charges nothing, when the budget has no
// message (or no byte) left: the frame waits in the reorder window, and
// the peer, unacknowledged, stops sending. The byte bucket may go into
// debt by one frame, so that a frame larger than the burst still passes.
// Under p.mu.
func (p *peer) admit(f []byte, seq uint64, now time.Time) bool {
	r := &p.rate
	if r.msgs.rate <= 0 {
		return true
	}
	msgs, bytes := frameCost(f)
	r.msgs.refill(now)
	r.bytes.refill(now)
	if r.msgs.tokens < msgs || r.bytes.tokens <= 0 {
		if r.waiting != seq {
			r.waiting = seq
			p.l.rateDeferred.Add(1)
			p.rateDeferred++
			p.refused(now, "link: peer over its receive rate, frames held back (the peer's window closes)",
				"msgs_per_s", int(r.msgs.rate), "bytes_per_s", int(r.bytes.rate))
		}
		return false
	}
	r.msgs.tokens -= msgs
	r.bytes.tokens -= bytes
	return true
}

// offered counts frame f, new in the peer's receive window, as the
// peer's demand. Under p.mu.
func (p *peer) offered(f []byte) {
	msgs, bytes := frameCost(f)
	p.rate.offeredMsgs += msgs
	p.rate.offeredBytes += bytes
}

// rateFloor is the least receive rate of one peer: its fair share, of
// the N-1 peers, of Config.RecvRate and Config.RecvByteRate.
func (c *Config) rateFloor() (msgs, bytes float64) {
	peers := float64(max(1, c.N-1))
	return float64(c.RecvRate) / peers, float64(c.RecvByteRate) / peers
}

// setRates derives every peer's receive rates from what the peers
// offered over the last interval of length d: each peer may send
// RateFactor times what the median peer offered, and never less than its
// fair share of the node's configured rates (rateFloor). The median is
// at most what some correct peer sent as long as fewer than half the
// peers are faulty, so faulty peers cannot raise each other's limits;
// the floor keeps a correct peer's room when the others are idle.
// It takes each peer's mu in turn.
func (l *Link) setRates(d time.Duration) {
	if l.cfg.RecvRate <= 0 || d <= 0 {
		return
	}
	msgs := make([]float64, 0, len(l.peers))
	bytes := make([]float64, 0, len(l.peers))
	for _, p := range l.peers {
		if p == nil {
			continue
		}
		p.mu.Lock()
		msgs = append(msgs, p.rate.offeredMsgs/d.Seconds())
		bytes = append(bytes, p.rate.offeredBytes/d.Seconds())
		p.rate.offeredMsgs, p.rate.offeredBytes = 0, 0
		p.mu.Unlock()
	}
	floorMsgs, floorBytes := l.cfg.rateFloor()
	rm := max(floorMsgs, l.cfg.RateFactor*median(msgs))
	rb := max(floorBytes, l.cfg.RateFactor*median(bytes))
	for _, p := range l.peers {
		if p == nil {
			continue
		}
		p.mu.Lock()
		p.rate.msgs.set(rm, rateBurstMsgs)
		p.rate.bytes.set(rb, float64(rateBurstMsgs*l.mtu))
		p.mu.Unlock()
	}
}

// rateBurstMsgs is the least burst of a peer's message bucket (and, in
// MTU-sized frames, of its byte bucket).
const rateBurstMsgs = 64

// median returns the lower median of v (the middle of an odd count, the
// smaller of the two middles of an even one); it reorders v.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[(len(v)-1)/2]
}
