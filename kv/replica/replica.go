// Package replica runs one replica of the BFT key-value service: a PBFT
// node (package pbft) over UDP and the reliable link, whose state machine is
// a kv.Store made durable by a kv.WAL, with a memcached front end. The
// node itself (transport from the configuration: UDP or AF_XDP) is
// netio/node's.
//
// Usage:
//
//	c, _ := config.Load("cluster/cluster.yaml")
//	r, _ := replica.Start(replica.Config{Cluster: c, ID: 2, DataDir: "data2"})
//	defer r.Close()
//	// memcached clients talk to r.Addr(); kv.Client talks to every replica.
//
// # Durability and recovery
//
// Each committed batch is appended to the replica's log and fsynced before
// it is applied, so no reply leaves for an op that is not on disk. PBFT's
// checkpoints write a snapshot and empty the log. A replica that restarts
// restores the snapshot and replays the log, and then catches up with PBFT's
// state transfer (which replaces its state with a stable checkpoint and
// persists it). While a restarted replica's PBFT is behind its own disk
// state, batches it already reflects are not applied again.
//
// Each result carries its op's nonce, so that a result meant for another
// request (PBFT's hosted client reuses timestamps after a restart) is never
// returned for this one. A restarted replica forwards its front end's ops
// to the other replicas as a kv.Client until pbft can resume a hosted
// client's numbering.
package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/kv"
	"github.com/onecast/onecast/netio/config"
	"github.com/onecast/onecast/netio/node"
	"github.com/onecast/onecast/pbft"
)

