package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/onecast/onecast/bench/dupscope"
)

func dupscopeCommand() command {
	return command{
		name:    "dupscope",
		summary: "report duplicated content in a pcap/pcapng capture of any system",
		run:     runDupscope,
	}
}

func runDupscope(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dupscope", flag.ContinueOnError)
	fs.SetOutput(stderr)
	known := fs.String("known", "", "file of known values, one per line (plain text, or hex:… / b64:… for bytes)")
	flows := fs.Int("flows", 20, "flow directions to list (0: all)")
	values := fs.Int("values", 20, "known values to list, most copied first (0: all)")
	cmin := fs.Int("cdc-min", dupscope.DefaultCDC.Min, "content-defined chunking: minimum chunk bytes")
	cavg := fs.Int("cdc-avg", dupscope.DefaultCDC.Avg, "content-defined chunking: average chunk bytes")
	cmax := fs.Int("cdc-max", dupscope.DefaultCDC.Max, "content-defined chunking: maximum chunk bytes")
	asJSON := fs.Bool("json", false, "print the whole report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: onecast dupscope [flags] capture.pcap[ng]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: want one capture file", errUsage)
	}
	opts := dupscope.Options{CDC: dupscope.CDC{Min: *cmin, Avg: *cavg, Max: *cmax}}
	if *known != "" {
		v, err := readKnownValues(*known)
		if err != nil {
			return err
		}
		opts.Known = v
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	defer f.Close()
	rep, err := dupscope.Analyse(f, opts)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if err := rep.WriteText(stdout, *flows); err != nil {
		return err
	}
	if len(rep.Known) == 0 {
		return nil
	}
	ks := append([]dupscope.KnownReport(nil), rep.Known...)
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].Copies > ks[j].Copies })
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "value #\tbytes\tsha256\tcopies\trepeats\tflows\t")
	for i, k := range ks {
		if *values > 0 && i == *values {
			fmt.Fprintf(tw, "… %d more\t\t\t\t\t\t\n", len(ks)-i)
			break
		}
		fmt.Fprintf(tw, "%d\t%d\t%x\t%d\t%d\t%d\t\n", k.Index+1, k.Len, k.Digest, k.Copies, k.Repeats, k.Flows)
	}
	return tw.Flush()
}

// readKnownValues reads one value per line: plain text, or "hex:" / "b64:"
// followed by the encoded bytes. Empty lines are skipped.
func readKnownValues(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("known values: %w", err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		s := sc.Text()
		var v []byte
		switch {
		case s == "":
			continue
		case strings.HasPrefix(s, "hex:"):
			v, err = hex.DecodeString(strings.TrimSpace(s[4:]))
		case strings.HasPrefix(s, "b64:"):
			v, err = base64.StdEncoding.DecodeString(strings.TrimSpace(s[4:]))
		default:
			v = []byte(s)
		}
		if err != nil {
			return nil, fmt.Errorf("known values %s:%d: %w", path, line, err)
		}
		if len(v) > 0 {
			out = append(out, v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("known values %s: %w", path, err)
	}
	return out, nil
}
