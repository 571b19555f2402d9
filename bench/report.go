package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Machine is where a benchmark ran: a ratio means little without it.
type Machine struct {
	CPUs      int     `json:"cpus"`
	CPUModel  string  `json:"cpu_model,omitempty"`
	MemoryGB  float64 `json:"memory_gb"`
	GoVersion string  `json:"go_version"`
	Kernel    string  `json:"kernel,omitempty"`
	// LoadAverage is the 1-minute load average when the run started and
	// ended: the machine is shared, and a busy one slows both modes.
	LoadStart float64 `json:"load_avg_start"`
	LoadEnd   float64 `json:"load_avg_end"`
	Date      string  `json:"date"`
	Command   string  `json:"command"`
}

// String is the machine in one line.
func (m Machine) String() string {
	s := fmt.Sprintf("%d CPUs", m.CPUs)
	if m.CPUModel != "" {
		s += " (" + m.CPUModel + ")"
	}
	return s + fmt.Sprintf(", %.0f GB memory, %s, %s; load average %.1f at start, %.1f at end",
		m.MemoryGB, m.GoVersion, m.Kernel, m.LoadStart, m.LoadEnd)
}

// TargetResult is one target of a row and whether the medians meet it;
// Met is nil when the run could not tell (a mode not measured).
type TargetResult struct {
	Text string `json:"target"`
	Met  *bool  `json:"met"`
	// Got is the measured figure checked (see Target.Got).
	Got string `json:"got,omitempty"`
}

// verdictText is the target's text and, when known, the figure checked.
func (t TargetResult) verdictText() string {
	if t.Got == "" {
		return t.Text
	}
	return t.Text + " — " + t.Got
}

// Row is one measured quantity of one scenario, both modes side by side.
// Every number is a median over the rounds; nil (null in JSON) means not
// measured.
type Row struct {
	ID       string   `json:"id"`
	Scenario string   `json:"scenario"`
	Unit     string   `json:"unit"`
	Quartet  *float64 `json:"quartet"`
	Upstream *float64 `json:"upstream"`
	// Ratio is quartet/upstream: below 1 quartet is faster (or smaller).
	Ratio               *float64 `json:"ratio"`
	APIRequestsQuartet  *float64 `json:"api_requests_quartet"`
	APIRequestsUpstream *float64 `json:"api_requests_upstream"`
	APIRequestsRatio    *float64 `json:"api_requests_ratio"`
	CPUSecondsQuartet   *float64 `json:"cpu_seconds_quartet"`
	CPUSecondsUpstream  *float64 `json:"cpu_seconds_upstream"`
	// Ceiling is the median time a bare client took to create the same
	// number of pods in the same clusters; CeilingFraction is Ceiling over
	// quartet's median (1 is the ceiling itself).
	Ceiling                 *float64       `json:"ceiling,omitempty"`
	CeilingFraction         *float64       `json:"ceiling_fraction"`
	CeilingFractionUpstream *float64       `json:"ceiling_fraction_upstream,omitempty"`
	Rounds                  int            `json:"rounds"`
	SamplesQuartet          []float64      `json:"samples_quartet,omitempty"`
	SamplesUpstream         []float64      `json:"samples_upstream,omitempty"`
	Targets                 []TargetResult `json:"targets,omitempty"`
	Note                    string         `json:"note,omitempty"`
	Errors                  []string       `json:"errors,omitempty"`
	Machine                 Machine        `json:"machine"`
	Extra                   map[string]any `json:"extra,omitempty"`
	// Breakdown, on the first row of a scenario that asks for one, is
	// where its CPU and API writes went.
	Breakdown *Breakdown `json:"breakdown,omitempty"`
}