// Config configures a replica.
type Config struct {
	// Cluster is the cluster's configuration (onecast keygen).
	Cluster *config.Cluster
	// ID is this replica.
	ID int
	// DataDir holds the log and the snapshot. Required.
	DataDir string
	// Listen is the memcached address (default: the node's API address).
	Listen string
	// FastReads answers get/gets from local state (see kv.ServerConfig).
	FastReads bool
	// Frames is the number of packet buffer frames (default 32768).
	Frames int
	// CheckpointInterval is PBFT's K (default 32).
	CheckpointInterval uint64
	// Timeout is PBFT's base timeout (default 200ms).
	Timeout time.Duration
	// OpTimeout bounds one client op from submission to result (default 10s).
	OpTimeout time.Duration
	// NoSync skips fsync (benchmarks of the CPU path only).
	NoSync bool
	// Transport overrides the node's transport section of Cluster (nil:
	// the section's, UDP without one; see config.Transport).
	Transport *config.Transport
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Replica is a running replica.
type Replica struct {
	cfg    Config
	log    *slog.Logger
	sm     *durableSM
	node   *node.Node // PBFT (tapped) over the durable state machine
	exec   *executor
	srv    *kv.Server
	ln     net.Listener
	served chan error
}

// Start recovers the replica's state from its data directory and starts it.
func Start(cfg Config) (r *Replica, err error) {
	c := cfg.Cluster
	if c == nil {
		return nil, errors.New("replica: Config.Cluster is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("replica: Config.DataDir is required")
	}
	if cfg.ID < 0 || cfg.ID >= c.N() {
		return nil, fmt.Errorf("replica: Config.ID %d outside 0…%d", cfg.ID, c.N()-1)
	}
	if cfg.Frames == 0 {
		cfg.Frames = 32768
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r = &Replica{cfg: cfg, log: cfg.Logger.With("replica", cfg.ID)}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	wal, err := kv.OpenWAL(cfg.DataDir, kv.WALOptions{NoSync: cfg.NoSync})
	if err != nil {
		return r, err
	}
	r.sm = &durableSM{store: kv.NewStore(kv.StoreConfig{}), wal: wal, log: r.log}
	if err := r.sm.recover(); err != nil {
		return r, err
	}
	r.log.Info("recovered from disk", "seq", r.sm.last.Load(), "items", r.sm.store.Stats().CurrItems)

	r.exec = &executor{waiters: map[broadcast.Digest][]chan []byte{}, self: cfg.ID, timeout: cfg.OpTimeout}
	r.exec.ctx, r.exec.cancel = context.WithCancel(context.Background())
	// PBFT over the durable state machine, as the node's protocol; the
	// node assembles the rest (netio/node).
	spec := pbft.Spec
	spec.New = func(p broadcast.Params, env broadcast.Env) (broadcast.Protocol, error) {
		pn, err := pbft.New(pbft.Config{
			Params:             p,
			Store:              env.Store,
			Keys:               env.Keys,
			StateMachine:       r.sm,
			CheckpointInterval: cfg.CheckpointInterval,
			Timeout:            cfg.Timeout,
			MaxRequest:         kv.DefaultMaxItemSize + 64<<10,
			Logger:             r.log,
		})
		if err != nil {
			return nil, err
		}
		return &tapped{Node: pn, exec: r.exec}, nil
	}
	r.node, err = node.Start(node.Config{Cluster: c, ID: cfg.ID, Spec: spec, Transport: cfg.Transport, Frames: cfg.Frames, Verifiers: 2,
		Epoch: time.Now(), Logger: cfg.Logger.With("replica", cfg.ID)})
	if err != nil {
		return r, fmt.Errorf("replica: %w", err)
	}
	r.exec.runner = r.node
	if r.sm.last.Load() > 0 || r.sm.wal.Pos() > 0 {
		// Restarted: PBFT's hosted client numbers requests from 1 again,
		// which the others take for requests executed long ago. Until pbft
		// can resume a client's numbering, this replica's front end
		// forwards its ops to the other replicas as a BFT client (f+1
		// matching replies), which keeps it correct at the cost of n-1
		// orderings per op.
		var others []string
		for i, n := range c.Nodes {
			if i != cfg.ID && n.API != "" {
				others = append(others, n.API)
			}
		}
		fwd, err := kv.NewClient(kv.ClientConfig{Addrs: others, F: c.F, Timeout: cfg.OpTimeout})
		if err != nil {
			return r, fmt.Errorf("replica: forwarding client: %w", err)
		}
		r.exec.forward = fwd
		r.log.Warn("restarted replica: front-end ops are forwarded to the other replicas", "others", others)
	}
	listen := cfg.Listen
	if listen == "" {
		n, _ := c.Node(cfg.ID)
		listen = n.API
	}
	if listen == "" {
		return r, errors.New("replica: no memcached address (Config.Listen or the node's api)")
	}
	r.srv, err = kv.NewServer(kv.ServerConfig{Executor: r.exec, FastReads: cfg.FastReads, Reader: r.sm.store,
		Stats: r.sm.store.Stats, Logger: r.log})
	if err != nil {
		return r, err
	}
	r.ln, err = net.Listen("tcp", listen)
	if err != nil {
		return r, fmt.Errorf("replica: memcached listener: %w", err)
	}
	r.served = make(chan error, 1)
	go func() { r.served <- r.srv.Serve(r.ln) }()
	r.log.Info("kv replica started", "memcached", r.ln.Addr(), "transport", r.node.Metrics().Transport,
		"udp", r.node.LocalAddr(), "n", c.N(), "f", c.F)
	return r, nil
}

// Addr is the memcached address.
func (r *Replica) Addr() string { return r.ln.Addr().String() }

// Executed is the sequence number of the last batch the state reflects.
func (r *Replica) Executed() uint64 { return r.sm.last.Load() }

// Snapshot returns the store's snapshot (for convergence checks).
func (r *Replica) Snapshot() ([]byte, error) { return r.sm.store.Snapshot() }

// Close stops the replica: front end, node, log. Its data
// directory keeps everything acknowledged.
func (r *Replica) Close() error {
	var errs []error
	if r.srv != nil {
		errs = append(errs, r.srv.Close())
		if r.served != nil {
			errs = append(errs, <-r.served)
		}
	}
	if r.exec != nil {
		r.exec.cancel()
		if r.exec.forward != nil {
			r.exec.forward.Close()
		}
	}
	if r.node != nil {
		errs = append(errs, r.node.Close()) // runner, link, PBFT, payload store
	}
	if r.sm != nil {
		errs = append(errs, r.sm.wal.Close())
		r.sm.store.Close()
	}
	return errors.Join(errs...)
}

// tapped is the PBFT node as the runner drives it, handing the hosted
// client's accepted results to the executor on the runner's loop.
type tapped struct {
	*pbft.Node
	exec    *executor
	results []pbft.Result
}

// Ready passes on the node's work and its accepted results.
func (t *tapped) Ready() broadcast.Ready {
	rd := t.Node.Ready()
	t.results = t.Node.TakeResults(t.results[:0])
	for i := range t.results {
		t.exec.deliver(&t.results[i])
	}
	return rd
}

// executor submits ops through the runner and waits for the hosted
// client's f+1-certified result.
type executor struct {
	runner interface {
		Submit(context.Context, bufpool.Buf) error
	} // the node
	self    int
	timeout time.Duration
	ctx     context.Context
	cancel  context.CancelFunc

	mu      sync.Mutex
	waiters map[broadcast.Digest][]chan []byte

	// forward, when set, carries ops to the other replicas instead (see
	// Replica.restarted).
	forward *kv.Client
}

// errStale is a result that answers another op than the one submitted.
var errStale = errors.New("replica: result of another request (stale client timestamp)")

// Execute submits op (taking the reference) and waits for its result.
func (e *executor) Execute(ctx context.Context, op bufpool.Buf) ([]byte, error) {
	if e.forward != nil {
		defer op.Release()
		return e.forward.DoOp(ctx, op.Bytes())
	}
	nonce, _ := kv.OpNonce(op)
	if op.Refs() == 1 && op.Contiguous() && op.Len() > 1 {
		// Mark the copy as this replica's (the "via" byte, which the store
		// ignores): copies of one BFT client op submitted by several
		// replicas are then distinct requests with distinct digests.
		op.Bytes()[1] = byte(e.self + 1)
	}
	d := broadcast.DigestOf(op)
	ch := make(chan []byte, 1)
	e.mu.Lock()
	e.waiters[d] = append(e.waiters[d], ch)
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel)
	defer stop()
	if err := e.runner.Submit(ctx, op); err != nil {
		e.forget(d, ch)
		return nil, fmt.Errorf("replica: submit: %w", err)
	}
	select {
	case v := <-ch:
		if len(v) < 8 || binary.LittleEndian.Uint64(v) != nonce {
			return nil, errStale
		}
		return v[8:], nil
	case <-ctx.Done():
		e.forget(d, ch)
		return nil, fmt.Errorf("replica: op not committed: %w", ctx.Err())
	}
}

func (e *executor) forget(d broadcast.Digest, ch chan []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ws := e.waiters[d]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(e.waiters, d)
	} else {
		e.waiters[d] = ws
	}
}

func (e *executor) deliver(r *pbft.Result) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ws := e.waiters[r.Op]
	if len(ws) == 0 {
		return
	}
	ws[0] <- r.Value
	if len(ws) == 1 {
		delete(e.waiters, r.Op)
	} else {
		e.waiters[r.Op] = ws[1:]
	}
}

