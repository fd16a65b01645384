package pbft

import (
	"slices"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Result is a request's outcome as the client accepted it: f+1 replicas
// returned the same result, so at least one correct replica did.
type Result struct {
	Timestamp uint64
	Op        broadcast.Digest
	// Value is the result's bytes, read-only: a Node's hosted client shares
	// them with the replica's reply cache.
	Value []byte
}

// Client is the client side of PBFT as a pure state machine. A client is
// hosted by a node and speaks through its links: its identity is that
// node's ID, which is what authenticates its requests to the replicas.
//
// It numbers requests 1, 2, 3 …, keeps at most Window of them outstanding
// (more wait in a backlog), sends each to every replica, and accepts a
// result once f+1 replicas sent matching replies and it holds the result's
// bytes. A request unanswered after Timeout is retransmitted to all
// replicas, flagged so that replicas that executed it resend their result.
type Client struct {
	id      broadcast.NodeID
	n, f    int
	signer  Signer
	window  int
	timeout time.Duration
	now     time.Duration

	nextTS  uint64
	pending map[uint64]*clientReq
	free    []*clientReq // answered requests' records, for reuse
	backlog []bufpool.Buf
	out     []broadcast.Outbound
	results []Result
	stmt    broadcast.Digest
	// ownStable says the hosting replica's own reply values are never
	// modified (its StateMachine's results), so they are kept uncopied.
	ownStable bool
}

type clientReq struct {
	op       bufpool.Buf
	digest   broadcast.Digest
	sig      []byte
	body     []byte // the REQUEST body (client, flags, sig), sig a part of it
	deadline time.Duration
	tries    int
	votes    []broadcast.Digest // per replica: the result digest it replied
	voted    []bool
	values   []resultValue // distinct result bytes received, at most n
}

// resultValue is one result the client holds bytes of.
type resultValue struct {
	d   broadcast.Digest
	val []byte
}

func (r *clientReq) value(d broadcast.Digest) ([]byte, bool) {
	for _, v := range r.values {
		if v.d == d {
			return v.val, true
		}
	}
	return nil, false
}

// NewClient builds the client hosted by node id, which signs its requests
// with signer.
func NewClient(id broadcast.NodeID, n, f, window int, timeout time.Duration, signer Signer) *Client {
	return &Client{id: id, n: n, f: f, window: window, timeout: timeout, signer: signer, pending: map[uint64]*clientReq{}}
}

// resume makes the client number its next request after ts: a restarted
// replica's hosted client continues where the executed log leaves it.
func (c *Client) resume(ts uint64) {
	c.nextTS = max(c.nextTS, ts)
}

// Request issues op (taking the reference). It is sent now, or once the
// window has room.
func (c *Client) Request(op bufpool.Buf) {
	if len(c.pending) >= c.window {
		c.backlog = append(c.backlog, op)
		return
	}
	c.issue(op)
}

func (c *Client) issue(op bufpool.Buf) {
	c.nextTS++
	var r *clientReq
	if k := len(c.free); k > 0 {
		r, c.free[k-1] = c.free[k-1], nil
		c.free = c.free[:k-1]
		clear(r.votes)
		clear(r.voted)
		clear(r.values)
		*r = clientReq{votes: r.votes, voted: r.voted, values: r.values[:0]}
	} else {
		r = &clientReq{votes: make([]broadcast.Digest, c.n), voted: make([]bool, c.n)}
	}
	r.op, r.digest, r.deadline = op, broadcast.DigestOf(op), c.now+c.timeout
	c.stmt = statement(stmtRequest, 0, c.nextTS, r.digest)
	st := &c.stmt // a field: signing allocates nothing for it
	// The body and the authenticator in it are one allocation, made afresh
	// for each request: a driver may still hold an earlier message's body.
	body := make([]byte, 0, requestBodyHeader+max(maxSig, c.n*broadcast.MACSize))
	body = appendRequestBody(body, c.id, 0, nil)
	if mv, ok := c.signer.(MACVector); ok {
		body = mv.MAC.Authenticate(body, broadcast.Everyone, st)
	} else {
		body = append(body, c.signer.Sign(st)...)
	}
	auth := body[requestBodyHeader:]
	body[requestBodyHeader-2], body[requestBodyHeader-1] = byte(len(auth)), byte(len(auth)>>8)
	r.body, r.sig = body, auth
	c.pending[c.nextTS] = r
	c.send(c.nextTS, r, 0)
}

func (c *Client) send(ts uint64, r *clientReq, flags uint8) {
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: TypeRequest,
		Instance: broadcast.Instance{Seq: ts}}}
	if flags == 0 {
		m.Body = r.body
	} else {
		m.Body = appendRequestBody(nil, c.id, flags, r.sig)
	}
	m.SetPayload(r.op.Retain(), r.digest)
	c.out = append(c.out, broadcast.Outbound{To: broadcast.Everyone, Msg: m})
}

