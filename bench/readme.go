package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// The README's performance table lies between these two lines; `make bench`
// and `make bench-readme` rewrite what is between them (UpdateReadme).
const (
	ReadmeBegin = "<!-- bench results: begin (written by `make bench` and `make bench-readme` from bench/results/latest.json; do not edit) -->"
	ReadmeEnd   = "<!-- bench results: end -->"
)

var readmeHeader = []string{"scenario", "unit", "quartet", "upstream", "ratio", "API requests q / u", "ceiling"}

// RenderReadme writes the README's section for a run's rows: the machine,
// the table, and the targets that were missed.
func RenderReadme(w io.Writer, rows []Row) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "No full run yet.")
		return
	}
	m := rows[0].Machine
	date := m.Date
	if len(date) >= 10 {
		date = date[:10]
	}
	charts := "[chart](bench/results/latest.png)"
	if HasBreakdowns(rows) {
		charts += ", [CPU per pod by component](bench/results/latest-breakdown.png)"
	}
	fmt.Fprintf(w, "The latest full run, %s, command `%s`, on %s ([bench/results/latest.md](bench/results/latest.md), "+
		"%s):\n\n", date, m.Command, m, charts)
	fmt.Fprintln(w, "| "+strings.Join(readmeHeader, " | ")+" |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		api := "-"
		if r.APIRequestsQuartet != nil || r.APIRequestsUpstream != nil {
			api = formatCount(r.APIRequestsQuartet) + " / " + formatCount(r.APIRequestsUpstream)
		}
		cells := []string{markdownText(r.Scenario), r.Unit, formatNum(r.Quartet), formatNum(r.Upstream), formatRatio(r.Ratio),
			api, formatPercent(r.CeilingFraction)}
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
	fmt.Fprintf(w, "\n%s (every issue's targets, checked on these medians).", targetSummary(rows))
	var missed []string
	for _, r := range rows {
		for _, t := range r.Targets {
			if t.Met != nil && !*t.Met {
				missed = append(missed, fmt.Sprintf("- %s: %s", markdownText(r.Scenario), markdownText(t.verdictText())))
			}
		}
	}
	if len(missed) > 0 {
		fmt.Fprintf(w, " Missed, with the measured reasons in [docs/benchmarks.md](docs/benchmarks.md#missed-targets-and-why):\n\n%s\n",
			strings.Join(missed, "\n"))
	} else {
		fmt.Fprintln(w)
	}
}

// markdownText escapes what Markdown would read as markup in a table cell.
func markdownText(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`).Replace(s)
}

// ReplaceReadme returns doc with what lies between ReadmeBegin and
// ReadmeEnd replaced by the rows' section.
func ReplaceReadme(doc []byte, rows []Row) ([]byte, error) {
	begin := bytes.Index(doc, []byte(ReadmeBegin))
	end := bytes.Index(doc, []byte(ReadmeEnd))
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("no %q line followed by %q", ReadmeBegin, ReadmeEnd)
	}
	var b bytes.Buffer
	b.Write(doc[:begin+len(ReadmeBegin)])
	b.WriteString("\n")
	RenderReadme(&b, rows)
	b.Write(doc[end:])
	return b.Bytes(), nil
}

// UpdateReadme rewrites the section of the README at path from rows.
func UpdateReadme(path string, rows []Row) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := ReplaceReadme(doc, rows)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

// ReadJSON reads rows that WriteJSON wrote.
func ReadJSON(path string) ([]Row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []Row
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}
