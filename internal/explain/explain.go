package explain

import (
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	"quartet.dev/quartet/internal/manifest"
)

// Severity ranks a finding.
type Severity string

const (
	// Error: the API server refuses the object, or its controller can never
	// run it.
	Error Severity = "error"
	// Warning: a trap behind a known accident.
	Warning Severity = "warning"
	// Note: intended behaviour people are surprised by.
	Note Severity = "note"
)

// Finding is one rule's verdict on one object.
type Finding struct {
	// Rule is the rule's stable id, e.g. "cronjob-no-starting-deadline".
	Rule     string   `json:"id"`
	Severity Severity `json:"severity"`
	// Message says what is wrong with this object and why it matters.
	Message string `json:"message"`
	// Fix says what to change.
	Fix string `json:"fix"`
	// Reference is the chapter section or upstream issue behind the rule.
	Reference string `json:"reference"`
}

// Explained is one object's line and its findings.
type Explained struct {
	// Source is where the object was read ("web.yaml", "web.yaml#2"); empty
	// for objects read from a cluster.
	Source     string `json:"source,omitempty"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Reading is the chapter's decision tree for the object:
	// "not interchangeable", "interchangeable, one per node", ...
	Reading string `json:"reading"`
	// Controller is where the decision tree lands (StatefulSet, DaemonSet,
	// Job, CronJob, Deployment); empty for objects that are not workloads.
	Controller string `json:"controller,omitempty"`
	// Identity is the concrete identity the object will have.
	Identity string `json:"identity"`
	// Stuck says why a live object makes no progress; empty when it does,
	// and for manifests.
	Stuck    string    `json:"stuck,omitempty"`
	Findings []Finding `json:"findings"`
}

// Problem is input that could not be read.
type Problem struct {
	Where string `json:"where"`
	Error string `json:"error"`
}

// Report is what `quartet explain` prints.
type Report struct {
	Objects  []Explained `json:"objects"`
	Problems []Problem   `json:"problems,omitempty"`
	Counts   Counts      `json:"counts"`
}

// Counts sums a report up.
type Counts struct {
	Objects  int `json:"objects"`
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
	Notes    int `json:"notes"`
	Stuck    int `json:"stuck,omitempty"`
	Problems int `json:"problems"`
}

// Options are the inputs besides the objects.
type Options struct {
	// Now is the time schedules are read from.
	Now time.Time
	// Local is the zone a CronJob without spec.timeZone is read in:
	// quartet's controller runs on this machine, in its zone.
	Local *time.Location
}

// world is everything rules can look at: every object of the input (or of
// the namespace, live) and, live, the cluster's nodes and more.
type world struct {
	objects []*object
	now     time.Time
	local   *time.Location
	// live is set when the objects come from a cluster; the fields below
	// are filled then.
	live           bool
	nodes          []corev1.Node
	storageClasses map[string]*storagev1.StorageClass
	pods           []corev1.Pod
}

func newWorld(objs []*object, opts Options) *world {
	local := opts.Local
	if local == nil {
		local = time.UTC
	}
	return &world{objects: objs, now: opts.Now, local: local}
}

// Manifests explains objects read from manifests.
func Manifests(objs []manifest.Object, readErrs []error, opts Options) Report {
	var typed []*object
	for _, m := range objs {
		typed = append(typed, newObject(m))
	}
	r := explainAll(newWorld(typed, opts))
	for _, err := range readErrs {
		var p Problem
		if e, ok := err.(*manifest.Error); ok {
			p = Problem{Where: e.Where, Error: e.Err.Error()}
		} else {
			p = Problem{Error: err.Error()}
		}
		r.Problems = append(r.Problems, p)
	}
	r.Counts.Problems = len(r.Problems)
	return r
}

func explainAll(w *world) Report {
	var r Report
	for _, o := range w.objects {
		e := explainOne(w, o)
		r.Objects = append(r.Objects, e)
		r.Counts.Objects++
		if e.Stuck != "" {
			r.Counts.Stuck++
		}
		for _, f := range e.Findings {
			switch f.Severity {
			case Error:
				r.Counts.Errors++
			case Warning:
				r.Counts.Warnings++
			case Note:
				r.Counts.Notes++
			}
		}
	}
	return r
}

func explainOne(w *world, o *object) Explained {
	e := Explained{APIVersion: o.src.APIVersion, Kind: o.src.Kind, Namespace: o.src.Namespace, Name: o.src.Name, Findings: []Finding{}}
	if o.src.Source != "" {
		e.Source = o.src.Where()
	}
	e.Reading, e.Controller, e.Identity = describe(w, o)
	for _, rule := range rules {
		if !rule.appliesTo(o) {
			continue
		}
		for _, h := range rule.check(w, o) {
			e.Findings = append(e.Findings, Finding{Rule: rule.ID, Severity: rule.Severity, Message: h.message, Fix: h.fix, Reference: rule.Reference})
		}
	}
	slices.SortStableFunc(e.Findings, func(a, b Finding) int { return severityRank(a.Severity) - severityRank(b.Severity) })
	if w.live {
		e.Stuck = stuck(w, o)
	}
	return e
}

func severityRank(s Severity) int {
	switch s {
	case Error:
		return 0
	case Warning:
		return 1
	}
	return 2
}

// CronJobFindings runs the rules on one CronJob on its own, as `quartet cron
// next` does.
func CronJobFindings(cj *batchv1.CronJob, opts Options) []Finding {
	o := fromTyped("CronJob", "batch/v1", cj.Namespace, cj.Name, cj)
	return explainOne(newWorld([]*object{o}, opts), o).Findings
}
