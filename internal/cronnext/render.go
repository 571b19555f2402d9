package cronnext

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"quartet.dev/quartet/internal/controllers/cronjob/schedule"
	"quartet.dev/quartet/internal/prose"
)

// wrapAt is the width warnings are wrapped to.
const wrapAt = 100

// Render prints r for people.
func (r Report) Render(w io.Writer) error {
	var b strings.Builder
	name := r.Name
	if name == "" {
		name = "(unnamed)"
	}
	if r.Namespace != "" {
		name = r.Namespace + "/" + name
	}
	fmt.Fprintf(&b, "CronJob %s\n", name)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  schedule\t%s\n", r.Schedule)
	fmt.Fprintf(tw, "  time zone\t%s\n", r.zoneSource())
	fmt.Fprintf(tw, "  this machine\t%s\n", zoneName(r.Local))
	if err := tw.Flush(); err != nil {
		return err
	}

	layout := "Mon 2006-01-02 15:04 MST"
	for _, run := range r.Runs {
		if run.Time.Second() != 0 {
			layout = "Mon 2006-01-02 15:04:05 MST"
			break
		}
	}
	fmt.Fprintf(&b, "\nNext %d %s after %s:\n\n", len(r.Runs), plural(len(r.Runs), "run", "runs"), r.From.In(r.Zone).Format(layout))
	tw = tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
	if same := zoneName(r.Zone) == zoneName(r.Local); same {
		fmt.Fprintf(tw, "  #\t%s (also this machine's)\tJob\n", zoneName(r.Zone))
		for i, run := range r.Runs {
			fmt.Fprintf(tw, "  %d\t%s\t%s\n", i+1, run.Time.In(r.Zone).Format(layout), run.JobName)
		}
	} else {
		fmt.Fprintf(tw, "  #\t%s\t%s (this machine)\tJob\n", zoneName(r.Zone), zoneName(r.Local))
		for i, run := range r.Runs {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", i+1, run.Time.In(r.Zone).Format(layout), run.Time.In(r.Local).Format(layout), run.JobName)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Period > 0 {
		fmt.Fprintf(&b, "\nShortest gap between runs: %s\n", prose.Duration(r.Period))
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(&b, "\nWarnings:\n")
		for _, warning := range r.Warnings {
			b.WriteString(prose.Wrap(warning, "  ! ", "    ", wrapAt))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// zoneSource says which zone the schedule is read in and why.
func (r Report) zoneSource() string {
	switch {
	case r.TimeZone != "":
		return zoneName(r.Zone) + " (spec.timeZone)"
	case schedule.HasTZPrefix(r.Schedule):
		return zoneName(r.Zone) + " (TZ= in the schedule)"
	default:
		return zoneName(r.Zone) + " (spec.timeZone not set: the controller's zone, this machine's)"
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// zoneName names a zone for people.
func zoneName(loc *time.Location) string {
	if loc == nil {
		return "UTC"
	}
	return loc.String()
}
