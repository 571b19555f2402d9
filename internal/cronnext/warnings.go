package cronnext

import (
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"quartet.dev/quartet/internal/controllers/cronjob/schedule"
)

// clockChangeHorizon is how far ahead daylight-saving changes are looked for
// when the listed runs end sooner.
const clockChangeHorizon = 366 * 24 * time.Hour

// warnings explains the settings behind the accidents people have with
// CronJobs, each with what to do about it. unanchored says an @every chain
// had to start at From because cj has no creation time or last run.
func warnings(cj *batchv1.CronJob, sched *schedule.Schedule, r Report, unanchored bool) []string {
	spec := cj.Spec
	var w []string
	if spec.Suspend != nil && *spec.Suspend {
		w = append(w, "spec.suspend is true: none of these runs starts until it is set to false (and runs missed meanwhile "+
			"follow startingDeadlineSeconds when it is).")
	}
	if schedule.HasTZPrefix(spec.Schedule) {
		w = append(w, "the schedule names its zone with TZ= or CRON_TZ=: the API server refuses that on create; "+
			"move the zone to spec.timeZone.")
	}
	if spec.TimeZone == nil && !schedule.HasTZPrefix(spec.Schedule) {
		w = append(w, fmt.Sprintf("spec.timeZone is not set, so the schedule is read in the time zone of the process running "+
			"the CronJob controller: on quartet that is this machine's (%s), as shown; on most clusters it is UTC, "+
			"where %q means something else. Set spec.timeZone to an IANA name such as \"Asia/Seoul\".",
			zoneName(r.Local), spec.Schedule))
	}
	switch d := spec.StartingDeadlineSeconds; {
	case d == nil:
		w = append(w, "spec.startingDeadlineSeconds is not set: a run missed while the control plane was down starts "+
			"when it comes back, however late (only the most recent missed run starts, with a TooManyMissedTimes "+
			"warning past 100 missed). Set it, for example to 300, to skip a run that cannot start within 5 minutes.")
	case *d == 0:
		w = append(w, "spec.startingDeadlineSeconds is 0: no run can ever start, because the controller always starts "+
			"a run a little after its scheduled time. Use at least 10.")
	case *d < 10:
		w = append(w, fmt.Sprintf("spec.startingDeadlineSeconds is %d: a run delayed by a busy control plane for more "+
			"than %d seconds is skipped. Use at least 10.", *d, *d))
	}
	if p := spec.ConcurrencyPolicy; p == "" || p == batchv1.AllowConcurrent {
		switch ads := spec.JobTemplate.Spec.ActiveDeadlineSeconds; {
		case ads == nil:
			w = append(w, fmt.Sprintf("concurrencyPolicy is Allow and the Job template sets no activeDeadlineSeconds: "+
				"a run that is slow or stuck keeps going when the next one starts (runs can be %s apart), and "+
				"they pile up. Use Forbid to skip a run while the previous one is active, Replace to stop the "+
				"previous one, or bound each Job with activeDeadlineSeconds.", human(r.Period)))
		case time.Duration(*ads)*time.Second > r.Period:
			w = append(w, fmt.Sprintf("concurrencyPolicy is Allow and activeDeadlineSeconds (%s) is longer than the "+
				"shortest gap between runs (%s): runs can overlap. Use Forbid or Replace, or shorten the deadline.",
				human(time.Duration(*ads)*time.Second), human(r.Period)))
		}
	}
	if _, every := sched.Every(); every && unanchored {
		w = append(w, "@every runs are counted from the CronJob's creation and then from its last run; this "+
			"manifest has neither, so they are counted from the start time above.")
	}
	until := r.From.Add(clockChangeHorizon)
	if last := r.Runs[len(r.Runs)-1].Time; last.After(until) {
		until = last
	}
	for _, c := range sched.ClockChanges(r.From, until) {
		w = append(w, clockChangeWarning(c, r.Zone))
	}
	return w
}

func clockChangeWarning(c schedule.ClockChange, zone *time.Location) string {
	_, before := c.From.Zone()
	_, after := c.To.Zone()
	shift := time.Duration(after-before) * time.Second
	direction := "forward"
	if shift < 0 {
		direction, shift = "back", -shift
	}
	msg := fmt.Sprintf("On %s clocks in %s go %s from %s to %s:", c.To.Format("Mon 2006-01-02"), zoneName(zone),
		direction, c.From.Format("15:04"), c.To.Format("15:04"))
	if len(c.Skipped) > 0 {
		msg += fmt.Sprintf(" the %s %s not happen that day;", wallList(c.Skipped), plural(len(c.Skipped), "run does", "runs do"))
	}
	if len(c.Repeated) > 0 {
		msg += fmt.Sprintf(" the %s twice, %s apart;", wallList(c.Repeated)+" "+plural(len(c.Repeated), "run happens", "runs happen"),
			human(shift))
	}
	return strings.TrimSuffix(msg, ";") + "."
}

func wallList(ts []time.Time) string {
	const show = 3
	var parts []string
	for i, t := range ts {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(ts)-show))
			break
		}
		parts = append(parts, t.Format("15:04"))
	}
	return strings.Join(parts, ", ")
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

// human prints a duration without trailing zero units: 1h, 1h30m, 90s.
func human(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
