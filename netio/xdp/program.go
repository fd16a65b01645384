package xdp

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/onecast/onecast/broadcast"
)

// Mode is how the XDP program is attached to an interface.
type Mode int

// Attach modes.
const (
	// ModeAuto tries native (driver) mode and falls back to generic (SKB)
	// mode, logging that it did.
	ModeAuto Mode = iota
	// ModeNative requires the driver's XDP hook (veth has one).
	ModeNative
	// ModeGeneric uses the kernel's generic hook, after an skb is built:
	// works everywhere, costs an skb allocation per frame.
	ModeGeneric
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeNative:
		return "native"
	case ModeGeneric:
		return "generic"
	}
	return fmt.Sprintf("mode%d", int(m))
}

// KernelCounters are the XDP program's counters, summed over CPUs.
type KernelCounters struct {
	// Redirected counts onecast frames handed to the AF_XDP socket.
	Redirected uint64
	// Passed counts frames passed to the kernel stack (ARP, other ports).
	Passed uint64
	// StrippedFrames and StrippedBytes count first frames whose payload the
	// kernel cut because its digest was held, and the payload bytes cut.
	StrippedFrames, StrippedBytes uint64
	// StrippedFrags and StrippedFragBytes count continuation fragments of
	// held payloads whose payload bytes the kernel cut, and the bytes cut.
	StrippedFrags, StrippedFragBytes uint64
	// Malformed counts frames to the onecast port too short for a header;
	// they go on to user space, which rejects and counts them.
	Malformed uint64
}

// PayloadBytesRemoved is the payload bytes the kernel kept from user space.
func (k KernelCounters) PayloadBytesRemoved() uint64 { return k.StrippedBytes + k.StrippedFragBytes }

// ProgramConfig configures the XDP program at load time.
type ProgramConfig struct {
	// Port is the UDP port onecast traffic arrives on. Required.
	Port uint16
	// LinkHeaderSize is the size of the reliable-link header between the
	// UDP header and the onecast header (0 ≤ size ≤ 256).
	LinkHeaderSize int
	// HeldMax bounds the kernel's map of held digests. Default 65536.
	HeldMax int
	// Nodes is the cluster's size: each supplier of payloads (the `from`
	// of StoreObserver.Held) may have HeldMax/Nodes digests in the map;
	// a new one beyond that deletes its own oldest, never another's.
	// Default 1 (one shared quota).
	Nodes int
	// Logger receives the program's logs (default slog.Default()).
	Logger *slog.Logger
}

// Program is onecast's XDP program, loaded, with its maps. Close detaches
// and unloads it; an unreferenced program is also detached when the process
// exits, because it is attached through a BPF link.
type Program struct {
	objs onecastObjects
	link link.Link
	mode Mode
	log  *slog.Logger

	// held tracks the map's digests per supplier, oldest first, so that
	// each supplier's share stays within heldQuota.
	heldMu    sync.Mutex
	heldQuota int
	held      map[broadcast.Digest]*list.Element // value: heldDigest
	bySupply  map[broadcast.NodeID]*list.List
	heldLogAt time.Time

	heldErrs, heldQuotaEvicts atomic.Uint64
}

// heldDigest is one digest in the kernel's map and who supplied it.
type heldDigest struct {
	d    broadcast.Digest
	from broadcast.NodeID
}

// HeldStats describe the kernel's map of held digests.
type HeldStats struct {
	// Entries is the digests in the map now; Quota the most one supplier
	// may have there (ProgramConfig.HeldMax / Nodes).
	Entries, Quota int
	// QuotaEvictions counts digests deleted from the map because their
	// supplier was at its quota (the payload stays in the store; only the
	// kernel's dedup of it stops).
	QuotaEvictions uint64
	// InsertErrors counts map updates the kernel refused (with the quotas
	// in place, none is expected).
	InsertErrors uint64
}

// LoadProgram loads the program into the kernel without attaching it.
func LoadProgram(cfg ProgramConfig) (*Program, error) {
	if cfg.Port == 0 {
		return nil, errors.New("xdp: ProgramConfig.Port is required")
	}
	if cfg.LinkHeaderSize < 0 || cfg.LinkHeaderSize > 256 {
		return nil, fmt.Errorf("xdp: ProgramConfig.LinkHeaderSize %d out of [0, 256]", cfg.LinkHeaderSize)
	}
	if cfg.HeldMax <= 0 {
		cfg.HeldMax = 65536
	}
	if cfg.Nodes <= 0 {
		cfg.Nodes = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones
	// to the cgroup, and this is a no-op.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("xdp: lift the memlock limit: %w", err)
	}
	spec, err := loadOnecast()
	if err != nil {
		return nil, fmt.Errorf("xdp: parse program: %w", err)
	}
	if err := spec.Variables["onecast_port"].Set(cfg.Port); err != nil {
		return nil, fmt.Errorf("xdp: set port: %w", err)
	}
	if err := spec.Variables["link_header_size"].Set(uint32(cfg.LinkHeaderSize)); err != nil {
		return nil, fmt.Errorf("xdp: set link header size: %w", err)
	}
	spec.Maps["held"].MaxEntries = uint32(cfg.HeldMax)
	p := &Program{log: cfg.Logger, heldQuota: max(1, cfg.HeldMax/cfg.Nodes), held: make(map[broadcast.Digest]*list.Element),
		bySupply: make(map[broadcast.NodeID]*list.List)}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("xdp: load program: %+v", verr)
		}
		return nil, fmt.Errorf("xdp: load program: %w", err)
	}
	return p, nil
}

