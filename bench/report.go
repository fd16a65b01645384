package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Report is everything one run produced.
type Report struct {
	Env     Environment `json:"environment"`
	Results []Result    `json:"results"`
	// Interrupted says the run was stopped before every point finished.
	Interrupted bool `json:"interrupted,omitempty"`
}

// WriteDir writes results.json, results.csv, report.md and the plots into
// dir, creating it. It returns the paths written.
func (r *Report) WriteDir(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	var written []string
	write := func(name string, fill func(io.Writer) error) error {
		var buf bytes.Buffer
		if err := fill(&buf); err != nil {
			return fmt.Errorf("render %s: %w", name, err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		written = append(written, path)
		return nil
	}
	if err := write("results.json", func(w io.Writer) error { return writeReportJSON(w, r) }); err != nil {
		return written, err
	}
	if err := write("results.csv", func(w io.Writer) error { return WriteCSV(w, r.Results) }); err != nil {
		return written, err
	}
	plots, err := WritePlots(dir, r.Results)
	if err != nil {
		return written, err
	}
	for _, p := range plots {
		written = append(written, filepath.Join(dir, p.File))
	}
	if err := write("report.md", func(w io.Writer) error { return r.WriteMarkdown(w, plots) }); err != nil {
		return written, err
	}
	return written, nil
}

func writeReportJSON(w io.Writer, r *Report) error {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r.Results); err != nil {
		return err
	}
	envJSON, err := jsonIndent(r.Env)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "{\n  \"environment\": %s,\n  \"interrupted\": %t,\n  \"results\": %s}\n",
		strings.ReplaceAll(envJSON, "\n", "\n  "), r.Interrupted, strings.ReplaceAll(strings.TrimSpace(buf.String()), "\n", "\n  "))
	return err
}

// WriteMarkdown writes the report as Markdown: environment, results table,
// digest ÷ full ratios, and the plots.
func (r *Report) WriteMarkdown(w io.Writer, plots []Plot) error {
	e := r.Env
	fmt.Fprintf(w, "# onecast bench report\n\n")
	fmt.Fprintf(w, "Command: `onecast %s`\n\n", strings.Join(e.Args, " "))
	dirty := ""
	if e.Dirty {
		dirty = " (with uncommitted changes)"
	}
	fmt.Fprintf(w, "| | |\n|---|---|\n| commit | `%s`%s |\n| started | %s |\n| Go | %s |\n| kernel | %s |\n| CPU | %s, %d cores |\n| memory | %.0f GiB |\n\n",
		e.Commit, dirty, e.Started.Format("2006-01-02 15:04:05 UTC"), e.GoVersion, e.Kernel, e.CPU, e.Cores, e.MemoryGiB)
	if r.Interrupted {
		fmt.Fprintf(w, "**The run was interrupted; the results below are the points that finished.**\n\n")
	}
	fmt.Fprintf(w, "## Results\n\n")
	fmt.Fprintf(w, "Deliveries/s and MB/s are per correct node; latency runs from submit at the origin to delivery at each correct node; "+
		"the duplication factor is payload bytes received ÷ payload bytes delivered from other nodes (1.00 is the limit), "+
		"the wire factor all message bytes received ÷ the same.\n\n")
	head := []string{"point"}
	for _, f := range figures {
		head = append(head, f.name)
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for i := range r.Results {
		res := &r.Results[i]
		row := []string{res.label()}
		if res.Error != "" {
			row = append(row, "failed: "+res.Error)
		} else {
			for _, f := range figures {
				row = append(row, strconv.FormatFloat(f.get(res), 'f', f.digits, 64))
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	if ratios := Ratios(r.Results); len(ratios) > 0 {
		fmt.Fprintf(w, "\n## Digest ÷ full\n\n| point | %s |\n|%s\n", strings.Join(head[1:], " | "), strings.Repeat("---|", len(head)))
		for _, rr := range ratios {
			row := []string{rr.Label}
			for _, v := range rr.Values {
				row = append(row, formatRatio(v))
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
	}
	if notes := tableNotes(r.Results); len(notes) > 0 {
		fmt.Fprintf(w, "\n## Notes\n\n")
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
	fmt.Fprintf(w, "\nColumns:\n\n")
	for _, f := range figures {
		fmt.Fprintf(w, "- **%s**: %s\n", f.name, f.legend)
	}
	if len(plots) > 0 {
		fmt.Fprintf(w, "\n## Plots\n\n")
		for _, p := range plots {
			fmt.Fprintf(w, "![%s](%s)\n\n%s\n\n", p.File, p.File, p.Caption)
		}
	}
	return nil
}

func jsonIndent(v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return string(b), err
}
