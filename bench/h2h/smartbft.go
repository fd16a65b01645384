package h2h

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	smart "github.com/hyperledger-labs/SmartBFT/pkg/api"
	smartbft "github.com/hyperledger-labs/SmartBFT/pkg/consensus"
	bft "github.com/hyperledger-labs/SmartBFT/pkg/types"
	"github.com/hyperledger-labs/SmartBFT/smartbftprotos"
	"google.golang.org/protobuf/proto"

	"github.com/onecast/onecast/bench/h2h/memnet"
)

// SmartBFTBatch is the most requests per SmartBFT proposal: pbft's default
// batch.
const SmartBFTBatch = 16

// Message kinds on memnet, the first byte of each SmartBFT frame: its
// consensus messages (protobuf), a request forwarded to the leader by the
// library, and the harness client's copy of a request for a replica's pool.
const (
	sbftConsensus byte = 0
	sbftForward   byte = 1
	sbftClient    byte = 2
)

// smartSys is Hyperledger Labs' SmartBFT: one smartbft.Consensus per node,
// memnet as its Comm.
type smartSys struct {
	// signed: the client appends an Ed25519 signature (its node's key, as
	// pbft's hosted client signs) to each request, and every follower
	// checks it when it verifies a proposal.
	signed bool
	privs  []ed25519.PrivateKey
	log    *slog.Logger
	net    *memnet.Network
	nodes  []*sbftNode
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
}

// sbftNode is one SmartBFT replica and everything the library asks of the
// application: Application, Comm, Assembler, WAL (in memory), Signer and
// Verifier (Ed25519), RequestInspector, Synchronizer, MembershipNotifier.
type sbftNode struct {
	s       *smartSys
	id      int // memnet ID; SmartBFT's is id+1 (it refuses 0)
	n       int
	cons    *smartbft.Consensus
	priv    ed25519.PrivateKey
	pubs    []ed25519.PublicKey
	ticker  *time.Ticker
	vticker *time.Ticker
	observe func(int, []byte)
	done    Done
	log     *slog.Logger

	clientC chan []byte // client copies, submitted off the receive loop

	walMu sync.Mutex
	wal   [][]byte
	led   ledger
	syncs atomic.Uint64
}

// ledgerBudget bounds the bytes of the decisions a node keeps for
// laggards (at least ledgerMin decisions are kept): SmartBFT's fourth
// replica may go a second or two without syncing.
const (
	ledgerBudget = 128 << 20
	ledgerMin    = 256
)

// ledger is the decisions a node delivered, by sequence: what its
// Synchronizer pulls from the others (Fabric's block puller, in memory).
type ledger struct {
	mu    sync.Mutex
	base  uint64 // sequence of decs[0]
	decs  []bft.Decision
	sizes []int
	bytes int
	last  uint64 // highest sequence delivered
}

// decisionSize is a decision's size as a block puller would move it.
func decisionSize(d bft.Decision) int {
	size := len(d.Proposal.Header) + len(d.Proposal.Payload) + len(d.Proposal.Metadata)
	for _, sg := range d.Signatures {
		size += len(sg.Value) + len(sg.Msg) + 8
	}
	return size
}

// seqOf is a decision's sequence number, from its view metadata.
func seqOf(p bft.Proposal) (uint64, error) {
	md := &smartbftprotos.ViewMetadata{}
	if err := proto.Unmarshal(p.Metadata, md); err != nil {
		return 0, fmt.Errorf("proposal metadata: %w", err)
	}
	return md.LatestSequence, nil
}

// record appends d (sequence seq) unless it was delivered already; it
// reports whether it is new.
func (l *ledger) record(seq uint64, d bft.Decision) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq <= l.last {
		return false
	}
	if len(l.decs) == 0 || seq != l.base+uint64(len(l.decs)) {
		clear(l.decs)
		l.decs, l.sizes, l.bytes, l.base = l.decs[:0], l.sizes[:0], 0, seq
	}
	size := decisionSize(d)
	l.decs, l.sizes, l.bytes = append(l.decs, d), append(l.sizes, size), l.bytes+size
	if l.bytes > ledgerBudget && len(l.decs) > 2*ledgerMin {
		// Drop the older half.
		drop := len(l.decs) / 2
		for _, sz := range l.sizes[:drop] {
			l.bytes -= sz
		}
		k := copy(l.decs, l.decs[drop:])
		clear(l.decs[k:])
		l.decs = l.decs[:k]
		l.sizes = l.sizes[:copy(l.sizes, l.sizes[drop:])]
		l.base += uint64(drop)
	}
	l.last = seq
	return true
}

