package explain

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"quartet.dev/quartet/internal/controllers/cronjob/schedule"
	"quartet.dev/quartet/internal/prose"
)

// periodSample is how many runs are looked at for the shortest gap.
const periodSample = 200

// clockChangeHorizon is how far ahead daylight-saving changes are looked for.
const clockChangeHorizon = 366 * 24 * time.Hour

// cronInfo is a CronJob's schedule as the controller will read it.
type cronInfo struct {
	sched *schedule.Schedule
	// zone is spec.timeZone loaded; nil when it is unset.
	zone *time.Location
	// problem is set when the controller cannot run the CronJob; rule is the
	// id of the rule that reports it.
	problem     error
	problemRule string
	// period is the shortest gap between two runs of the next periodSample.
	period time.Duration
}

func cronOf(w *world, cj *batchv1.CronJob) cronInfo {
	var c cronInfo
	spec := cj.Spec
	if strings.TrimSpace(spec.Schedule) == "" {
		c.problem, c.problemRule = errors.New("spec.schedule is empty"), ruleScheduleInvalid
		return c
	}
	if tz := spec.TimeZone; tz != nil {
		switch {
		case *tz == "":
			c.problem = errors.New(`spec.timeZone is "": the API server refuses it`)
		case strings.EqualFold(*tz, "Local"):
			c.problem = errors.New(`spec.timeZone "Local" is refused by the API server`)
		default:
			loc, err := time.LoadLocation(*tz)
			if err != nil {
				c.problem = fmt.Errorf("spec.timeZone %q is not an IANA time zone: the API server refuses it (a controller that cannot load it reports UnknownTimeZone and starts no Jobs)", *tz)
			}
			c.zone = loc
		}
		if c.problem != nil {
			c.problemRule = ruleTimeZoneInvalid
			return c
		}
	}
	zone := c.zone
	if zone == nil {
		zone = w.local
	}
	sched, err := schedule.Parse(spec.Schedule, zone)
	if err != nil {
		c.problem, c.problemRule = fmt.Errorf("spec.schedule %q does not parse: %v", spec.Schedule, err), ruleScheduleInvalid
		return c
	}
	c.sched = sched
	first := sched.Next(w.now)
	if first.IsZero() {
		c.problem, c.problemRule = fmt.Errorf("spec.schedule %q names no date that comes (such as February 30th): the controller reports InvalidSchedule and never starts a Job", spec.Schedule), ruleNeverFires
		return c
	}
	prev := first
	for i := 0; i < periodSample; i++ {
		t := sched.Next(prev)
		if t.IsZero() {
			break
		}
		if d := t.Sub(prev); c.period == 0 || d < c.period {
			c.period = d
		}
		prev = t
	}
	return c
}

// scheduleOf says when a CronJob runs: "daily 03:00 Asia/Seoul = 18:00
// UTC", or why it never does.
func scheduleOf(w *world, cj *batchv1.CronJob) (string, cronInfo) {
	c := cronOf(w, cj)
	if c.problem != nil {
		return fmt.Sprintf("never runs (schedule %q)", cj.Spec.Schedule), c
	}
	spec := cj.Spec.Schedule
	if schedule.HasTZPrefix(spec) {
		if f := strings.Fields(spec); len(f) > 1 && strings.Contains(f[0], "TZ=") {
			spec = strings.Join(f[1:], " ")
		}
	}
	phrase, clock := phraseSchedule(spec)
	if phrase == "" {
		phrase = fmt.Sprintf("on %q", spec)
		clock = true
	}
	if every, ok := c.sched.Every(); ok {
		return fmt.Sprintf("every %s, counted from the CronJob's creation and then from each run", prose.Duration(every)), c
	}
	if c.zone == nil {
		if schedule.HasTZPrefix(cj.Spec.Schedule) {
			return phrase + " " + c.sched.Location.String() + " (named in the schedule)", c
		}
		if !clock {
			return phrase, c
		}
		return phrase + " in the controller's time zone (no timeZone: UTC on most clusters, this machine's on quartet)", c
	}
	if !clock {
		return phrase, c
	}
	s := phrase + " " + c.zone.String()
	if c.zone.String() != "UTC" {
		s += " = " + utcClock(w, c)
	}
	return s, c
}

// utcClock is the UTC time of day of the runs: "18:00 UTC", or "06:30 or
// 07:30 UTC (daylight saving)" when it moves over the year.
func utcClock(w *world, c cronInfo) string {
	var seen []string
	t := w.now
	for i := 0; i < 1000 && len(seen) <= 3; i++ {
		t = c.sched.Next(t)
		if t.IsZero() || t.Sub(w.now) > clockChangeHorizon {
			break
		}
		if s := t.UTC().Format("15:04"); !slices.Contains(seen, s) {
			seen = append(seen, s)
		}
	}
	slices.Sort(seen)
	if len(seen) > 3 {
		return "various times UTC"
	}
	if len(seen) > 1 {
		return strings.Join(seen, " or ") + " UTC (daylight saving)"
	}
	if len(seen) == 0 {
		return "(no run in the next year)"
	}
	return seen[0] + " UTC"
}

