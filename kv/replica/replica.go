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
// journal (pbft.Journal: the views the replica entered or asked for, its
// prepared certificates with their batches, its stable checkpoint) lives in
// DataDir/pbft and is fsynced once per Ready, before the messages that
// depend on it leave; PBFT's checkpoint blobs become the log's snapshot,
// which empties it. A replica that restarts hands PBFT the checkpoint, the
// batches logged after it and the journal (pbft.Recovery): PBFT restores
// the checkpoint, re-executes those batches (rebuilding the store and the
// client windows), takes back its certificates and asks for the view after
// the last it recorded. Any 2f+1 replicas restarted together — the whole
// cluster included — form that view and serve again; a replica restarted
// alone catches up by state transfer and joins the next view change.
//
// Each result carries its op's nonce, so that a result meant for another
// request is never returned for this one: after a restart the hosted
// client resumes its numbering after the last request it executed, and a
// request it had issued before the crash may still hold one of the next
// timestamps; the executor then submits the op again.
package replica

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
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
	// TruncateCorruptLog cuts a corrupt log or journal at its first bad
	// record instead of refusing to start (kv.WALOptions.TruncateCorrupt).
	TruncateCorruptLog bool
	// Transport overrides the node's transport section of Cluster (nil:
	// the section's, UDP without one; see config.Transport).
	Transport *config.Transport
	// Do runs fn where the replica's node opens its sockets (node.Config.Do:
	// a network namespace, for in-process clusters whose replicas stand
	// for hosts). The memcached listener stays in the caller's namespace.
	// Default: fn is called as is.
	Do func(fn func() error) error
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Replica is a running replica.
type Replica struct {
	cfg     Config
	log     *slog.Logger
	sm      *durableSM
	journal *journal
	node    *node.Node // PBFT (tapped) over the durable state machine
	exec    *executor
	srv     *kv.Server
	ln      net.Listener
	served  chan error
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
	var rec *pbft.Recovery
	r.sm, r.journal, rec, err = openDurable(cfg.DataDir, kv.WALOptions{NoSync: cfg.NoSync, TruncateCorrupt: cfg.TruncateCorruptLog}, r.log)
	if err != nil {
		return r, err
	}
	defer rec.Release()
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
			Journal:            r.journal,
			Recovery:           rec,
			CheckpointInterval: cfg.CheckpointInterval,
			Timeout:            cfg.Timeout,
			MaxRequest:         kv.DefaultMaxItemSize + 64<<10,
			Logger:             r.log,
		})
		if err != nil {
			return nil, fmt.Errorf("recover from %s: %w", cfg.DataDir, err)
		}
		return &tapped{Node: pn, exec: r.exec, journal: r.journal, log: r.log}, nil
	}
	r.node, err = node.Start(node.Config{Cluster: c, ID: cfg.ID, Spec: spec, Transport: cfg.Transport, Frames: cfg.Frames, Verifiers: 2,
		Do: cfg.Do, Epoch: time.Now(), Logger: cfg.Logger.With("replica", cfg.ID)})
	if err != nil {
		return r, fmt.Errorf("replica: %w", err)
	}
	r.sm.recovering = false
	r.log.Info("state after recovery", "executed", r.sm.last.Load(), "items", r.sm.store.Stats().CurrItems)
	r.exec.runner = r.node
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
	if r.exec != nil {
		// Ops in flight end now (their clients get an error), so that the
		// front end's connections close at once, not after OpTimeout.
		r.exec.cancel()
	}
	if r.srv != nil {
		errs = append(errs, r.srv.Close())
		if r.served != nil {
			errs = append(errs, <-r.served)
		}
	}
	if r.node != nil {
		errs = append(errs, r.node.Close()) // runner, link, PBFT, payload store
	}
	if r.journal != nil {
		errs = append(errs, r.journal.close())
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
	journal *journal
	log     *slog.Logger
	results []pbft.Result
}

// Ready passes on the node's work and its accepted results, once the
// journal records it depends on are on disk (persist, then send).
func (t *tapped) Ready() broadcast.Ready {
	rd := t.Node.Ready()
	if err := t.journal.sync(); err != nil {
		// Like a crashed replica: nothing leaves that the disk does not back.
		t.log.Error("replica: journal sync failed; messages dropped", "err", err)
		for i := range rd.Messages {
			rd.Messages[i].Msg.Payload.Release()
		}
		rd.Messages = nil
	}
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
}

