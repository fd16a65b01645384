package kv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onecast/onecast/bufpool"
)

// Executor runs an op through the replicated state machine: in a replica,
// through PBFT; in single-node mode, directly on a Store.
type Executor interface {
	// Execute submits op (taking the reference) and returns the state
	// machine's reply once the op is committed and executed (for a durable
	// executor: once it is on disk). The reply is owned by the caller.
	Execute(ctx context.Context, op bufpool.Buf) ([]byte, error)
}

// LocalReader answers a get, gets or me op from local state without
// ordering it: the fast read path (Store.Read).
type LocalReader interface {
	Read(op bufpool.Buf, dst []byte) []byte
}

// ServerConfig configures a memcached front end.
type ServerConfig struct {
	// Executor runs replicated commands. Required.
	Executor Executor
	// FastReads answers get, gets and me from Reader without ordering
	// them through the executor: faster, but a read may miss writes that
	// a quorum has acknowledged and this replica has not yet executed, and
	// a Byzantine replica can answer anything (use Client for reads you
	// must trust).
	// The default (false) orders every read: linearizable.
	FastReads bool
	// Reader serves fast reads; required when FastReads is set.
	Reader LocalReader
	// Stats, if set, supplies the item figures of the stats command.
	Stats func() StoreStats
	// MaxItemSize is the item size limit (default DefaultMaxItemSize).
	MaxItemSize int
	// Pool, if set, allocates request payloads (leak-checked in tests);
	// otherwise they are heap buffers.
	Pool *bufpool.Pool
	// Now returns the unix time, in seconds, written into each op (default
	// the wall clock). Expiry on every replica is computed from it.
	Now func() int64
	// Logger receives connection errors (default slog.Default()).
	Logger *slog.Logger
}

// Server serves the memcached text protocol over an Executor.
type Server struct {
	cfg     ServerConfig
	started time.Time
	// nonceBase + nonce numbers this front end's ops, so that no two have
	// the same digest, across restarts too.
	nonceBase uint64
	nonce     atomic.Uint64

	mu     sync.Mutex
	ln     []net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup

	currConns    atomic.Int64
	totalConns   atomic.Uint64
	bytesRead    atomic.Uint64
	bytesWritten atomic.Uint64
	// tooLarge counts values refused before they were proposed.
	tooLarge  atomic.Uint64
	verbosity atomic.Uint32

	// statsBase is the store's figures at the last "stats reset": the
	// counters reported are the store's minus these.
	statsMu   sync.Mutex
	statsBase StoreStats
	// detail is "stats detail": per key prefix counts.
	detail prefixStats
}

// NewServer validates cfg and returns a server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Executor == nil {
		return nil, errors.New("kv: ServerConfig.Executor is required")
	}
	if cfg.FastReads && cfg.Reader == nil {
		return nil, errors.New("kv: ServerConfig.Reader is required with FastReads")
	}
	if cfg.MaxItemSize <= 0 {
		cfg.MaxItemSize = DefaultMaxItemSize
	}
	if cfg.Now == nil {
		cfg.Now = func() int64 { return time.Now().Unix() }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	now := time.Now()
	return &Server{cfg: cfg, started: now, nonceBase: uint64(now.UnixNano()) << 8, conns: map[net.Conn]struct{}{}}, nil
}

// Serve accepts connections on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ln.Close()
	}
	s.ln = append(s.ln, ln)
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return fmt.Errorf("kv: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.ServeConn(context.Background(), c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops every listener and connection and waits for their
// goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, l := range s.ln {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// errQuit ends a connection without an error.
var errQuit = errors.New("quit")

// ServeConn serves one connection until it ends, the client quits, or
// memcached would close it.
func (s *Server) ServeConn(ctx context.Context, rw io.ReadWriter) {
	s.currConns.Add(1)
	s.totalConns.Add(1)
	defer s.currConns.Add(-1)
	cs := &connState{s: s, r: bufio.NewReaderSize(countingReader{rw, &s.bytesRead}, MaxGetLineLen),
		w: bufio.NewWriterSize(countingWriter{rw, &s.bytesWritten}, 64<<10)}
	for {
		err := cs.one(ctx)
		if err == nil && cs.r.Buffered() > 0 {
			continue // pipelined: answer the rest before flushing
		}
		if ferr := cs.w.Flush(); ferr != nil && err == nil {
			err = ferr
		}
		if err != nil {
			if !errors.Is(err, errQuit) && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF) {
				s.cfg.Logger.Debug("kv: connection ends", "err", err)
			}
			return
		}
	}
}

