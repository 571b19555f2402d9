package bench

import (
	"fmt"
	"math"
)

// Mode is which workload controllers a cluster runs.
type Mode string

// The two modes compared.
const (
	ModeQuartet  Mode = "quartet"
	ModeUpstream Mode = "upstream"
)

// Run is what one scenario run in one mode measured. NaN marks what it
// could not measure.
type Run struct {
	// Values holds one number per Metric.Key.
	Values map[string]float64
	// APIRequests is the number of requests the workload controllers'
	// identities made during the measured window.
	APIRequests float64
	// Writes are the requests that changed objects in the window, by
	// user (every identity, not only the workload controllers').
	Writes RequestCounts `json:",omitempty"`
	// CPUSeconds is the workload controllers' CPU time in the window;
	// CPUTotal the whole quartet process's; CPUByComponent the process's
	// by component (apiserver, etcd, scheduler, node agents, ...).
	CPUSeconds     float64
	CPUTotal       float64
	CPUByComponent map[string]float64 `json:",omitempty"`
	// CPUWorkloadParts is CPUSeconds by part: informers, event handlers,
	// API requests, the controllers' syncs.
	CPUWorkloadParts map[string]float64 `json:",omitempty"`
	// Ceiling is how many seconds a bare client took to create the
	// scenario's objects in the same cluster, after the scenario ran.
	Ceiling float64
	// Err says why the run failed, if it did.
	Err string
}

// NewRun is a run with nothing measured yet.
func NewRun() Run {
	return Run{Values: map[string]float64{}, APIRequests: math.NaN(), CPUSeconds: math.NaN(),
		CPUTotal: math.NaN(), Ceiling: math.NaN()}
}

// Metric is one quantity a scenario reports, a row of the table.
type Metric struct {
	Key  string
	Name string
	Unit string
	// VsCeiling compares the metric (a time to create pods) with the
	// bare client's time to create as many.
	VsCeiling bool
	Targets   []Target
	Note      string
}

// Target is a goal from the issues, checked on a row's medians.
type Target struct {
	Text  string
	Check func(Row) *bool
	// Got is the measured figure the check compares, unrounded enough to
	// show why a value printed as the bound itself (0.90 against <= 0.9)
	// missed; "" when not measured.
	Got func(Row) string
}

func check(ok bool) *bool { return &ok }

// RatioAtMost: quartet's median over upstream's is at most x.
func RatioAtMost(x float64, text string) Target {
	return Target{Text: text, Check: func(r Row) *bool {
		if r.Ratio == nil {
			return nil
		}
		return check(*r.Ratio <= x)
	}, Got: func(r Row) string { return gotf("ratio %.3f", r.Ratio) }}
}

// APIRatioAtMost: quartet's controllers make at most x times upstream's
// requests (met when neither made any).
func APIRatioAtMost(x float64) Target {
	return Target{Text: fmt.Sprintf("API requests ratio <= %.3g", x), Check: func(r Row) *bool {
		if r.APIRequestsQuartet == nil || r.APIRequestsUpstream == nil {
			return nil
		}
		return check(*r.APIRequestsQuartet <= x**r.APIRequestsUpstream)
	}, Got: func(r Row) string {
		if r.APIRequestsQuartet == nil || r.APIRequestsUpstream == nil {
			return ""
		}
		return fmt.Sprintf("%.0f against %.0f", *r.APIRequestsQuartet, *r.APIRequestsUpstream)
	}}
}

// gotf formats *p with format, or "" when p is nil.
func gotf(format string, p *float64) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf(format, *p)
}

// Labeled is t with another text, e.g. naming the issue it comes from.
func Labeled(t Target, text string) Target {
	t.Text = text
	return t
}

// QuartetAtMost: quartet's median is at most x (in the row's unit).
func QuartetAtMost(x float64, text string) Target {
	return Target{Text: text, Check: func(r Row) *bool {
		if r.Quartet == nil {
			return nil
		}
		return check(*r.Quartet <= x)
	}, Got: func(r Row) string { return gotf("%.4g "+r.Unit, r.Quartet) }}
}

