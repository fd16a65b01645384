package realsys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/onecast/onecast/bench/dupscope"
)

// Systems are the systems Run knows.
var Systems = []string{"etcd", "zookeeper"}

// Options configure one experiment.
type Options struct {
	// Sizes are the value sizes in bytes; PerSize values of each are
	// written (default 64 B, 1 KiB, 16 KiB, 64 KiB; 20).
	Sizes   []int
	PerSize int
	// ViaFollower connects the client to a follower instead of the leader,
	// so that every write is forwarded to the leader.
	ViaFollower bool
	// Seed seeds the values (default 1).
	Seed uint64
	// KeepCapture, when set, is a directory the capture file is copied to.
	KeepCapture string
	Log         *slog.Logger
}

// MemberResult is one server's figures over the workload.
type MemberResult struct {
	Name, Role string
	// IO is the change of the server's /proc/<pid>/io over the workload.
	IO IO
	// RSSKiB and PeakRSSKiB are its resident set after the workload and its
	// peak.
	RSSKiB, PeakRSSKiB int64
}

// Class sums the flows of one kind of traffic, e.g. "leader → follower
// (peer)".
type Class struct {
	Name string
	// Flows is the flow directions in the class; StreamBytes their content.
	Flows       int
	StreamBytes int64
	// ValueCopies and ValueBytes count the known values' occurrences.
	ValueCopies int
	ValueBytes  int64
	// RepeatedBytes are content-defined chunks seen earlier in the capture.
	RepeatedBytes int64
}

// Receiver is what one endpoint owner received of the values.
type Receiver struct {
	Name, Role string
	// ValueCopies and ValueBytes count the value copies in flows to it.
	ValueCopies int
	ValueBytes  int64
}

// SizeResult is the wire figure for one value size.
type SizeResult struct {
	Size, Values int
	// CopiesPerValue is the mean number of times a value of this size
	// crossed the wire.
	CopiesPerValue float64
}

// Result is one experiment.
type Result struct {
	System, Version string
	// Skipped, when set, says why the experiment did not run.
	Skipped string
	Members []MemberResult
	Leader  string
	// Via is the member the client wrote to ("leader" or "follower").
	Via string
	// Values and ValueBytes are what the client wrote.
	Values     int
	ValueBytes int64
	Sizes      []SizeResult
	Write      time.Duration
	// CaptureBytes is the capture file's size.
	CaptureBytes int64
	Report       *dupscope.Report
	Classes      []Class
	Receivers    []Receiver
	// WireFactor is value bytes on the wire ÷ value bytes written.
	WireFactor float64
	// StorageFactor is the servers' write_bytes ÷ value bytes written, and
	// WriteCallFactor their wchar (all write calls, sockets included) ÷ the
	// same.
	StorageFactor, WriteCallFactor float64
}

func newCluster(system string) (cluster, error) {
	switch system {
	case "etcd":
		return newEtcd(3), nil
	case "zookeeper":
		return newZooKeeper(3), nil
	}
	return nil, fmt.Errorf("unknown system %q (have %v)", system, Systems)
}