// countingReader and countingWriter count a connection's bytes for stats
// (bytes_read, bytes_written).
type countingReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(uint64(n))
	return n, err
}

type countingWriter struct {
	w io.Writer
	n *atomic.Uint64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(uint64(n))
	return n, err
}

type connState struct {
	s     *Server
	r     *bufio.Reader
	w     *bufio.Writer
	reply []byte
}

// one reads and answers one command.
func (cs *connState) one(ctx context.Context) error {
	line, err := cs.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return errors.New("kv: command line too long") // memcached closes without a reply
	}
	if err != nil {
		return err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	if len(line) > MaxLineLen && !bytes.HasPrefix(line, []byte("get ")) && !bytes.HasPrefix(line, []byte("gets ")) {
		return errors.New("kv: command line too long") // memcached closes here
	}
	cmd, perr := ParseCommand(line, cs.s.cfg.MaxItemSize)
	if perr != nil {
		if perr.Reply == ReplyTooLarge && cs.s.detail.on.Load() {
			// memcached counts the set before it finds the value too large.
			var tb [3][]byte
			if toks := tokenize(line, tb[:0], 2); len(toks) == 2 && isClassicStorage(toks[0]) {
				cs.s.detail.record(toks[1], func(c *prefixCount) { c.sets++ })
			}
		}
		dropKey := bytes.Clone(perr.DropKey) // line is overwritten by the swallow
		if perr.Swallow > 0 {
			if _, err := cs.r.Discard(perr.Swallow); err != nil {
				return err
			}
		}
		if perr.Reply == ReplyTooLarge { // set's and ms's words are the same
			cs.s.tooLarge.Add(1)
		}
		if dropKey != nil {
			// memcached unlinks the old item when it refuses a value
			// as too large; that is a write, so it is ordered too.
			cs.drop(ctx, dropKey)
		}
		if !perr.Noreply {
			cs.w.WriteString(perr.Reply)
		}
		if perr.Close {
			return errors.New(perr.Error())
		}
		return nil
	}
	switch cmd.Kind {
	case KindQuit:
		return errQuit
	case KindVersion:
		cs.w.WriteString(replyVersionLine)
		return nil
	case KindVerbosity:
		v, _ := parseUint32(cmd.Args[0])
		cs.s.verbosity.Store(min(v, maxVerbosity))
		if !cmd.Noreply {
			cs.w.WriteString(ReplyOK)
		}
		return nil
	case KindStats:
		cs.stats(&cmd)
		return nil
	case KindMetaNoop:
		cs.w.WriteString(replyMetaNoop)
		return nil
	case KindOp:
		return cs.op(ctx, cmd.ValueLen)
	case KindGat, KindGats:
		if len(cmd.Keys) == 0 {
			cs.w.WriteString(ReplyEnd)
			return nil
		}
	}
	if cs.s.detail.on.Load() {
		// Counted before the data block is read: the key aliases the line.
		switch {
		case cmd.Kind.IsStorage():
			cs.s.detail.record(cmd.Key(), func(c *prefixCount) { c.sets++ })
		case cmd.Kind == KindDelete:
			cs.s.detail.record(cmd.Key(), func(c *prefixCount) { c.dels++ })
		}
	}
	// Build the op; for a storage command read the data block straight
	// into its tail, so the value is never copied again.
	hl := OpHeaderLen(&cmd)
	total := hl
	if cmd.Kind.carriesValue() {
		total += cmd.ValueLen + 2
	}
	mem := make([]byte, 0, total)
	mem, err = AppendOpHeader(mem, &cmd, Stamp{Now: cs.s.cfg.Now(), Nonce: cs.s.nonceBase + cs.s.nonce.Add(1)})
	if err != nil {
		cs.w.WriteString(ReplyBadFormat)
		return nil
	}
	mem = mem[:total]
	if cmd.Kind.carriesValue() {
		if _, err := io.ReadFull(cs.r, mem[hl:]); err != nil {
			return err
		}
		if mem[total-2] != '\r' || mem[total-1] != '\n' {
			if !cmd.Noreply {
				cs.w.WriteString(ReplyBadChunk)
			}
			return nil
		}
		mem = mem[:total-2]
	}
	var op bufpool.Buf
	if cs.s.cfg.Pool != nil {
		op = cs.s.cfg.Pool.Wrap(mem)
	} else {
		op = bufpool.Wrap(mem)
	}
	var reply []byte
	if cmd.Kind.IsRead() && cs.s.cfg.FastReads {
		reply = cs.s.cfg.Reader.Read(op, cs.reply[:0])
		cs.reply = reply[:0]
		op.Release()
	} else {
		reply, err = cs.s.cfg.Executor.Execute(ctx, op)
		if err != nil {
			cs.s.cfg.Logger.Warn("kv: execute", "cmd", cmd.Kind, "err", err)
			reply = []byte(ReplyUnavailable)
		}
	}
	if cs.s.detail.on.Load() && (cmd.Kind == KindGet || cmd.Kind == KindGets || cmd.Kind == KindGat || cmd.Kind == KindGats) {
		cs.s.detail.recordGets(cmd.Keys, reply)
	}
	if !cmd.Noreply {
		cs.w.Write(reply)
	}
	return nil
}