// OnReply records replica from's reply to request ts with result digest d
// and, if it carried one, the result bytes (borrowed).
func (c *Client) OnReply(from broadcast.NodeID, ts uint64, d broadcast.Digest, value []byte, hasValue bool) error {
	if int(from) >= c.n {
		return broadcast.Reject(broadcast.ReasonSender, "pbft: reply from %v outside the cluster", from)
	}
	r := c.pending[ts]
	if r == nil {
		return nil // late or unknown: nothing to do
	}
	if hasValue {
		if broadcast.DigestOfBytes(value) != d {
			return broadcast.Reject(broadcast.ReasonDigestMismatch, "pbft: reply result from %v does not match its digest", from)
		}
		if _, ok := r.value(d); !ok && len(r.values) < c.n {
			if from != c.id || !c.ownStable {
				value = append([]byte(nil), value...)
			}
			r.values = append(r.values, resultValue{d, value})
		}
	}
	r.votes[from], r.voted[from] = d, true
	c.check(ts, r)
	return nil
}

func (c *Client) check(ts uint64, r *clientReq) {
	for i := range c.n {
		if !r.voted[i] {
			continue
		}
		d, cnt := r.votes[i], 0
		for j := range c.n {
			if r.voted[j] && r.votes[j] == d {
				cnt++
			}
		}
		if cnt < c.f+1 {
			continue
		}
		v, ok := r.value(d)
		if !ok {
			return // wait for the bytes (a retransmission asks everyone)
		}
		c.results = append(c.results, Result{Timestamp: ts, Op: r.digest, Value: v})
		r.op.Release()
		delete(c.pending, ts)
		clear(r.values)
		r.values = r.values[:0]
		c.free = append(c.free, r)
		if len(c.backlog) > 0 {
			op := c.backlog[0]
			c.backlog[0] = bufpool.Buf{}
			c.backlog = c.backlog[1:]
			c.issue(op)
		}
		return
	}
}

// Tick retransmits requests whose timeout passed.
func (c *Client) Tick(now time.Duration) {
	c.now = now
	var due []uint64
	for ts, r := range c.pending {
		if r.deadline <= now {
			due = append(due, ts)
		}
	}
	slices.Sort(due)
	for _, ts := range due {
		r := c.pending[ts]
		r.tries++
		r.deadline = now + c.timeout<<min(r.tries, 5) // back off: each retry resends the payload
		c.send(ts, r, requestFlagRetransmit)
	}
}

// NextWake is the earliest retransmission deadline, or 0.
func (c *Client) NextWake() time.Duration {
	var w time.Duration
	for _, r := range c.pending {
		if w == 0 || r.deadline < w {
			w = r.deadline
		}
	}
	return w
}

// Outstanding is the number of requests sent and not yet answered, plus the
// backlog.
func (c *Client) Outstanding() int { return len(c.pending) + len(c.backlog) }

// TakeMessages returns the messages to send (each owning its payload
// reference) and clears them.
func (c *Client) TakeMessages(dst []broadcast.Outbound) []broadcast.Outbound {
	dst = append(dst, c.out...)
	clear(c.out)
	c.out = c.out[:0]
	return dst
}

// TakeResults returns accepted results in acceptance order and clears them.
func (c *Client) TakeResults(dst []Result) []Result {
	dst = append(dst, c.results...)
	c.results = c.results[:0]
	return dst
}

// Close releases every request the client holds.
func (c *Client) Close() {
	for ts, r := range c.pending {
		r.op.Release()
		delete(c.pending, ts)
	}
	for _, b := range c.backlog {
		b.Release()
	}
	c.backlog = nil
	for i := range c.out {
		c.out[i].Msg.Payload.Release()
	}
	c.out = c.out[:0]
}
