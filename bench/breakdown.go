package bench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// Breakdown is where one scenario's work went in each mode: the quartet
// process's CPU seconds by component and the API writes per pod by
// identity, medians over the rounds. Both modes run the same apiserver,
// etcd, scheduler and node agents, so a difference outside the workload
// controllers' lines is load the controllers caused elsewhere (or noise).
type Breakdown struct {
	// Pods is what the writes are divided by.
	Pods int `json:"pods"`
	// CPUSeconds is, per mode, each component's median CPU seconds in the
	// measured window.
	CPUSeconds map[Mode]map[string]float64 `json:"cpu_seconds"`
	// WritesPerPod is, per mode, each identity's median writes (create,
	// update, patch, delete) in the scenario's namespace or cluster-scoped,
	// divided by Pods.
	WritesPerPod map[Mode]map[string]float64 `json:"writes_per_pod"`
	// WorkloadCPU is, per mode, the workload controllers' median CPU
	// seconds by part (informers, event handlers, API requests, syncs).
	WorkloadCPU map[Mode]map[string]float64 `json:"workload_cpu,omitempty"`
}

// MakeBreakdown takes the medians of runs; nil when no run measured any.
func MakeBreakdown(pods int, runs map[Mode][]Run) *Breakdown {
	b := &Breakdown{Pods: pods, CPUSeconds: map[Mode]map[string]float64{}, WritesPerPod: map[Mode]map[string]float64{},
		WorkloadCPU: map[Mode]map[string]float64{}}
	measured := false
	for mode, rs := range runs {
		cpu := medians(rs, func(r Run) map[string]float64 { return r.CPUByComponent })
		writes := medians(rs, func(r Run) map[string]float64 { return r.Writes })
		for k := range writes {
			writes[k] /= float64(max(pods, 1))
		}
		if len(cpu) > 0 {
			b.CPUSeconds[mode], measured = cpu, true
		}
		if len(writes) > 0 {
			b.WritesPerPod[mode], measured = writes, true
		}
		if parts := medians(rs, func(r Run) map[string]float64 { return r.CPUWorkloadParts }); len(parts) > 0 {
			b.WorkloadCPU[mode] = parts
		}
	}
	if !measured {
		return nil
	}
	return b
}

// medians is, for every key any run's map has, the median over the runs
// that measured a map (a key missing from one counts as 0 there).
func medians(rs []Run, get func(Run) map[string]float64) map[string]float64 {
	var maps []map[string]float64
	keys := map[string]bool{}
	for _, r := range rs {
		if m := get(r); m != nil {
			maps = append(maps, m)
			for k := range m {
				keys[k] = true
			}
		}
	}
	out := map[string]float64{}
	for k := range keys {
		xs := make([]float64, len(maps))
		for i, m := range maps {
			xs[i] = m[k]
		}
		if v := Median(xs); !math.IsNaN(v) {
			out[k] = v
		}
	}
	return out
}

// breakdownLines are a breakdown's three tables as rows of cells: one row
// per component, identity or part, largest first, then their sum.
func breakdownLines(b *Breakdown) (cpu, writes, parts [][]string) {
	table := func(by map[Mode]map[string]float64, format string) [][]string {
		total := map[string]float64{}
		for _, m := range by {
			for k, v := range m {
				total[k] += v
			}
		}
		keys := largestFirst(total)
		var rows [][]string
		sums := map[Mode]float64{}
		for _, k := range keys {
			row := []string{k}
			for _, mode := range []Mode{ModeQuartet, ModeUpstream} {
				row = append(row, cell(by[mode], k, format))
				sums[mode] += by[mode][k]
			}
			rows = append(rows, row)
		}
		row := []string{"all"}
		for _, mode := range []Mode{ModeQuartet, ModeUpstream} {
			row = append(row, cell(map[string]float64{"": sums[mode]}, "", format))
		}
		return append(rows, row)
	}
	return table(b.CPUSeconds, "%.2f"), table(nodeAgentsTogether(b.WritesPerPod), "%.2f"), table(b.WorkloadCPU, "%.2f")
}

