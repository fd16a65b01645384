package characterize

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot/plotter"

	"github.com/onecast/onecast/bench"
	"github.com/onecast/onecast/bench/realsys"
)

// Plot is a written plot and its caption.
type Plot struct {
	File, Caption string
}

func size(n int) string { return bench.FormatSize(n) }

func bytesH(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// base returns the base point's result of a protocol.
func (c *Characterization) base(proto string) (OwnResult, bool) {
	s := c.Opts.Own
	for _, r := range c.Own {
		if r.Protocol == proto && r.N == s.Ns[0] && r.Payload == s.Payloads[len(s.Payloads)/2] &&
			r.Batch == s.Batches[0] && r.PerNode == s.Loads[0] && r.Byzantine == "" {
			return r, true
		}
	}
	return OwnResult{}, false
}

func (c *Characterization) protocolsCovered() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range c.Own {
		if r.Err == "" && !seen[r.Protocol] {
			seen[r.Protocol] = true
			out = append(out, r.Protocol)
		}
	}
	return out
}

func (c *Characterization) writePlots(dir string) ([]Plot, error) {
	var out []Plot
	s := c.Opts.Own
	basePayload := s.Payloads[len(s.Payloads)/2]
	var byN, byPayload []line
	for _, proto := range c.protocolsCovered() {
		ln := line{name: proto}
		lp := line{name: proto}
		for _, r := range c.Own {
			if r.Protocol != proto || r.Err != "" || r.Batch != s.Batches[0] || r.PerNode != s.Loads[0] || r.Byzantine != "" {
				continue
			}
			if r.Payload == basePayload {
				ln.pts = append(ln.pts, plotter.XY{X: float64(r.N), Y: r.DupFactor})
			}
			if r.N == s.Ns[0] {
				lp.pts = append(lp.pts, plotter.XY{X: float64(r.Payload), Y: r.DupFactor})
			}
		}
		sort.Slice(ln.pts, func(i, j int) bool { return ln.pts[i].X < ln.pts[j].X })
		sort.Slice(lp.pts, func(i, j int) bool { return lp.pts[i].X < lp.pts[j].X })
		if len(ln.pts) > 0 {
			byN = append(byN, ln)
		}
		if len(lp.pts) > 0 {
			byPayload = append(byPayload, lp)
		}
	}
	if len(byN) > 0 {
		if err := drawLines(filepath.Join(dir, "own_dup_vs_n.png"), fmt.Sprintf("Payload duplication factor vs n (full mode, %s payloads)", size(basePayload)),
			"nodes (n)", "payload bytes received ÷ remote payload bytes delivered", byN, false); err != nil {
			return out, err
		}
		out = append(out, Plot{"own_dup_vs_n.png", "Payload duplication factor of onecast's primitives in full (textbook) mode against cluster size, from the simulator's exact counts."})
	}
	if len(byPayload) > 0 {
		if err := drawLines(filepath.Join(dir, "own_dup_vs_payload.png"), fmt.Sprintf("Payload duplication factor vs payload size (full mode, n=%d)", s.Ns[0]),
			"payload (bytes, log scale)", "duplication factor", byPayload, true); err != nil {
			return out, err
		}
		out = append(out, Plot{"own_dup_vs_payload.png", "The duplication factor does not depend on payload size: it is a property of the message pattern."})
	}
	var labels []string
	var vals [][]float64
	for _, proto := range c.protocolsCovered() {
		r, ok := c.base(proto)
		if !ok || r.First == 0 {
			continue
		}
		labels = append(labels, proto)
		f := float64(r.First)
		vals = append(vals, []float64{1, float64(r.Within) / f, float64(r.Between) / f, float64(r.Other) / f})
	}
	if len(labels) > 0 {
		if err := drawStacked(filepath.Join(dir, "own_split.png"), fmt.Sprintf("Payload bytes received per needed byte (n=%d, %s)", s.Ns[0], size(basePayload)),
			"bytes received ÷ first copies", labels, []string{"first copy (needed)", "within a round", "between rounds", "other (framing, replies)"}, vals); err != nil {
			return out, err
		}
		out = append(out, Plot{"own_split.png", "Where the received payload bytes come from at the base point: the first copy of each value, extra copies within one round (same message type), and copies carried again by a later round."})
	}
	var rlabels []string
	var rvals [][]float64
	for _, r := range c.Real {
		if r.Skipped != "" || r.ValueBytes == 0 {
			continue
		}
		rlabels = append(rlabels, r.System+" via "+r.Via)
		rvals = append(rvals, realSplit(r))
	}
	if len(rlabels) > 0 {
		if err := drawStacked(filepath.Join(dir, "realsys_wire.png"), "Bytes on the wire per value byte written (3-node clusters on loopback)",
			"bytes ÷ value bytes written", rlabels, realParts, rvals); err != nil {
			return out, err
		}
		out = append(out, Plot{"realsys_wire.png", "Every byte the servers' ports carried, per value byte the client wrote, by who sent it to whom: the values' copies (client → server, leader → follower appends, follower → leader forwards) and the protocol bytes around them (framing, headers, acknowledgements, heartbeats)."})
	}
	return out, nil
}