// Run runs one experiment on system ("etcd" or "zookeeper"). A system whose
// software is missing (Layout.Check) gives a Result with Skipped set to
// what is missing and the command that installs it, and a nil error: Run
// never installs anything.
func Run(ctx context.Context, system string, opts Options) (*Result, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if len(opts.Sizes) == 0 {
		opts.Sizes = []int{64, 1 << 10, 16 << 10, 64 << 10}
	}
	if opts.PerSize == 0 {
		opts.PerSize = 20
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	cl, err := newCluster(system)
	if err != nil {
		return nil, err
	}
	res := &Result{System: system}
	missing, err := HostLayout().Check(system)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		res.Skipped = SkipReason(missing)
		return res, nil
	}
	res.Version = cl.version()
	dir, err := os.MkdirTemp("", "onecast-"+system+"-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	defer cl.stop()

	opts.Log.Info("starting cluster", "system", system, "dir", dir)
	if err := cl.start(ctx, dir); err != nil {
		for _, m := range cl.members() {
			if m.Proc.Exited() {
				err = fmt.Errorf("%w; %s exited: %s", err, m.Name, m.Proc.Output())
				break
			}
		}
		if errors.Is(err, ErrUnavailable) {
			res.Skipped = err.Error()
			return res, nil
		}
		return nil, fmt.Errorf("%s: start: %w", system, err)
	}
	leader, err := cl.leader(ctx)
	var to int
	if err != nil {
		return nil, fmt.Errorf("%s: %w", system, err)
	}
	ms := cl.members()
	res.Leader = ms[leader].Name
	to, res.Via = leader, "leader"
	if opts.ViaFollower {
		to, res.Via = (leader+1)%len(ms), "follower"
	}

	values := makeValues(opts.Sizes, opts.PerSize, opts.Seed)
	for _, v := range values {
		res.ValueBytes += int64(len(v))
	}
	res.Values = len(values)

	var ports []int
	seenPort := map[int]bool{}
	for _, m := range ms {
		for a := range m.Ports {
			if !seenPort[int(a.Port())] {
				seenPort[int(a.Port())] = true
				ports = append(ports, int(a.Port()))
			}
		}
	}
	sort.Ints(ports)
	capPath := filepath.Join(dir, system+".pcapng")
	capt, err := StartCapture(ctx, capPath, ports)
	if err != nil {
		res.Skipped = fmt.Sprintf("capture unavailable: %v", err)
		return res, nil
	}
	captureStopped := false
	defer func() {
		if !captureStopped {
			_, _ = capt.Stop()
		}
	}()

	var probe netip.AddrPort
	for a, role := range ms[leader].Ports {
		if role == "client" {
			probe = a
		}
	}
	if err := capt.WaitLive(ctx, probe.String()); err != nil {
		res.Skipped = fmt.Sprintf("capture unavailable: %v", err)
		return res, nil
	}
	before := make([]IO, len(ms))
	for i, m := range ms {
		before[i], _ = ReadIO(m.Proc.PID())
	}
	opts.Log.Info("writing values", "system", system, "values", len(values), "bytes", res.ValueBytes, "to", ms[to].Name)
	start := time.Now()
	if err := cl.write(ctx, to, values); err != nil {
		return nil, fmt.Errorf("%s: %w", system, err)
	}
	res.Write = time.Since(start)
	cl.settle(ctx)

	pids := map[int]string{os.Getpid(): "client"}
	for _, m := range ms {
		pids[m.Proc.PID()] = m.Name
	}
	owners, _ := SocketOwners(pids)
	for i, m := range ms {
		after, _ := ReadIO(m.Proc.PID())
		mr := MemberResult{Name: m.Name, Role: "follower", IO: after.Sub(before[i])}
		if i == leader {
			mr.Role = "leader"
		}
		mr.RSSKiB, mr.PeakRSSKiB, _ = RSSKiB(m.Proc.PID())
		res.Members = append(res.Members, mr)
	}
	cl.closeClient()
	res.CaptureBytes, err = capt.Stop()
	captureStopped = true
	if err != nil {
		return nil, fmt.Errorf("%s: %w", system, err)
	}
	if opts.KeepCapture != "" {
		if b, err := os.ReadFile(capPath); err == nil {
			_ = os.WriteFile(filepath.Join(opts.KeepCapture, system+".pcapng"), b, 0o644)
		}
	}

	// Name every endpoint: its owner, the owner's role, the port's role.
	ends := endpoints(ms, leader, owners)
	f, err := os.Open(capPath)
	if err != nil {
		return nil, fmt.Errorf("%s: capture: %w", system, err)
	}
	defer f.Close()
	rep, err := dupscope.Analyse(f, dupscope.Options{Known: values, Name: func(a netip.AddrPort) string { return ends.name(a) }})
	if err != nil {
		return nil, fmt.Errorf("%s: dupscope: %w", system, err)
	}
	res.Report = rep
	res.Classes = ends.classes(rep)
	res.Receivers = ends.receivers(rep)
	if res.ValueBytes > 0 {
		res.WireFactor = float64(rep.KnownWireBytes) / float64(res.ValueBytes)
		var wb, wc int64
		for _, m := range res.Members {
			wb += m.IO.WriteBytes
			wc += m.IO.WChar
		}
		res.StorageFactor = float64(wb) / float64(res.ValueBytes)
		res.WriteCallFactor = float64(wc) / float64(res.ValueBytes)
	}
	res.Sizes = perSize(rep)
	return res, nil
}

// makeValues makes perSize random values of each size, all distinct.
func makeValues(sizes []int, perSize int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 0x6f6e6563617374))
	var out [][]byte
	for _, s := range sizes {
		for range perSize {
			v := make([]byte, s)
			for i := range v {
				v[i] = byte(r.Uint32())
			}
			out = append(out, v)
		}
	}
	return out
}

