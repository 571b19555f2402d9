// Package schedule is the time arithmetic of CronJobs, shared by quartet's
// CronJob controller and `quartet cron next`: parsing spec.schedule in
// spec.timeZone the way Kubernetes does (robfig/cron/v3's standard parser),
// and finding the scheduled times between two instants. Everything here is a
// pure function of its arguments; nothing reads the clock.
package schedule

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"
	// The IANA time zone database is compiled in, so spec.timeZone works on a
	// machine without /usr/share/zoneinfo. time.LoadLocation prefers the
	// system's database when there is one.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// TooManyMissed is the number of missed scheduled times past which the
// controller warns (TooManyMissedTimes). Kubernetes chose it as "more than a
// long weekend of hourly runs, less than lots".
const TooManyMissed = 100

// ErrNeverFires is returned for a schedule that parses but names no real
// date, such as "0 0 30 2 *" (February 30th).
var ErrNeverFires = errors.New("the schedule matches no date (for example February 30th), so it never fires")

// Schedule is a parsed spec.schedule bound to the zone its fields are read in.
type Schedule struct {
	cron cron.Schedule
	// every is the period of an "@every <duration>" schedule, whose times are
	// a chain anchored at an instant rather than wall-clock matches; zero for
	// field and @hourly-style schedules.
	every time.Duration
	// Location is the zone the schedule's fields are read in. For @every
	// schedules it only affects how times are printed.
	Location *time.Location
}

// Location returns the zone a CronJob's schedule is read in: spec.timeZone
// when it is set, otherwise local, the zone of the process running the
// controller (Kubernetes uses the controller manager's local zone).
func Location(timeZone *string, local *time.Location) (*time.Location, error) {
	if timeZone != nil {
		return time.LoadLocation(*timeZone)
	}
	return cmp.Or(local, time.Local), nil
}

// HasTZPrefix reports whether spec carries a "TZ=" or "CRON_TZ=" zone inside
// the schedule string. The API server refuses such schedules on create (the
// timeZone field replaced them) but old objects may still have one; like
// Kubernetes, quartet checks for the substring "TZ" anywhere.
func HasTZPrefix(spec string) bool {
	return strings.Contains(spec, "TZ")
}

// Parse parses spec as Kubernetes does: five fields (minute hour
// day-of-month month day-of-week) or a descriptor (@yearly, @annually,
// @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>), read in
// loc. A "TZ=zone " or "CRON_TZ=zone " prefix in spec overrides loc. Malformed
// input returns an error, never a panic.
func Parse(spec string, loc *time.Location) (s *Schedule, err error) {
	loc = cmp.Or(loc, time.Local)
	defer func() {
		// robfig/cron indexes into the string for a "TZ=" prefix without a
		// following space and panics; Kubernetes recovers the same way.
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("invalid schedule format: %v", r)
		}
	}()
	parsed, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, err
	}
	s = &Schedule{cron: parsed, Location: loc}
	switch c := parsed.(type) {
	case *cron.SpecSchedule:
		// robfig marks "no zone given" with time.Local and then reads the
		// fields in whatever zone the time passed to Next is in. Binding the
		// zone here makes the result independent of the caller's times.
		if c.Location == time.Local {
			c.Location = loc
		}
		s.Location = c.Location
	case cron.ConstantDelaySchedule:
		s.every = c.Delay
	}
	return s, nil
}

// Every returns the period of an "@every" schedule, and false for any other.
func (s *Schedule) Every() (time.Duration, bool) {
	return s.every, s.every > 0
}

// Next returns the first scheduled time strictly after t, in s.Location, or
// the zero time if there is none within five years (robfig's search limit).
// For an @every schedule the answer is t plus the period.
func (s *Schedule) Next(t time.Time) time.Time {
	n := s.cron.Next(t)
	if n.IsZero() {
		return n
	}
	return n.In(s.Location)
}

// NextAfter returns the first scheduled time after now, counted from anchor:
// the first time after anchor when anchor is later than now. The anchor
// matters only for @every schedules, whose times are anchor + k·period
// (Kubernetes anchors them at the last scheduled time, or at the CronJob's
// creation); field schedules match wall clocks and ignore it. The zero time
// means the schedule never fires again.
func (s *Schedule) NextAfter(anchor, now time.Time) time.Time {
	if anchor.After(now) {
		return s.Next(anchor)
	}
	if s.every <= 0 {
		return s.Next(now)
	}
	first := s.Next(anchor)
	if first.After(now) {
		return first
	}
	steps := now.Sub(first)/s.every + 1
	return first.Add(steps * s.every)
}

// Unmet describes the scheduled times in (anchor, now].
type Unmet struct {
	// MostRecent is the latest of them; zero when there is none.
	MostRecent time.Time
	// Count is how many there are, counted exactly up to TooManyMissed+1 and
	// reported as TooManyMissed+1 beyond that.
	Count int
}

// TooMany reports whether more than TooManyMissed times were missed.
func (u Unmet) TooMany() bool { return u.Count > TooManyMissed }