// isClassicStorage reports whether word is set, add, replace, append,
// prepend or cas.
func isClassicStorage(word []byte) bool {
	switch string(word) {
	case "set", "add", "replace", "append", "prepend", "cas":
		return true
	}
	return false
}

// op serves a BFT client's encoded op: read, execute, answer RESULT.
func (cs *connState) op(ctx context.Context, n int) error {
	mem := make([]byte, n+2)
	if _, err := io.ReadFull(cs.r, mem); err != nil {
		return err
	}
	if mem[n] != '\r' || mem[n+1] != '\n' {
		cs.w.WriteString(ReplyBadChunk)
		return nil
	}
	var op bufpool.Buf
	if cs.s.cfg.Pool != nil {
		op = cs.s.cfg.Pool.Wrap(mem[:n])
	} else {
		op = bufpool.Wrap(mem[:n])
	}
	reply, err := cs.s.cfg.Executor.Execute(ctx, op)
	if err != nil {
		cs.s.cfg.Logger.Warn("kv: execute", "cmd", KindOp, "err", err)
		cs.w.WriteString(ReplyUnavailable)
		return nil
	}
	cs.w.WriteString("RESULT ")
	cs.w.WriteString(strconv.Itoa(len(reply)))
	cs.w.WriteString("\r\n")
	cs.w.Write(reply)
	cs.w.WriteString("\r\n")
	return nil
}

// drop orders the removal of key (a delete whose reply is not sent).
func (cs *connState) drop(ctx context.Context, key []byte) {
	c := Command{Kind: KindDelete, Keys: [][]byte{key}, Flags: dropQuietly}
	mem, err := AppendOpHeader(nil, &c, Stamp{Now: cs.s.cfg.Now(), Nonce: cs.s.nonceBase + cs.s.nonce.Add(1)})
	if err != nil {
		return
	}
	op := bufpool.Wrap(mem)
	if cs.s.cfg.Pool != nil {
		op = cs.s.cfg.Pool.Wrap(mem)
	}
	if _, err := cs.s.cfg.Executor.Execute(ctx, op); err != nil {
		cs.s.cfg.Logger.Warn("kv: execute", "cmd", KindDelete, "err", err)
	}
}

// maxVerbosity is memcached's MAX_VERBOSITY_LEVEL.
const maxVerbosity = 2

