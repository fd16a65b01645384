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

// LocalReader answers a get/gets op from local state without ordering it:
// the fast read path (Store.Read).
type LocalReader interface {
	Read(op bufpool.Buf, dst []byte) []byte
}

// ServerConfig configures a memcached front end.
type ServerConfig struct {
	// Executor runs replicated commands. Required.
	Executor Executor
	// FastReads answers get/gets from Reader without ordering them through
	// the executor: faster, but a read may miss writes that a quorum has
	// acknowledged and this replica has not yet executed, and a Byzantine
	// replica can answer anything (use Client for reads you must trust).
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

	currConns  atomic.Int64
	totalConns atomic.Uint64
	cmdGet     atomic.Uint64
	cmdSet     atomic.Uint64
	cmdTouch   atomic.Uint64
	cmdFlush   atomic.Uint64
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
	cs := &connState{s: s, r: bufio.NewReaderSize(rw, MaxGetLineLen), w: bufio.NewWriterSize(rw, 64<<10)}
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
		if perr.Swallow > 0 {
			if _, err := cs.r.Discard(perr.Swallow); err != nil {
				return err
			}
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
		if !cmd.Noreply {
			cs.w.WriteString(ReplyOK)
		}
		return nil
	case KindStats:
		cs.stats(&cmd)
		return nil
	case KindOp:
		return cs.op(ctx, cmd.ValueLen)
	}
	// Build the op; for a storage command read the data block straight
	// into its tail, so the value is never copied again.
	hl := OpHeaderLen(&cmd)
	total := hl
	if cmd.Kind.IsStorage() {
		total += cmd.ValueLen + 2
	}
	mem := make([]byte, 0, total)
	mem, err = AppendOpHeader(mem, &cmd, Stamp{Now: cs.s.cfg.Now(), Nonce: cs.s.nonceBase + cs.s.nonce.Add(1)})
	if err != nil {
		cs.w.WriteString(ReplyBadFormat)
		return nil
	}
	mem = mem[:total]
	if cmd.Kind.IsStorage() {
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
	switch {
	case cmd.Kind.IsRead():
		cs.s.cmdGet.Add(uint64(len(cmd.Keys)))
	case cmd.Kind.IsStorage():
		cs.s.cmdSet.Add(1)
	case cmd.Kind == KindTouch:
		cs.s.cmdTouch.Add(1)
	case cmd.Kind == KindFlushAll:
		cs.s.cmdFlush.Add(1)
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
	if !cmd.Noreply {
		cs.w.Write(reply)
	}
	return nil
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

func (cs *connState) stats(cmd *Command) {
	s := cs.s
	if len(cmd.Args) > 0 {
		switch string(cmd.Args[0]) {
		case "reset":
			s.cmdGet.Store(0)
			s.cmdSet.Store(0)
			s.cmdTouch.Store(0)
			s.cmdFlush.Store(0)
			cs.w.WriteString(ReplyReset)
		case "settings":
			cs.stat("maxconns", "1024")
			cs.stat("item_size_max", strconv.Itoa(s.cfg.MaxItemSize))
			cs.stat("evictions", "off")
			cs.w.WriteString(ReplyEnd)
		default:
			cs.w.WriteString(ReplyError)
		}
		return
	}
	now := time.Now()
	cs.stat("pid", strconv.Itoa(os.Getpid()))
	cs.stat("uptime", strconv.FormatInt(int64(now.Sub(s.started)/time.Second), 10))
	cs.stat("time", strconv.FormatInt(now.Unix(), 10))
	cs.stat("version", Version)
	cs.stat("pointer_size", "64")
	cs.stat("curr_connections", strconv.FormatInt(s.currConns.Load(), 10))
	cs.stat("total_connections", strconv.FormatUint(s.totalConns.Load(), 10))
	cs.stat("cmd_get", strconv.FormatUint(s.cmdGet.Load(), 10))
	cs.stat("cmd_set", strconv.FormatUint(s.cmdSet.Load(), 10))
	cs.stat("cmd_flush", strconv.FormatUint(s.cmdFlush.Load(), 10))
	cs.stat("cmd_touch", strconv.FormatUint(s.cmdTouch.Load(), 10))
	if s.cfg.Stats != nil {
		st := s.cfg.Stats()
		cs.stat("curr_items", strconv.Itoa(st.CurrItems))
		cs.stat("total_items", strconv.FormatUint(st.TotalItems, 10))
		cs.stat("bytes", strconv.FormatInt(st.Bytes, 10))
	}
	cs.stat("item_size_max", strconv.Itoa(s.cfg.MaxItemSize))
	cs.w.WriteString(ReplyEnd)
}

func (cs *connState) stat(name, value string) {
	cs.w.WriteString("STAT ")
	cs.w.WriteString(name)
	cs.w.WriteByte(' ')
	cs.w.WriteString(value)
	cs.w.WriteString("\r\n")
}
