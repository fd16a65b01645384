package pbft

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/broadcast/quorum"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/internal/mutant"
)

// Node is one PBFT replica and the client it hosts, as a broadcast.Protocol.
// Submit is a request from the hosted client; Deliveries are the requests
// the replica executed, in order (Instance.Seq = sequence number, Index =
// position in the batch, Instance.Origin = the requesting client).
type Node struct {
	cfg    Config
	n, f   int
	self   broadcast.NodeID
	store  *broadcast.PayloadStore
	sm     StateMachine
	signer Signer
	// reqAuth checks clients' request authenticators (Config.RequestAuth).
	reqAuth Signer
	log     *slog.Logger
	client  *Client
	now     time.Duration

	view     uint32
	changing bool   // a view change to target is under way
	target   uint32 // the view being changed to
	nextSeq  uint64 // primary: the last sequence number assigned
	low      uint64 // h: the last stable checkpoint
	lastExec uint64
	slots    map[uint64]*slot

	clients []clientRec
	queue   []reqRef // primary: requests to order, oldest first

	ckpts  map[uint64]*ckptVotes
	stable stableCkpt
	// stablePinned says this replica holds a pin on the stable checkpoint's
	// state blob.
	stablePinned bool
	far          []farCkpt
	own          map[uint64]broadcast.Digest // own checkpoint digests above low

	timer    time.Duration // view-change deadline, 0 when off
	resend   time.Duration // next retransmission of own protocol messages
	vcStreak int
	// viewRun counts the views entered since this replica last executed a
	// batch; carried holds the sequence numbers the previous NEW-VIEW took
	// from certificates (for the coverage counters in Stats).
	viewRun uint64
	carried map[uint64]struct{}
	vcs     [][]*vcRecord // per sender, its newest VIEW-CHANGEs (at most maxVCsPerSender), by view
	nvSent  uint32
	newView *nvState // NEW-VIEW accepted or waiting for fetched parts
	// entered is the NEW-VIEW of the last view this replica entered, the
	// VIEW-CHANGEs it names kept pinned: a replica still asking for that
	// view is handed it (relayNewView). nvRelayed is, per peer, when it
	// may be handed one again.
	entered    *nvState
	nvRelayed  []time.Duration
	transfer   *broadcast.Digest
	transferAt uint64

	wanted  map[broadcast.Digest]*fetchState
	answers []answerBucket // per peer, its budget of fetch answers
	// future holds, per sequence number, a PRE-PREPARE for a view this
	// replica has not entered yet (the newest), replayed when it does.
	future map[uint64]*broadcast.Message
	// futureBytes is, per primary, the payload bytes future holds of its
	// PRE-PREPAREs (bounded by Config.FutureQuota).
	futureBytes []int

	// journaled says the journal holds a view record; journaledView is the
	// highest. halted: the journal failed and the replica sends nothing.
	journaled     bool
	journaledView uint32
	halted        bool

	out        []broadcast.Outbound
	deliveries []broadcast.Delivery
	stats      Stats
	scratch    []byte

	// Scratch space of the normal case, reused to spare allocations.
	stmt      broadcast.Digest // the statement being signed or checked
	outCap    int              // the size of the last Ready's messages
	clientOut []broadcast.Outbound
	execOps   []Op
	execAt    []execPos
}

// Stats are a replica's counters.
type Stats struct {
	Batches, Requests, Executed, Skipped uint64
	// ViewChanges counts the VIEW-CHANGEs this replica started.
	ViewChanges, StateTransfers uint64
	// Checkpoints counts the checkpoints this replica took; StableCheckpoints
	// the times its low watermark moved.
	Checkpoints, StableCheckpoints uint64
	// ViewsEntered counts the views this replica entered through a NEW-VIEW.
	ViewsEntered uint64
	// CertsCarried counts the sequence numbers whose batch a NEW-VIEW took
	// from a prepared certificate of an earlier view (not the null batch).
	CertsCarried uint64
	// MaxConsecutiveViews is the longest run of views this replica entered
	// with no batch executed in between.
	MaxConsecutiveViews uint64
	// CertCarriedTwice counts the certificates carried into a view that a
	// NEW-VIEW had already carried into the view before it, with no batch
	// executed in between: a prepared batch crossing two consecutive view
	// changes.
	CertCarriedTwice uint64
	// FetchesSent counts FETCH messages sent (one replica asked per try).
	FetchesSent uint64
	// FetchAnswered and FetchAnsweredBytes count the fetch answers sent;
	// FetchRefused and FetchRefusedBytes those dropped because the asking
	// peer had spent its Config.FetchAnswerRate.
	FetchAnswered, FetchAnsweredBytes uint64
	FetchRefused, FetchRefusedBytes   uint64
	// FutureStripped counts PRE-PREPAREs of views not yet entered kept
	// without their payload because their primary was over
	// Config.FutureQuota.
	FutureStripped uint64
	// Recoveries counts restarts from a Recovery; Replayed the batches
	// re-executed from the application's log; CertsRecovered the prepared
	// certificates taken back from the journal. JournalErrors counts
	// journal writes that failed (the replica then halts).
	Recoveries, Replayed, CertsRecovered, JournalErrors uint64
	// NewViewsRelayed counts NEW-VIEWs handed to replicas still asking
	// for a view this replica entered.
	NewViewsRelayed uint64
}