// phraseSchedule puts the common shapes of a cron schedule in words. clock
// says the phrase names a time of day. An empty phrase means the shape is
// not a common one.
func phraseSchedule(spec string) (phrase string, clock bool) {
	switch strings.TrimSpace(spec) {
	case "@yearly", "@annually":
		return "yearly on January 1st at 00:00", true
	case "@monthly":
		return "monthly on the 1st at 00:00", true
	case "@weekly":
		return "weekly on Sunday at 00:00", true
	case "@daily", "@midnight":
		return "daily 00:00", true
	case "@hourly":
		return "hourly at :00", false
	}
	f := strings.Fields(spec)
	if len(f) != 5 {
		return "", false
	}
	minute, hour, dom, month, dow := f[0], f[1], f[2], f[3], f[4]
	star := func(s string) bool { return s == "*" || s == "?" }
	m, mOK := number(minute)
	switch {
	case star(minute) && star(hour) && star(dom) && star(month) && star(dow):
		return "every minute", false
	case minute == "*/1" && star(hour) && star(dom) && star(month) && star(dow):
		return "every minute", false
	case strings.HasPrefix(minute, "*/") && star(hour) && star(dom) && star(month) && star(dow):
		return "every " + strings.TrimPrefix(minute, "*/") + " minutes", false
	case mOK && star(hour) && star(dom) && star(month) && star(dow):
		return fmt.Sprintf("hourly at :%02d", m), false
	case mOK && strings.HasPrefix(hour, "*/") && star(dom) && star(month) && star(dow):
		return fmt.Sprintf("every %s hours at :%02d", strings.TrimPrefix(hour, "*/"), m), true
	}
	if !mOK {
		return "", false
	}
	var times []string
	for _, h := range strings.Split(hour, ",") {
		n, ok := number(h)
		if !ok || n > 23 {
			return "", false
		}
		times = append(times, fmt.Sprintf("%02d:%02d", n, m))
	}
	at := strings.Join(times, " and ")
	switch {
	case star(dom) && star(month) && star(dow):
		return "daily " + at, true
	case star(dom) && star(month):
		days, ok := weekdays(dow)
		if !ok {
			return "", false
		}
		return days + " " + at, true
	case star(month) && star(dow):
		d, ok := number(dom)
		if !ok {
			return "", false
		}
		return fmt.Sprintf("monthly on the %s at %s", ordinal(d), at), true
	case star(dow):
		d, dOK := number(dom)
		mo, mOK := monthName(month)
		if !dOK || !mOK {
			return "", false
		}
		return fmt.Sprintf("yearly on %s %d at %s", mo, d, at), true
	}
	return "", false
}

func number(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

var dayNames = []string{"Sundays", "Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays"}

func weekdays(dow string) (string, bool) {
	switch strings.ToUpper(dow) {
	case "1-5", "MON-FRI":
		return "weekdays", true
	case "0,6", "6,0", "SAT,SUN", "SUN,SAT":
		return "weekends", true
	}
	var names []string
	for _, d := range strings.Split(dow, ",") {
		n, ok := number(d)
		if !ok || n > 7 {
			return "", false
		}
		names = append(names, dayNames[n%7])
	}
	return "on " + strings.Join(names, " and "), true
}

func monthName(s string) (string, bool) {
	n, ok := number(s)
	if !ok || n < 1 || n > 12 {
		return "", false
	}
	return time.Month(n).String(), true
}

func ordinal(n int) string {
	switch {
	case n%100 >= 11 && n%100 <= 13:
		return fmt.Sprintf("%dth", n)
	case n%10 == 1:
		return fmt.Sprintf("%dst", n)
	case n%10 == 2:
		return fmt.Sprintf("%dnd", n)
	case n%10 == 3:
		return fmt.Sprintf("%drd", n)
	}
	return fmt.Sprintf("%dth", n)
}

// clockChangeMessage says how a daylight-saving change moves runs.
func clockChangeMessage(c schedule.ClockChange, zone *time.Location) string {
	_, before := c.From.Zone()
	_, after := c.To.Zone()
	shift := time.Duration(after-before) * time.Second
	direction := "forward"
	if shift < 0 {
		direction, shift = "back", -shift
	}
	msg := fmt.Sprintf("on %s clocks in %s go %s from %s to %s:", c.To.Format("Mon 2006-01-02"), zone,
		direction, c.From.Format("15:04"), c.To.Format("15:04"))
	if len(c.Skipped) > 0 {
		msg += fmt.Sprintf(" the %s run%s not happen that day;", wallList(c.Skipped), map[bool]string{true: "s do", false: " does"}[len(c.Skipped) > 1])
	}
	if len(c.Repeated) > 0 {
		msg += fmt.Sprintf(" the %s run%s twice, %s apart;", wallList(c.Repeated), map[bool]string{true: "s happen", false: " happens"}[len(c.Repeated) > 1], prose.Duration(shift))
	}
	return strings.TrimSuffix(msg, ";")
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