// num turns NaN into nil, so that JSON says null instead of failing.
func num(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

func val(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// WriteJSON writes rows as an indented JSON array.
func WriteJSON(path string, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	b, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// formatNum prints a measurement with about three significant digits.
func formatNum(p *float64) string {
	if p == nil {
		return "-"
	}
	x := *p
	switch a := math.Abs(x); {
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		return fmt.Sprintf("%.1f", x)
	case a >= 1:
		return fmt.Sprintf("%.2f", x)
	default:
		return fmt.Sprintf("%.3f", x)
	}
}

func formatRatio(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *p)
}

func formatCount(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f", *p)
}

func formatPercent(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", *p*100)
}

var tableHeader = []string{"scenario", "unit", "quartet", "upstream", "ratio",
	"API req q", "API req u", "API ratio", "CPU s q", "CPU s u", "ceiling"}

func tableCells(r Row) []string {
	return []string{r.Scenario, r.Unit, formatNum(r.Quartet), formatNum(r.Upstream), formatRatio(r.Ratio),
		formatCount(r.APIRequestsQuartet), formatCount(r.APIRequestsUpstream), formatRatio(r.APIRequestsRatio),
		formatNum(r.CPUSecondsQuartet), formatNum(r.CPUSecondsUpstream), formatPercent(r.CeilingFraction)}
}

// RenderTable prints rows as an aligned text table, then each target and
// whether it was met.
func RenderTable(w io.Writer, rows []Row) {
	cells := [][]string{tableHeader}
	for _, r := range rows {
		cells = append(cells, tableCells(r))
	}
	widths := make([]int, len(tableHeader))
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for n, row := range cells {
		var b strings.Builder
		for i, c := range row {
			pad := widths[i] - len([]rune(c))
			if i == 0 || i == 1 {
				b.WriteString(c + strings.Repeat(" ", pad))
			} else {
				b.WriteString(strings.Repeat(" ", pad) + c)
			}
			if i < len(row)-1 {
				b.WriteString("  ")
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if n == 0 {
			total := len(widths)*2 - 2
			for _, wd := range widths {
				total += wd
			}
			fmt.Fprintln(w, strings.Repeat("-", total))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ratio = quartet/upstream (lower is better); API req = requests by the workload controllers' identities;")
	fmt.Fprintln(w, "CPU s = CPU seconds of the workload controllers' goroutines; ceiling = bare-client pod creation time / quartet's.")
	RenderTargets(w, rows)
	RenderBreakdowns(w, rows)
	renderErrors(w, rows, "  ")
}

// renderErrors lists the failed runs, once per scenario, each line
// starting with prefix.
func renderErrors(w io.Writer, rows []Row, prefix string) {
	seen := map[string]bool{}
	first := true
	for _, r := range rows {
		scenario, _, _ := strings.Cut(r.ID, "/")
		if seen[scenario] {
			continue
		}
		seen[scenario] = true
		for _, e := range r.Errors {
			if first {
				fmt.Fprintln(w, "\nruns with errors (what a run did not measure is left out of the medians; what it measured counts):")
				first = false
			}
			fmt.Fprintf(w, "%s%s: %s\n", prefix, scenario, e)
		}
	}
}

// TargetCounts counts the rows' targets that were met, missed and not
// measured.
func TargetCounts(rows []Row) (met, missed, unmeasured int) {
	for _, r := range rows {
		for _, t := range r.Targets {
			switch {
			case t.Met == nil:
				unmeasured++
			case *t.Met:
				met++
			default:
				missed++
			}
		}
	}
	return met, missed, unmeasured
}

func targetSummary(rows []Row) string {
	met, missed, unmeasured := TargetCounts(rows)
	return fmt.Sprintf("%d targets: %d met, %d missed, %d not measured", met+missed+unmeasured, met, missed, unmeasured)
}

// RenderTargets lists every target with met, missed or not measured, then
// how many of each.
func RenderTargets(w io.Writer, rows []Row) {
	first := true
	for _, r := range rows {
		for _, t := range r.Targets {
			if first {
				fmt.Fprintln(w, "\ntargets:")
				first = false
			}
			mark := "n/a   "
			if t.Met != nil {
				if *t.Met {
					mark = "met   "
				} else {
					mark = "MISSED"
				}
			}
			fmt.Fprintf(w, "  %s  %s: %s\n", mark, r.Scenario, t.verdictText())
		}
	}
	if !first {
		fmt.Fprintf(w, "  %s\n", targetSummary(rows))
	}
}

// RenderMarkdown prints rows as a Markdown table, for the README and docs.
func RenderMarkdown(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| "+strings.Join(tableHeader, " | ")+" |")
	seps := make([]string, len(tableHeader))
	for i := range seps {
		seps[i] = "---:"
		if i < 2 {
			seps[i] = "---"
		}
	}
	fmt.Fprintln(w, "|"+strings.Join(seps, "|")+"|")
	for _, r := range rows {
		c := tableCells(r)
		for i := range c {
			c[i] = strings.ReplaceAll(c[i], "|", `\|`)
		}
		fmt.Fprintln(w, "| "+strings.Join(c, " | ")+" |")
	}
}

// RenderTargetsMarkdown lists the targets as a Markdown list.
func RenderTargetsMarkdown(w io.Writer, rows []Row) {
	for _, r := range rows {
		for _, t := range r.Targets {
			mark := "not measured"
			if t.Met != nil {
				mark = "met"
				if !*t.Met {
					mark = "**missed**"
				}
			}
			fmt.Fprintf(w, "- %s: %s: %s\n", mark, r.Scenario, t.verdictText())
		}
	}
	if met, missed, unmeasured := TargetCounts(rows); met+missed+unmeasured > 0 {
		fmt.Fprintf(w, "\n%s.\n", targetSummary(rows))
	}
	renderErrors(w, rows, "- ")
}
