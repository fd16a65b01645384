package h2h

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/onecast/onecast/bench/h2h/memnet"
)

// raftSys is etcd's raft, one raft.RawNode per node (raftexample style):
// MemoryStorage, no WAL, messages marshalled (raftpb) over memnet, every
// proposal at the leader (node 0, which campaigns at start).
type raftSys struct {
	net   *memnet.Network
	nodes []*raftNode
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	errMu sync.Mutex
	err   error
}

type raftNode struct {
	id      int
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	props   chan []byte
	inbox   chan raftpb.Message
	leader  chan struct{} // closed once this node is leader
	isLead  bool
}

// raftTick is the logical tick; elections take 10 ticks, heartbeats 1.
const raftTick = 10 * time.Millisecond

// raftKeep is how many entries MemoryStorage keeps behind the point every
// node has (the applied index, and on the leader also every follower's
// match index), so that no follower ever needs a snapshot; storage is
// compacted every raftKeep applied entries.
const raftKeep = 4096

func newRaft() *raftSys { return &raftSys{} }

func (s *raftSys) Name() string { return "raft" }

func (s *raftSys) fail(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

func (s *raftSys) Start(net *memnet.Network, cfg Config, done Done) error {
	s.net = net
	s.ctx, s.stop = context.WithCancel(context.Background())
	voters := make([]uint64, cfg.N)
	for i := range voters {
		voters[i] = uint64(i + 1)
	}
	for i := range cfg.N {
		// Bootstrapped as raft recommends: a storage whose first index is
		// past a snapshot that holds the configuration.
		st := raft.NewMemoryStorage()
		if err := st.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 1, Term: 1,
			ConfState: raftpb.ConfState{Voters: voters}}}); err != nil {
			s.stop()
			return fmt.Errorf("raft node %d storage: %w", i, err)
		}
		rn, err := raft.NewRawNode(&raft.Config{ID: uint64(i + 1), ElectionTick: 10, HeartbeatTick: 1,
			Storage: st, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: discardRaftLogger{}})
		if err != nil {
			s.stop()
			return fmt.Errorf("raft node %d: %w", i, err)
		}
		s.nodes = append(s.nodes, &raftNode{id: i, rn: rn, storage: st, props: make(chan []byte, 64),
			inbox: make(chan raftpb.Message, 1024), leader: make(chan struct{})})
	}
	for _, nd := range s.nodes {
		s.wg.Go(func() { s.recvLoop(nd) })
		s.wg.Go(func() { s.loop(nd, cfg, done) })
	}
	select {
	case <-s.nodes[0].leader:
		return nil
	case <-time.After(10 * time.Second):
		_ = s.Stop()
		return errors.New("raft: node 0 did not become leader within 10 s")
	}
}

// recvLoop decodes node nd's messages off memnet.
func (s *raftSys) recvLoop(nd *raftNode) {
	for {
		msg, err := s.net.Recv(s.ctx, nd.id)
		if err != nil {
			return
		}
		var m raftpb.Message
		if err := m.Unmarshal(msg.Data); err != nil {
			s.fail(fmt.Errorf("raft node %d: undecodable message from %d: %w", nd.id, msg.From, err))
			continue
		}
		select {
		case nd.inbox <- m:
		case <-s.ctx.Done():
			return
		}
	}
}

// loop owns the RawNode.
func (s *raftSys) loop(nd *raftNode, cfg Config, done Done) {
	ticker := time.NewTicker(raftTick)
	defer ticker.Stop()
	if nd.id == 0 {
		_ = nd.rn.Campaign()
	}
	var applied, compacted uint64
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-ticker.C:
			nd.rn.Tick()
		case m := <-nd.inbox:
			_ = nd.rn.Step(m)
			for k := 0; k < 256; k++ { // take what else waits, then act once
				select {
				case m := <-nd.inbox:
					_ = nd.rn.Step(m)
					continue
				default:
				}
				break
			}
		case p := <-nd.props:
			if err := nd.rn.Propose(p); err != nil {
				s.fail(fmt.Errorf("raft node %d: propose: %w", nd.id, err))
			}
			for k := 0; k < 256; k++ {
				select {
				case p := <-nd.props:
					if err := nd.rn.Propose(p); err != nil {
						s.fail(fmt.Errorf("raft node %d: propose: %w", nd.id, err))
					}
					continue
				default:
				}
				break
			}
		}
		for nd.rn.HasReady() {
			rd := nd.rn.Ready()
			if rd.SoftState != nil && rd.SoftState.Lead == uint64(nd.id+1) && !nd.isLead {
				nd.isLead = true
				close(nd.leader)
			}
			if !raft.IsEmptyHardState(rd.HardState) {
				_ = nd.storage.SetHardState(rd.HardState)
			}
			if len(rd.Entries) > 0 {
				_ = nd.storage.Append(rd.Entries)
			}
			for _, m := range rd.Messages {
				data, err := m.Marshal()
				if err != nil {
					s.fail(fmt.Errorf("raft node %d: marshal: %w", nd.id, err))
					continue
				}
				_ = s.net.Send(nd.id, int(m.To-1), data)
			}
			for _, e := range rd.CommittedEntries {
				applied = e.Index
				if e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
					continue
				}
				if cfg.Observe != nil {
					cfg.Observe(nd.id, e.Data)
				}
				if id, ok := ParseID(e.Data); ok && id.Node == nd.id {
					done(id)
				}
			}
			nd.rn.Advance(rd)
			if applied >= compacted+2*raftKeep {
				to := applied
				if nd.isLead {
					for _, pr := range nd.rn.Status().Progress {
						to = min(to, pr.Match)
					}
				}
				if to > compacted+raftKeep {
					compacted = to - raftKeep
					_ = nd.storage.Compact(compacted)
				}
			}
		}
	}
}

func (s *raftSys) Submitters() []int { return []int{0} }

func (s *raftSys) Submit(ctx context.Context, node int, req []byte) error {
	select {
	case s.nodes[node].props <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return errors.New("raft: stopped")
	}
}

func (s *raftSys) Stop() error {
	s.stop()
	s.wg.Wait()
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// discardRaftLogger drops raft's logs.
type discardRaftLogger struct{}

func (discardRaftLogger) Debug(...any)              {}
func (discardRaftLogger) Debugf(string, ...any)     {}
func (discardRaftLogger) Error(...any)              {}
func (discardRaftLogger) Errorf(string, ...any)     {}
func (discardRaftLogger) Info(...any)               {}
func (discardRaftLogger) Infof(string, ...any)      {}
func (discardRaftLogger) Warning(...any)            {}
func (discardRaftLogger) Warningf(string, ...any)   {}
func (discardRaftLogger) Fatal(v ...any)            { panic(fmt.Sprint(v...)) }
func (discardRaftLogger) Fatalf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
func (discardRaftLogger) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (discardRaftLogger) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
