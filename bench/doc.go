// Package bench times quartet's workload controllers side by side with
// upstream's (reference mode) on the same binary, the same sim nodes and
// the same load, and reports ratios: `make bench` and `make bench-quick`
// run it through bench/cmd/bench.
//
// The pure parts (statistics, the apiserver's metrics text, the table, the
// JSON and the chart) are unit-tested; the scenarios start real clusters
// and run only from the command, never from `go test`.
package bench