type reqRef struct {
	client broadcast.NodeID
	ts     uint64
}

type vote struct {
	view     uint32
	d        broadcast.Digest
	sig      []byte
	ok       bool
	verified bool // sig checked (done once the vote would complete a certificate)
}

type slot struct {
	seq      uint64
	view     uint32
	digest   broadcast.Digest
	enc      []byte // the batch's entry encoding, once known
	entries  []Entry
	ppSig    []byte
	ppOK     bool // ppSig verified
	accepted bool // a PRE-PREPARE for (view, seq) is accepted
	parked   bool // a PRE-PREPARE waits for requests from their clients
	prepares []vote
	commits  []vote
	sentPrep bool
	sentCmt  bool
	prepared bool
	commit   bool
	executed bool
	cert     *PreparedCert // the latest prepared certificate
	pinned   []broadcast.Digest
	certPins []broadcast.Digest // the certified batch and its ops
	arena    []byte             // signatures of the slot's votes (keep)
}

type ckptVotes struct {
	votes []vote // per node: view unused, d = state digest
}

type stableCkpt struct {
	seq    uint64
	digest broadcast.Digest
	proof  []SignedVote
}

type vcRecord struct {
	view    uint32
	digest  broadcast.Digest
	sig     []byte
	content *ViewChange
}

type nvState struct {
	view uint32
	refs []NewViewRef
	sig  []byte
	// o maps sequence numbers (lowO, highO] to the batch digests the new
	// view must order there.
	lowO, highO uint64
	o           map[uint64]broadcast.Digest
	done        bool
	// via is the replica that handed this NEW-VIEW over: its primary, or
	// a replica that entered the view (relayNewView). It holds the
	// VIEW-CHANGEs the NEW-VIEW names.
	via broadcast.NodeID
	// kept lists the VIEW-CHANGE digests pinned while this is the NEW-VIEW
	// of the last view entered.
	kept []broadcast.Digest
}

// New builds a replica.
func New(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	nd := &Node{cfg: cfg, n: cfg.N, f: cfg.F, self: cfg.Self, store: cfg.Store, sm: cfg.StateMachine,
		signer: cfg.Signer, log: cfg.Logger.With("pbft", cfg.Self),
		slots: map[uint64]*slot{}, ckpts: map[uint64]*ckptVotes{}, own: map[uint64]broadcast.Digest{},
		vcs: make([][]*vcRecord, cfg.N), wanted: map[broadcast.Digest]*fetchState{}, answers: make([]answerBucket, cfg.N), futureBytes: make([]int, cfg.N), nvRelayed: make([]time.Duration, cfg.N), future: map[uint64]*broadcast.Message{}}
	ra, err := cfg.requestAuthenticator()
	if err != nil {
		return nil, err
	}
	nd.reqAuth = ra
	nd.client = NewClient(cfg.Self, cfg.N, cfg.F, cfg.ClientWindow, cfg.Timeout, ra)
	nd.client.ownStable = true // the replica never modifies the results it keeps
	nd.clients = make([]clientRec, cfg.N)
	for i := range nd.clients {
		nd.clients[i].slots = make([]reqSlot, cfg.ClientWindow)
	}
	if cfg.Recovery != nil {
		if err := nd.recover(cfg.Recovery); err != nil {
			nd.Close()
			return nil, err
		}
	} else {
		nd.journalView(0)
	}
	return nd, nil
}

