package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result says how a figure compares with its target.
type Result string

// Results of a figure.
const (
	Pass Result = "pass"
	Fail Result = "FAIL"
	Info Result = ""     // no target
	Open Result = "open" // bounds that straddle the target, or a pass the run cannot vouch for
	// NotAt10M is a read target set at 10 million deployments of history,
	// on a run without that history: the figure is shown, not judged.
	NotAt10M Result = "not at 10m"
)

// Figure is one measured figure of a run.
type Figure struct {
	Name  string  `json:"name"`
	Scale string  `json:"scale,omitempty"` // the history it was measured on
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Target is the figure's target in words, "" for none.
	Target string `json:"target,omitempty"`
	// Ratio is the figure over the limit's single-row transactions per
	// second (writes, and rows of the larger transactions); 0 for none.
	Ratio  float64 `json:"ratio,omitempty"`
	Result Result  `json:"result,omitempty"`
	Note   string  `json:"note,omitempty"`
}

// Report is a whole run.
type Report struct {
	Command string         `json:"command"`
	Started time.Time      `json:"started"`
	Seconds float64        `json:"seconds"`
	Machine Machine        `json:"machine"`
	Figures []Figure       `json:"figures"`
	Limits  []Limit        `json:"limits"`
	Scales  []*ScaleResult `json:"scales"`
	Notes   []string       `json:"notes,omitempty"`
}

// add appends a figure.
func (r *Report) add(f Figure) { r.Figures = append(r.Figures, f) }

// formatValue writes v with the precision its size calls for.
func formatValue(v float64, unit string) string {
	var s string
	switch a := math.Abs(v); {
	case a == 0:
		s = "0"
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	if a := math.Abs(v); a >= 10000 {
		s = thousands(s)
	}
	return s + " " + unit
}

// thousands puts commas in an integer's digits.
func thousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// WriteTable writes the machine and the figures as a table.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "DeployDB benchmark, %s (%s)\n", r.Started.UTC().Format(time.RFC3339), r.Command)
	fmt.Fprintf(w, "machine: %s, %d cores, %d MB memory, %s, Linux %s\n", m.CPU, m.Cores, m.MemoryMB, m.Go, m.Kernel)
	fmt.Fprintf(w, "databases in %s: %s\n", m.Dir, m.FS)
	fmt.Fprintf(w, "revision %s; load average %s at the start, %s at the end\n\n", m.Revision, m.LoadStart, m.LoadEnd)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\thistory\tvalue\ttarget\tratio\tresult")
	for _, f := range r.Figures {
		ratio := ""
		if f.Ratio != 0 {
			ratio = strconv.FormatFloat(f.Ratio, 'f', 2, 64) + "×"
		}
		target := f.Target
		if target == "" {
			target = "-"
		}
		res := string(f.Result)
		if res == "" {
			res = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, orDash(f.Scale), formatValue(f.Value, f.Unit), target, ratio, res)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	notes := r.Notes
	for _, f := range r.Figures {
		if f.Note != "" {
			notes = append(notes, f.Name+scaleSuffix(f.Scale)+": "+f.Note)
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func scaleSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// WriteMarkdown writes the machine and the figures as Markdown, for
// BENCHMARKS.md: one table per history, the figures without one first.
func (r *Report) WriteMarkdown(w io.Writer) error {
	m := r.Machine
	var b strings.Builder
	fmt.Fprintf(&b, "`%s`, %s, revision %s\n\n", r.Command, r.Started.UTC().Format(time.RFC3339), m.Revision)
	fmt.Fprintf(&b, "Machine: %s, %d cores, %d MB, %s, Linux %s; databases on %s. Load average %s at the start, %s at the end.\n",
		m.CPU, m.Cores, m.MemoryMB, m.Go, m.Kernel, m.FS, m.LoadStart, m.LoadEnd)
	var scales []string
	seen := map[string]bool{}
	for _, f := range r.Figures {
		if !seen[f.Scale] {
			seen[f.Scale] = true
			scales = append(scales, f.Scale)
		}
	}
	for _, sc := range scales {
		title := "The limit"
		if sc != "" {
			title = "History " + sc
		}
		fmt.Fprintf(&b, "\n%s:\n\n| figure | value | target | ratio | result |\n|---|---|---|---|---|\n", title)
		for _, f := range r.Figures {
			if f.Scale != sc {
				continue
			}
			ratio := ""
			if f.Ratio != 0 {
				ratio = strconv.FormatFloat(f.Ratio, 'f', 2, 64) + "×"
			}
			res := string(f.Result)
			if f.Result == Fail {
				res = "**FAIL**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", strings.ReplaceAll(f.Name, "|", "\\|"), formatValue(f.Value, f.Unit), f.Target, ratio, res)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as JSON to path, making its directory.
func (r *Report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
