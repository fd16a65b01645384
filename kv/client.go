package kv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// Client is a Go client for users who must not trust a single replica. It
// sends each op to every replica (memcached port, onecast's "op" command)
// and accepts a reply once f+1 replicas returned the same bytes, so that at
// least one correct replica vouches for it. Every replica submits the op
// through PBFT; the store executes it once (by client ID and nonce) and
// every later copy gets the same remembered reply.
//
// A Client runs one op at a time; use several for concurrency.
type Client struct {
	f       int
	id      uint64
	timeout time.Duration
	now     func() int64

	mu    sync.Mutex
	nonce uint64
	conns []*clientConn
	wg    sync.WaitGroup
}

type clientConn struct {
	addr string
	mu   sync.Mutex // one exchange at a time, in op order
	c    net.Conn
	r    *bufio.Reader
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// Addrs are the replicas' memcached addresses.
	Addrs []string
	// F is the number of faulty replicas tolerated.
	F int
	// Timeout bounds one op (default 10s).
	Timeout time.Duration
	// ID identifies the client to the store (default random). Two clients
	// must never share an ID.
	ID uint64
}

// ErrNoQuorum is returned when f+1 replicas did not agree within the
// timeout.
var ErrNoQuorum = errors.New("kv: no f+1 matching replies")

// NewClient returns a client; connections are made on first use.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.Addrs) < cfg.F+1 || cfg.F < 0 {
		return nil, fmt.Errorf("kv: %d replicas cannot give f+1 = %d matching replies", len(cfg.Addrs), cfg.F+1)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	for cfg.ID == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		cfg.ID = binary.LittleEndian.Uint64(b[:])
	}
	c := &Client{f: cfg.F, id: cfg.ID, timeout: cfg.Timeout, now: func() int64 { return time.Now().Unix() }}
	for _, a := range cfg.Addrs {
		c.conns = append(c.conns, &clientConn{addr: a})
	}
	return c, nil
}

// Do runs one memcached command (value: the data block of a storage
// command) and returns the reply f+1 replicas agree on, as memcached words
// it.
func (c *Client) Do(ctx context.Context, cmd *Command, value []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nonce++
	op, err := AppendOpHeader(nil, cmd, Stamp{Now: c.now(), Client: c.id, Nonce: c.nonce})
	if err != nil {
		return nil, err
	}
	return c.do(ctx, append(op, value...))
}

// DoOp runs an op encoded by another issuer (borrowing op), restamped with
// this client's ID and next nonce: a front end that cannot order ops itself
// can forward them this way.
func (c *Client) DoOp(ctx context.Context, op []byte) ([]byte, error) {
	if len(op) < opHeaderLen {
		return nil, errBadOp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nonce++
	own := append([]byte(nil), op...)
	binary.LittleEndian.PutUint64(own[32:], c.id)
	binary.LittleEndian.PutUint64(own[40:], c.nonce)
	return c.do(ctx, own)
}

func (c *Client) do(ctx context.Context, op []byte) ([]byte, error) {
	req := append([]byte("op "+strconv.Itoa(len(op))+"\r\n"), op...)
	req = append(req, "\r\n"...)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	type answer struct {
		reply []byte
		err   error
	}
	answers := make(chan answer, len(c.conns))
	deadline, _ := ctx.Deadline()
	for _, cc := range c.conns {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			r, err := cc.exchange(req, deadline)
			answers <- answer{r, err}
		}()
	}
	var got [][]byte
	var errs []error
	for range c.conns {
		select {
		case a := <-answers:
			if a.err != nil {
				errs = append(errs, a.err)
				continue
			}
			got = append(got, a.reply)
			n := 0
			for _, g := range got {
				if bytes.Equal(g, a.reply) {
					n++
				}
			}
			if n >= c.f+1 {
				return a.reply, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", ErrNoQuorum, ctx.Err())
		}
	}
	return nil, fmt.Errorf("%w: %d replies, errors: %v", ErrNoQuorum, len(got), errors.Join(errs...))
}

// exchange sends req and reads one "RESULT" reply, redialing a broken
// connection once.
func (cc *clientConn) exchange(req []byte, deadline time.Time) ([]byte, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.c == nil {
		d := net.Dialer{Deadline: deadline}
		conn, err := d.Dial("tcp", cc.addr)
		if err != nil {
			return nil, err
		}
		cc.c, cc.r = conn, bufio.NewReader(conn)
	}
	reply, err := cc.try(req, deadline)
	if err != nil {
		cc.c.Close()
		cc.c = nil
	}
	return reply, err
}

func (cc *clientConn) try(req []byte, deadline time.Time) ([]byte, error) {
	if err := cc.c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := cc.c.Write(req); err != nil {
		return nil, err
	}
	line, err := cc.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	rest, ok := bytes.CutPrefix(line, []byte("RESULT "))
	if !ok {
		return append([]byte(nil), line...), nil // an error line: compared like any reply
	}
	n, err := strconv.Atoi(string(bytes.TrimRight(rest, "\r\n")))
	if err != nil || n < 0 || n > 64<<20 {
		return nil, fmt.Errorf("kv: bad RESULT line %q", line)
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(cc.r, b); err != nil {
		return nil, err
	}
	return b[:n], nil
}

// Set stores value under key.
func (c *Client) Set(ctx context.Context, key string, value []byte, flags uint32, exptime int64) error {
	r, err := c.Do(ctx, &Command{Kind: KindSet, Keys: [][]byte{[]byte(key)}, Flags: flags, Exptime: exptime}, value)
	if err != nil {
		return err
	}
	if string(r) != ReplyStored {
		return fmt.Errorf("kv: set %s: %s", key, bytes.TrimSpace(r))
	}
	return nil
}

// Get returns key's value and flags; ok is false when it is absent.
func (c *Client) Get(ctx context.Context, key string) (value []byte, flags uint32, ok bool, err error) {
	r, err := c.Do(ctx, &Command{Kind: KindGet, Keys: [][]byte{[]byte(key)}}, nil)
	if err != nil {
		return nil, 0, false, err
	}
	if string(r) == ReplyEnd {
		return nil, 0, false, nil
	}
	line, rest, found := bytes.Cut(r, []byte("\r\n"))
	f := bytes.Fields(line)
	if !found || len(f) < 4 || string(f[0]) != "VALUE" {
		return nil, 0, false, fmt.Errorf("kv: get %s: reply %q", key, r)
	}
	fl, err1 := strconv.ParseUint(string(f[2]), 10, 32)
	n, err2 := strconv.Atoi(string(f[3]))
	if err1 != nil || err2 != nil || n > len(rest) {
		return nil, 0, false, fmt.Errorf("kv: get %s: reply %q", key, line)
	}
	return rest[:n], uint32(fl), true, nil
}

// Delete removes key; ok is false when it was absent.
func (c *Client) Delete(ctx context.Context, key string) (ok bool, err error) {
	r, err := c.Do(ctx, &Command{Kind: KindDelete, Keys: [][]byte{[]byte(key)}}, nil)
	if err != nil {
		return false, err
	}
	return string(r) == ReplyDeleted, nil
}

// Close closes the connections, after any exchange still under way.
func (c *Client) Close() error {
	for _, cc := range c.conns {
		cc.mu.Lock()
		if cc.c != nil {
			cc.c.Close()
			cc.c = nil
		}
		cc.mu.Unlock()
	}
	c.wg.Wait()
	return nil
}