// errStale is a result that answers another op than the one submitted.
var errStale = errors.New("replica: result of another request (stale client timestamp)")

// staleRetries bounds the resubmissions of an op whose result turned out
// to be another op's: after a restart the hosted client's first timestamps
// may already carry requests it issued before the crash.
const staleRetries = 4

// Execute submits op (taking the reference) and waits for its result,
// submitting it again if the result answers another request.
func (e *executor) Execute(ctx context.Context, op bufpool.Buf) ([]byte, error) {
	defer op.Release()
	if op.Refs() == 1 && op.Contiguous() && op.Len() > 1 {
		// Mark the copy as this replica's (the "via" byte, which the store
		// ignores): copies of one BFT client op submitted by several
		// replicas are then distinct requests with distinct digests.
		op.Bytes()[1] = byte(e.self + 1)
	}
	for try := 0; ; try++ {
		v, err := e.execute(ctx, op.Retain())
		if !errors.Is(err, errStale) || try == staleRetries {
			return v, err
		}
	}
}

func (e *executor) execute(ctx context.Context, op bufpool.Buf) ([]byte, error) {
	nonce, _ := kv.OpNonce(op)
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
// length u32, payload. The log's snapshot is PBFT's checkpoint blob
// (snapshotMagic, then the blob), written by the journal's SaveCheckpoint;
// the store's own snapshot (inside that blob) is seq u64 | kv.Store
// snapshot.
type durableSM struct {
	store *kv.Store
	wal   *kv.WAL
	log   *slog.Logger
	last  atomic.Uint64
	parts [][]byte
	// walLast is the last batch the log held at start: PBFT re-executes
	// batches up to it from the log (not logging them again).
	walLast    uint64
	recovering bool
}

var _ pbft.StateMachine = (*durableSM)(nil)

var replyAlreadyApplied = []byte("SERVER_ERROR replica recovering\r\n")

// Apply logs the batch, fsyncs, then applies it; a batch PBFT re-executes
// from the log at start is applied without being logged again.
func (s *durableSM) Apply(seq uint64, ops []pbft.Op) [][]byte {
	if seq <= s.last.Load() {
		// Never expected: PBFT executes each sequence number once.
		out := make([][]byte, len(ops))
		for i := range out {
			out[i] = tagResult(ops[i].Payload, replyAlreadyApplied)
		}
		return out
	}
	if seq > s.walLast {
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

// Snapshot returns the state at the last applied batch (PBFT puts it in its
// checkpoint blob, which the journal persists).
func (s *durableSM) Snapshot() ([]byte, error) {
	snap, err := s.store.Snapshot()
	if err != nil {
		return nil, err
	}
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+len(snap)), s.last.Load())
	return append(b, snap...), nil
}

// Restore replaces the state (a checkpoint at start, or state transfer;
// the journal persists the blob that carries it).
func (s *durableSM) Restore(snap []byte) error {
	if len(snap) < 8 {
		return errors.New("replica: snapshot too short")
	}
	if err := s.store.Restore(snap[8:]); err != nil {
		return err
	}
	s.last.Store(binary.LittleEndian.Uint64(snap))
	if !s.recovering {
		s.log.Info("state transferred", "seq", s.last.Load())
	}
	return nil
}

// snapshotMagic starts the log's snapshot: PBFT's checkpoint blob follows.
const snapshotMagic = "onecast-kv-pbft-checkpoint-1\n"

// journal is PBFT's Journal on the replica's disk: its records in a log of
// their own (DataDir/pbft), checkpoint blobs as the batch log's snapshot.
// Appends are synced once per Ready, before its messages leave.
type journal struct {
	wal   *kv.WAL // pbft's records
	batch *kv.WAL // the state machine's batch log
	pos   uint64  // last record appended
	dirty bool
}

var _ pbft.Journal = (*journal)(nil)

func (j *journal) Append(rec []byte) error {
	pos, err := j.wal.AppendVec([][]byte{rec})
	if err != nil {
		return fmt.Errorf("replica: journal: %w", err)
	}
	j.pos, j.dirty = pos, true
	return nil
}

func (j *journal) Compact(rec []byte) error {
	if err := j.wal.WriteSnapshot(j.wal.Pos(), rec); err != nil {
		return fmt.Errorf("replica: journal: %w", err)
	}
	j.dirty = false
	return nil
}

func (j *journal) SaveCheckpoint(_ uint64, blob []byte) error {
	b := make([]byte, 0, len(snapshotMagic)+len(blob))
	b = append(append(b, snapshotMagic...), blob...)
	if err := j.batch.WriteSnapshot(j.batch.Pos(), b); err != nil {
		return fmt.Errorf("replica: checkpoint: %w", err)
	}
	return nil
}

// sync makes the appended records durable.
func (j *journal) sync() error {
	if j == nil || !j.dirty {
		return nil
	}
	if err := j.wal.SyncTo(j.pos); err != nil {
		return err
	}
	j.dirty = false
	return nil
}

func (j *journal) close() error {
	err := j.sync()
	return errors.Join(err, j.wal.Close())
}

// openDurable opens a replica's data directory: the state machine (empty
// until PBFT restores it), the journal, and, if the directory holds
// anything, the Recovery PBFT restarts from (its payloads are heap
// buffers; Release them after pbft.New).
func openDurable(dir string, opts kv.WALOptions, log *slog.Logger) (*durableSM, *journal, *pbft.Recovery, error) {
	batch, err := kv.OpenWAL(dir, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	jw, err := kv.OpenWAL(filepath.Join(dir, "pbft"), opts)
	if err != nil {
		batch.Close()
		return nil, nil, nil, err
	}
	sm := &durableSM{store: kv.NewStore(kv.StoreConfig{}), wal: batch, log: log, recovering: true}
	j := &journal{wal: jw, batch: batch}
	fail := func(err error) (*durableSM, *journal, *pbft.Recovery, error) {
		batch.Close()
		jw.Close()
		sm.store.Close()
		return nil, nil, nil, err
	}
	rec := &pbft.Recovery{}
	found := false
	err = batch.Recover(func(_ uint64, snap []byte) error {
		if !bytes.HasPrefix(snap, []byte(snapshotMagic)) {
			return fmt.Errorf("snapshot in %s is not a PBFT checkpoint (written by an older onecast?)", dir)
		}
		rec.Checkpoint, found = bytes.Clone(snap[len(snapshotMagic):]), true
		return nil
	}, func(_ uint64, r []byte) error {
		b, err := decodeBatch(r)
		if err != nil {
			return err
		}
		rec.Batches, found = append(rec.Batches, b), true
		sm.walLast = b.Seq
		return nil
	})
	if err != nil {
		return fail(fmt.Errorf("replica: batch log in %s: %w", dir, err))
	}
	err = jw.Recover(func(_ uint64, snap []byte) error {
		rec.Journal, found = append(rec.Journal, bytes.Clone(snap)), true
		return nil
	}, func(_ uint64, r []byte) error {
		rec.Journal, found = append(rec.Journal, bytes.Clone(r)), true
		return nil
	})
	if err != nil {
		return fail(fmt.Errorf("replica: journal in %s: %w", filepath.Join(dir, "pbft"), err))
	}
	if !found {
		return sm, j, nil, nil
	}
	log.Info("recovering from disk", "dir", dir, "checkpoint", rec.Checkpoint != nil, "batches", len(rec.Batches), "journal records", len(rec.Journal))
	return sm, j, rec, nil
}

// decodeBatch reads one batch record of the log (payloads copied to the
// heap).
func decodeBatch(rec []byte) (pbft.RecoveredBatch, error) {
	if len(rec) < 12 {
		return pbft.RecoveredBatch{}, errors.New("batch record too short")
	}
	b := pbft.RecoveredBatch{Seq: binary.LittleEndian.Uint64(rec)}
	n := int(binary.LittleEndian.Uint32(rec[8:]))
	if n > (len(rec)-12)/16 {
		return b, errors.New("batch record truncated")
	}
	off := 12 + 16*n
	for i := range n {
		h := rec[12+16*i:]
		l := int(binary.LittleEndian.Uint32(h[12:]))
		if l > len(rec)-off {
			return b, errors.New("batch record truncated")
		}
		b.Ops = append(b.Ops, pbft.Op{Client: broadcast.NodeID(binary.LittleEndian.Uint32(h)),
			Timestamp: binary.LittleEndian.Uint64(h[4:]), Payload: bufpool.Wrap(bytes.Clone(rec[off : off+l]))})
		off += l
	}
	return b, nil
}
