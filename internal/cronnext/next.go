// Package cronnext answers "when will this CronJob actually run?" offline:
// the next run times of a CronJob in its time zone and in this machine's,
// with the Job names the controller will give them, and warnings about the
// settings that cause the classic CronJob accidents. It backs
// `quartet cron next`.
package cronnext

import (
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"quartet.dev/quartet/internal/controllers/cronjob/schedule"
)

// MaxCount bounds how many runs one report lists.
const MaxCount = 1000

// periodSample is how many runs are examined to find the shortest gap
// between two runs, when fewer are listed.
const periodSample = 200

// Run is one scheduled run.
type Run struct {
	// Time is the scheduled time, in the zone the schedule is read in.
	Time time.Time
	// JobName is the name the controller gives the run's Job.
	JobName string
}

// Report is what `quartet cron next` prints.
type Report struct {
	Namespace, Name string
	Schedule        string
	// TimeZone is spec.timeZone, "" when unset.
	TimeZone string
	// Zone is the zone the schedule is read in: spec.timeZone, a TZ= prefix
	// in the schedule, or (when neither is set) Local.
	Zone *time.Location
	// Local is this machine's zone.
	Local *time.Location
	// From is the instant after which runs are listed.
	From time.Time
	Runs []Run
	// Period is the shortest gap between two consecutive runs seen.
	Period   time.Duration
	Warnings []string
}

// Next lists the next count runs of cj after from. local is this machine's
// zone; it is also the zone a schedule without spec.timeZone is read in,
// because that is what quartet's controller, running on this machine, does.
// Settings the API server would refuse, or that would keep the controller
// from running anything, are errors.
func Next(cj *batchv1.CronJob, from time.Time, count int, local *time.Location) (Report, error) {
	if cj == nil {
		return Report{}, errors.New("no CronJob")
	}
	if count < 1 || count > MaxCount {
		return Report{}, fmt.Errorf("count must be between 1 and %d, not %d", MaxCount, count)
	}
	if local == nil {
		local = time.Local
	}
	spec := cj.Spec
	r := Report{Namespace: cj.Namespace, Name: cj.Name, Schedule: spec.Schedule, Local: local, From: from}
	if strings.TrimSpace(spec.Schedule) == "" {
		return r, errors.New("spec.schedule is empty")
	}
	if spec.TimeZone != nil {
		r.TimeZone = *spec.TimeZone
		switch {
		case *spec.TimeZone == "":
			return r, errors.New(`spec.timeZone is "": leave it out or name a zone such as "Asia/Seoul"`)
		case strings.EqualFold(*spec.TimeZone, "Local"):
			return r, errors.New(`spec.timeZone "Local" is refused by the API server: name a zone such as "Asia/Seoul"`)
		}
	}
	zone, err := schedule.Location(spec.TimeZone, local)
	if err != nil {
		return r, fmt.Errorf("spec.timeZone %q is not a time zone the controller can load (it would report UnknownTimeZone and start no Jobs): %v", *spec.TimeZone, err)
	}
	sched, err := schedule.Parse(spec.Schedule, zone)
	if err != nil {
		return r, fmt.Errorf("spec.schedule %q: %v", spec.Schedule, err)
	}
	r.Zone = sched.Location

	// Field schedules match wall clocks; @every schedules are a chain from
	// the last run or the CronJob's creation, which a manifest does not have.
	anchor := from
	if cj.Status.LastScheduleTime != nil {
		anchor = cj.Status.LastScheduleTime.Time
	} else if !cj.CreationTimestamp.IsZero() {
		anchor = cj.CreationTimestamp.Time
	}
	t := sched.NextAfter(anchor, from)
	for len(r.Runs) < count && !t.IsZero() {
		r.Runs = append(r.Runs, Run{Time: t, JobName: jobName(cj.Name, t)})
		t = sched.Next(t)
	}
	if len(r.Runs) == 0 {
		return r, fmt.Errorf("spec.schedule %q: %v", spec.Schedule, schedule.ErrNeverFires)
	}
	r.Period = shortestGap(sched, r.Runs)
	r.Warnings = warnings(cj, sched, r, cj.Status.LastScheduleTime == nil && cj.CreationTimestamp.IsZero())
	return r, nil
}

// jobName mirrors the controller: the CronJob's name and the scheduled time
// in minutes since the epoch.
func jobName(cronJob string, t time.Time) string {
	if cronJob == "" {
		cronJob = "<name>"
	}
	return fmt.Sprintf("%s-%d", cronJob, t.Unix()/60)
}

// shortestGap is the shortest time between consecutive runs among the
// listed runs and the ones after them, up to periodSample runs.
func shortestGap(sched *schedule.Schedule, runs []Run) time.Duration {
	times := make([]time.Time, 0, max(len(runs), periodSample))
	for _, r := range runs {
		times = append(times, r.Time)
	}
	for t := sched.Next(times[len(times)-1]); len(times) < periodSample && !t.IsZero(); t = sched.Next(t) {
		times = append(times, t)
	}
	var gap time.Duration
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); gap == 0 || d < gap {
			gap = d
		}
	}
	return gap
}
