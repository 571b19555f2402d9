// Command bench times quartet's workload controllers side by side with
// upstream's: every scenario in a quartet-mode and a reference-mode
// cluster, alternately, and prints the table of medians and ratios; it
// writes the rows as JSON, a Markdown table and a PNG chart of the ratios,
// and (-readme) the README's performance table between its markers.
// -render FILE.json writes the Markdown, the chart and the README's table
// again from a run's JSON, without running anything.
//
//	QUARTET_BIN=bin/quartet go run ./bench/cmd/bench [-quick] [-rounds 3] [-only REGEXP] [-out bench/results/latest] [-readme README.md]
//	go run ./bench/cmd/bench -render bench/results/latest.json -out bench/results/latest -readme README.md
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"quartet.dev/quartet/bench"
)

func main() {
	quick := flag.Bool("quick", false, "small version of every scenario, one round, one cluster per mode (under 3 minutes)")
	rounds := flag.Int("rounds", 0, "rounds per scenario and mode (default 3, or 1 with -quick)")
	only := flag.String("only", "", "run only the scenarios whose id matches this regular expression (startup, node-latency, sts-ordered, sts-parallel, sts-rolling, ds, ds-node-add, job, jobs, cronjob, node-scale, image-pull, image-cached, image-memory)")
	out := flag.String("out", "bench/results/latest", "write OUT.json, OUT.md, OUT.png and OUT-breakdown.png")
	verbose := flag.Bool("v", false, "copy every cluster's output to stderr")
	debugRequests := flag.Bool("debug-requests", false, "after each scenario, print the API requests of every user")
	ceilingWorkers := flag.Int("ceiling-workers", 0, "concurrent requests of the bare client that sets the ceiling (default 256)")
	readme := flag.String("readme", "", "also rewrite this README's performance table (between its bench results markers)")
	heapProfiles := flag.String("heap-profiles", "", "save the process's heap profile into this directory where a scenario reads resident memory (idle, node-scale)")
	render := flag.String("render", "", "run nothing: read this JSON of a run and write OUT.md, OUT.png, OUT-breakdown.png and -readme from it")
	flag.Parse()
	var err error
	if *render != "" {
		err = rerender(*render, *out, *readme)
	} else {
		err = run(*quick, *rounds, *only, *out, *readme, *verbose, *debugRequests, *ceilingWorkers, *heapProfiles)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(quick bool, rounds int, only, out, readme string, verbose, debugRequests bool, ceilingWorkers int, heapProfiles string) error {
	opts := bench.Options{Quick: quick, Rounds: rounds, Progress: os.Stderr, DebugRequests: debugRequests,
		CeilingWorkers: ceilingWorkers, HeapProfiles: heapProfiles, Command: commandLine()}
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			return fmt.Errorf("-only: %w", err)
		}
		opts.Only = re
	}
	if verbose {
		opts.ClusterLog = os.Stderr
	}
	if os.Getenv("QUARTET_BIN") == "" {
		fmt.Fprintln(os.Stderr, "bench: QUARTET_BIN is not set; building a quartet binary first (make bench sets it)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rows, machine, err := bench.Bench(ctx, opts)
	fmt.Fprintf(os.Stderr, "bench: %d rows in %s\n", len(rows), time.Since(start).Round(time.Second))
	if len(rows) > 0 {
		fmt.Printf("\nquartet benchmark, %s\nmachine: %s\ncommand: %s\n\n", machine.Date, machine, machine.Command)
		bench.RenderTable(os.Stdout, rows)
		werr := bench.WriteJSON(out+".json", rows)
		if werr == nil {
			fmt.Printf("\nwrote %s.json\n", out)
			werr = write(out, readme, rows, machine)
		}
		if werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// rerender writes the Markdown, the chart and the README's table again
// from a run's JSON.
func rerender(from, out, readme string) error {
	rows, err := bench.ReadJSON(from)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s holds no rows", from)
	}
	return write(out, readme, rows, rows[0].Machine)
}

// write writes OUT.md, OUT.png and the README's table.
func write(out, readme string, rows []bench.Row, m bench.Machine) error {
	var md strings.Builder
	fmt.Fprintf(&md, "Measured %s on %s.\n\nCommand: `%s`\n\n", m.Date, m, m.Command)
	bench.RenderMarkdown(&md, rows)
	md.WriteString("\n")
	bench.RenderTargetsMarkdown(&md, rows)
	if bench.HasBreakdowns(rows) {
		fmt.Fprintf(&md, "\nThe breakdowns below, as a chart of CPU per pod by component: [%s-breakdown.png](%s-breakdown.png).\n", filepath.Base(out), filepath.Base(out))
	}
	bench.RenderBreakdownsMarkdown(&md, rows)
	if err := os.WriteFile(out+".md", []byte(md.String()), 0o644); err != nil {
		return err
	}
	if readme != "" {
		if err := bench.UpdateReadme(readme, rows); err != nil {
			return err
		}
		fmt.Printf("wrote the performance table in %s\n", readme)
	}
	date := m.Date
	if len(date) >= 10 {
		date = date[:10]
	}
	if err := bench.WriteChart(out+".png", rows, "quartet / upstream, "+date); err != nil {
		fmt.Printf("wrote %s.md; no chart: %v\n", out, err)
		return nil
	}
	fmt.Printf("wrote %s.md, %s.png\n", out, out)
	if err := bench.WriteBreakdownChart(out+"-breakdown.png", rows, "where a pod's CPU goes, "+date); err != nil {
		fmt.Printf("no breakdown chart: %v\n", err)
		return nil
	}
	fmt.Printf("wrote %s-breakdown.png\n", out)
	return nil
}

// commandLine is how to run this again: the make target when make ran it.
func commandLine() string {
	if t := os.Getenv("BENCH_TARGET"); t != "" {
		return "make " + t
	}
	return "go run ./bench/cmd/bench " + strings.Join(os.Args[1:], " ")
}
