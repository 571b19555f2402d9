package cronsim

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/prose"
)

// SuggestedDeadline is the startingDeadlineSeconds tried for a CronJob that
// has none, as the chapter suggests.
const SuggestedDeadline = 300

// Variant is one row of the comparison: the CronJob with a concurrencyPolicy
// and a startingDeadlineSeconds.
type Variant struct {
	Policy batchv1.ConcurrencyPolicy
	// Deadline is startingDeadlineSeconds; nil for none.
	Deadline *int64
	// AsWritten marks the manifest's own settings.
	AsWritten bool
	Result    *Result
}

// Comparison is exercise 3's table: the CronJob under every
// concurrencyPolicy, with and without startingDeadlineSeconds.
type Comparison struct {
	Config Config
	// AsWritten is the run of the CronJob as its manifest says.
	AsWritten *Result
	Variants  []Variant
}

// Compare simulates cfg as written and under each concurrencyPolicy with
// and without a starting deadline (the manifest's, or SuggestedDeadline).
func Compare(cfg Config) (*Comparison, error) {
	asWritten, err := Simulate(cfg)
	if err != nil {
		return nil, err
	}
	c := &Comparison{Config: cfg, AsWritten: asWritten}
	spec := cfg.CronJob.Spec
	policy := spec.ConcurrencyPolicy
	if policy == "" {
		policy = batchv1.AllowConcurrent
	}
	deadlines := []*int64{nil, ptr.To[int64](SuggestedDeadline)}
	if d := spec.StartingDeadlineSeconds; d != nil {
		deadlines = []*int64{nil, ptr.To(*d)}
	}
	for _, p := range []batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent} {
		for _, d := range deadlines {
			v := Variant{Policy: p, Deadline: d, AsWritten: p == policy && ptr.Equal(d, spec.StartingDeadlineSeconds)}
			if v.AsWritten {
				v.Result = asWritten
			} else {
				vc := cfg
				vc.CronJob = cfg.CronJob.DeepCopy()
				vc.CronJob.Spec.ConcurrencyPolicy = p
				vc.CronJob.Spec.StartingDeadlineSeconds = d
				if v.Result, err = Simulate(vc); err != nil {
					return nil, err
				}
			}
			c.Variants = append(c.Variants, v)
		}
	}
	return c, nil
}

// Render prints the comparison; timeline adds the as-written run's
// timeline.
func (c *Comparison) Render(w io.Writer, timeline bool) error {
	var b strings.Builder
	cfg := c.Config
	cj := cfg.CronJob
	zone := c.zone()
	layout := "Mon 2006-01-02 15:04 MST"
	name := cj.Name
	if name == "" {
		name = "(unnamed)"
	}
	fmt.Fprintf(&b, "CronJob %s: schedule %q", name, cj.Spec.Schedule)
	if tz := cj.Spec.TimeZone; tz != nil {
		fmt.Fprintf(&b, " in %s", *tz)
	} else {
		fmt.Fprintf(&b, " in %s (no timeZone: the controller's zone, this machine's)", zone)
	}
	fmt.Fprintf(&b, "\nEach Job works %s", prose.Duration(cfg.JobDuration))
	if d := cj.Spec.JobTemplate.Spec.ActiveDeadlineSeconds; d != nil {
		fmt.Fprintf(&b, " (activeDeadlineSeconds %d stops it at %s)", *d, prose.Duration(time.Duration(*d)*time.Second))
	}
	fmt.Fprintf(&b, ".\nSimulated from %s for %s", cfg.From.In(zone).Format(layout), prose.Duration(cfg.For))
	if o := cfg.Outage; o != nil {
		fmt.Fprintf(&b, "; the control plane is down from %s to %s", o.Start.In(zone).Format("15:04"), o.End.In(zone).Format("15:04"))
	}
	fmt.Fprintf(&b, ".\nEvery sync is decided by quartet's CronJob controller's own plan; the API server, Job and TTL controllers are simulated.\n")

	if timeline {
		fmt.Fprintf(&b, "\nTimeline as written (%s):\n", settings(cj.Spec.ConcurrencyPolicy, cj.Spec.StartingDeadlineSeconds))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, e := range c.AsWritten.Timeline {
			what := e.Message
			if e.Kind == Created {
				what = "created for " + e.Scheduled.In(zone).Format("15:04")
				if late := e.At.Sub(e.Scheduled); late > time.Second {
					what += fmt.Sprintf(" (%s late)", prose.Duration(late.Round(time.Second)))
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d running\n", e.At.In(zone).Format("15:04:05"), e.Job, what, e.Running)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	n := len(c.AsWritten.Scheduled)
	fmt.Fprintf(&b, "\n%d scheduled run%s. Per concurrencyPolicy and startingDeadlineSeconds:\n\n", n, map[bool]string{true: "s", false: ""}[n != 1])
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	header := "  concurrencyPolicy\tstartingDeadlineSeconds\tJobs\tmost at once\tskipped\tstarted late\treplaced\tfailed"
	if cfg.Outage != nil {
		header += "\tafter the outage"
	}
	fmt.Fprintln(tw, header)
	for _, v := range c.Variants {
		r := v.Result
		deadline := "none"
		if v.Deadline != nil {
			deadline = fmt.Sprint(*v.Deadline)
		}
		policy := string(v.Policy)
		if v.AsWritten {
			policy += " *"
		}
		row := fmt.Sprintf("  %s\t%s\t%d\t%d\t%d\t%d\t%d\t%d", policy, deadline, r.Counts[Created], r.Peak, len(r.Skipped), len(r.Late), r.Counts[Replaced], r.Counts[Failed])
		if cfg.Outage != nil {
			row += "\t" + r.outageSummary(zone)
		}
		fmt.Fprintln(tw, row)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\n  * as written. Jobs: Jobs created; most at once: Jobs running at the same time; skipped: scheduled\n" +
		"  runs that never got a Job; started late: more than a second after their time; replaced: Jobs\n" +
		"  deleted by Replace; failed: Jobs stopped by activeDeadlineSeconds.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// zone is the zone times are printed in: the schedule's.
func (c *Comparison) zone() *time.Location {
	if tz := c.Config.CronJob.Spec.TimeZone; tz != nil {
		if loc, err := time.LoadLocation(*tz); err == nil {
			return loc
		}
	}
	return c.Config.Local
}

func settings(p batchv1.ConcurrencyPolicy, d *int64) string {
	if p == "" {
		p = batchv1.AllowConcurrent
	}
	if d == nil {
		return string(p) + ", no startingDeadlineSeconds"
	}
	return fmt.Sprintf("%s, startingDeadlineSeconds %d", p, *d)
}

// outageSummary says what the first sync after the outage did.
func (r *Result) outageSummary(zone *time.Location) string {
	e := r.AfterOutage
	if e == nil {
		return ""
	}
	var parts []string
	parts = append(parts, fmt.Sprintf("%d missed", len(e.Missed)))
	if len(e.Started) == 0 {
		parts = append(parts, "started nothing")
	}
	for _, s := range e.Started {
		what := fmt.Sprintf("started the %s run", s.Scheduled.In(zone).Format("15:04"))
		if late := s.Started.Sub(s.Scheduled); late > time.Second {
			what += " " + prose.Duration(late.Round(time.Second)) + " late"
		}
		parts = append(parts, what)
	}
	parts = append(parts, e.Warnings...)
	return strings.Join(parts, ", ")
}