// since returns the decisions after sequence seq that l still holds.
func (l *ledger) since(seq uint64) (uint64, []bft.Decision) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last <= seq || len(l.decs) == 0 {
		return 0, nil
	}
	from := max(seq+1, l.base)
	return from, slices.Clone(l.decs[from-l.base:])
}

func (l *ledger) latest() (uint64, bft.Decision) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.decs) == 0 {
		return 0, bft.Decision{}
	}
	return l.last, l.decs[len(l.decs)-1]
}

func newSmartBFT(signed bool) *smartSys { return &smartSys{signed: signed} }

func (s *smartSys) Name() string {
	if s.signed {
		return "smartbft-signed"
	}
	return "smartbft"
}

func (s *smartSys) fail(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

func (s *smartSys) Start(net *memnet.Network, cfg Config, done Done) (err error) {
	s.net, s.log = net, cfg.Logger
	s.ctx, s.stop = context.WithCancel(context.Background())
	pubs := make([]ed25519.PublicKey, cfg.N)
	privs := make([]ed25519.PrivateKey, cfg.N)
	for i := range cfg.N {
		if pubs[i], privs[i], err = ed25519.GenerateKey(crand.Reader); err != nil {
			s.stop()
			return err
		}
	}
	s.privs = privs
	for i := range cfg.N {
		nd := &sbftNode{s: s, id: i, clientC: make(chan []byte, 4096), n: cfg.N, priv: privs[i], pubs: pubs, observe: cfg.Observe, done: done,
			log: cfg.Logger.With("smartbft", i+1),
			// As the library's naive_chain example: one-second ticks.
			ticker: time.NewTicker(time.Second), vticker: time.NewTicker(time.Second)}
		conf := bft.DefaultConfig
		conf.SelfID = uint64(i + 1)
		conf.RequestBatchMaxCount = SmartBFTBatch
		// A stable leader, as pbft's and raft's: with rotation (the
		// default, every 3 decisions) a replica that gets the next
		// leader's PRE-PREPARE before it has rotated itself drops it, falls
		// behind, and the cluster stalls until timeouts of tens of seconds.
		conf.LeaderRotation, conf.DecisionsPerLeader = false, 0
		conf.RequestPoolSize = max(conf.RequestPoolSize, 4*uint64(cfg.Inflight))
		if uint64(cfg.Payload+ed25519.SignatureSize) > conf.RequestMaxBytes {
			conf.RequestMaxBytes = uint64(cfg.Payload + ed25519.SignatureSize)
		}
		nd.cons = &smartbft.Consensus{Config: conf, Scheduler: nd.ticker.C, ViewChangerTicker: nd.vticker.C,
			Logger: sbftLogger{nd.log}, Comm: nd, Signer: nd, MembershipNotifier: nd, Verifier: nd,
			Application: nd, Assembler: nd, RequestInspector: nd, Synchronizer: nd, WAL: nd,
			Metadata: &smartbftprotos.ViewMetadata{}}
		s.nodes = append(s.nodes, nd)
	}
	started := 0
	defer func() {
		if err != nil {
			s.stop()
			s.wg.Wait()
			for _, nd := range s.nodes[:started] {
				nd.cons.Stop()
			}
			for _, nd := range s.nodes {
				nd.ticker.Stop()
				nd.vticker.Stop()
			}
		}
	}()
	for _, nd := range s.nodes {
		if err := nd.cons.Start(); err != nil {
			return fmt.Errorf("smartbft node %d: %w", nd.id+1, err)
		}
		started++
	}
	for _, nd := range s.nodes {
		s.wg.Go(func() { nd.recvLoop() })
		s.wg.Go(func() { nd.poolLoop() })
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, nd := range s.nodes {
		for nd.cons.GetLeaderID() == 0 {
			if time.Now().After(deadline) {
				return errors.New("smartbft: no leader within 10 s")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

func (nd *sbftNode) recvLoop() {
	for {
		msg, err := nd.s.net.Recv(nd.s.ctx, nd.id)
		if err != nil {
			return
		}
		if len(msg.Data) == 0 {
			nd.s.fail(fmt.Errorf("smartbft node %d: empty message from %d", nd.id+1, msg.From+1))
			continue
		}
		from := uint64(msg.From + 1)
		switch body := msg.Data[1:]; msg.Data[0] {
		case sbftConsensus:
			m := &smartbftprotos.Message{}
			if err := proto.Unmarshal(body, m); err != nil {
				nd.s.fail(fmt.Errorf("smartbft node %d: undecodable message from %d: %w", nd.id+1, from, err))
				continue
			}
			nd.cons.HandleMessage(from, m)
		case sbftForward:
			nd.cons.HandleRequest(from, body)
		case sbftClient:
			// Off this loop: a full pool blocks SubmitRequest, and
			// consensus messages must not wait behind it.
			select {
			case nd.clientC <- body:
			case <-nd.s.ctx.Done():
				return
			}
		default:
			nd.s.fail(fmt.Errorf("smartbft node %d: message of kind %d from %d", nd.id+1, msg.Data[0], from))
		}
	}
}

// poolLoop puts the client copies other replicas sent into this one's pool.
func (nd *sbftNode) poolLoop() {
	for {
		select {
		case req := <-nd.clientC:
			_ = nd.cons.SubmitRequest(req) // already decided or pooled: nothing to do
		case <-nd.s.ctx.Done():
			return
		}
	}
}

func (s *smartSys) Submitters() []int {
	out := make([]int, len(s.nodes))
	for i := range out {
		out[i] = i
	}
	return out
}

// Submit puts req in the node's pool and sends the client's copy to every
// other replica, as SmartBFT's clients (Fabric's) send each request to
// every orderer; pbft's client too sends each request to every replica.
func (s *smartSys) Submit(ctx context.Context, node int, req []byte) error {
	nd := s.nodes[node]
	if s.signed {
		req = append(req, ed25519.Sign(s.privs[node], req)...)
	}
	if err := nd.cons.SubmitRequest(req); err != nil {
		return err
	}
	for j := range s.nodes {
		if j == node {
			continue
		}
		frame := make([]byte, 1+len(req))
		frame[0] = sbftClient
		copy(frame[1:], req)
		if err := s.net.Send(node, j, frame); err != nil {
			return err
		}
	}
	return nil
}

func (s *smartSys) Stop() error {
	s.stop()
	for _, nd := range s.nodes {
		nd.cons.Stop()
		nd.ticker.Stop()
		nd.vticker.Stop()
	}
	s.wg.Wait()
	var syncs uint64
	for _, nd := range s.nodes {
		syncs += nd.syncs.Load()
	}
	if syncs > 0 {
		s.log.Warn("smartbft: replicas fell behind and synced", "syncs", syncs)
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Comm.

func (nd *sbftNode) SendConsensus(target uint64, m *smartbftprotos.Message) {
	b, err := proto.MarshalOptions{}.MarshalAppend([]byte{sbftConsensus}, m)
	if err != nil {
		nd.s.fail(fmt.Errorf("smartbft node %d: marshal: %w", nd.id+1, err))
		return
	}
	_ = nd.s.net.Send(nd.id, int(target-1), b)
}

func (nd *sbftNode) SendTransaction(target uint64, request []byte) {
	b := make([]byte, 1+len(request))
	b[0] = sbftForward
	copy(b[1:], request)
	_ = nd.s.net.Send(nd.id, int(target-1), b)
}

func (nd *sbftNode) Nodes() []uint64 {
	out := make([]uint64, nd.n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// Application.

func (nd *sbftNode) Deliver(p bft.Proposal, sigs []bft.Signature) bft.Reconfig {
	nd.deliver(bft.Decision{Proposal: p, Signatures: sigs})
	return bft.Reconfig{}
}

// deliver hands a decision's requests to the harness once, whether the
// library delivered it or the Synchronizer pulled it; it returns them (nil
// if the decision was delivered before).
func (nd *sbftNode) deliver(d bft.Decision) [][]byte {
	seq, err := seqOf(d.Proposal)
	if err != nil {
		nd.s.fail(fmt.Errorf("smartbft node %d: delivered proposal: %w", nd.id+1, err))
		return nil
	}
	if !nd.led.record(seq, d) {
		return nil
	}
	reqs, err := decodeBatch(d.Proposal.Payload)
	if err != nil {
		nd.s.fail(fmt.Errorf("smartbft node %d: delivered proposal: %w", nd.id+1, err))
	}
	for _, r := range reqs {
		if nd.s.signed && len(r) >= ed25519.SignatureSize {
			r = r[:len(r)-ed25519.SignatureSize]
		}
		if nd.observe != nil {
			nd.observe(nd.id, r)
		}
		if id, ok := ParseID(r); ok && id.Node == nd.id {
			nd.done(id)
		}
	}
	return reqs
}

// Assembler: a proposal's payload is its requests, each preceded by its
// length (uvarint); the header carries nothing (SmartBFT's metadata names
// view and sequence).

func (nd *sbftNode) AssembleProposal(metadata []byte, requests [][]byte) bft.Proposal {
	return bft.Proposal{Payload: encodeBatch(requests), Metadata: metadata}
}

func encodeBatch(reqs [][]byte) []byte {
	size := 0
	for _, r := range reqs {
		size += binary.MaxVarintLen32 + len(r)
	}
	out := make([]byte, 0, size)
	for _, r := range reqs {
		out = binary.AppendUvarint(out, uint64(len(r)))
		out = append(out, r...)
	}
	return out
}

func decodeBatch(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return out, errors.New("malformed batch")
		}
		out = append(out, b[k:k+int(n)])
		b = b[k+int(n):]
	}
	return out, nil
}

// WriteAheadLog: in memory (pbft keeps no log at all); a truncation point
// drops what came before.

func (nd *sbftNode) Append(entry []byte, truncateTo bool) error {
	nd.walMu.Lock()
	defer nd.walMu.Unlock()
	if truncateTo {
		clear(nd.wal)
		nd.wal = nd.wal[:0]
	}
	nd.wal = append(nd.wal, append([]byte(nil), entry...))
	return nil
}

// Signer and Verifier: Ed25519, as pbft's certificate signatures.

func proposalDigest(p bft.Proposal, aux []byte) []byte {
	h := sha256.New()
	for _, part := range [][]byte{p.Header, p.Payload, p.Metadata, aux} {
		var l [8]byte
		binary.LittleEndian.PutUint64(l[:], uint64(len(part)))
		h.Write(l[:])
		h.Write(part)
	}
	var vs [8]byte
	binary.LittleEndian.PutUint64(vs[:], uint64(p.VerificationSequence))
	h.Write(vs[:])
	return h.Sum(nil)
}

func (nd *sbftNode) Sign(msg []byte) []byte { return ed25519.Sign(nd.priv, msg) }

func (nd *sbftNode) SignProposal(p bft.Proposal, aux []byte) *bft.Signature {
	return &bft.Signature{ID: uint64(nd.id + 1), Value: ed25519.Sign(nd.priv, proposalDigest(p, aux)), Msg: aux}
}

func (nd *sbftNode) pub(id uint64) (ed25519.PublicKey, error) {
	if id == 0 || id > uint64(nd.n) {
		return nil, fmt.Errorf("signature of unknown node %d", id)
	}
	return nd.pubs[id-1], nil
}

func (nd *sbftNode) VerifyConsenterSig(sig bft.Signature, p bft.Proposal) ([]byte, error) {
	pub, err := nd.pub(sig.ID)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(pub, proposalDigest(p, sig.Msg), sig.Value) {
		return nil, fmt.Errorf("consenter signature of node %d does not verify", sig.ID)
	}
	return sig.Msg, nil
}

func (nd *sbftNode) VerifySignature(sig bft.Signature) error {
	pub, err := nd.pub(sig.ID)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, sig.Msg, sig.Value) {
		return fmt.Errorf("signature of node %d does not verify", sig.ID)
	}
	return nil
}

func (nd *sbftNode) VerifyProposal(p bft.Proposal) ([]bft.RequestInfo, error) {
	reqs, err := decodeBatch(p.Payload)
	if err != nil {
		return nil, err
	}
	infos := make([]bft.RequestInfo, 0, len(reqs))
	for _, r := range reqs {
		info, err := nd.verifyRequest(r, nd.s.signed)
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	return infos, nil
}

func (nd *sbftNode) RequestsFromProposal(p bft.Proposal) []bft.RequestInfo {
	reqs, _ := decodeBatch(p.Payload)
	infos := make([]bft.RequestInfo, 0, len(reqs))
	for _, r := range reqs {
		infos = append(infos, nd.RequestID(r))
	}
	return infos
}

// VerifyRequest checks the request's shape, and in smartbft-signed its
// client signature; in smartbft requests carry no signature and memnet's
// links are authentic (see doc.go).
func (nd *sbftNode) VerifyRequest(req []byte) (bft.RequestInfo, error) {
	return nd.verifyRequest(req, nd.s.signed)
}

func (nd *sbftNode) verifyRequest(req []byte, checkSig bool) (bft.RequestInfo, error) {
	id, ok := ParseID(req)
	if !ok || id.Node < 0 || id.Node >= nd.n {
		return bft.RequestInfo{}, errors.New("malformed request")
	}
	if checkSig {
		if len(req) < IDSize+ed25519.SignatureSize {
			return bft.RequestInfo{}, errors.New("request without its signature")
		}
		body, sig := req[:len(req)-ed25519.SignatureSize], req[len(req)-ed25519.SignatureSize:]
		if !ed25519.Verify(nd.pubs[id.Node], body, sig) {
			return bft.RequestInfo{}, fmt.Errorf("client signature of request %v does not verify", id)
		}
	}
	return requestInfo(id), nil
}

func requestInfo(id ReqID) bft.RequestInfo {
	return bft.RequestInfo{ClientID: strconv.Itoa(id.Node), ID: strconv.FormatUint(id.Seq, 10)}
}

func (nd *sbftNode) VerificationSequence() uint64 { return 0 }

func (nd *sbftNode) AuxiliaryData(msg []byte) []byte { return msg }

// RequestInspector.

func (nd *sbftNode) RequestID(req []byte) bft.RequestInfo {
	id, _ := ParseID(req)
	return requestInfo(id)
}

// Synchronizer: a replica that fell behind (SmartBFT's views accept
// messages for the current and the next sequence only; the others move on
// with a quorum) pulls the decisions it missed from the most advanced other
// replica's ledger, as Fabric pulls blocks. The transfer is charged to
// memnet (Account) at the decisions' size: header, payload, metadata and
// signatures.

func (nd *sbftNode) Sync() bft.SyncResponse {
	nd.syncs.Add(1)
	mine, _ := nd.led.latest()
	src, best := -1, mine
	for _, o := range nd.s.nodes {
		if o == nd {
			continue
		}
		if last, _ := o.led.latest(); last > best {
			src, best = o.id, last
		}
	}
	if src >= 0 {
		from, decs := nd.s.nodes[src].led.since(mine)
		if from > mine+1 {
			nd.s.fail(fmt.Errorf("smartbft node %d: fell %d decisions behind, past what ledgers keep", nd.id+1, best-mine))
		}
		for _, d := range decs {
			nd.s.net.Account(src, nd.id, decisionSize(d))
			for _, r := range nd.deliver(d) {
				// As Fabric prunes pulled blocks' requests: the library
				// removes from the pool only what it delivers itself.
				_ = nd.cons.Pool.RemoveRequest(nd.RequestID(r))
			}
		}
	}
	_, latest := nd.led.latest()
	return bft.SyncResponse{Latest: latest}
}

// MembershipNotifier: the membership never changes.

func (nd *sbftNode) MembershipChange() bool { return false }

// sbftLogger sends SmartBFT's logs to slog (debug and info at debug level).
type sbftLogger struct{ l *slog.Logger }

func (g sbftLogger) Debugf(f string, a ...any) {}
func (g sbftLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...)) }
func (g sbftLogger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...)) }
func (g sbftLogger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...)) }
func (g sbftLogger) Panicf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

var (
	_ smart.Application        = (*sbftNode)(nil)
	_ smart.Comm               = (*sbftNode)(nil)
	_ smart.Assembler          = (*sbftNode)(nil)
	_ smart.WriteAheadLog      = (*sbftNode)(nil)
	_ smart.Signer             = (*sbftNode)(nil)
	_ smart.Verifier           = (*sbftNode)(nil)
	_ smart.RequestInspector   = (*sbftNode)(nil)
	_ smart.Synchronizer       = (*sbftNode)(nil)
	_ smart.MembershipNotifier = (*sbftNode)(nil)
)