// Quorum sizes come from broadcast/quorum, the one place the arithmetic
// lives: 2f+1 (prepare with the pre-prepare, commit, checkpoint, view
// change), and f+1 (at least one correct replica vouches).
func (nd *Node) quorum() int     { return quorum.PBFTQuorum(nd.f) }
func (nd *Node) weakQuorum() int { return nd.f + 1 }
func (nd *Node) commitQuorum() int {
	if nd.cfg.UnsafeCommitQuorum > 0 {
		return nd.cfg.UnsafeCommitQuorum
	}
	return nd.quorum() - nd.cfg.Mutations.Bit(mutant.PBFTCommitQuorum)
}

func (nd *Node) primary(v uint32) broadcast.NodeID { return broadcast.NodeID(v % uint32(nd.n)) }
func (nd *Node) isPrimary() bool                   { return nd.primary(nd.view) == nd.self }

// View returns the current view.
func (nd *Node) View() uint32 { return nd.view }

// LastExecuted returns the last executed sequence number.
func (nd *Node) LastExecuted() uint64 { return nd.lastExec }

// StableCheckpoint returns the last stable checkpoint's sequence number.
func (nd *Node) StableCheckpoint() uint64 { return nd.low }

// Stats returns the replica's counters.
func (nd *Node) Stats() Stats { return nd.stats }

// Client returns the hosted client.
func (nd *Node) Client() *Client { return nd.client }

// TakeResults returns the hosted client's accepted results and clears them.
func (nd *Node) TakeResults(dst []Result) []Result { return nd.client.TakeResults(dst) }

// Submit issues payload as a request of the hosted client (taking the
// reference).
func (nd *Node) Submit(p bufpool.Buf) error {
	if p.Len() > nd.cfg.MaxRequest {
		p.Release()
		return fmt.Errorf("pbft: request of %d bytes exceeds MaxRequest %d", p.Len(), nd.cfg.MaxRequest)
	}
	nd.client.Request(p)
	nd.takeClientMessages()
	return nil
}

// takeClientMessages hands the hosted client's messages to this replica
// (without the network) and to the others.
func (nd *Node) takeClientMessages() {
	nd.clientOut = nd.client.TakeMessages(nd.clientOut[:0])
	for i := range nd.clientOut {
		o := &nd.clientOut[i]
		nd.onRequest(nd.self, &o.Msg)
		if nd.out == nil {
			nd.out = make([]broadcast.Outbound, 0, nd.outCap)
		}
		nd.out = append(nd.out, *o)
		*o = broadcast.Outbound{}
	}
}

// Ready returns the accumulated work.
func (nd *Node) Ready() broadcast.Ready {
	nd.takeClientMessages()
	rd := broadcast.Ready{Messages: nd.out, Deliveries: nd.deliveries}
	if len(nd.out) > 0 {
		nd.outCap = min(max(len(nd.out), 8), 1024)
	}
	nd.out, nd.deliveries = nil, nil
	if nd.halted {
		for i := range rd.Messages {
			rd.Messages[i].Msg.Payload.Release()
		}
		rd.Messages = nil
	}
	rd.NextWake = nd.nextWake()
	return rd
}

func (nd *Node) nextWake() time.Duration {
	w := nd.client.NextWake()
	for _, t := range []time.Duration{nd.timer, nd.resend} {
		if t > 0 && (w == 0 || t < w) {
			w = t
		}
	}
	return w
}

// Tick advances the clock: client retransmissions, the view-change timer,
// and retransmission of this replica's own protocol messages.
func (nd *Node) Tick(now time.Duration) {
	nd.now = now
	nd.client.Tick(now)
	if nd.timer > 0 && now >= nd.timer {
		nd.timer = 0
		if !nd.changing && !nd.hasPending() {
			// Everything it waited for was executed meanwhile.
		} else if !nd.changing && nd.relayPending() {
			nd.armTimer()
		} else {
			next := nd.view + 1
			if nd.changing {
				next = nd.target + 1
			}
			nd.startViewChange(next)
		}
	}
	if nd.resend > 0 && now >= nd.resend {
		nd.resend = 0
		nd.retransmit()
	}
}