// realParts are the layers of the real-system plot.
var realParts = []string{"values: client → server", "values: leader → follower", "values: follower → leader", "values: other", "non-value bytes"}

// realSplit is a real run's stream bytes by realParts, ÷ value bytes.
func realSplit(r *realsys.Result) []float64 {
	v := make([]float64, len(realParts))
	var all int64
	for _, cl := range r.Classes {
		all += cl.StreamBytes
		i := 3
		switch {
		case strings.HasPrefix(cl.Name, "client → "):
			i = 0
		case strings.HasPrefix(cl.Name, "leader → follower"):
			i = 1
		case strings.HasPrefix(cl.Name, "follower → leader"):
			i = 2
		}
		v[i] += float64(cl.ValueBytes)
	}
	v[4] = float64(all - r.Report.KnownWireBytes)
	for i := range v {
		v[i] /= float64(r.ValueBytes)
	}
	return v
}

// WriteMarkdown writes the report.
func (c *Characterization) WriteMarkdown(w io.Writer, plots []Plot) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	plotFor := func(name string) {
		for _, pl := range plots {
			if strings.HasSuffix(pl.File, name) {
				p("![%s](%s)\n\n*%s*\n\n", name, pl.File, pl.Caption)
			}
		}
	}
	e := c.Env
	mode := "full"
	if c.Opts.Quick {
		mode = "quick"
	}
	p("# Phase 1: characterization of payload duplication\n\n")
	p("Generated by `onecast %s` (%s sweep) on %s in %v — do not edit, regenerate.  \n", strings.Join(e.Args, " "), mode, e.Started.Format("2006-01-02 15:04 MST"), c.Elapsed.Round(time.Second))
	dirty := ""
	if e.Dirty {
		dirty = " (dirty tree)"
	}
	p("Commit %s%s, %s, %s, %s, %d cores, %.0f GiB.\n\n", short(e.Commit), dirty, e.GoVersion, e.Kernel, e.CPU, e.Cores, e.MemoryGiB)

	// Summary.
	p("## Summary\n\n")
	for _, proto := range c.protocolsCovered() {
		if r, ok := c.base(proto); ok {
			rec := r.Received()
			p("- **%s** (full mode, n=%d, %s): every correct node receives **%.2f×** the payload bytes it delivers from others; of the bytes received, %.0f%% are first copies, %.0f%% within-round duplicates, %.0f%% between-round duplicates.\n",
				proto, r.N, size(r.Payload), r.DupFactor, 100*ratio(r.First, rec), 100*ratio(r.Within, rec), 100*ratio(r.Between, rec))
		}
	}
	for _, r := range c.Real {
		if r.Skipped != "" {
			p("- **%s**: skipped — %s\n", r.System, r.Skipped)
			continue
		}
		top := ""
		if len(r.Classes) > 0 && r.Classes[0].ValueBytes > 0 {
			var parts []string
			for _, cl := range r.Classes {
				if cl.ValueBytes > 0 {
					parts = append(parts, fmt.Sprintf("%s %.2f×", cl.Name, ratio(cl.ValueBytes, r.ValueBytes)))
				}
			}
			top = "; by traffic: " + strings.Join(parts, ", ")
		}
		p("- **%s**, client → %s (3 members on loopback): value bytes on the wire ÷ value bytes written by the client = **%.2f**%s. Storage: the servers' write_bytes ÷ value bytes = %.2f.\n",
			r.System, r.Via, r.WireFactor, top, r.StorageFactor)
	}
	for sys, err := range c.RealErr {
		p("- **%s**: failed — %s\n", sys, err)
	}
	p("\n")

	c.writeOwn(w, p, plotFor)
	c.writeReal(w, p, plotFor)

	p("## How to reproduce\n\n")
	p("```\napt-get install etcd-server zookeeper tshark          # what the real systems need; characterize installs nothing\ngo run ./cmd/onecast characterize --quick --write-docs   # this report's quick sweep, ~minutes\ngo run ./cmd/onecast characterize --write-docs           # the full sweep\ngo run ./cmd/onecast dupscope --known values.bin capture.pcapng\n```\n\n")
	p("Without `--write-docs`, `characterize` writes into `--out` (by default a new directory `characterization-<time>`). A system whose programs are missing is skipped, with what is missing and the command that installs it (above and on stderr), and the rest runs.\n")
	return nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func (c *Characterization) writeOwn(w io.Writer, p func(string, ...any), plotFor func(string)) {
	s := c.Opts.Own
	p("## 1. onecast's primitives, textbook (full) mode\n\n")
	covered := c.protocolsCovered()
	p("Covered: %s. ", strings.Join(covered, ", "))
	p("Each point is one run of the deterministic simulator (package sim, seed %d) on a network without loss, reordering or duplication, so every count is the protocol's own. ", s.Seed)
	p("Every node's protocol instance is wrapped by a recorder that sees every message handed to `Step` and every `Submit`; the submitted values are found by content in each payload (also inside batches, with dupscope's piece matcher). For each correct node and value, the first copy received is the one it needs; further copies in the same message type (round) are **within-round** duplicates; the first copy in a later type is a **between-round** duplicate (and a value's origin needs no copy at all). Dolev–Strong has one message type, `relay`; its round is the length of the signature chain. *Other* bytes are payload bytes that are no submitted value (batch framing, PBFT replies).\n\n")
	p("**Duplication factor** = payload bytes received by correct nodes ÷ payload bytes they delivered from other nodes (broadcast.Snapshot.PayloadDupFactor, the simulator's counters). The column *sim* says whether the recorder's per-type message and byte counts equal the simulator's own counters (broadcast.Metrics of the correct nodes) for every type: ✓ = exact agreement.\n\n")
	agree, total := 0, 0
	for _, r := range c.Own {
		if r.Err == "" {
			total++
			if r.Agree {
				agree++
			}
		}
	}
	p("Agreement with the simulator's exact counts: **%d of %d** runs.\n\n", agree, total)

	row := func(r OwnResult) {
		ok := "✓"
		if !r.Agree {
			ok = "✗"
		}
		if r.Err != "" {
			p("| %s | %d | %d | %s | %d | %d | %s | error: %s |||||||\n", r.Protocol, r.N, r.F, size(r.Payload), r.Batch, r.PerNode, r.Byzantine, r.Err)
			return
		}
		viol := ""
		if len(r.Violations) > 0 {
			viol = fmt.Sprintf(" (%d violations)", len(r.Violations))
		}
		byz := r.Byzantine
		if byz == "" {
			byz = "–"
		}
		p("| %s | %d | %d | %s | %d | %d | %s | %s | %s | %s | %s | %s | **%.2f** | %s%s |\n", r.Protocol, r.N, r.F, size(r.Payload), r.Batch, r.PerNode, byz,
			bytesH(r.Received()), bytesH(r.First), bytesH(r.Within), bytesH(r.Between), bytesH(r.Other), r.DupFactor, ok, viol)
	}
	header := func() {
		p("| protocol | n | f | payload | batch | load | Byzantine | received | first | within round | between rounds | other | dup factor | sim |\n")
		p("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|:-:|\n")
	}
	basePayload := s.Payloads[len(s.Payloads)/2]
	p("### 1.1 Cluster size × payload size\n\n")
	p("Batch %d, load %d payload(s) per node, no Byzantine node.\n\n", s.Batches[0], s.Loads[0])
	header()
	for _, r := range c.Own {
		if r.Batch == s.Batches[0] && r.PerNode == s.Loads[0] && r.Byzantine == "" {
			row(r)
		}
	}
	p("\n")
	plotFor("own_dup_vs_n.png")
	plotFor("own_dup_vs_payload.png")

	p("### 1.2 Per message type (n=%d, %s)\n\n", s.Ns[0], size(basePayload))
	p("| protocol | type | messages | with payload | payload bytes | first | within round | between rounds | other |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, proto := range covered {
		r, ok := c.base(proto)
		if !ok {
			continue
		}
		for _, t := range r.Types {
			p("| %s | %s | %d | %d | %s | %s | %s | %s | %s |\n", proto, t.Type, t.Messages, t.PayloadMessages, bytesH(t.PayloadBytes),
				bytesH(t.FirstBytes), bytesH(t.WithinBytes), bytesH(t.BetweenBytes), bytesH(t.OtherBytes))
		}
	}
	p("\n")
	plotFor("own_split.png")

	p("### 1.3 Batch and load\n\n")
	p("n=%d, %s payloads; *batch* is payloads per protocol instance, *load* payloads submitted per node.\n\n", s.Ns[0], size(basePayload))
	header()
	for _, r := range c.Own {
		if r.N == s.Ns[0] && r.Payload == basePayload && r.Byzantine == "" && (r.Batch != s.Batches[0] || r.PerNode != s.Loads[0]) {
			row(r)
		}
	}
	c.violationNotes(p, func(r OwnResult) bool { return r.Byzantine == "" })
	p("\n### 1.4 Byzantine behaviours\n\n")
	p("n=%d, f=%d Byzantine node(s) with the named behaviour of the simulator (sim.Behaviours); received bytes are counted at correct nodes only.\n\n", s.Ns[0], (s.Ns[0]-1)/3)
	header()
	for _, r := range c.Own {
		if r.Byzantine != "" {
			row(r)
		}
	}
	c.violationNotes(p, func(r OwnResult) bool { return r.Byzantine != "" })
	p("\n")
	if len(c.OwnReal) > 0 {
		p("### 1.5 System level: over kernel UDP on loopback\n\n")
		p("`bench` in-process clusters over the reliable link on kernel UDP sockets (127.0.0.x), full mode, n=4, 16 KiB payloads, closed loop with 8 in flight. Wire bytes are all message bytes received per payload delivered; allocations and RSS are the process's (all nodes).\n\n")
		p("| protocol | deliveries/s | dup factor | wire factor | wire bytes/delivery | copies/B | allocs/delivery | peak RSS MB | retransmissions | error |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, r := range c.OwnReal {
			p("| %s | %.0f | %.2f | %.2f | %.0f | %.2f | %.1f | %.1f | %d | %s |\n", r.Protocol, r.DeliveriesPerSec, r.PayloadDupFactor, r.WireFactor,
				r.WireBytesPerDelivery, r.CopiesPerPayloadByte, r.AllocsPerDelivery, r.PeakRSSMB, r.Retransmissions, r.Error)
		}
		if len(c.OwnWire) > 0 {
			p("\nThe same runs seen from the wire: dumpcap on `lo` and dupscope over the datagrams between the cluster's own UDP sockets (link headers, onecast headers, acknowledgements and retransmissions included; FastCDC chunks of 64 B–1 KiB, 256 B on average, per datagram). With a duplication factor d, a fraction 1 − 1/d of the payload bytes repeats bytes seen before, which dupscope should find again from the content alone — less the first chunk of each datagram, which holds the link header (48 B of 1472) and cannot repeat:\n\n")
			p("| protocol | datagram bytes | fingerprinted | repeated | repeated %% | expected from dup factor | identical datagrams |\n|---|---:|---:|---:|---:|---:|---:|\n")
			for _, ow := range c.OwnWire {
				exp := "–"
				for _, r := range c.OwnReal {
					if r.Protocol == ow.Protocol && r.PayloadDupFactor > 0 {
						exp = fmt.Sprintf("%.1f%%", 100*(1-1/r.PayloadDupFactor))
					}
				}
				rep := ow.Report
				p("| %s | %s | %s | %s | %.1f%% | %s | %d |\n", ow.Protocol, bytesH(rep.TotalBytes), bytesH(rep.ChunkedBytes), bytesH(rep.RepeatedBytes),
					100*ratio(rep.RepeatedBytes, rep.ChunkedBytes), exp, rep.PacketRepeats)
			}
		}
		p("\nonecast's primitives keep no durable state: they write nothing to storage.\n\n")
	}
}