// nodeAgentPrefix begins every node agent's identity (system:node:<name>).
const nodeAgentPrefix = "system:node:"

// nodeAgentsTogether sums the node agents' identities into one row (with
// 500 nodes, 500 rows of 0.00 said nothing); the JSON keeps them apart.
func nodeAgentsTogether(by map[Mode]map[string]float64) map[Mode]map[string]float64 {
	names := map[string]bool{}
	for _, m := range by {
		for k := range m {
			if strings.HasPrefix(k, nodeAgentPrefix) {
				names[k] = true
			}
		}
	}
	if len(names) < 2 {
		return by
	}
	row := fmt.Sprintf("%s* (the node agents, %d identities)", nodeAgentPrefix, len(names))
	out := map[Mode]map[string]float64{}
	for mode, m := range by {
		o := map[string]float64{}
		for k, v := range m {
			if names[k] {
				o[row] += v
			} else {
				o[k] = v
			}
		}
		out[mode] = o
	}
	return out
}

func cell(m map[string]float64, k, format string) string {
	if m == nil {
		return "-"
	}
	return fmt.Sprintf(format, m[k])
}

// RenderBreakdowns prints each row's breakdown as two aligned text tables.
func RenderBreakdowns(w io.Writer, rows []Row) {
	for _, r := range rows {
		if r.Breakdown == nil {
			continue
		}
		cpu, writes, parts := breakdownLines(r.Breakdown)
		fmt.Fprintf(w, "\n%s: where the process's CPU went (seconds, by component)\n", r.Scenario)
		renderAligned(w, append([][]string{{"component", "quartet", "upstream"}}, cpu...))
		if len(r.Breakdown.WorkloadCPU) > 0 {
			fmt.Fprintf(w, "%s: the workload controllers' CPU by part (seconds)\n", r.Scenario)
			renderAligned(w, append([][]string{{"part", "quartet", "upstream"}}, parts...))
		}
		fmt.Fprintf(w, "%s: API writes per pod (of %d), by identity\n", r.Scenario, r.Breakdown.Pods)
		renderAligned(w, append([][]string{{"identity", "quartet", "upstream"}}, writes...))
	}
}

func renderAligned(w io.Writer, cells [][]string) {
	widths := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, row := range cells {
		var b strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString("  " + c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

// RenderBreakdownsMarkdown prints each row's breakdown as two Markdown
// tables.
func RenderBreakdownsMarkdown(w io.Writer, rows []Row) {
	for _, r := range rows {
		if r.Breakdown == nil {
			continue
		}
		cpu, writes, parts := breakdownLines(r.Breakdown)
		fmt.Fprintf(w, "\n**%s**: CPU seconds by component, and API writes per pod (of %d) by identity\n\n", r.Scenario, r.Breakdown.Pods)
		fmt.Fprintln(w, "| component | quartet | upstream |\n|---|---:|---:|")
		for _, row := range cpu {
			fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		}
		if len(r.Breakdown.WorkloadCPU) > 0 {
			fmt.Fprintln(w, "\n| workload controllers' CPU by part | quartet | upstream |\n|---|---:|---:|")
			for _, row := range parts {
				fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
			}
		}
		fmt.Fprintln(w, "\n| identity | writes per pod, quartet | upstream |\n|---|---:|---:|")
		for _, row := range writes {
			fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		}
	}
}

// HasBreakdowns reports whether any row carries a breakdown.
func HasBreakdowns(rows []Row) bool {
	for _, r := range rows {
		if r.Breakdown != nil {
			return true
		}
	}
	return false
}

// largestFirst is total's keys, largest value first, ties by name.
func largestFirst(total map[string]float64) []string {
	keys := make([]string, 0, len(total))
	for k := range total {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if total[keys[i]] != total[keys[j]] {
			return total[keys[i]] > total[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