// durableSM is the kv.Store as PBFT's state machine, logged to disk.
//
// Log record: seq u64 | count u32 | per op: client u32, timestamp u64,
// length u32, payload. Snapshot: seq u64 | kv.Store snapshot.
type durableSM struct {
	store *kv.Store
	wal   *kv.WAL
	log   *slog.Logger
	last  atomic.Uint64
	parts [][]byte
}

var _ pbft.StateMachine = (*durableSM)(nil)

var replyAlreadyApplied = []byte("SERVER_ERROR replica recovering\r\n")

// Apply logs the batch, fsyncs, then applies it.
func (s *durableSM) Apply(seq uint64, ops []pbft.Op) [][]byte {
	if seq <= s.last.Load() {
		// Already reflected in the state recovered from disk.
		out := make([][]byte, len(ops))
		for i := range out {
			out[i] = tagResult(ops[i].Payload, replyAlreadyApplied)
		}
		return out
	}
	hdr := make([]byte, 12, 12+16*len(ops))
	binary.LittleEndian.PutUint64(hdr, seq)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(ops)))
	s.parts = s.parts[:0]
	for _, op := range ops {
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(op.Client))
		hdr = binary.LittleEndian.AppendUint64(hdr, op.Timestamp)
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(op.Payload.Len()))
	}
	s.parts = append(s.parts, hdr)
	for _, op := range ops {
		s.parts = op.Payload.AppendSegments(s.parts)
	}
	pos, err := s.wal.AppendVec(s.parts)
	if err == nil {
		err = s.wal.SyncTo(pos)
	}
	if err != nil {
		// A replica that cannot log must not answer: stop here, as a
		// crashed replica would.
		panic(fmt.Sprintf("replica: log batch %d: %v", seq, err))
	}
	bufs := make([]bufpool.Buf, len(ops))
	for i := range ops {
		bufs[i] = ops[i].Payload
	}
	out := s.store.ApplyBatch(bufs)
	for i := range out {
		out[i] = tagResult(bufs[i], out[i])
	}
	s.last.Store(seq)
	return out
}

