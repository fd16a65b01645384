package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Result is the figures of one point. The JSON keys are a stable interface:
// scripts and the evaluation read them.
type Result struct {
	Protocol     string `json:"protocol"`
	Mode         string `json:"mode"`
	Transport    string `json:"transport"`
	Cluster      string `json:"cluster"`
	N            int    `json:"n"`
	F            int    `json:"f"`
	PayloadBytes int    `json:"payload_bytes"`
	Batch        int    `json:"batch"`
	Byzantine    string `json:"byzantine,omitempty"`
	Auth         string `json:"auth"`

	// DeliveriesPerSec is payloads delivered per second per correct node.
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	// PayloadMBPerSec is DeliveriesPerSec × payload size, in MB (10^6 B).
	PayloadMBPerSec float64 `json:"payload_mb_per_sec"`
	// Latency from Submit at the origin to delivery at a correct node.
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP90Ms float64 `json:"latency_p90_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	// PayloadDupFactor is the payload bytes all correct nodes received ÷
	// the payload bytes they delivered from other nodes, over the whole run
	// (counted after draining, so exact). 1.0 is the physical limit. An
	// origin that receives its own payload back counts: full-mode Bracha
	// with every node broadcasting gives 2n+1 (2n−1 at each other node, plus
	// 2(n−1) echoes to the origin, over n−1 remote deliveries).
	PayloadDupFactor float64 `json:"payload_dup_factor"`
	// WireFactor is all message bytes received ÷ the same denominator.
	WireFactor float64 `json:"wire_factor"`
	// WireBytesPerDelivery is message bytes received per payload delivered,
	// per correct node.
	WireBytesPerDelivery float64 `json:"wire_bytes_per_delivery"`
	// CopiesPerPayloadByte is payload bytes copied into user memory on the
	// receive path (a copying recv call such as recvmmsg, a copy out of a
	// UMEM frame, heap reassembly, flattening, the store's copy-outs) per
	// payload byte delivered.
	CopiesPerPayloadByte float64 `json:"copies_per_payload_byte"`
	// SendCopiesPerPayloadByte is payload bytes copied in user space on the
	// send path (into UMEM transmit frames, once per recipient and per
	// retransmission) per payload byte sent (counted once per recipient).
	SendCopiesPerPayloadByte float64 `json:"send_copies_per_payload_byte"`
	// KernelCopiesPerPayloadByte is payload bytes the kernel copied on the
	// receive path where no user-space counter sees it (AF_XDP in copy
	// mode: each frame into the UMEM; 0 in zero-copy mode) per payload byte
	// delivered. recvmmsg's copy is in CopiesPerPayloadByte already.
	KernelCopiesPerPayloadByte float64 `json:"kernel_copies_per_payload_byte"`
	// SendCopyFallback says why a transport that can send payloads by
	// reference copied them (empty when it did not, or cannot).
	SendCopyFallback     string  `json:"send_copy_fallback,omitempty"`
	AllocsPerDelivery    float64 `json:"allocs_per_delivery"`
	CPUMicrosPerDelivery float64 `json:"cpu_us_per_delivery"`
	// PeakRSSMB is the peak resident set of a node's process; for an
	// in-process cluster, of the whole process (all nodes).
	PeakRSSMB       float64 `json:"peak_rss_mb"`
	Retransmissions uint64  `json:"retransmissions"`
	Deliveries      uint64  `json:"deliveries"`
	// Incomplete counts payloads some correct node had not delivered by the
	// end of the drain (up to 10 s after the window): 0 unless something was
	// lost.
	Incomplete uint64 `json:"incomplete_payloads"`
	// Refusals are the correct nodes' resource-budget counters, summed
	// over them (MinFreeFrames: the smallest of any), over the whole run.
	Refusals Refusals `json:"refusals"`
	// Health are the correct nodes' link, drop and pool counters over the
	// window, from which the notes under the table are derived.
	Health      Health  `json:"health"`
	DurationSec float64 `json:"duration_s"`
	// Error says why the point failed, if it did.
	Error string `json:"error,omitempty"`

	// LatencyCDF is (milliseconds, cumulative fraction) pairs.
	LatencyCDF [][2]float64 `json:"latency_cdf,omitempty"`

	// Repeats is how many times the point ran (--repeat); above 1, each
	// table figure above is the median of the runs, and RepeatValues holds
	// every run's value, keyed by the table column's name ("deliveries/s").
	Repeats      int                  `json:"repeats,omitempty"`
	RepeatValues map[string][]float64 `json:"repeat_values,omitempty"`
}

// figure is one numeric column of the table and CSV.
type figure struct {
	name   string
	get    func(*Result) float64
	set    func(*Result, float64)
	digits int
	// legend explains the column, with its unit, in one line under the table.
	legend string
}

var figures = []figure{
	{"deliveries/s", func(r *Result) float64 { return r.DeliveriesPerSec }, func(r *Result, v float64) { r.DeliveriesPerSec = v }, 0,
		"payloads delivered per second at each correct node (higher is better)"},
	{"payload MB/s", func(r *Result) float64 { return r.PayloadMBPerSec }, func(r *Result, v float64) { r.PayloadMBPerSec = v }, 1,
		"deliveries/s × payload size, in 10⁶ bytes per second"},
	{"p50 ms", func(r *Result) float64 { return r.LatencyP50Ms }, func(r *Result, v float64) { r.LatencyP50Ms = v }, 2,
		"median latency, submit at the origin to delivery at a correct node, milliseconds"},
	{"p99 ms", func(r *Result) float64 { return r.LatencyP99Ms }, func(r *Result, v float64) { r.LatencyP99Ms = v }, 2,
		"99th-percentile latency, the same way"},
	{"dup factor", func(r *Result) float64 { return r.PayloadDupFactor }, func(r *Result, v float64) { r.PayloadDupFactor = v }, 2,
		"payload bytes received ÷ payload bytes delivered from other nodes; 1.00 = each payload crossed the wire once"},
	{"wire factor", func(r *Result) float64 { return r.WireFactor }, func(r *Result, v float64) { r.WireFactor = v }, 2,
		"all message bytes received (payloads and headers) ÷ the same payload bytes delivered"},
	{"copies/B", func(r *Result) float64 { return r.CopiesPerPayloadByte }, func(r *Result, v float64) { r.CopiesPerPayloadByte = v }, 2,
		"receive path: payload bytes copied into user memory (recvmmsg included) per payload byte delivered; 0 = passed by reference"},
	{"tx copies/B", func(r *Result) float64 { return r.SendCopiesPerPayloadByte }, func(r *Result, v float64) { r.SendCopiesPerPayloadByte = v }, 2,
		"send path: payload bytes copied in user space (into UMEM TX frames, per recipient and retransmission) per payload byte sent"},
	{"krn copies/B", func(r *Result) float64 { return r.KernelCopiesPerPayloadByte }, func(r *Result, v float64) { r.KernelCopiesPerPayloadByte = v }, 2,
		"receive path: payload bytes the kernel copied unseen by user space (AF_XDP copy mode into UMEM) per payload byte delivered"},
	{"allocs/deliv", func(r *Result) float64 { return r.AllocsPerDelivery }, func(r *Result, v float64) { r.AllocsPerDelivery = v }, 1,
		"heap allocations per delivery (the nodes' processes; in process, the whole bench)"},
	{"cpu µs/deliv", func(r *Result) float64 { return r.CPUMicrosPerDelivery }, func(r *Result, v float64) { r.CPUMicrosPerDelivery = v }, 1,
		"CPU time per delivery, microseconds, summed over all threads"},
	{"rss MB", func(r *Result) float64 { return r.PeakRSSMB }, func(r *Result, v float64) { r.PeakRSSMB = v }, 1,
		"peak resident memory of a node's process (in process: the whole bench), MB"},
}

func (r *Result) label() string {
	s := fmt.Sprintf("%s %s %s/%s n=%d f=%d %s b=%d", r.Protocol, r.Mode, r.Transport, r.Cluster, r.N, r.F, FormatSize(r.PayloadBytes), r.Batch)
	if r.Byzantine != "" {
		s += " byz=" + r.Byzantine
	}
	return s
}

// groupKey identifies results that differ only by mode.
func (r *Result) groupKey() string {
	return fmt.Sprintf("%s|%s|%s|%d|%d|%d|%d|%s", r.Protocol, r.Transport, r.Cluster, r.N, r.F, r.PayloadBytes, r.Batch, r.Byzantine)
}

// WriteJSON writes results as one JSON array.
func WriteJSON(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if results == nil {
		results = []Result{}
	}
	return enc.Encode(results)
}

var csvColumns = []string{"protocol", "mode", "transport", "cluster", "n", "f", "payload_bytes", "batch", "byzantine", "auth",
	"deliveries_per_sec", "payload_mb_per_sec", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms",
	"payload_dup_factor", "wire_factor", "wire_bytes_per_delivery", "copies_per_payload_byte",
	"send_copies_per_payload_byte", "kernel_copies_per_payload_byte", "allocs_per_delivery",
	"cpu_us_per_delivery", "peak_rss_mb", "retransmissions", "deliveries", "incomplete_payloads", "duration_s", "error"}

// WriteCSV writes results as CSV with a header row.
func WriteCSV(w io.Writer, results []Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvColumns); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, r := range results {
		row := []string{r.Protocol, r.Mode, r.Transport, r.Cluster, strconv.Itoa(r.N), strconv.Itoa(r.F),
			strconv.Itoa(r.PayloadBytes), strconv.Itoa(r.Batch), r.Byzantine, r.Auth,
			f(r.DeliveriesPerSec), f(r.PayloadMBPerSec), f(r.LatencyP50Ms), f(r.LatencyP90Ms), f(r.LatencyP99Ms),
			f(r.PayloadDupFactor), f(r.WireFactor), f(r.WireBytesPerDelivery), f(r.CopiesPerPayloadByte),
			f(r.SendCopiesPerPayloadByte), f(r.KernelCopiesPerPayloadByte), f(r.AllocsPerDelivery),
			f(r.CPUMicrosPerDelivery), f(r.PeakRSSMB), strconv.FormatUint(r.Retransmissions, 10),
			strconv.FormatUint(r.Deliveries, 10), strconv.FormatUint(r.Incomplete, 10), f(r.DurationSec), r.Error}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ratioPrefix labels a ratio row of the table.
const ratioPrefix = "digest ÷ full: "

// WriteTable writes results as an aligned text table: one row per point
// (with a min–max row under it when the point was repeated), a
// "digest ÷ full" row for each pair of points that differ only by mode, then
// warnings and notes (Result.Notes), then a legend that explains every
// column in one line each.
func WriteTable(w io.Writer, results []Result) error {
	head := []string{"point"}
	for _, f := range figures {
		head = append(head, f.name)
	}
	rows := [][]string{head}
	repeated := false
	for i := range results {
		r := &results[i]
		row := []string{r.label()}
		if r.Error != "" {
			first, _, multi := strings.Cut(r.Error, "\n")
			if multi {
				first = strings.TrimSuffix(first, ":") + " (below)"
			}
			rows = append(rows, append(row, "failed: "+first))
			continue
		}
		for _, f := range figures {
			row = append(row, strconv.FormatFloat(f.get(r), 'f', f.digits, 64))
		}
		rows = append(rows, row)
		if r.Repeats > 1 {
			repeated = true
			spread := []string{fmt.Sprintf("  min–max of %d runs", r.Repeats)}
			for _, f := range figures {
				lo, hi := r.spread(f)
				spread = append(spread, strconv.FormatFloat(lo, 'f', f.digits, 64)+"–"+strconv.FormatFloat(hi, 'f', f.digits, 64))
			}
			rows = append(rows, spread)
		}
	}
	ratios := Ratios(results)
	for _, rr := range ratios {
		row := []string{ratioPrefix + rr.Label}
		for _, v := range rr.Values {
			row = append(row, formatRatio(v))
		}
		rows = append(rows, row)
		if len(rr.Min) > 0 {
			spread := []string{"  min–max of the runs' ratios"}
			for i := range rr.Min {
				cell := formatRatio(rr.Min[i]) // "–" when undefined
				if cell != "–" {
					cell = strings.TrimSuffix(cell, "×") + "–" + formatRatio(rr.Max[i])
				}
				spread = append(spread, cell)
			}
			rows = append(rows, spread)
		}
	}
	if err := writeAligned(w, rows); err != nil {
		return err
	}
	for i := range results {
		if r := &results[i]; strings.Contains(r.Error, "\n") {
			fmt.Fprintf(w, "%s failed: %s\n", r.label(), r.Error) // the whole error, log tail included
		}
	}
	for i := range results {
		if r := &results[i]; r.Incomplete > 0 {
			what := fmt.Sprintf("%d payloads were", r.Incomplete)
			if r.Incomplete == 1 {
				what = "1 payload was"
			}
			fmt.Fprintf(w, "warning: %s: %s not delivered by every correct node within %v of the window's end\n", r.label(), what, Point{Duration: time.Duration(r.DurationSec * float64(time.Second))}.Drain().Round(time.Second))
		}
	}
	for i := range results {
		if r := &results[i]; r.SendCopyFallback != "" {
			fmt.Fprintf(w, "note: %s: sent payloads copied (tx copies/B): %s\n", r.label(), r.SendCopyFallback)
		}
	}
	if err := writeNotes(w, results); err != nil {
		return err
	}
	if err := writeBudgets(w, results); err != nil {
		return err
	}
	if err := writeLegend(w, len(ratios) > 0, repeated); err != nil {
		return err
	}
	return writeBudgetLegend(w, results)
}

// writeAligned prints rows as columns two spaces apart: the first column
// (the point) left-aligned, the figures right-aligned. A row with fewer
// cells (a failed point) leaves the rest empty.
func writeAligned(w io.Writer, rows [][]string) error {
	var width []int
	for _, row := range rows {
		if len(row) == 2 && strings.HasPrefix(row[1], "failed: ") {
			row = row[:1] // a failure message does not widen the figures' columns
		}
		for i, c := range row {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		b.Reset()
		for i, c := range row {
			pad := 0
			if i < len(width) {
				pad = width[i] - utf8.RuneCountInString(c)
			}
			switch {
			case i == 0:
				b.WriteString(c)
				if len(row) > 1 {
					b.WriteString(strings.Repeat(" ", max(pad, 0)))
				}
			case strings.HasPrefix(c, "failed: "):
				b.WriteString("  " + c)
			default:
				b.WriteString("  " + strings.Repeat(" ", max(pad, 0)) + c)
			}
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// writeLegend explains the table's columns, one line each.
func writeLegend(w io.Writer, ratios, repeated bool) error {
	var b strings.Builder
	b.WriteString("\n")
	width := 0
	for _, f := range figures {
		width = max(width, utf8.RuneCountInString(f.name))
	}
	line := func(name, text string) {
		fmt.Fprintf(&b, "  %s%s  %s\n", name, strings.Repeat(" ", width-utf8.RuneCountInString(name)), text)
	}
	line("point", "protocol, mode, transport/cluster, n nodes, f faults tolerated, payload size, b = payloads per instance")
	for _, f := range figures {
		line(f.name, f.legend)
	}
	if repeated {
		line("min–max", "the smallest and largest value over the runs (--repeat); the row above is the median")
	} else {
		b.WriteString("  One run per point: rates, latencies and CPU move with the machine's load (not the dup and wire factors);\n" +
			"  --repeat 5 gives each figure's median and min–max.\n")
	}
	if ratios {
		line("÷", "digest ÷ full: each figure of the digest-mode point divided by the full-mode one (below 1 is better, but for deliveries/s and MB/s)")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "×"
}

// Ratio is digest ÷ full for every figure of one pair of results.
type Ratio struct {
	Label  string
	Values []float64 // in the order of the table's figures: ratio of the medians
	// Min and Max are the smallest and largest ratio of the runs taken in
	// the same order (the first digest run over the first full run, …),
	// when both points were repeated; nil otherwise.
	Min, Max []float64
}

// Ratios pairs results that differ only by mode and divides digest by full.
func Ratios(results []Result) []Ratio {
	full := map[string]*Result{}
	for i := range results {
		if results[i].Mode == "full" && results[i].Error == "" {
			full[results[i].groupKey()] = &results[i]
		}
	}
	var out []Ratio
	for i := range results {
		d := &results[i]
		if d.Mode != "digest" || d.Error != "" {
			continue
		}
		f, ok := full[d.groupKey()]
		if !ok {
			continue
		}
		rr := Ratio{Label: strings.Replace(d.label(), " digest ", " ", 1)}
		runs := min(d.Repeats, f.Repeats)
		for _, fig := range figures {
			rr.Values = append(rr.Values, fig.get(d)/fig.get(f))
			if runs > 1 && len(d.RepeatValues[fig.name]) >= runs && len(f.RepeatValues[fig.name]) >= runs {
				lo, hi := math.Inf(1), math.Inf(-1)
				for k := range runs {
					v := d.RepeatValues[fig.name][k] / f.RepeatValues[fig.name][k]
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
				rr.Min, rr.Max = append(rr.Min, lo), append(rr.Max, hi)
			}
		}
		if len(rr.Min) != len(figures) {
			rr.Min, rr.Max = nil, nil
		}
		out = append(out, rr)
	}
	return out
}