// Step handles one message.
func (nd *Node) Step(from broadcast.NodeID, m *broadcast.Message) error {
	if int(from) >= nd.n || from == nd.self {
		return broadcast.Reject(broadcast.ReasonSender, "pbft: message from %v in a cluster of %d", from, nd.n)
	}
	if m.Protocol != broadcast.ProtoPBFT {
		return broadcast.Reject(broadcast.ReasonProtocol, "pbft: %v message", m.Protocol)
	}
	if m.Flags&broadcast.HasPayload != 0 && !m.Complete() {
		return broadcast.Reject(broadcast.ReasonLength, "pbft: incomplete payload")
	}
	switch m.Type {
	case TypeRequest:
		return nd.onRequest(from, m)
	case TypePrePrepare:
		return nd.onPrePrepare(from, m)
	case TypePrepare, TypeCommit:
		return nd.onVote(from, m)
	case TypeReply:
		var val []byte
		has := m.Flags&broadcast.HasPayload != 0
		if has {
			val = m.Payload.Bytes()
		}
		return nd.client.OnReply(from, m.Instance.Seq, m.Digest, val, has)
	case TypeCheckpoint:
		return nd.onCheckpoint(from, m)
	case TypeViewChange:
		return nd.onViewChange(from, m)
	case TypeNewView:
		return nd.onNewView(from, m)
	case broadcast.TypeFetch:
		return nd.onFetch(from, m)
	case broadcast.TypePayload:
		return nd.onPayload(from, m)
	}
	return broadcast.Reject(broadcast.ReasonType, "pbft: message type %d", m.Type)
}

func (nd *Node) send(to broadcast.NodeID, t broadcast.MsgType, view uint32, seq uint64, d broadcast.Digest, body []byte) *broadcast.Message {
	if nd.out == nil {
		// Ready hands the slice over: start the next one as large as the
		// last, so that it grows rarely.
		nd.out = make([]broadcast.Outbound, 0, nd.outCap)
	}
	nd.out = append(nd.out, broadcast.Outbound{To: to, Msg: broadcast.Message{
		Header: broadcast.Header{Protocol: broadcast.ProtoPBFT, Type: t, Sender: nd.self,
			Instance: broadcast.Instance{Seq: seq}, Round: view, Digest: d},
		Body: body}})
	return &nd.out[len(nd.out)-1].Msg
}

// armTimer starts the view-change timer if it is off and requests wait
// (in a view), or, during a view change, once 2f+1 replicas asked for the
// target view: a replica alone never runs ahead of the others, so the
// correct replicas' views converge (the f+1 rule pulls stragglers up).
func (nd *Node) armTimer() {
	if nd.timer == 0 {
		if nd.changing {
			if nd.vcCount(nd.target) >= nd.quorum() {
				nd.timer = nd.now + nd.cfg.Timeout<<min(nd.vcStreak, 10)
			}
		} else if nd.hasPending() {
			nd.timer = nd.now + nd.cfg.Timeout<<min(nd.vcStreak, 10)
		}
	}
	if nd.resend == 0 {
		nd.resend = nd.now + nd.cfg.Timeout/2
	}
}

func (nd *Node) vcCount(v uint32) int {
	cnt := 0
	for i := range nd.vcs {
		if nd.vcFor(broadcast.NodeID(i), v) != nil {
			cnt++
		}
	}
	return cnt
}

func (nd *Node) hasPending() bool {
	for i := range nd.clients {
		if nd.clients[i].pending > 0 {
			return true
		}
	}
	return false
}

// Close releases what the replica and its client hold.
func (nd *Node) Close() {
	nd.client.Close()
	for seq := range nd.slots {
		nd.dropSlot(seq)
	}
	for i := range nd.clients {
		for j := range nd.clients[i].slots {
			s := &nd.clients[i].slots[j]
			if s.state == reqPending {
				nd.store.Unpin(s.op)
			}
			*s = reqSlot{}
		}
	}
	for i, rs := range nd.vcs {
		for _, r := range rs {
			nd.store.Unpin(r.digest)
		}
		nd.vcs[i] = nil
	}
	for seq, d := range nd.own {
		nd.store.Unpin(d)
		delete(nd.own, seq)
	}
	if nd.stablePinned {
		nd.store.Unpin(nd.stable.digest)
		nd.stablePinned = false
	}
	for seq := range nd.future {
		nd.dropFuture(seq)
	}
	rd := broadcast.Ready{Messages: nd.out, Deliveries: nd.deliveries}
	rd.Release()
	nd.out, nd.deliveries = nil, nil
}

// putPinned stores b under d (borrowing b) and pins it.
func (nd *Node) putPinned(from broadcast.NodeID, d broadcast.Digest, b bufpool.Buf) error {
	if err := nd.store.Put(from, d, b); err != nil {
		return err
	}
	nd.store.Pin(d)
	return nil
}

func u64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