// stats answers stats, "stats settings" and "stats reset" with
// memcached's field names, in memcached's order, for the figures this
// service has (see the package doc for the ones it omits).
func (cs *connState) stats(cmd *Command) {
	s := cs.s
	var st StoreStats
	if s.cfg.Stats != nil {
		st = s.cfg.Stats()
	}
	if len(cmd.Args) > 0 {
		switch string(cmd.Args[0]) {
		case "reset":
			s.statsMu.Lock()
			s.statsBase = st
			s.statsMu.Unlock()
			s.totalConns.Store(0)
			s.bytesRead.Store(0)
			s.bytesWritten.Store(0)
			s.tooLarge.Store(0)
			s.detail.clear()
			cs.w.WriteString(ReplyReset)
		case "settings":
			cs.stat("verbosity", strconv.FormatUint(uint64(s.verbosity.Load()), 10))
			cs.stat("evictions", "off")
			cs.stat("cas_enabled", "yes")
			cs.stat("item_size_max", strconv.Itoa(s.cfg.MaxItemSize))
			cs.stat("flush_enabled", "yes")
			cs.w.WriteString(ReplyEnd)
		case "detail":
			cs.w.Write(s.detail.detail(nil, cmd.Args))
		default:
			cs.w.WriteString(ReplyError)
		}
		return
	}
	s.statsMu.Lock()
	b := s.statsBase
	s.statsMu.Unlock()
	u := func(name string, v, base uint64) { cs.stat(name, strconv.FormatUint(v-base, 10)) }
	now := time.Now()
	cs.stat("pid", strconv.Itoa(os.Getpid()))
	cs.stat("uptime", strconv.FormatInt(int64(now.Sub(s.started)/time.Second), 10))
	cs.stat("time", strconv.FormatInt(now.Unix(), 10))
	cs.stat("version", Version)
	cs.stat("pointer_size", strconv.Itoa(strconv.IntSize))
	if user, sys, ok := rusage(); ok {
		cs.stat("rusage_user", user)
		cs.stat("rusage_system", sys)
	}
	cs.stat("curr_connections", strconv.FormatInt(s.currConns.Load(), 10))
	u("total_connections", s.totalConns.Load(), 0)
	if s.cfg.Stats != nil {
		u("cmd_get", st.CmdGet, b.CmdGet)
		u("cmd_set", st.CmdSet, b.CmdSet)
		u("cmd_flush", st.CmdFlush, b.CmdFlush)
		u("cmd_touch", st.CmdTouch, b.CmdTouch)
		u("cmd_meta", st.CmdMeta, b.CmdMeta)
		u("get_hits", st.GetHits, b.GetHits)
		u("get_misses", st.GetMisses, b.GetMisses)
		u("get_expired", st.GetExpired, b.GetExpired)
		u("get_flushed", st.GetFlushed, b.GetFlushed)
		u("delete_misses", st.DeleteMisses, b.DeleteMisses)
		u("delete_hits", st.DeleteHits, b.DeleteHits)
		u("incr_misses", st.IncrMisses, b.IncrMisses)
		u("incr_hits", st.IncrHits, b.IncrHits)
		u("decr_misses", st.DecrMisses, b.DecrMisses)
		u("decr_hits", st.DecrHits, b.DecrHits)
		u("cas_misses", st.CasMisses, b.CasMisses)
		u("cas_hits", st.CasHits, b.CasHits)
		u("cas_badval", st.CasBadval, b.CasBadval)
		u("touch_hits", st.TouchHits, b.TouchHits)
		u("touch_misses", st.TouchMisses, b.TouchMisses)
	}
	u("store_too_large", st.StoreTooLarge+s.tooLarge.Load(), b.StoreTooLarge)
	u("bytes_read", s.bytesRead.Load(), 0)
	u("bytes_written", s.bytesWritten.Load(), 0)
	if s.cfg.Stats != nil {
		cs.stat("bytes", strconv.FormatInt(st.Bytes, 10))
		cs.stat("curr_items", strconv.Itoa(st.CurrItems))
		u("total_items", st.TotalItems, b.TotalItems)
	}
	cs.w.WriteString(ReplyEnd)
}

func (cs *connState) stat(name, value string) {
	cs.w.WriteString("STAT ")
	cs.w.WriteString(name)
	cs.w.WriteByte(' ')
	cs.w.WriteString(value)
	cs.w.WriteString("\r\n")
}
