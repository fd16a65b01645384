package evaluate

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot/plotter"

	"github.com/onecast/onecast/bench"
	"github.com/onecast/onecast/bench/characterize"
	"github.com/onecast/onecast/broadcast"
)

// assumed costs of the larger-n model: one node per host.
const (
	modelCores     = 2
	modelBandwidth = 10e9 / 8 // 10 Gb/s
)

// Write writes the report to path, its plots and results.json to the
// directory "evaluation" beside it, and returns the files written.
func (ev *Evaluation) Write(path string) ([]string, error) {
	dir := filepath.Join(filepath.Dir(path), "evaluation")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// The figures first: a failure below must not lose the run.
	js := filepath.Join(dir, "results.json")
	b, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(js, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	files := []string{js}
	plots, err := ev.writePlots(dir)
	if err != nil {
		ev.PlotError = err.Error()
	}
	for _, p := range plots {
		files = append(files, filepath.Join(dir, p))
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	werr := ev.WriteMarkdown(f)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, werr
	}
	return append(files, path), nil
}

// plot file names (in the evaluation directory).
const (
	plotMatrixTput  = "matrix-throughput.png"
	plotMatrixWire  = "matrix-wire.png"
	plotAblation    = "ablation.png"
	plotScaleBytes  = "scaling-bytes.png"
	plotScaleTput   = "scaling-throughput.png"
	plotH2H         = "head-to-head.png"
	plotH2HWire     = "head-to-head-wire.png"
	plotModel       = "scaling-model.png"
	evaluationLinks = "evaluation/"
)

func (ev *Evaluation) writePlots(dir string) ([]string, error) {
	var files []string
	p := ev.plan
	// Matrix: throughput and wire factor per protocol and configuration.
	var names []string
	for _, c := range p.configs {
		names = append(names, c.Name)
	}
	n, size := p.prof.matrixNs[0], 16<<10 // both profiles measure 16 KiB
	tput := make([][]float64, len(p.configs))
	wire := make([][]float64, len(p.configs))
	for i, c := range p.configs {
		for _, proto := range p.protocols {
			r := find(ev.Matrix, proto, c.Mode.String(), c.Transport, n, size, 1, "")
			var t, w float64
			if ok(r) {
				t, w = r.DeliveriesPerSec, r.WireFactor
			}
			tput[i] = append(tput[i], t)
			wire[i] = append(wire[i], w)
		}
	}
	if len(ev.Matrix) > 0 {
		title := fmt.Sprintf("Throughput by configuration (n = %d, %s payloads)", n, bench.FormatSize(size))
		if err := drawGroupedBars(filepath.Join(dir, plotMatrixTput), title, "deliveries per second per node (log)", p.protocols, names, tput, true); err != nil {
			return files, err
		}
		title = fmt.Sprintf("Bytes received ÷ payload bytes delivered (n = %d, %s)", n, bench.FormatSize(size))
		if err := drawGroupedBars(filepath.Join(dir, plotMatrixWire), title, "wire factor (1 = each payload byte once)", p.protocols, names, wire, false); err != nil {
			return files, err
		}
		files = append(files, plotMatrixTput, plotMatrixWire)
	}
	// Ablation: Bracha per receive path, full and digest.
	if len(ev.Ablation) > 0 {
		trs := p.ablation.sweeps[0].Transports
		var vals [][]float64
		for _, mode := range []string{"full", "digest"} {
			var row []float64
			for _, tr := range trs {
				r := find(ev.Ablation, "bracha", mode, tr, 4, 16<<10, 1, "")
				v := 0.0
				if ok(r) {
					v = r.DeliveriesPerSec
				}
				row = append(row, v)
			}
			vals = append(vals, row)
		}
		if err := drawGroupedBars(filepath.Join(dir, plotAblation), "Bracha, n = 4, 16 KiB: throughput by receive path and mode",
			"deliveries per second per node", trs, []string{"full mode", "digest mode"}, vals, false); err != nil {
			return files, err
		}
		files = append(files, plotAblation)
	}
	// Scaling: bytes per broadcast vs n with fits.
	if len(ev.ScaleMem) > 0 {
		var data []series
		for _, mode := range []string{"full", "digest"} {
			xs, ys := bytesPerBroadcast(ev.ScaleMem, mode)
			var s series
			s.name = "Bracha " + mode + " mode"
			for i := range xs {
				s.pts = append(s.pts, plotter.XY{X: xs[i], Y: ys[i] / 1024})
			}
			data = append(data, s)
			if f, err := FitPoly(xs, ys, 2); err == nil {
				fs := series{name: "Bracha " + mode + " (quadratic fit)"}
				for x := xs[0]; x <= xs[len(xs)-1]; x += 0.25 {
					fs.pts = append(fs.pts, plotter.XY{X: x, Y: math.Max(0, f.At(x)) / 1024})
				}
				data = append(data, fs)
			}
		}
		title := fmt.Sprintf("Message bytes per broadcast, all nodes (%s payloads, in process)", bench.FormatSize(p.prof.scalePayload))
		if err := drawLines(filepath.Join(dir, plotScaleBytes), title, "n (nodes)", "KiB received per broadcast", data, false); err != nil {
			return files, err
		}
		files = append(files, plotScaleBytes)
	}
	if len(ev.ScaleNet) > 0 {
		var data, model []series
		for _, mode := range []string{"full", "digest"} {
			var s series
			s.name = "Bracha " + mode + " mode (measured)"
			for _, r := range sortedByN(ev.ScaleNet, mode) {
				s.pts = append(s.pts, plotter.XY{X: float64(r.N), Y: r.DeliveriesPerSec})
			}
			data = append(data, s)
			if m, err := ev.costModel(mode); err == nil {
				ms := series{name: "Bracha " + mode + " mode (model)"}
				for x := 4.0; x <= 100; x += 2 {
					ms.pts = append(ms.pts, plotter.XY{X: x, Y: m.Throughput(x)})
				}
				model = append(model, ms)
			}
		}
		title := fmt.Sprintf("Throughput against n (%s payloads, %s)", bench.FormatSize(p.prof.scalePayload), ev.netDesc())
		if err := drawLines(filepath.Join(dir, plotScaleTput), title, "n (nodes, all on this machine)", "deliveries per second per node", data, false); err != nil {
			return files, err
		}
		files = append(files, plotScaleTput)
		if len(model) > 0 {
			if err := drawLines(filepath.Join(dir, plotModel), "Model: throughput per node at larger n (one node per host, 2 cores, 10 Gb/s)",
				"n (nodes)", "deliveries per second per node (log)", model, true); err != nil {
				return files, err
			}
			files = append(files, plotModel)
		}
	}
	if len(ev.H2H) > 0 {
		var labels []string
		var rps, wire []float64
		for _, r := range ev.H2H {
			labels = append(labels, r.System)
			rps = append(rps, r.RequestsPerSec)
			wire = append(wire, r.WireBytesPerRequest/1024)
		}
		title := fmt.Sprintf("Head-to-head, n = 4, %s requests, one in-memory network", bench.FormatSize(ev.H2HPayload))
		if err := drawGroupedBars(filepath.Join(dir, plotH2H), title, "requests per second (log)", labels, []string{"requests/s"}, [][]float64{rps}, true); err != nil {
			return files, err
		}
		if err := drawGroupedBars(filepath.Join(dir, plotH2HWire), title, "KiB on the wire per request (all nodes)", labels, []string{"wire KiB per request"}, [][]float64{wire}, false); err != nil {
			return files, err
		}
		files = append(files, plotH2HWire)
		files = append(files, plotH2H)
	}
	return files, nil
}

// bytesPerBroadcast returns (n, message bytes all nodes received per
// broadcast) for the mode's successful points, sorted by n.
func bytesPerBroadcast(rs []bench.Result, mode string) (xs, ys []float64) {
	for _, r := range sortedByN(rs, mode) {
		xs = append(xs, float64(r.N))
		ys = append(ys, r.WireBytesPerDelivery*float64(r.N)) // every node delivers every broadcast
	}
	return xs, ys
}

func sortedByN(rs []bench.Result, mode string) []bench.Result {
	var out []bench.Result
	for i := range rs {
		if rs[i].Mode == mode && ok(&rs[i]) {
			out = append(out, rs[i])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N < out[j].N })
	return out
}

// costModel fits the per-delivery CPU and bytes of the throughput-vs-n
// points of a mode.
func (ev *Evaluation) costModel(mode string) (CostModel, error) {
	var ns, cpu, bytes []float64
	for _, r := range sortedByN(ev.ScaleNet, mode) {
		if r.CPUMicrosPerDelivery <= 0 {
			continue
		}
		ns = append(ns, float64(r.N))
		cpu = append(cpu, r.CPUMicrosPerDelivery)
		bytes = append(bytes, r.WireBytesPerDelivery)
	}
	cf, err := FitPoly(ns, cpu, 1)
	if err != nil {
		return CostModel{}, err
	}
	bf, err := FitPoly(ns, bytes, 1)
	if err != nil {
		return CostModel{}, err
	}
	return CostModel{Mode: mode, CPU: cf, Bytes: bf, Cores: modelCores, Bandwidth: modelBandwidth}, nil
}

func (ev *Evaluation) netDesc() string {
	if ev.Netns {
		return "a network namespace per node, AF_XDP"
	}
	return "in process, loopback UDP"
}

// WriteMarkdown writes the report.
func (ev *Evaluation) WriteMarkdown(w io.Writer) error {
	e := ev.Env
	profile := "full"
	cmd := "onecast evaluate"
	if ev.Quick {
		profile, cmd = "quick", "onecast evaluate --quick"
	}
	fmt.Fprintf(w, "# onecast evaluation\n\n")
	fmt.Fprintf(w, "Generated by `%s` (root, for the AF_XDP parts): the %s profile, %s. Every table names the command that reproduces its points alone; "+
		"the raw figures are in [evaluation/results.json](evaluation/results.json).\n\n", cmd, profile, ev.Took.Round(1e9))
	dirty := ""
	if e.Dirty {
		dirty = " (with uncommitted changes)"
	}
	fmt.Fprintf(w, "| | |\n|---|---|\n| commit | `%s`%s |\n| started | %s |\n| Go | %s |\n| kernel | %s |\n| CPU | %s, %d cores |\n| memory | %.0f GiB |\n\n",
		e.Commit, dirty, e.Started.Format("2006-01-02 15:04:05 UTC"), e.GoVersion, e.Kernel, e.CPU, e.Cores, e.MemoryGiB)
	if ev.Interrupted {
		fmt.Fprintf(w, "**The run was interrupted: the tables hold the points that finished.**\n\n")
	}
	if ev.PlotError != "" {
		fmt.Fprintf(w, "**Some plots could not be drawn:** %s\n\n", ev.PlotError)
	}
	if !ev.Netns {
		fmt.Fprintf(w, "**Not run as root:** the namespace clusters, and with them every AF_XDP configuration, were replaced by in-process clusters over loopback UDP.\n\n")
	}
	fmt.Fprintf(w, "All clusters run on this one machine: n nodes share its cores, so absolute throughput is a lower bound of what n hosts reach; "+
		"the ratios between configurations are the result. Deliveries/s are per correct node; latency runs from submission at the origin to delivery at each correct node; "+
		"the duplication factor is payload bytes received in user space ÷ payload bytes delivered from other nodes (1.00 is the limit); the wire factor counts every onecast message byte instead; "+
		"On a shared machine, repeating a point moves its throughput (by 2× and more on 2 cores under other work: see the ranges when the run was repeated); the duplication, wire and copy figures (exact counts) are the firm ones. "+
		"copies/B are user-space payload bytes copied per payload byte delivered; CPU µs/delivery is the process's CPU time ÷ the deliveries of all its nodes (one node's average cost per payload); RSS the peak resident set of the process (all nodes).\n\n")

	ev.writeSummary(w)
	ev.writeMatrix(w)
	ev.writeAblation(w)
	ev.writeScaling(w)
	ev.writeH2H(w)
	fmt.Fprintf(w, "## Profiles\n\nThis run measured %d points plus the head-to-head in %s. `onecast evaluate --quick` runs 44 points with 2 s windows (about 3 minutes here with the head-to-head). "+
		"`onecast evaluate` (the full profile) runs n = 4 and 7 in the matrix, payloads of 1, 16 and 64 KiB, n up to 22 in process and 13 in namespaces, 5 s windows, 110 points: 13.5 minutes on this machine (2026-11-25) plus the head-to-head.\n",
		ev.pointCount(), ev.Took.Round(1e9))
	return nil
}

func (ev *Evaluation) pointCount() int {
	n := 0
	for _, pt := range ev.plan.parts() {
		n += len(pt.points)
	}
	return n
}

func (ev *Evaluation) writeSummary(w io.Writer) {
	p := ev.plan
	fmt.Fprintf(w, "## Summary\n\n")
	if ev.Repeat > 1 {
		fmt.Fprintf(w, "Each figure is the median of %d runs of its point (`--repeat %d`); a ratio's range in parentheses is over the runs' own ratios (the first run of one side over the first of the other, …). "+
			"Load average (1, 5, 15 min) at the start %s, at the end %s.\n\n", ev.Repeat, ev.Repeat, orUnknown(ev.LoadAverage[0]), orUnknown(ev.LoadAverage[1]))
	} else {
		fmt.Fprintf(w, "One run per point: a headline figure wants `--repeat 3` (the median of three runs, with their range). Load average (1, 5, 15 min) at the start %s, at the end %s.\n\n",
			orUnknown(ev.LoadAverage[0]), orUnknown(ev.LoadAverage[1]))
	}
	n, size := p.prof.matrixNs[0], 16<<10
	var lines []string
	for _, proto := range p.protocols {
		full := find(ev.Matrix, proto, "full", "udp", n, size, 1, "")
		dig := find(ev.Matrix, proto, "digest", "udp", n, size, 1, "")
		if ok(full) && ok(dig) {
			lines = append(lines, fmt.Sprintf("- **Digest vs full, %s** (n = %d, 16 KiB, UDP): %s the throughput%s (%.0f vs %.0f deliveries/s), duplication factor %.2f → %.2f, wire bytes per delivery %s.",
				proto, n, ratio(dig.DeliveriesPerSec, full.DeliveriesPerSec), runsRange(figureRuns(dig, "deliveries/s"), figureRuns(full, "deliveries/s")),
				dig.DeliveriesPerSec, full.DeliveriesPerSec,
				full.PayloadDupFactor, dig.PayloadDupFactor, ratio(dig.WireBytesPerDelivery, full.WireBytesPerDelivery)))
		}
	}
	if ev.Netns {
		cp := find(ev.Ablation, "bracha", "digest", "xdp-copy", 4, 16<<10, 1, "")
		ref := find(ev.Ablation, "bracha", "digest", "xdp-ref", 4, 16<<10, 1, "")
		if ok(cp) && ok(ref) {
			lines = append(lines, fmt.Sprintf("- **Reference passing vs copying** (Bracha digest, AF_XDP, n = 4, 16 KiB): copies %.2f → %.2f per payload byte, CPU %.0f → %.0f µs per delivery, throughput %s%s.",
				cp.CopiesPerPayloadByte, ref.CopiesPerPayloadByte, cp.CPUMicrosPerDelivery, ref.CPUMicrosPerDelivery, ratio(ref.DeliveriesPerSec, cp.DeliveriesPerSec),
				runsRange(figureRuns(ref, "deliveries/s"), figureRuns(cp, "deliveries/s"))))
		}
		off := find(ev.Ablation, "bracha", "full", "xdp-ref", 4, 16<<10, 1, "")
		on := find(ev.Ablation, "bracha", "full", "xdp", 4, 16<<10, 1, "")
		if ok(off) && ok(on) {
			lines = append(lines, fmt.Sprintf("- **In-kernel strip on vs off** (Bracha full mode, AF_XDP, n = 4, 16 KiB): payload bytes reaching user space per byte delivered %.2f → %.2f, throughput %s%s, CPU per delivery %s.",
				off.PayloadDupFactor, on.PayloadDupFactor, ratio(on.DeliveriesPerSec, off.DeliveriesPerSec),
				runsRange(figureRuns(on, "deliveries/s"), figureRuns(off, "deliveries/s")), ratio(on.CPUMicrosPerDelivery, off.CPUMicrosPerDelivery)))
		}
		offD := find(ev.Ablation, "bracha", "digest", "xdp-ref", 4, 16<<10, 1, "")
		onD := find(ev.Ablation, "bracha", "digest", "xdp", 4, 16<<10, 1, "")
		if ok(offD) && ok(onD) {
			lines = append(lines, fmt.Sprintf("  In digest mode, where a payload crosses the wire once already, the strip has little left to cut: dup factor %.2f → %.2f, throughput %s%s.",
				offD.PayloadDupFactor, onD.PayloadDupFactor, ratio(onD.DeliveriesPerSec, offD.DeliveriesPerSec),
				runsRange(figureRuns(onD, "deliveries/s"), figureRuns(offD, "deliveries/s"))))
		}
	}
	var ours, smart, signed *H2HResult
	for i := range ev.H2H {
		switch ev.H2H[i].System {
		case "onecast-digest":
			ours = &ev.H2H[i]
		case "smartbft":
			smart = &ev.H2H[i]
		case "smartbft-signed":
			signed = &ev.H2H[i]
		}
	}
	if ours != nil && smart != nil && ours.Error == "" && smart.Error == "" {
		lines = append(lines, fmt.Sprintf("- **onecast pbft vs SmartBFT** (n = 4, %s requests, one in-memory network): %.0f vs %.0f requests/s (%s%s), p99 %.1f vs %.1f ms, %.0f vs %.0f wire bytes per request (%s).",
			bench.FormatSize(ev.H2HPayload), ours.RequestsPerSec, smart.RequestsPerSec, ratio(ours.RequestsPerSec, smart.RequestsPerSec),
			commaSpan(ours.RunsPerSec, smart.RunsPerSec),
			ours.LatencyP99Ms, smart.LatencyP99Ms, ours.WireBytesPerRequest, smart.WireBytesPerRequest, ratio(ours.WireBytesPerRequest, smart.WireBytesPerRequest)))
		if signed != nil && signed.Error == "" {
			lines = append(lines, fmt.Sprintf("  SmartBFT does less cryptography by default (unsigned client requests); with client-signed requests checked by every follower, as pbft's are, it serves %.0f requests/s (onecast %s%s).",
				signed.RequestsPerSec, ratio(ours.RequestsPerSec, signed.RequestsPerSec), commaSpan(ours.RunsPerSec, signed.RunsPerSec)))
		}
	} else if ev.H2HError != "" {
		lines = append(lines, "- **onecast vs SmartBFT**: not measured in this run: "+ev.H2HError)
	}
	if len(lines) == 0 {
		lines = append(lines, "- No comparison completed in this run.")
	}
	fmt.Fprintf(w, "%s\n\n", strings.Join(lines, "\n"))
}

// resultRow prints the standard figures of a result.
func resultRow(r *bench.Result) string {
	if r == nil {
		return "not run | | | | | | | | |"
	}
	if r.Error != "" {
		return "failed: " + strings.ReplaceAll(r.Error, "|", "/") + " | | | | | | | | |"
	}
	return fmt.Sprintf("%.0f | %.2f | %.2f | %.2f | %.2f | %.0f | %.2f | %.0f | %.0f |",
		r.DeliveriesPerSec, r.LatencyP50Ms, r.LatencyP99Ms, r.PayloadDupFactor, r.WireFactor, r.WireBytesPerDelivery,
		r.CopiesPerPayloadByte, r.CPUMicrosPerDelivery, r.PeakRSSMB)
}

const resultHead = "deliveries/s | p50 ms | p99 ms | dup factor | wire factor | wire B/delivery | copies/B | CPU µs/delivery | RSS MB |"

func writeCommands(w io.Writer, pt *part, root bool) {
	prefix := ""
	if root {
		prefix = "sudo "
	}
	fmt.Fprintf(w, "Reproduce:\n\n```sh\n")
	for _, c := range pt.Commands() {
		fmt.Fprintf(w, "%s%s\n", prefix, c)
	}
	fmt.Fprintf(w, "```\n\n")
}

func (ev *Evaluation) writeMatrix(w io.Writer) {
	p := ev.plan
	fmt.Fprintf(w, "## 1. Primitives × configurations\n\n")
	fmt.Fprintf(w, "Configurations: **full** = every round carries the payload, kernel UDP; **digest** = the payload once, later rounds carry its signed digest, kernel UDP")
	if ev.Netns {
		fmt.Fprintf(w, "; **digest + AF_XDP ref** = digest, received by AF_XDP and passed up by reference in the frame the kernel filled; **… + strip** = plus the XDP program cutting payloads the node already holds")
	}
	fmt.Fprintf(w, ". Clusters: %s; closed loop, %d payloads in flight; MAC authenticators; batch 1.\n\n", ev.netDesc(), p.prof.inflight)
	fmt.Fprintf(w, "| protocol | n | payload | configuration | %s\n|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", resultHead)
	for _, proto := range p.protocols {
		for _, n := range p.prof.matrixNs {
			for _, size := range p.prof.matrixPayloads {
				for _, c := range p.configs {
					r := find(ev.Matrix, proto, c.Mode.String(), c.Transport, n, size, 1, "")
					fmt.Fprintf(w, "| %s | %d | %s | %s | %s\n", proto, n, bench.FormatSize(size), c.Name, resultRow(r))
				}
			}
		}
	}
	fmt.Fprintf(w, "\nReading the matrix: Dolev–Strong is synchronous — a payload is delivered f+1 rounds of Δ after it is sent (Δ from a 50 ms delay bound), "+
		"and in digest mode a round also covers fetching a payload a node lacks, so its rounds are longer: in a closed loop of %d payloads its throughput is %d ÷ latency, "+
		"and digest mode's gain is in bytes, not in speed. PBFT's requests go to every replica and its replies come back from every replica, which digest mode cannot shorten; "+
		"its later rounds (PREPARE, COMMIT) never carried the payload, so digest mode removes only the PRE-PREPARE's copy.\n\n", p.prof.inflight, p.prof.inflight)
	writeCommands(w, &p.matrix, ev.Netns)
	fmt.Fprintf(w, "![throughput](%s%s)\n\n![wire factor](%s%s)\n\n", evaluationLinks, plotMatrixTput, evaluationLinks, plotMatrixWire)

	fmt.Fprintf(w, "### Byzantine: one silent node\n\n")
	fmt.Fprintf(w, "n = 4, f = 1, the highest node silent from the start (it neither sends nor answers); 16 KiB payloads over UDP. Byzantine behaviours that lie (equivocation, wrong digests, replays) are exercised for safety by the simulator (`onecast sim --byzantine 1:any`); here the cost a fault imposes on the correct nodes is measured.\n\n")
	fmt.Fprintf(w, "| protocol | mode | %s\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", resultHead)
	for _, proto := range p.protocols {
		for _, mode := range []string{"full", "digest"} {
			r := find(ev.Byzantine, proto, mode, "udp", 4, 16<<10, 1, "1:silent")
			fmt.Fprintf(w, "| %s | %s | %s\n", proto, mode, resultRow(r))
		}
	}
	fmt.Fprintf(w, "\n")
	writeCommands(w, &p.byzantine, ev.Netns)
	ev.writeByzSim(w)
}

func (ev *Evaluation) writeByzSim(w io.Writer) {
	if len(ev.ByzSim) == 0 {
		return
	}
	fmt.Fprintf(w, "### Byzantine behaviours, exact counts (simulator)\n\n")
	fmt.Fprintf(w, "The deterministic simulator (seed 1; n = 4, f = 1, 16 KiB payloads, 4 per node, no loss) with the Byzantine node lying in the named way: "+
		"the duplication factor at the correct nodes (payload bytes received ÷ remote payload bytes delivered) in each mode, and the safety checkers' verdict. "+
		"A Byzantine node can always make correct nodes receive more (flood); the question is how much each format lets it amplify.\n\n")
	fmt.Fprintf(w, "| protocol | Byzantine behaviour | full: dup factor | digest: dup factor | full: KiB received | digest: KiB received | violations |\n|---|---|---:|---:|---:|---:|---:|\n")
	get := func(proto, b string, m broadcast.Mode) *characterize.OwnResult {
		for i := range ev.ByzSim {
			r := &ev.ByzSim[i]
			if r.Protocol == proto && r.Byzantine == b && r.Mode == m {
				return r
			}
		}
		return nil
	}
	for _, proto := range ev.plan.protocols {
		for _, b := range byzBehaviours {
			full, dig := get(proto, b, broadcast.ModeFull), get(proto, b, broadcast.ModeDigest)
			if full == nil || dig == nil {
				continue
			}
			name := b
			if name == "" {
				name = "none"
			}
			if full.Err != "" || dig.Err != "" {
				fmt.Fprintf(w, "| %s | %s | failed: %s %s | | | | |\n", proto, name, full.Err, dig.Err)
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %.2f | %.2f | %.0f | %.0f | %d |\n", proto, name, full.DupFactor, dig.DupFactor,
				float64(full.Received())/1024, float64(dig.Received())/1024, len(full.Violations)+len(dig.Violations))
		}
	}
	fmt.Fprintf(w, "\nRegenerated by `onecast evaluate` (about a second); the behaviours are the simulator's (`onecast sim --byzantine 1:<behaviour>` runs them for safety over many seeds).\n\n")
}

func (ev *Evaluation) writeAblation(w io.Writer) {
	p := ev.plan
	fmt.Fprintf(w, "## 2. Ablation: what each technique buys alone\n\n")
	fmt.Fprintf(w, "Bracha, n = 4, 16 KiB payloads, %s. Each row switches one technique on and keeps the rest.\n\n", ev.netDesc())
	type step struct {
		technique, from, to             string
		proto, fromMode, toMode, fromTr string
		toTr                            string
		fromBatch, toBatch              int
	}
	last := p.ablation.sweeps[0].Transports[len(p.ablation.sweeps[0].Transports)-1]
	steps := []step{
		{"digest-only later rounds", "full, UDP", "digest, UDP", "bracha", "full", "digest", "udp", "udp", 1, 1},
	}
	if ev.Netns {
		steps = append(steps,
			step{"reference passing (full mode)", "AF_XDP, copy out of UMEM", "AF_XDP, by reference", "bracha", "full", "full", "xdp-copy", "xdp-ref", 1, 1},
			step{"reference passing (digest mode)", "AF_XDP, copy out of UMEM", "AF_XDP, by reference", "bracha", "digest", "digest", "xdp-copy", "xdp-ref", 1, 1},
			step{"in-kernel strip (full mode)", "AF_XDP by reference", "+ XDP strip", "bracha", "full", "full", "xdp-ref", "xdp", 1, 1},
			step{"in-kernel strip (digest mode)", "AF_XDP by reference", "+ XDP strip", "bracha", "digest", "digest", "xdp-ref", "xdp", 1, 1},
			step{"all of them", "full, UDP", "digest, AF_XDP, strip", "bracha", "full", "digest", "udp", "xdp", 1, 1},
		)
	}
	steps = append(steps,
		step{"batching (Bracha)", "1 payload per instance", "16 per instance", "bracha", "digest", "digest", last, last, 1, 16},
		step{"batching (PBFT)", "1 request per PRE-PREPARE", "up to 16", "pbft", "digest", "digest", last, last, 1, 16})
	fmt.Fprintf(w, "| technique | from | to | deliveries/s | throughput × | p99 ms | dup factor | copies/B | CPU µs/delivery |\n|---|---|---|---|---:|---|---|---|---|\n")
	for _, s := range steps {
		a := find(ev.Ablation, s.proto, s.fromMode, s.fromTr, 4, 16<<10, s.fromBatch, "")
		b := find(ev.Ablation, s.proto, s.toMode, s.toTr, 4, 16<<10, s.toBatch, "")
		if !ok(a) || !ok(b) {
			why := "not measured"
			if a != nil && a.Error != "" {
				why = "failed: " + a.Error
			} else if b != nil && b.Error != "" {
				why = "failed: " + b.Error
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | | | | | |\n", s.technique, s.from, s.to, strings.ReplaceAll(why, "|", "/"))
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f → %.0f | **%s** | %.1f → %.1f | %.2f → %.2f | %.2f → %.2f | %.0f → %.0f |\n",
			s.technique, s.from, s.to, a.DeliveriesPerSec, b.DeliveriesPerSec, ratio(b.DeliveriesPerSec, a.DeliveriesPerSec),
			a.LatencyP99Ms, b.LatencyP99Ms, a.PayloadDupFactor, b.PayloadDupFactor, a.CopiesPerPayloadByte, b.CopiesPerPayloadByte,
			a.CPUMicrosPerDelivery, b.CPUMicrosPerDelivery)
	}
	fmt.Fprintf(w, "\nThe copies left with references passed are the store's copy-outs: Bracha keeps delivered payloads a while to answer late fetches, and when free receive frames run low the store moves the longest-held ones to the heap (one counted copy) and gives the frames back. ")
	fmt.Fprintf(w, "Copies are counted in user space only: over UDP the kernel's copy into the socket buffer is one copy per received byte, ")
	fmt.Fprintf(w, "over AF_XDP on veth the kernel copies each frame into UMEM once (copy mode; a NIC in zero-copy mode writes it there itself).\n\n")
	writeCommands(w, &p.ablation, ev.Netns)
	fmt.Fprintf(w, "![ablation](%s%s)\n\n", evaluationLinks, plotAblation)
}

func (ev *Evaluation) writeScaling(w io.Writer) {
	p := ev.plan
	fmt.Fprintf(w, "## 3. Scaling with n\n\n### Bytes per broadcast\n\n")
	fmt.Fprintf(w, "Bracha, %s payloads, in-process clusters (in-memory network: n is cheap, the counts are the protocol's). "+
		"Bytes per broadcast = onecast message bytes all nodes receive for one payload delivered everywhere.\n\n", bench.FormatSize(p.prof.scalePayload))
	fmt.Fprintf(w, "| n | full: KiB per broadcast | digest: KiB per broadcast | full ÷ digest |\n|---:|---:|---:|---:|\n")
	fx, fy := bytesPerBroadcast(ev.ScaleMem, "full")
	dx, dy := bytesPerBroadcast(ev.ScaleMem, "digest")
	dm := map[float64]float64{}
	for i := range dx {
		dm[dx[i]] = dy[i]
	}
	for i := range fx {
		d := dm[fx[i]]
		fmt.Fprintf(w, "| %.0f | %.1f | %.1f | %s |\n", fx[i], fy[i]/1024, d/1024, ratio(fy[i], d))
	}
	fmt.Fprintf(w, "\n")
	for _, m := range []struct {
		name   string
		xs, ys []float64
	}{{"full", fx, fy}, {"digest", dx, dy}} {
		if f, err := FitPoly(m.xs, m.ys, 2); err == nil {
			fmt.Fprintf(w, "- %s mode: bytes per broadcast ≈ %s; the n² coefficient is %.0f B, %.2f× the payload size.\n",
				m.name, f, f.Coef[2], f.Coef[2]/float64(p.prof.scalePayload))
		}
	}
	fmt.Fprintf(w, "\nIn full mode each of the ~2n ECHO and READY messages a node receives carries the payload: n nodes × 2n payloads, quadratic. "+
		"In digest mode each node receives the payload once and 2n headers with a digest: linear in the payload, quadratic only in small headers.\n\n")
	writeCommands(w, &p.scaleMem, false)
	fmt.Fprintf(w, "![bytes per broadcast](%s%s)\n\n", evaluationLinks, plotScaleBytes)

	fmt.Fprintf(w, "### Throughput against n\n\n%s; every node on this machine's cores.\n\n", ev.netDesc())
	fmt.Fprintf(w, "| n | mode | %s\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", resultHead)
	for _, mode := range []string{"full", "digest"} {
		for _, n := range p.prof.scaleNetnsNs {
			r := find(ev.ScaleNet, "bracha", mode, p.scaleNet.sweeps[0].Transports[0], n, p.prof.scalePayload, 1, "")
			fmt.Fprintf(w, "| %d | %s | %s\n", n, mode, resultRow(r))
		}
	}
	fmt.Fprintf(w, "\n")
	writeCommands(w, &p.scaleNet, ev.Netns)
	fmt.Fprintf(w, "![throughput vs n](%s%s)\n\n", evaluationLinks, plotScaleTput)
	fmt.Fprintf(w, "**Model for larger n.** The measured CPU per delivery and received bytes per delivery are fitted as linear in n "+
		"(a node handles about 2n messages per broadcast); with one node per host of %d cores and a 10 Gb/s link, "+
		"throughput per node = min(cores·10⁶ / CPU µs, bandwidth / bytes). The CPU per delivery is the process's CPU ÷ the deliveries of all its nodes: "+
		"one node's average cost per payload it delivers, kernel work on its behalf (softirq receive on veth) partly included. "+
		"The model ignores what grows with n beyond message handling (connection state, contention) and so is an upper bound.\n\n", modelCores)
	fmt.Fprintf(w, "| mode | CPU µs per delivery per node | bytes per delivery per node | n = 16 | n = 31 | n = 64 | n = 100 |\n|---|---|---|---:|---:|---:|---:|\n")
	for _, mode := range []string{"full", "digest"} {
		m, err := ev.costModel(mode)
		if err != nil {
			fmt.Fprintf(w, "| %s | not fitted: %v | | | | | |\n", mode, err)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.0f | %.0f | %.0f |\n", mode, m.CPU, m.Bytes, m.Throughput(16), m.Throughput(31), m.Throughput(64), m.Throughput(100))
	}
	fmt.Fprintf(w, "\n![model](%s%s)\n\n", evaluationLinks, plotModel)
}

func (ev *Evaluation) writeH2H(w io.Writer) {
	fmt.Fprintf(w, "## 4. Head-to-head: onecast pbft, SmartBFT, etcd raft\n\n")
	fmt.Fprintf(w, "One in-memory network (bench/h2h, its own Go module), n = 4, %s requests, 32 in flight; the same payload generator and byte counting for every system. "+
		"etcd raft tolerates crashes only (f = 1 of 4 crash faults, no Byzantine ones): it is the reference for what BFT costs. See bench/h2h's package doc for each system's completion rule, cryptography and batching.\n\n", bench.FormatSize(ev.H2HPayload))
	if len(ev.H2H) > 0 {
		fmt.Fprintf(w, "| system | requests | requests/s | p50 ms | p99 ms | wire bytes/request | messages/request |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range ev.H2H {
			if r.Error != "" {
				fmt.Fprintf(w, "| %s | failed: %s | | | | | |\n", r.System, strings.ReplaceAll(r.Error, "|", "/"))
				continue
			}
			fmt.Fprintf(w, "| %s | %d | %.0f | %.2f | %.2f | %.0f | %.1f |\n", r.System, r.Requests, r.RequestsPerSec, r.LatencyP50Ms, r.LatencyP99Ms, r.WireBytesPerRequest, r.MessagesPerRequest)
		}
		fmt.Fprintf(w, "\n![head-to-head](%s%s)\n\n![head-to-head wire bytes](%s%s)\n\n", evaluationLinks, plotH2H, evaluationLinks, plotH2HWire)
	}
	if ev.H2HError != "" {
		fmt.Fprintf(w, "The head-to-head did not complete: %s\n\n", ev.H2HError)
	}
	fmt.Fprintf(w, "Reproduce:\n\n```sh\n%s\n```\n\n", H2HCommand(ev.Quick, ev.H2HPayload))
	if ev.Repeat > 1 {
		fmt.Fprintf(w, "Run %d times: each figure is the median run's (by requests/s).\n\n", ev.Repeat)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