func perSize(rep *dupscope.Report) []SizeResult {
	by := map[int]*SizeResult{}
	var order []int
	for _, k := range rep.Known {
		s := by[k.Len]
		if s == nil {
			s = &SizeResult{Size: k.Len}
			by[k.Len] = s
			order = append(order, k.Len)
		}
		s.Values++
		s.CopiesPerValue += float64(k.Copies)
	}
	sort.Ints(order)
	var out []SizeResult
	for _, sz := range order {
		s := by[sz]
		s.CopiesPerValue /= float64(s.Values)
		out = append(out, *s)
	}
	return out
}

// endpoint is what we know about one address in the capture.
type endpoint struct {
	owner string // "etcd-1", "client", "?"
	role  string // "leader", "follower", "client", "?"
	port  string // the port's role when it is a listening port, else ""
}

type endpointMap map[netip.AddrPort]endpoint

func endpoints(ms []Member, leader int, owners map[netip.AddrPort]string) endpointMap {
	roleOf := map[string]string{"client": "client"}
	for i, m := range ms {
		roleOf[m.Name] = "follower"
		if i == leader {
			roleOf[m.Name] = "leader"
		}
	}
	out := endpointMap{}
	for a, o := range owners {
		out[a] = endpoint{owner: o, role: roleOf[o]}
	}
	for _, m := range ms {
		for a, p := range m.Ports {
			out[a] = endpoint{owner: m.Name, role: roleOf[m.Name], port: p}
		}
	}
	return out
}

func (e endpointMap) get(a netip.AddrPort) endpoint {
	if ep, ok := e[a]; ok {
		return ep
	}
	return endpoint{owner: "?", role: "?"}
}

// getIn names an endpoint of flow k; an endpoint no known process owned (a
// short connection closed before the socket snapshot) that talks to a
// client port is a client.
func (e endpointMap) getIn(k dupscope.FlowKey, a netip.AddrPort) endpoint {
	ep := e.get(a)
	if ep.owner != "?" {
		return ep
	}
	other := k.Src
	if a == k.Src {
		other = k.Dst
	}
	if e.get(other).port == "client" {
		return endpoint{owner: "client", role: "client"}
	}
	return ep
}

func (e endpointMap) receivers(rep *dupscope.Report) []Receiver {
	by := map[string]*Receiver{}
	var order []string
	for _, f := range rep.Flows {
		d := e.getIn(f.Key, f.Key.Dst)
		r := by[d.owner]
		if r == nil {
			r = &Receiver{Name: d.owner, Role: d.role}
			by[d.owner] = r
			order = append(order, d.owner)
		}
		r.ValueCopies += f.KnownCopies
		r.ValueBytes += f.KnownBytes
	}
	sort.Strings(order)
	out := make([]Receiver, 0, len(order))
	for _, n := range order {
		out = append(out, *by[n])
	}
	return out
}

func (e endpointMap) name(a netip.AddrPort) string {
	ep := e.get(a)
	if ep.owner == "?" {
		return a.String()
	}
	s := ep.owner
	if ep.role != "client" && ep.role != "?" {
		s += "(" + ep.role + ")"
	}
	if ep.port != "" {
		s += ":" + ep.port
	}
	return s
}

// className is "src role → dst role (channel)", the channel being the
// listening port's role at either end.
func (e endpointMap) className(k dupscope.FlowKey) string {
	s, d := e.getIn(k, k.Src), e.getIn(k, k.Dst)
	ch := d.port
	if ch == "" {
		ch = s.port
	}
	if ch == "" {
		ch = "other"
	}
	return fmt.Sprintf("%s → %s (%s port)", s.role, d.role, ch)
}

func (e endpointMap) classes(rep *dupscope.Report) []Class {
	by := map[string]*Class{}
	for _, f := range rep.Flows {
		n := e.className(f.Key)
		c := by[n]
		if c == nil {
			c = &Class{Name: n}
			by[n] = c
		}
		c.Flows++
		c.StreamBytes += f.Bytes
		c.ValueCopies += f.KnownCopies
		c.ValueBytes += f.KnownBytes
		c.RepeatedBytes += f.RepeatedBytes
	}
	out := make([]Class, 0, len(by))
	for _, c := range by {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ValueBytes != out[j].ValueBytes {
			return out[i].ValueBytes > out[j].ValueBytes
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// SkipReason says what is missing and how to install it, for a system that
// cannot run: "missing etcd (looked in PATH); install with: apt-get install
// etcd-server".
func SkipReason(missing []Missing) string {
	var what []string
	for _, m := range missing {
		what = append(what, m.String())
	}
	return fmt.Sprintf("missing %s; install with: %s", strings.Join(what, ", "), InstallCommand(missing))
}
