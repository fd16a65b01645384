package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// budgetColumn is one column of the resource-budget table, printed under
// the main table when a point has Byzantine nodes: what the correct nodes'
// quotas refused while a Byzantine peer attacked them.
type budgetColumn struct {
	name   string
	get    func(*Result) string
	legend string
}

func uintCell(v uint64) string { return strconv.FormatUint(v, 10) }

var budgetColumns = []budgetColumn{
	{"deliveries/s", func(r *Result) string { return strconv.FormatFloat(r.DeliveriesPerSec, 'f', 0, 64) }, ""},
	{"× fault-free", func(r *Result) string { return "" }, // filled in by writeBudgets
		"deliveries/s ÷ those of the point without Byzantine nodes in the same run (acceptance: ≥ 0.5)"},
	{"rss MB", func(r *Result) string { return strconv.FormatFloat(r.PeakRSSMB, 'f', 1, 64) },
		"as above; netns and inproc clusters run every node (the Byzantine one too) in the bench process: its peak RSS"},
	{"min free", func(r *Result) string {
		if r.Refusals.MinFreeFrames < 0 {
			return "–"
		}
		return strconv.Itoa(r.Refusals.MinFreeFrames)
	}, "fewest free receive frames (UDP pool or AF_XDP UMEM) of any correct node, sampled every 10 ms"},
	{"quota drops", func(r *Result) string { return uintCell(r.Refusals.LinkQuotaDrops) },
		"frames the link dropped because their peer held its reorder-window quota (the peer resends)"},
	{"rate held", func(r *Result) string { return uintCell(r.Refusals.RateDeferred) },
		"frames the link held back, before decoding or verifying them, because their peer had used its receive rate (its window closes)"},
	{"partials exp", func(r *Result) string { return uintCell(r.Refusals.PartialsExpired) },
		"partly received messages the link dropped after PartialTimeout without progress"},
	{"heap reasm", func(r *Result) string { return uintCell(r.Refusals.HeapReassembled) },
		"messages larger than half a peer's frame quota, received into a heap buffer"},
	{"link rejected", func(r *Result) string { return uintCell(r.Refusals.LinkRejected) },
		"frames the link refused as malformed"},
	{"fetch refused", func(r *Result) string { return uintCell(r.Refusals.FetchRefused) },
		"fetches refused for the asker's answer budget (PBFT FetchRefused, Bracha ServeDenied)"},
	{"future stripped", func(r *Result) string { return uintCell(r.Refusals.FutureStripped) },
		"PBFT PRE-PREPAREs of future views kept without their payload (FutureQuota)"},
	{"held evictions", func(r *Result) string { return uintCell(r.Refusals.HeldQuotaEvictions) },
		"digests the AF_XDP held map pushed out at their supplier's quota"},
	{"store refusals", func(r *Result) string { return uintCell(r.Refusals.StoreQuotaRefusals) },
		"payloads the store refused or evicted at their sender's quota"},
}

// hasByzantine reports whether a result has Byzantine nodes.
func hasByzantine(results []Result) bool {
	for i := range results {
		if results[i].Byzantine != "" {
			return true
		}
	}
	return false
}

// faultFree returns the result that is r without Byzantine nodes, if the
// run has one.
func faultFree(results []Result, r *Result) *Result {
	for i := range results {
		o := &results[i]
		if o.Byzantine == "" && o.Error == "" && o.Protocol == r.Protocol && o.Mode == r.Mode && o.Transport == r.Transport &&
			o.Cluster == r.Cluster && o.N == r.N && o.F == r.F && o.PayloadBytes == r.PayloadBytes && o.Batch == r.Batch {
			return o
		}
	}
	return nil
}

// writeBudgets writes the resource-budget table, summed over the correct
// nodes of each point, when a point has Byzantine nodes.
func writeBudgets(w io.Writer, results []Result) error {
	if !hasByzantine(results) {
		return nil
	}
	head := []string{"resource budgets (correct nodes)"}
	for _, c := range budgetColumns {
		head = append(head, c.name)
	}
	rows := [][]string{head}
	for i := range results {
		r := &results[i]
		if r.Error != "" {
			continue
		}
		row := []string{r.label()}
		for _, c := range budgetColumns {
			cell := c.get(r)
			if c.name == "× fault-free" {
				cell = "–"
				if ff := faultFree(results, r); ff != nil && ff.DeliveriesPerSec > 0 {
					cell = strconv.FormatFloat(r.DeliveriesPerSec/ff.DeliveriesPerSec, 'f', 2, 64)
				}
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	return writeAligned(w, rows)
}

// writeBudgetLegend explains the resource-budget table's columns.
func writeBudgetLegend(w io.Writer, results []Result) error {
	if !hasByzantine(results) {
		return nil
	}
	width := 0
	for _, c := range budgetColumns {
		width = max(width, utf8.RuneCountInString(c.name))
	}
	var b strings.Builder
	b.WriteString("  Resource budgets, summed over the correct nodes of the point (issue 18: no Byzantine peer stalls or bloats them):\n")
	for _, c := range budgetColumns {
		if c.legend != "" {
			fmt.Fprintf(&b, "  %s%s  %s\n", c.name, strings.Repeat(" ", width-utf8.RuneCountInString(c.name)), c.legend)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