// violationNotes lists, under a table, the first property violation the
// simulator's checkers reported for each of its rows that had any.
func (c *Characterization) violationNotes(p func(string, ...any), in func(OwnResult) bool) {
	first := true
	for _, r := range c.Own {
		if len(r.Violations) == 0 || !in(r) {
			continue
		}
		if first {
			p("\nViolations reported by the simulator's checkers (the counts above are still exact; the note says what the checker objected to):\n\n")
			first = false
		}
		p("- %s: %d, e.g. `%s`\n", r.OwnPoint.String(), len(r.Violations), r.Violations[0])
	}
}

func (c *Characterization) writeReal(w io.Writer, p func(string, ...any), plotFor func(string)) {
	p("## 2. Real systems: etcd and ZooKeeper\n\n")
	p("Installed from Debian (`apt-get install etcd-server zookeeper tshark`) and started by the command itself: 3 members on loopback addresses (etcd on 127.0.0.11–13, ZooKeeper on 127.0.0.21–23), data under a temp directory removed afterwards. A Go client (go.etcd.io/etcd/client/v3, github.com/go-zookeeper/zk) connected to the leader — then, in a second run, to a follower, which forwards every write to the leader — writes random values of several sizes, one at a time (etcd Put, ZooKeeper Create). dumpcap captures the servers' ports on `lo`; dupscope reassembles the TCP streams and counts every copy of every value (by 32-byte pieces, so a value cut by HTTP chunking or HTTP/2 framing still counts once per copy) and, by content-defined chunking (FastCDC, 256 B–8 KiB chunks), every repeated chunk. Each endpoint is named after the process that owns its socket (/proc/<pid>/fd and /proc/net/tcp) and the role of its listening port. Storage figures are the servers' /proc/<pid>/io deltas over the workload.\n\n")
	plotFor("realsys_wire.png")
	for _, r := range c.Real {
		if r.Skipped != "" {
			p("### %s\n\n", r.System)
			p("Skipped: %s\n\n", r.Skipped)
			continue
		}
		p("### %s, client connected to the %s\n\n", r.System, r.Via)
		rep := r.Report
		p("%s. Leader: %s. The client wrote %d values (%s) to the %s in %v.\n\n", r.Version, r.Leader, r.Values, bytesH(r.ValueBytes), r.Via, r.Write.Round(time.Millisecond))
		p("**Value bytes on the wire ÷ value bytes written by the client: %.2f** (%s of value copies for %s written).\n\n", r.WireFactor, bytesH(rep.KnownWireBytes), bytesH(r.ValueBytes))
		p("Traffic that carries the values and the repeats (a flow direction's *class* is its sender's and receiver's roles and the listening port's role):\n\n")
		p("| traffic | flow directions | stream bytes | value copies | value bytes | value bytes ÷ written | repeated chunk bytes |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, cl := range r.Classes {
			p("| %s | %d | %s | %d | %s | %.2f | %s |\n", cl.Name, cl.Flows, bytesH(cl.StreamBytes), cl.ValueCopies, bytesH(cl.ValueBytes), ratio(cl.ValueBytes, r.ValueBytes), bytesH(cl.RepeatedBytes))
		}
		p("\nPer receiver — what each process received of the values (each server needs each value once):\n\n| receiver | role | value copies received | per value written |\n|---|---|---:|---:|\n")
		var again []string
		for _, rc := range r.Receivers {
			p("| %s | %s | %d | %.2f |\n", rc.Name, rc.Role, rc.ValueCopies, ratio(int64(rc.ValueCopies), int64(r.Values)))
			if rc.ValueCopies > r.Values {
				again = append(again, rc.Name)
			}
		}
		if len(again) > 0 {
			p("\n%s received each value more than once: the copy it was sent by the client, then the same value again in the leader's append — a between-round duplicate at the system level.\n", strings.Join(again, ", "))
		}
		p("\nPer value size:\n\n| value size | values | copies on the wire per value |\n|---:|---:|---:|\n")
		for _, sz := range r.Sizes {
			p("| %s | %d | %.2f |\n", size(sz.Size), sz.Values, sz.CopiesPerValue)
		}
		p("\nContent-defined chunks over the whole capture: %s of stream bytes, %s fingerprinted, **%s repeated (%.1f%%)**, %s first seen; time from a chunk's previous copy to its repeat: p50 %v, p90 %v, max %v. Identical packets (TCP retransmissions included): %d.\n\n",
			bytesH(rep.TotalBytes), bytesH(rep.ChunkedBytes), bytesH(rep.RepeatedBytes), 100*ratio(rep.RepeatedBytes, rep.ChunkedBytes), bytesH(rep.FirstSeenBytes),
			rep.RepeatGap.P50, rep.RepeatGap.P90, rep.RepeatGap.Max, rep.PacketRepeats)
		p("Servers over the workload (write_bytes: bytes sent to the storage layer; wchar: all write calls, sockets included):\n\n")
		p("| member | role | write_bytes | write_bytes ÷ value bytes | wchar | RSS | peak RSS |\n|---|---|---:|---:|---:|---:|---:|\n")
		for _, m := range r.Members {
			p("| %s | %s | %s | %.2f | %s | %s | %s |\n", m.Name, m.Role, bytesH(m.IO.WriteBytes), ratio(m.IO.WriteBytes, r.ValueBytes), bytesH(m.IO.WChar),
				bytesH(m.RSSKiB<<10), bytesH(m.PeakRSSKiB<<10))
		}
		p("\nAll members: write_bytes ÷ value bytes = **%.2f**, wchar ÷ value bytes = %.2f.\n\n", r.StorageFactor, r.WriteCallFactor)
		p("Largest flow directions:\n\n| flow | bytes | repeated | value copies |\n|---|---:|---:|---:|\n")
		for i, f := range rep.Flows {
			if i == 8 {
				break
			}
			p("| %s | %s | %s | %d |\n", f.Label, bytesH(f.Bytes), bytesH(f.RepeatedBytes), f.KnownCopies)
		}
		p("\n")
	}
	for sys, err := range c.RealErr {
		p("### %s\n\nFailed: %s\n\n", sys, err)
	}
	_ = realsys.Systems
}