// Unmet returns the scheduled times of the chain anchored at anchor (see
// NextAfter) that fall after both anchor and after, up to and including now.
// The controller passes the last scheduled time (or the creation time) as
// anchor and now minus spec.startingDeadlineSeconds as after.
//
// It costs at most about TooManyMissed calls to Next however far back anchor
// is: past that it stops counting and looks back from now for the most recent
// time instead of walking the whole way.
//
// Kubernetes differs in two corner cases. It estimates the count from the gap
// between the first two times and jumps ahead by it, which on uneven schedules
// ("30 10,14 * * 1-5" over a weekend) can overshoot and lose the most recent
// missed time; and it moves an @every chain's start to the deadline, so an
// @every schedule whose startingDeadlineSeconds is shorter than its period
// never fires. Here the count is exact and the chain stays anchored.
func (s *Schedule) Unmet(anchor, after, now time.Time) (Unmet, error) {
	start := anchor
	if after.After(anchor) {
		start = after
		if s.every > 0 {
			// The last chain time at or before after, or anchor itself.
			start = anchor
			if first := s.Next(anchor); !first.After(after) {
				start = first.Add(after.Sub(first) / s.every * s.every)
			}
		}
	}
	t := s.Next(start)
	if t.IsZero() {
		return Unmet{}, ErrNeverFires
	}
	if t.After(now) {
		return Unmet{}, nil
	}
	u := Unmet{MostRecent: t, Count: 1}
	for u.Count <= TooManyMissed {
		n := s.Next(u.MostRecent)
		if n.IsZero() || n.After(now) {
			return u, nil
		}
		u.MostRecent, u.Count = n, u.Count+1
	}
	// More than TooManyMissed: find the most recent without walking there.
	if s.every > 0 {
		u.MostRecent = t.Add(now.Sub(t) / s.every * s.every)
	} else {
		u.MostRecent = s.latestAtOrBefore(u.MostRecent, now)
	}
	return u, nil
}

// latestAtOrBefore returns the last scheduled time in [known, now], where
// known is a scheduled time. Field schedules match wall clocks, so Next may
// start anywhere: it looks back from now over a window that doubles until
// the window holds a scheduled time, then walks forward inside it.
func (s *Schedule) latestAtOrBefore(known, now time.Time) time.Time {
	for window := time.Minute; ; window *= 2 {
		from := now.Add(-window)
		if !from.After(known) {
			from = known
		}
		t := s.Next(from)
		if from.Equal(known) || (!t.IsZero() && !t.After(now)) {
			latest := known
			if from.After(known) {
				latest = t
			}
			for n := s.Next(latest); !n.IsZero() && !n.After(now); n = s.Next(n) {
				latest = n
			}
			return latest
		}
	}
}

// ClockChange is a daylight-saving (or other offset) change in a schedule's
// zone that moves or repeats some of its runs.
type ClockChange struct {
	// At is the instant the offset changes.
	At time.Time
	// From and To are the wall-clock readings just before and just after At:
	// 02:00 and 03:00 when clocks go forward, 02:00 and 01:00 when they go
	// back.
	From, To time.Time
	// Skipped are the wall-clock times the schedule names that do not
	// happen because those readings never appear that day.
	Skipped []time.Time
	// Repeated are the wall-clock times that happen twice, an hour (or the
	// size of the change) apart.
	Repeated []time.Time
}

// ClockChanges returns the offset changes of s.Location between from and to
// that skip or repeat runs of s. Schedules that fire every hour are left out:
// they keep their period across a change and nobody is surprised. It compares
// the runs robfig/cron actually produces (the same ones the controller
// starts) with the wall-clock times the fields name.
func (s *Schedule) ClockChanges(from, to time.Time) []ClockChange {
	spec, ok := s.cron.(*cron.SpecSchedule)
	if !ok || spec.Hour&(1<<24-1) == 1<<24-1 {
		return nil
	}
	wall := *spec
	wall.Location = time.UTC
	var out []ClockChange
	for _, at := range offsetChanges(s.Location, from, to) {
		name, before := at.Add(-time.Second).In(s.Location).Zone()
		c := ClockChange{At: at, From: at.In(time.FixedZone(name, before)), To: at.In(s.Location)}
		happened := map[time.Time]int{}
		for t := s.Next(at.Add(-26 * time.Hour)); !t.IsZero() && t.Before(at.Add(26*time.Hour)); t = s.Next(t) {
			happened[asWall(t)]++
		}
		// Each wall-clock time named by the fields over the two days around
		// the change, read as if there were no change, in order: it ran
		// once, never or more than once.
		lo, hi := asWall(at.Add(-26*time.Hour).In(s.Location)), asWall(at.Add(26*time.Hour).In(s.Location))
		for w := wall.Next(lo); !w.IsZero() && w.Before(hi); w = wall.Next(w) {
			if n := happened[w]; n == 0 {
				c.Skipped = append(c.Skipped, w)
			} else if n > 1 {
				c.Repeated = append(c.Repeated, w)
			}
		}
		if len(c.Skipped)+len(c.Repeated) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// asWall returns t's wall-clock reading as a UTC time, for comparing
// readings across offsets.
func asWall(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// offsetChanges returns the instants in [from, to) at which loc's UTC offset
// changes, found by stepping an hour at a time and bisecting to the second.
func offsetChanges(loc *time.Location, from, to time.Time) []time.Time {
	var out []time.Time
	_, prev := from.In(loc).Zone()
	for t := from; t.Before(to); {
		next := t.Add(time.Hour)
		if _, off := next.In(loc).Zone(); off != prev {
			lo, hi := t, next
			for hi.Sub(lo) > time.Second {
				mid := lo.Add(hi.Sub(lo) / 2)
				if _, o := mid.In(loc).Zone(); o == prev {
					lo = mid
				} else {
					hi = mid
				}
			}
			out = append(out, hi.Truncate(time.Second))
			prev = off
		}
		t = next
	}
	return out
}
