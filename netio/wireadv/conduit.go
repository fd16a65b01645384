package wireadv

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/link"
)

// Offsets of the link header fields the conduit reads or rewrites (see
// link.Header).
const (
	offKind     = 2
	offSrcEpoch = 8
	offDstEpoch = 16
	offSeq      = 24
	offAck      = 32 // Ack and SACK: 16 bytes up to link.HeaderSize
	// maxRecorded is how many datagrams replay keeps.
	maxRecorded = 512
)

// peerState is what the conduit learnt of a peer from the headers its
// node sent: the epochs a frame must carry to reach the peer's link, and
// the last data sequence number.
type peerState struct {
	src, dst, seq uint64
}

type recorded struct {
	to broadcast.NodeID
	b  []byte
}

// conduit is the Byzantine node's conduit: the real one, with the
// behaviour's changes on the way out and its injector.
type conduit struct {
	netio.Conduit
	a *Adversary

	mu       sync.Mutex
	peers    map[broadcast.NodeID]peerState
	recorded []recorded
	rnext    int
	rnd      rng

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newConduit(a *Adversary, cd netio.Conduit) *conduit {
	c := &conduit{Conduit: cd, a: a, peers: map[broadcast.NodeID]peerState{}, rnd: rng(a.opts.Seed*3 | 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	if a.opts.Behaviour == Garbage || a.opts.Behaviour == Replay {
		go c.inject()
	} else {
		close(c.done)
	}
	return c
}

// Send applies the behaviour to one outgoing datagram: partial-large keeps
// continuation frames back, ack-withhold zeroes the ack state, replay
// records data frames.
func (c *conduit) Send(to broadcast.NodeID, hdr []byte, body bufpool.Buf) error {
	if len(hdr) < link.HeaderSize || hdr[0] != link.Magic {
		return c.Conduit.Send(to, hdr, body)
	}
	kind := link.Kind(hdr[offKind])
	c.mu.Lock()
	ps := peerState{src: binary.LittleEndian.Uint64(hdr[offSrcEpoch:]), dst: binary.LittleEndian.Uint64(hdr[offDstEpoch:]),
		seq: c.peers[to].seq}
	if kind == link.KindData || kind == link.KindPrefix {
		ps.seq = max(ps.seq, binary.LittleEndian.Uint64(hdr[offSeq:]))
	}
	c.peers[to] = ps
	c.mu.Unlock()
	switch c.a.opts.Behaviour {
	case PartialLarge:
		if kind == link.KindData && isContinuation(hdr, body) {
			c.a.dropped.Add(1)
			return nil // as if sent: the link waits for an ack that never comes
		}
	case AckWithhold:
		out := append([]byte(nil), hdr...)
		clear(out[offAck:link.HeaderSize])
		c.a.withheld.Add(1)
		return c.Conduit.Send(to, out, body)
	case Replay:
		if kind == link.KindData {
			c.record(to, hdr, body)
		}
	}
	return c.Conduit.Send(to, hdr, body)
}

// isContinuation reports whether the onecast frame after the link header
// (in hdr, or at the start of body) is a continuation fragment.
func isContinuation(hdr []byte, body bufpool.Buf) bool {
	at := link.HeaderSize + broadcast.FlagsOffset
	if len(hdr) > at {
		return broadcast.Flags(hdr[at])&broadcast.Fragment != 0
	}
	at -= len(hdr)
	if body.Len() <= at {
		return false
	}
	var b [1]byte
	body.Slice(at, 1).CopyTo(b[:])
	return broadcast.Flags(b[0])&broadcast.Fragment != 0
}

// record keeps a copy of one data datagram for replay.
func (c *conduit) record(to broadcast.NodeID, hdr []byte, body bufpool.Buf) {
	b := make([]byte, 0, len(hdr)+body.Len())
	b = append(b, hdr...)
	for seg := range body.Segments() {
		b = append(b, seg...)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.recorded) < maxRecorded {
		c.recorded = append(c.recorded, recorded{to: to, b: b})
		return
	}
	c.recorded[c.rnext] = recorded{to: to, b: b}
	c.rnext = (c.rnext + 1) % maxRecorded
}

// inject sends garbage or replayed datagrams, PerTick each millisecond
// while the load window is open, until Close.
func (c *conduit) inject() {
	defer close(c.done)
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if !c.a.active.Load() {
			continue
		}
		n := c.a.take(c.a.opts.PerTick, &c.a.datagrams)
		sent := 0
		for range n {
			to, b, ok := c.next()
			if !ok {
				break
			}
			if len(b) > c.MTU() {
				b = b[:c.MTU()]
			}
			if c.Conduit.Send(to, b, bufpool.Buf{}) == nil {
				sent++
			}
		}
		if n > sent {
			c.a.datagrams.Add(^uint64(n - sent - 1)) // give back what was not sent
		}
		_ = c.Conduit.Flush()
	}
}

// next builds the next datagram to inject and its destination.
func (c *conduit) next() (broadcast.NodeID, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.a.opts.Behaviour == Replay {
		if len(c.recorded) == 0 {
			return 0, nil, false
		}
		r := c.recorded[int(c.rnd.next()%uint64(len(c.recorded)))]
		to := r.to
		if c.rnd.next()%4 == 0 { // now and then to another peer: a wrong destination epoch
			to = c.anyPeer()
		}
		return to, r.b, true
	}
	if len(c.peers) == 0 {
		return 0, nil, false
	}
	to := c.anyPeer()
	return to, c.garbage(c.peers[to]), true
}

// anyPeer returns a random peer the node has sent to. Under c.mu.
func (c *conduit) anyPeer() broadcast.NodeID {
	k := int(c.rnd.next() % uint64(len(c.peers)))
	for id := range c.peers {
		if k == 0 {
			return id
		}
		k--
	}
	return 0
}

// Garbage kinds, cycled through.
const (
	garbageRandom       = iota // random bytes of a random length
	garbageLinkMagic           // a link header with a wrong magic
	garbageLinkKind            // a link header of an unknown kind, or an ack with bytes after it
	garbageTruncated           // a data frame whose onecast header is cut short
	garbageLengths             // a onecast header whose lengths exceed the frame and the limits
	garbageOnecastMagic        // a data frame whose onecast magic is wrong
	garbageKinds
)

// garbage builds one malformed datagram for a peer whose epochs are ps.
// Under c.mu.
func (c *conduit) garbage(ps peerState) []byte {
	r := c.rnd.next()
	kind := int(r % garbageKinds)
	if kind == garbageRandom {
		return c.rnd.bytes(1 + int(c.rnd.next()%1400))
	}
	h := link.Header{Kind: link.KindData, Window: 64, SrcEpoch: ps.src, DstEpoch: ps.dst,
		Seq: ps.seq + 1 + c.rnd.next()%64}
	b := make([]byte, link.HeaderSize, link.HeaderSize+broadcast.HeaderSize+64)
	switch kind {
	case garbageLinkMagic:
		h.Put(b)
		b[0] = 'X'
		return append(b, c.rnd.bytes(64)...)
	case garbageLinkKind:
		if r&1 == 0 {
			h.Put(b)
			b[offKind] = 9
			return append(b, c.rnd.bytes(32)...)
		}
		h.Kind, h.Seq = link.KindAck, 0
		h.Put(b)
		return append(b, c.rnd.bytes(16)...) // an ack with trailing bytes
	}
	h.Put(b)
	oh := broadcast.Header{Protocol: c.a.opts.Inner.ID, Type: 1, Sender: broadcast.NodeID(c.rnd.next() % 64)}
	var ob [broadcast.HeaderSize]byte
	switch kind {
	case garbageTruncated:
		oh.Put(ob[:])
		return append(b, ob[:1+int(c.rnd.next()%(broadcast.HeaderSize-1))]...)
	case garbageLengths:
		oh.Flags = broadcast.HasPayload
		oh.BodyLen, oh.AuthLen = 60000, 60000
		oh.PayloadLen = 1 << 31
		oh.Put(ob[:])
		return append(append(b, ob[:]...), c.rnd.bytes(32)...)
	default: // garbageOnecastMagic
		oh.Put(ob[:])
		ob[0], ob[1] = 0xde, 0xad
		return append(append(b, ob[:]...), c.rnd.bytes(32)...)
	}
}

// Pool passes the real conduit's frame pool to the link (its quotas).
func (c *conduit) Pool() *bufpool.Pool {
	if fp, ok := c.Conduit.(interface{ Pool() *bufpool.Pool }); ok {
		return fp.Pool()
	}
	return nil
}

// RecvCopies passes on whether the real conduit copies on receive.
func (c *conduit) RecvCopies() bool {
	if cp, ok := c.Conduit.(interface{ RecvCopies() bool }); ok {
		return cp.RecvCopies()
	}
	return false
}

// Buffered passes on the real conduit's receive batch.
func (c *conduit) Buffered() int {
	if b, ok := c.Conduit.(interface{ Buffered() int }); ok {
		return b.Buffered()
	}
	return 0
}

// Close stops the injector and closes the real conduit.
func (c *conduit) Close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.Conduit.Close()
}