// CeilingAtLeast: quartet reaches at least fraction f of the bare client's rate.
func CeilingAtLeast(f float64) Target {
	return Target{Text: fmt.Sprintf(">= %.0f%% of the bare-client ceiling", f*100), Check: func(r Row) *bool {
		if r.CeilingFraction == nil {
			return nil
		}
		return check(*r.CeilingFraction >= f)
	}, Got: func(r Row) string {
		if r.CeilingFraction == nil {
			return ""
		}
		return fmt.Sprintf("%.1f%%", *r.CeilingFraction*100)
	}}
}

// LikeForLikeAtLeast: quartet reaches at least fraction f of the rate of a
// bare client making the same writes per pod (CeilingSpec.JobPodWrites).
func LikeForLikeAtLeast(f float64) Target {
	t := CeilingAtLeast(f)
	t.Text = fmt.Sprintf(">= %.0f%% of the like-for-like ceiling (issue 18)", f*100)
	return t
}

// Aggregate turns the runs of one scenario into its rows: medians per mode,
// ratios, the ceiling fraction and the targets.
func Aggregate(id string, metrics []Metric, runs map[Mode][]Run, m Machine) []Row {
	q, u := runs[ModeQuartet], runs[ModeUpstream]
	field := func(rs []Run, f func(Run) float64) []float64 {
		var xs []float64
		for _, r := range rs {
			if x := f(r); !math.IsNaN(x) {
				xs = append(xs, x)
			}
		}
		return xs
	}
	apiQ := Median(field(q, func(r Run) float64 { return r.APIRequests }))
	apiU := Median(field(u, func(r Run) float64 { return r.APIRequests }))
	cpuQ := Median(field(q, func(r Run) float64 { return r.CPUSeconds }))
	cpuU := Median(field(u, func(r Run) float64 { return r.CPUSeconds }))
	ceiling := Median(append(field(q, func(r Run) float64 { return r.Ceiling }), field(u, func(r Run) float64 { return r.Ceiling })...))

	var errs []string
	for _, mode := range []Mode{ModeQuartet, ModeUpstream} {
		for i, r := range runs[mode] {
			if r.Err != "" {
				errs = append(errs, fmt.Sprintf("%s run %d: %s", mode, i+1, r.Err))
			}
		}
	}
	var rows []Row
	for _, mt := range metrics {
		value := func(r Run) float64 {
			if v, ok := r.Values[mt.Key]; ok {
				return v
			}
			return math.NaN()
		}
		sq, su := field(q, value), field(u, value)
		mq, mu := Median(sq), Median(su)
		row := Row{
			ID:                  id + "/" + mt.Key,
			Scenario:            mt.Name,
			Unit:                mt.Unit,
			Quartet:             num(mq),
			Upstream:            num(mu),
			Ratio:               num(Ratio(mq, mu)),
			APIRequestsQuartet:  num(apiQ),
			APIRequestsUpstream: num(apiU),
			APIRequestsRatio:    num(Ratio(apiQ, apiU)),
			CPUSecondsQuartet:   num(cpuQ),
			CPUSecondsUpstream:  num(cpuU),
			Rounds:              max(len(sq), len(su)),
			SamplesQuartet:      sq,
			SamplesUpstream:     su,
			Note:                mt.Note,
			Errors:              errs,
			Machine:             m,
		}
		if mt.VsCeiling {
			c := ceiling * perSecond(mt.Unit)
			row.Ceiling = num(c)
			row.CeilingFraction = num(Ratio(c, mq))
			row.CeilingFractionUpstream = num(Ratio(c, mu))
		}
		for _, t := range mt.Targets {
			tr := TargetResult{Text: t.Text, Met: t.Check(row)}
			if t.Got != nil {
				tr.Got = t.Got(row)
			}
			row.Targets = append(row.Targets, tr)
		}
		rows = append(rows, row)
	}
	return rows
}

// perSecond is how many of unit make a second (a ceiling is in seconds).
func perSecond(unit string) float64 {
	if unit == "ms" {
		return 1000
	}
	return 1
}
