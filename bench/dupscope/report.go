package dupscope

import (
	"fmt"
	"io"
	"text/tabwriter"
)

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// WriteText writes the report for a terminal: totals, the flows (at most
// maxFlows, 0 for all) and the known values' summary.
func (r *Report) WriteText(w io.Writer, maxFlows int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "packets\t%d (decoded %d, malformed %d) over %v\n", r.Packets, r.Decoded, r.Malformed, r.Duration)
	fmt.Fprintf(tw, "stream bytes\t%d in %d flow directions\n", r.TotalBytes, len(r.Flows))
	fmt.Fprintf(tw, "fingerprinted\t%d bytes in %d chunks (FastCDC min %d, avg %d, max %d)\n", r.ChunkedBytes, r.Chunks, r.CDC.Min, r.CDC.Avg, r.CDC.Max)
	fmt.Fprintf(tw, "first seen\t%d bytes\n", r.FirstSeenBytes)
	fmt.Fprintf(tw, "repeated\t%d bytes (%.1f%% of fingerprinted) in %d chunks\n", r.RepeatedBytes, pct(r.RepeatedBytes, r.ChunkedBytes), r.RepeatedChunks)
	fmt.Fprintf(tw, "repeat gap\tp50 %v  p90 %v  p99 %v  max %v  (n=%d)\n", r.RepeatGap.P50, r.RepeatGap.P90, r.RepeatGap.P99, r.RepeatGap.Max, r.RepeatGap.Count)
	fmt.Fprintf(tw, "identical packets\t%d (%d bytes; retransmissions included)\n", r.PacketRepeats, r.PacketRepeatBytes)
	if len(r.Known) > 0 {
		copies, repeats, unseen := 0, 0, 0
		for _, k := range r.Known {
			copies += k.Copies
			repeats += k.Repeats
			if k.Copies == 0 {
				unseen++
			}
		}
		fmt.Fprintf(tw, "known values\t%d values, %d bytes; %d copies on the wire (%d repeats), %d bytes; factor %.2f; %d never seen\n",
			len(r.Known), r.KnownBytes, copies, repeats, r.KnownWireBytes, r.KnownFactor, unseen)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "flow\tbytes\trepeated\trep %\tin-flow\tknown copies\tknown repeats\tpackets\t")
	for i, f := range r.Flows {
		if maxFlows > 0 && i >= maxFlows {
			fmt.Fprintf(tw, "… %d more\t\t\t\t\t\t\t\t\n", len(r.Flows)-maxFlows)
			break
		}
		fmt.Fprintf(tw, "%s %s\t%d\t%d\t%.1f\t%d\t%d\t%d\t%d\t\n", f.Key.Transport, f.Label, f.Bytes, f.RepeatedBytes,
			pct(f.RepeatedBytes, f.Bytes), f.RepeatedInFlow, f.KnownCopies, f.KnownRepeats, f.Packets)
	}
	return tw.Flush()
}
