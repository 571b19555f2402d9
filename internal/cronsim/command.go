package cronsim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"

	"quartet.dev/quartet/internal/manifest"
)

// SimRunSecondsAnnotation is the sim runtime's run time of a container,
// which --job-duration defaults to.
const SimRunSecondsAnnotation = "quartet.dev/sim-run-seconds"

// defaultStart is the time of day a simulation starts at without --from.
const defaultStart = "08:00"

// Deps are what the command needs from outside, replaced in tests.
type Deps struct {
	Now   func() time.Time
	Local func() *time.Location
}

// Command returns `cron simulate`.
func Command(d Deps) *cobra.Command {
	var fl flags
	c := &cobra.Command{
		Use:   "simulate [NAME] -f FILE --job-duration D [--for 6h] [--outage HH:MM-HH:MM]",
		Short: "Run a CronJob through the controller's own planning code over a fake clock: timeline and exercise 3's table",
		Long: `Run a CronJob from a manifest through quartet's CronJob controller's own
planning code (the function the controller calls on every sync, not a copy)
over a fake clock, with Jobs that each work for --job-duration, and print:

- the timeline of the CronJob as written: Jobs created (and how late), finished,
  failed at activeDeadlineSeconds, replaced, pruned, runs held back by Forbid,
  skipped by startingDeadlineSeconds;
- exercise 3's table: for Allow, Forbid and Replace, with and without
  startingDeadlineSeconds (the manifest's, or 300), the Jobs created, the most
  running at once, the runs skipped, started late and replaced, and with
  --outage what the controller did when the control plane came back.

The simulation starts at --from (HH:MM today, or an RFC 3339 time; default
08:00 today) in the schedule's time zone, when the CronJob is created. During
--outage no controller runs but pods keep running, as when the control plane
is down. --job-duration defaults to the Job template's
quartet.dev/sim-run-seconds annotation.`,
		Example: `  quartet cron simulate -f cronjob.yaml --for 6h --job-duration 90s --outage 10:00-11:00
  quartet cron simulate -f examples/chapter/exercise-3-cronjob.yaml --for 5m`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl.jobDurationSet = cmd.Flags().Changed("job-duration")
			return d.run(cmd, args, fl)
		},
	}
	f := c.Flags()
	f.StringVarP(&fl.file, "filename", "f", "", `manifest holding the CronJob ("-" for standard input)`)
	f.DurationVar(&fl.span, "for", 6*time.Hour, "how long to simulate")
	f.DurationVar(&fl.jobDuration, "job-duration", 0, "how long each Job works (default: the Job template's quartet.dev/sim-run-seconds)")
	f.StringVar(&fl.outage, "outage", "", "HH:MM-HH:MM when the control plane is down, in the schedule's zone")
	f.StringVar(&fl.from, "from", defaultStart, "start: HH:MM today in the schedule's zone, or an RFC 3339 time")
	f.BoolVar(&fl.timeline, "timeline", true, "print the timeline of the CronJob as written")
	return c
}

// flags are `cron simulate`'s options.
type flags struct {
	file, from, outage string
	span, jobDuration  time.Duration
	jobDurationSet     bool
	timeline           bool
}

// run is the command: it reads the CronJob, simulates it under each
// policy and prints the comparison.
func (d Deps) run(cmd *cobra.Command, args []string, fl flags) error {
	if fl.file == "" {
		return errors.New("give the CronJob's manifest with -f FILE (- for standard input)")
	}
	cjs, err := manifest.LoadCronJobs(fl.file, cmd.InOrStdin())
	if err != nil {
		return err
	}
	name := ""
	if len(args) == 1 {
		name = args[0]
	}
	cj, err := manifest.PickCronJob(cjs, name, fl.file)
	if err != nil {
		return err
	}
	local := d.Local()
	zone := local
	if tz := cj.Spec.TimeZone; tz != nil {
		if zone, err = time.LoadLocation(*tz); err != nil {
			return fmt.Errorf("spec.timeZone %q: %v", *tz, err)
		}
	}
	if !fl.jobDurationSet {
		if fl.jobDuration, err = annotatedDuration(cj); err != nil {
			return err
		}
	}
	start, err := parseFrom(fl.from, d.Now(), zone)
	if err != nil {
		return err
	}
	cfg := Config{CronJob: cj, From: start, For: fl.span, JobDuration: fl.jobDuration, Local: local}
	if fl.outage != "" {
		w, err := parseOutage(fl.outage, start, zone)
		if err != nil {
			return err
		}
		cfg.Outage = &w
	}
	comparison, err := Compare(cfg)
	if err != nil {
		return err
	}
	return comparison.Render(cmd.OutOrStdout(), fl.timeline)
}

// annotatedDuration is --job-duration's default: the Job template's
// quartet.dev/sim-run-seconds.
func annotatedDuration(cj *batchv1.CronJob) (time.Duration, error) {
	secs, ok := cj.Spec.JobTemplate.Spec.Template.Annotations[SimRunSecondsAnnotation]
	if !ok {
		return 0, errors.New("say how long each Job works with --job-duration (for example 90s)")
	}
	n, err := strconv.Atoi(secs)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("the Job template's %s=%q is not a number of seconds: give --job-duration", SimRunSecondsAnnotation, secs)
	}
	return time.Duration(n) * time.Second, nil
}

// parseFrom reads --from: HH:MM on now's day in zone, or RFC 3339.
func parseFrom(s string, now time.Time, zone *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	h, m, err := clock(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--from %q: want HH:MM or an RFC 3339 time such as 2026-05-19T08:00:00Z", s)
	}
	day := now.In(zone)
	return time.Date(day.Year(), day.Month(), day.Day(), h, m, 0, 0, zone), nil
}

// parseOutage reads HH:MM-HH:MM: the first such interval at or after start,
// in zone; an end before its start is on the next day.
func parseOutage(s string, start time.Time, zone *time.Location) (Window, error) {
	from, to, ok := strings.Cut(s, "-")
	h1, m1, err1 := clock(from)
	h2, m2, err2 := clock(to)
	if !ok || err1 != nil || err2 != nil {
		return Window{}, fmt.Errorf("--outage %q: want HH:MM-HH:MM, such as 10:00-11:00", s)
	}
	day := start.In(zone)
	begin := time.Date(day.Year(), day.Month(), day.Day(), h1, m1, 0, 0, zone)
	if begin.Before(start) {
		begin = begin.AddDate(0, 0, 1)
	}
	end := time.Date(begin.Year(), begin.Month(), begin.Day(), h2, m2, 0, 0, zone)
	if !end.After(begin) {
		end = end.AddDate(0, 0, 1)
	}
	return Window{Start: begin, End: end}, nil
}

func clock(s string) (int, int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, 0, err
	}
	return t.Hour(), t.Minute(), nil
}
