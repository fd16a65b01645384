package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
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
	// CopiesPerPayloadByte is user-space payload bytes copied (receive
	// path, flattening, copy-outs) per payload byte delivered.
	CopiesPerPayloadByte float64 `json:"copies_per_payload_byte"`
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
	Incomplete  uint64  `json:"incomplete_payloads"`
	DurationSec float64 `json:"duration_s"`
	// Error says why the point failed, if it did.
	Error string `json:"error,omitempty"`

	// LatencyCDF is (milliseconds, cumulative fraction) pairs.
	LatencyCDF [][2]float64 `json:"latency_cdf,omitempty"`
}

// figure is one numeric column of the table and CSV.
type figure struct {
	name   string
	get    func(*Result) float64
	digits int
	// better says which direction is an improvement, for the ratio column.
	higherIsBetter bool
}

var figures = []figure{
	{"deliveries/s", func(r *Result) float64 { return r.DeliveriesPerSec }, 0, true},
	{"payload MB/s", func(r *Result) float64 { return r.PayloadMBPerSec }, 1, true},
	{"p50 ms", func(r *Result) float64 { return r.LatencyP50Ms }, 2, false},
	{"p99 ms", func(r *Result) float64 { return r.LatencyP99Ms }, 2, false},
	{"dup factor", func(r *Result) float64 { return r.PayloadDupFactor }, 2, false},
	{"wire factor", func(r *Result) float64 { return r.WireFactor }, 2, false},
	{"copies/B", func(r *Result) float64 { return r.CopiesPerPayloadByte }, 2, false},
	{"allocs/deliv", func(r *Result) float64 { return r.AllocsPerDelivery }, 1, false},
	{"cpu µs/deliv", func(r *Result) float64 { return r.CPUMicrosPerDelivery }, 1, false},
	{"rss MB", func(r *Result) float64 { return r.PeakRSSMB }, 1, false},
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
	"payload_dup_factor", "wire_factor", "wire_bytes_per_delivery", "copies_per_payload_byte", "allocs_per_delivery",
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
			f(r.PayloadDupFactor), f(r.WireFactor), f(r.WireBytesPerDelivery), f(r.CopiesPerPayloadByte), f(r.AllocsPerDelivery),
			f(r.CPUMicrosPerDelivery), f(r.PeakRSSMB), strconv.FormatUint(r.Retransmissions, 10),
			strconv.FormatUint(r.Deliveries, 10), strconv.FormatUint(r.Incomplete, 10), f(r.DurationSec), r.Error}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes results as an aligned text table, followed by the ratio
// digest ÷ full of every figure for each pair of results that differ only by
// mode.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"point"}
	for _, f := range figures {
		head = append(head, f.name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for i := range results {
		r := &results[i]
		row := []string{r.label()}
		if r.Error != "" {
			row = append(row, "failed: "+r.Error)
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
			continue
		}
		for _, f := range figures {
			row = append(row, strconv.FormatFloat(f.get(r), 'f', f.digits, 64))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	for i := range results {
		if r := &results[i]; r.Incomplete > 0 {
			fmt.Fprintf(tw, "  warning: %s: %d payloads were not delivered by every correct node\t\n", r.label(), r.Incomplete)
		}
	}
	ratios := Ratios(results)
	if len(ratios) > 0 {
		fmt.Fprintln(tw, "\t")
		fmt.Fprintln(tw, "digest ÷ full\t")
		for _, rr := range ratios {
			row := []string{rr.Label}
			for _, v := range rr.Values {
				row = append(row, formatRatio(v))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	return tw.Flush()
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
	Values []float64 // in the order of the table's figures
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
		for _, fig := range figures {
			rr.Values = append(rr.Values, fig.get(d)/fig.get(f))
		}
		out = append(out, rr)
	}
	return out
}