// Attach attaches the program to interface ifindex of the calling thread's
// network namespace. ModeAuto tries native mode first and logs a fallback to
// generic mode.
func (p *Program) Attach(ifindex int, mode Mode, log *slog.Logger) error {
	if p.link != nil {
		return errors.New("xdp: program already attached")
	}
	try := func(flags link.XDPAttachFlags) (link.Link, error) {
		return link.AttachXDP(link.XDPOptions{Program: p.objs.OnecastXdp, Interface: ifindex, Flags: flags})
	}
	var err error
	switch mode {
	case ModeNative:
		p.link, err = try(link.XDPDriverMode)
		p.mode = ModeNative
	case ModeGeneric:
		p.link, err = try(link.XDPGenericMode)
		p.mode = ModeGeneric
	default:
		p.link, err = try(link.XDPDriverMode)
		p.mode = ModeNative
		if err != nil {
			if log == nil {
				log = slog.Default()
			}
			log.Warn("xdp: native XDP unavailable, falling back to generic (SKB) mode", "ifindex", ifindex, "err", err)
			p.link, err = try(link.XDPGenericMode)
			p.mode = ModeGeneric
		}
	}
	if err != nil {
		p.link = nil
		return fmt.Errorf("xdp: attach to ifindex %d (%v mode): %w", ifindex, p.mode, err)
	}
	return nil
}

// Mode returns the mode the program was attached in.
func (p *Program) Mode() Mode { return p.mode }

// Register steers onecast frames received on queue to the AF_XDP socket fd.
func (p *Program) Register(queue, fd int) error {
	if err := p.objs.Xsks.Put(uint32(queue), uint32(fd)); err != nil {
		return fmt.Errorf("xdp: register socket for queue %d: %w", queue, err)
	}
	return nil
}

// Unregister stops steering queue's frames to a socket.
func (p *Program) Unregister(queue int) error {
	if err := p.objs.Xsks.Delete(uint32(queue)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("xdp: unregister queue %d: %w", queue, err)
	}
	return nil
}

// Counters reads the program's per-CPU counters and sums them.
func (p *Program) Counters() (KernelCounters, error) {
	var per []onecastCounters
	if err := p.objs.Stats.Lookup(uint32(0), &per); err != nil {
		return KernelCounters{}, fmt.Errorf("xdp: read counters: %w", err)
	}
	var k KernelCounters
	for _, c := range per {
		k.Redirected += c.Redirected
		k.Passed += c.Passed
		k.StrippedFrames += c.StrippedFrames
		k.StrippedBytes += c.StrippedBytes
		k.StrippedFrags += c.StrippedFrags
		k.StrippedFragBytes += c.StrippedFragBytes
		k.Malformed += c.Malformed
	}
	return k, nil
}

// Held implements broadcast.StoreObserver: the kernel starts stripping d's
// payload from arriving frames. Each supplier has a quota of the map
// (ProgramConfig.HeldMax / Nodes): at it, the supplier's own oldest digest
// leaves the map first (counted in HeldStats.QuotaEvictions), so a
// Byzantine supplier's distinct payloads never push out another's, and the
// map never fills. A refused update is counted (HeldStats.InsertErrors)
// and logged once a second; dedup in the kernel is an optimization, and
// user space still drops duplicates.
func (p *Program) Held(from broadcast.NodeID, d broadcast.Digest) {
	p.heldMu.Lock()
	defer p.heldMu.Unlock()
	if _, ok := p.held[d]; ok {
		return
	}
	q := p.bySupply[from]
	if q == nil {
		q = list.New()
		p.bySupply[from] = q
	}
	for q.Len() >= p.heldQuota {
		old := q.Remove(q.Front()).(heldDigest)
		delete(p.held, old.d)
		_ = p.objs.Held.Delete(unsafe.Pointer(&old.d))
		p.heldQuotaEvicts.Add(1)
	}
	one := uint8(1)
	if err := p.objs.Held.Update(unsafe.Pointer(&d), unsafe.Pointer(&one), ebpf.UpdateAny); err != nil {
		p.heldErrs.Add(1)
		if now := time.Now(); now.Sub(p.heldLogAt) >= time.Second {
			p.heldLogAt = now
			p.log.Warn("xdp: the kernel's held-digest map refused an insert; in-kernel dedup skips the digest",
				"err", err, "insert_errors", p.heldErrs.Load(), "entries", len(p.held))
		}
		return
	}
	p.held[d] = q.PushBack(heldDigest{d: d, from: from})
}

// Evicted implements broadcast.StoreObserver: d's payload passes again.
func (p *Program) Evicted(d broadcast.Digest) {
	p.heldMu.Lock()
	defer p.heldMu.Unlock()
	e, ok := p.held[d]
	if !ok {
		return // never in the map, or already out by its supplier's quota
	}
	delete(p.held, d)
	p.bySupply[e.Value.(heldDigest).from].Remove(e)
	_ = p.objs.Held.Delete(unsafe.Pointer(&d))
}

// HeldStats returns the state of the kernel's map of held digests.
func (p *Program) HeldStats() HeldStats {
	p.heldMu.Lock()
	n := len(p.held)
	p.heldMu.Unlock()
	return HeldStats{Entries: n, Quota: p.heldQuota, QuotaEvictions: p.heldQuotaEvicts.Load(), InsertErrors: p.heldErrs.Load()}
}

// IsHeld reports whether d is in the kernel's map (for tests).
func (p *Program) IsHeld(d broadcast.Digest) bool {
	var v uint8
	return p.objs.Held.Lookup(unsafe.Pointer(&d), unsafe.Pointer(&v)) == nil
}

var _ broadcast.StoreObserver = (*Program)(nil)

// Close detaches the program and frees it and its maps.
func (p *Program) Close() error {
	var errs []error
	if p.link != nil {
		errs = append(errs, p.link.Close())
		p.link = nil
	}
	errs = append(errs, p.objs.Close())
	return errors.Join(errs...)
}