// tagResult prefixes a reply with its op's nonce, so that an issuer can
// tell its op's result from a stale one (see executor.deliver).
func tagResult(op bufpool.Buf, reply []byte) []byte {
	nonce, _ := kv.OpNonce(op)
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+len(reply)), nonce)
	return append(b, reply...)
}

// Snapshot returns the state at the last applied batch and persists it.
func (s *durableSM) Snapshot() ([]byte, error) {
	snap, err := s.store.Snapshot()
	if err != nil {
		return nil, err
	}
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+len(snap)), s.last.Load())
	b = append(b, snap...)
	if err := s.wal.WriteSnapshot(s.wal.Pos(), b); err != nil {
		return nil, err
	}
	return b, nil
}

// Restore replaces the state (state transfer) and persists it.
func (s *durableSM) Restore(snap []byte) error {
	if len(snap) < 8 {
		return errors.New("replica: snapshot too short")
	}
	if err := s.store.Restore(snap[8:]); err != nil {
		return err
	}
	s.last.Store(binary.LittleEndian.Uint64(snap))
	if err := s.wal.WriteSnapshot(s.wal.Pos(), snap); err != nil {
		return err
	}
	s.log.Info("state transferred", "seq", s.last.Load())
	return nil
}

// recover loads the snapshot and replays the log.
func (s *durableSM) recover() error {
	return s.wal.Recover(func(_ uint64, snap []byte) error {
		if len(snap) < 8 {
			return errors.New("replica: snapshot too short")
		}
		s.last.Store(binary.LittleEndian.Uint64(snap))
		return s.store.Restore(snap[8:])
	}, func(_ uint64, rec []byte) error {
		if len(rec) < 12 {
			return errors.New("batch record too short")
		}
		seq := binary.LittleEndian.Uint64(rec)
		n := int(binary.LittleEndian.Uint32(rec[8:]))
		if n > (len(rec)-12)/16 {
			return errors.New("batch record truncated")
		}
		off := 12 + 16*n
		bufs := make([]bufpool.Buf, n)
		for i := range n {
			l := int(binary.LittleEndian.Uint32(rec[12+16*i+12:]))
			if l > len(rec)-off {
				return errors.New("batch record truncated")
			}
			bufs[i] = bufpool.Wrap(append([]byte(nil), rec[off:off+l]...))
			off += l
		}
		if seq > s.last.Load() {
			s.store.ApplyBatch(bufs)
			s.last.Store(seq)
		}
		for _, b := range bufs {
			b.Release()
		}
		return nil
	})
}
