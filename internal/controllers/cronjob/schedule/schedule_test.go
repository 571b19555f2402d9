package schedule

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

// at parses "2006-01-02 15:04:05" in loc.
func at(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation(time.DateTime, s, loc)
	if err != nil {
		t.Fatalf("ParseInLocation(%q): %v", s, err)
	}
	return v
}

func TestParse(t *testing.T) {
	seoul := mustZone(t, "Asia/Seoul")
	cases := map[string]struct {
		spec    string
		wantErr string
		// from and want check where the parsed schedule fires, in UTC.
		from, want string
		every      time.Duration
	}{
		"five fields":              {spec: "0 3 * * *", from: "2026-07-01 00:00:00", want: "2026-07-01 18:00:00"},
		"step and range":           {spec: "*/15 9-17 * * 1-5", from: "2026-07-03 08:20:00", want: "2026-07-03 08:30:00"},
		"step range ends friday":   {spec: "*/15 9-17 * * 1-5", from: "2026-07-03 08:45:00", want: "2026-07-06 00:00:00"},
		"question mark day":        {spec: "0 * * * ?", from: "2026-07-01 00:00:00", want: "2026-07-01 01:00:00"},
		"names":                    {spec: "0 9 * JAN-DEC MON-FRI", from: "2026-07-04 00:00:00", want: "2026-07-06 00:00:00"},
		"@hourly":                  {spec: "@hourly", from: "2026-07-01 00:10:00", want: "2026-07-01 01:00:00"},
		"@daily is midnight zone":  {spec: "@daily", from: "2026-07-01 00:00:00", want: "2026-07-01 15:00:00"},
		"@midnight":                {spec: "@midnight", from: "2026-07-01 00:00:00", want: "2026-07-01 15:00:00"},
		"@weekly is sunday":        {spec: "@weekly", from: "2026-07-01 00:00:00", want: "2026-07-04 15:00:00"},
		"@monthly":                 {spec: "@monthly", from: "2026-07-01 00:00:00", want: "2026-07-31 15:00:00"},
		"@yearly":                  {spec: "@yearly", from: "2026-07-01 00:00:00", want: "2026-12-31 15:00:00"},
		"@annually":                {spec: "@annually", from: "2026-07-01 00:00:00", want: "2026-12-31 15:00:00"},
		"@every":                   {spec: "@every 90m", from: "2026-07-01 00:00:00", want: "2026-07-01 01:30:00", every: 90 * time.Minute},
		"@every below a second":    {spec: "@every 10ms", from: "2026-07-01 00:00:00", want: "2026-07-01 00:00:01", every: time.Second},
		"TZ prefix overrides zone": {spec: "TZ=UTC 0 3 * * *", from: "2026-07-01 00:00:00", want: "2026-07-01 03:00:00"},
		"CRON_TZ prefix":           {spec: "CRON_TZ=America/New_York 0 3 * * *", from: "2026-07-01 00:00:00", want: "2026-07-01 07:00:00"},
		"six fields":               {spec: "0 0 3 * * *", wantErr: "expected exactly 5 fields"},
		"four fields":              {spec: "0 3 * *", wantErr: "expected exactly 5 fields"},
		"empty":                    {spec: "", wantErr: "empty spec string"},
		"words":                    {spec: "obvious error schedule", wantErr: "expected exactly 5 fields"},
		"minute out of range":      {spec: "60 * * * *", wantErr: "above maximum"},
		"unknown descriptor":       {spec: "@fortnightly", wantErr: "unrecognized descriptor"},
		"bad every":                {spec: "@every often", wantErr: "failed to parse duration"},
		"TZ prefix without space":  {spec: "TZ=UTC", wantErr: "invalid schedule format"},
		"TZ prefix unknown zone":   {spec: "TZ=Mars/Olympus 0 3 * * *", wantErr: "provided bad location"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Parse(tc.spec, seoul)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want one containing %q", tc.spec, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.spec, err)
			}
			got := s.Next(at(t, time.UTC, tc.from)).UTC()
			if want := at(t, time.UTC, tc.want); !got.Equal(want) {
				t.Errorf("Next = %v, want %v", got, want)
			}
			if every, ok := s.Every(); every != tc.every || ok != (tc.every > 0) {
				t.Errorf("Every() = %v, %v; want %v", every, ok, tc.every)
			}
		})
	}
}

func TestLocation(t *testing.T) {
	local := mustZone(t, "Europe/Berlin")
	zone := func(s string) *string { return &s }
	cases := map[string]struct {
		timeZone *string
		want     string
		wantErr  bool
	}{
		"unset uses the controller's zone": {want: "Europe/Berlin"},
		"IANA name":                        {timeZone: zone("Asia/Seoul"), want: "Asia/Seoul"},
		"UTC":                              {timeZone: zone("UTC"), want: "UTC"},
		"unknown":                          {timeZone: zone("bad timezone"), wantErr: true},
		"relative path":                    {timeZone: zone("../etc/passwd"), wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			loc, err := Location(tc.timeZone, local)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Location(%q) = %v, want an error", *tc.timeZone, loc)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if loc.String() != tc.want {
				t.Errorf("Location = %v, want %v", loc, tc.want)
			}
		})
	}
}

// TestNextAcrossDaylightSaving pins what a CronJob does when the clocks
// change, since that is what users are surprised by: a wall-clock time that
// does not exist is skipped that day, one that happens twice runs twice.
// Kubernetes uses the same library and behaves the same.
func TestNextAcrossDaylightSaving(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	seoul := mustZone(t, "Asia/Seoul")
	london := mustZone(t, "Europe/London")
	cases := map[string]struct {
		spec string
		loc  *time.Location
		from string // in loc
		want []string
	}{
		"new york spring forward skips 02:30": {
			spec: "30 2 * * *", loc: ny, from: "2026-03-07 12:00:00",
			want: []string{"2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"},
		},
		"new york spring forward keeps 01:59": {
			spec: "59 1 * * *", loc: ny, from: "2026-03-07 12:00:00",
			want: []string{"2026-03-08T01:59:00-05:00", "2026-03-09T01:59:00-04:00"},
		},
		"new york spring forward hourly jumps from 01:00 to 03:00": {
			spec: "0 * * * *", loc: ny, from: "2026-03-08 00:30:00",
			want: []string{"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"},
		},
		"new york fall back runs 01:30 twice": {
			spec: "30 1 * * *", loc: ny, from: "2026-10-31 12:00:00",
			want: []string{"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00"},
		},
		"new york fall back hourly keeps an hour apart": {
			spec: "0 * * * *", loc: ny, from: "2026-11-01 00:30:00",
			want: []string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"},
		},
		"new york every minute across the gap": {
			spec: "*/1 * * * *", loc: ny, from: "2026-03-08 01:58:30",
			want: []string{"2026-03-08T01:59:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:01:00-04:00"},
		},
		"new york midnight on both sides of spring forward": {
			spec: "0 0 * * *", loc: ny, from: "2026-03-07 12:00:00",
			want: []string{"2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"},
		},
		"london 01:30 on the spring-forward day": {
			spec: "30 1 * * *", loc: london, from: "2026-03-28 12:00:00",
			want: []string{"2026-03-30T01:30:00+01:00"},
		},
		"seoul has no daylight saving": {
			spec: "0 3 * * *", loc: seoul, from: "2026-03-07 12:00:00",
			want: []string{"2026-03-08T03:00:00+09:00", "2026-03-09T03:00:00+09:00"},
		},
		"seoul's 1987 daylight saving from the embedded database": {
			spec: "30 2 * * *", loc: seoul, from: "1987-05-09 12:00:00",
			want: []string{"1987-05-11T02:30:00+10:00"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Parse(tc.spec, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for next := at(t, tc.loc, tc.from); len(got) < len(tc.want); {
				next = s.Next(next)
				got = append(got, next.Format(time.RFC3339))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("times (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNextAfter(t *testing.T) {
	utc := time.UTC
	cases := map[string]struct {
		spec              string
		anchor, now, want string
	}{
		"field schedule ignores the anchor":       {spec: "0 * * * *", anchor: "2026-07-01 09:17:00", now: "2026-07-01 12:30:00", want: "2026-07-01 13:00:00"},
		"field schedule after a future anchor":    {spec: "0 * * * *", anchor: "2026-07-01 15:00:00", now: "2026-07-01 12:30:00", want: "2026-07-01 16:00:00"},
		"every follows the chain from the anchor": {spec: "@every 1h", anchor: "2026-07-01 09:17:00", now: "2026-07-01 12:30:00", want: "2026-07-01 13:17:00"},
		"every on a chain time":                   {spec: "@every 1h", anchor: "2026-07-01 09:17:00", now: "2026-07-01 12:17:00", want: "2026-07-01 13:17:00"},
		"every before the first time":             {spec: "@every 1h", anchor: "2026-07-01 09:17:00", now: "2026-07-01 09:20:00", want: "2026-07-01 10:17:00"},
		"every with the anchor in the future":     {spec: "@every 1h", anchor: "2026-07-01 15:00:00", now: "2026-07-01 12:30:00", want: "2026-07-01 16:00:00"},
		"every a year later":                      {spec: "@every 7m", anchor: "2026-07-01 00:00:00", now: "2027-07-01 00:00:00", want: "2027-07-01 00:02:00"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Parse(tc.spec, utc)
			if err != nil {
				t.Fatal(err)
			}
			got := s.NextAfter(at(t, utc, tc.anchor), at(t, utc, tc.now))
			if want := at(t, utc, tc.want); !got.Equal(want) {
				t.Errorf("NextAfter = %v, want %v", got, want)
			}
		})
	}
}

func TestUnmet(t *testing.T) {
	utc := time.UTC
	ny := mustZone(t, "America/New_York")
	cases := map[string]struct {
		spec           string
		loc            *time.Location
		anchor, after  string // after "" means no deadline
		now            string
		wantMostRecent string // "" means none
		wantCount      int
		wantErr        error
	}{
		"nothing due yet": {
			spec: "0 * * * *", anchor: "2026-07-01 09:01:00", now: "2026-07-01 09:59:00",
		},
		"exactly at the scheduled time": {
			spec: "0 * * * *", anchor: "2026-07-01 09:01:00", now: "2026-07-01 10:00:00",
			wantMostRecent: "2026-07-01 10:00:00", wantCount: 1,
		},
		"the anchor itself is not unmet": {
			spec: "0 * * * *", anchor: "2026-07-01 10:00:00", now: "2026-07-01 10:30:00",
		},
		"one due": {
			spec: "0 * * * *", anchor: "2026-07-01 09:01:00", now: "2026-07-01 10:01:00",
			wantMostRecent: "2026-07-01 10:00:00", wantCount: 1,
		},
		"three missed, the most recent wins": {
			spec: "0 * * * *", anchor: "2026-07-01 09:01:00", now: "2026-07-01 12:59:00",
			wantMostRecent: "2026-07-01 12:00:00", wantCount: 3,
		},
		"exactly one hundred missed is not too many": {
			spec: "*/1 * * * *", anchor: "2026-07-01 09:00:00", now: "2026-07-01 10:40:30",
			wantMostRecent: "2026-07-01 10:40:00", wantCount: 100,
		},
		"one hundred and one missed is too many": {
			spec: "*/1 * * * *", anchor: "2026-07-01 09:00:00", now: "2026-07-01 10:41:30",
			wantMostRecent: "2026-07-01 10:41:00", wantCount: 101,
		},
		"a week of hourly runs": {
			spec: "0 * * * *", anchor: "2026-07-01 10:01:00", now: "2026-07-08 10:00:00",
			wantMostRecent: "2026-07-08 10:00:00", wantCount: 101,
		},
		"years of minutes": {
			spec: "*/1 * * * *", anchor: "2016-07-01 10:01:00", now: "2026-07-08 10:00:59",
			wantMostRecent: "2026-07-08 10:00:00", wantCount: 101,
		},
		"uneven gaps over a weekend": {
			spec: "30 10,14 * * 1-5", anchor: "2026-06-01 00:00:00", now: "2026-07-04 12:00:00", // a Saturday
			wantMostRecent: "2026-07-03 14:30:00", wantCount: 50,
		},
		"many missed on a sparse schedule": {
			spec: "* 9 1 * *", anchor: "2026-01-01 00:00:00", now: "2026-07-20 00:00:00",
			wantMostRecent: "2026-07-01 09:59:00", wantCount: 101,
		},
		"deadline keeps only recent times": {
			spec: "*/1 * * * *", anchor: "2026-07-01 09:00:00", after: "2026-07-01 09:55:10", now: "2026-07-01 10:00:10",
			wantMostRecent: "2026-07-01 10:00:00", wantCount: 5,
		},
		"deadline already passed the only time": {
			spec: "0 * * * *", anchor: "2026-07-01 09:01:00", after: "2026-07-01 10:00:50", now: "2026-07-01 10:01:00",
		},
		"deadline before the anchor changes nothing": {
			spec: "0 * * * *", anchor: "2026-07-01 09:01:00", after: "2026-06-01 00:00:00", now: "2026-07-01 12:59:00",
			wantMostRecent: "2026-07-01 12:00:00", wantCount: 3,
		},
		"every: chain from the anchor": {
			spec: "@every 1h", anchor: "2026-07-01 08:59:00", now: "2026-07-01 11:30:00",
			wantMostRecent: "2026-07-01 10:59:00", wantCount: 2,
		},
		"every: deadline shorter than the period keeps the chain": {
			spec: "@every 1h", anchor: "2026-07-01 08:59:00", after: "2026-07-01 09:58:30", now: "2026-07-01 10:00:00",
			wantMostRecent: "2026-07-01 09:59:00", wantCount: 1,
		},
		"every: the deadline excludes a time exactly at it": {
			spec: "@every 1h", anchor: "2026-07-01 08:59:00", after: "2026-07-01 09:59:00", now: "2026-07-01 10:00:00",
		},
		"every: deadline passed": {
			spec: "@every 1h", anchor: "2026-07-01 08:59:00", after: "2026-07-01 09:59:30", now: "2026-07-01 10:00:00",
		},
		"every: a week later": {
			spec: "@every 1h", anchor: "2026-07-01 10:01:00", now: "2026-07-08 10:00:00",
			wantMostRecent: "2026-07-08 09:01:00", wantCount: 101,
		},
		"never fires": {
			spec: "59 23 31 2 *", anchor: "2026-07-01 00:00:00", now: "2026-07-08 10:00:00",
			wantErr: ErrNeverFires,
		},
		"new york hourly over fall back counts the repeated hour": {
			spec: "0 * * * *", loc: ny, anchor: "2026-11-01 00:30:00", now: "2026-11-01 02:30:00",
			wantMostRecent: "2026-11-01 02:00:00", wantCount: 3,
		},
		"new york 02:30 missed on spring-forward day": {
			spec: "30 2 * * *", loc: ny, anchor: "2026-03-08 00:00:00", now: "2026-03-08 23:00:00",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			loc := tc.loc
			if loc == nil {
				loc = utc
			}
			s, err := Parse(tc.spec, loc)
			if err != nil {
				t.Fatal(err)
			}
			after := time.Time{}
			if tc.after != "" {
				after = at(t, loc, tc.after)
			}
			got, err := s.Unmet(at(t, loc, tc.anchor), after, at(t, loc, tc.now))
			if err != tc.wantErr {
				t.Fatalf("Unmet error = %v, want %v", err, tc.wantErr)
			}
			want := Unmet{Count: tc.wantCount}
			if tc.wantMostRecent != "" {
				want.MostRecent = at(t, loc, tc.wantMostRecent)
			}
			if !got.MostRecent.Equal(want.MostRecent) || got.Count != want.Count {
				t.Errorf("Unmet = {%v %d}, want {%v %d}", got.MostRecent, got.Count, want.MostRecent, want.Count)
			}
			if got.TooMany() != (tc.wantCount > TooManyMissed) {
				t.Errorf("TooMany = %v with count %d", got.TooMany(), got.Count)
			}
		})
	}
}

// TestUnmetIsCheap guards the promise that a CronJob whose controller was
// away for years costs a bounded number of schedule steps.
func TestUnmetIsCheap(t *testing.T) {
	s, err := Parse("*/1 * * * *", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	anchor := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2026, 7, 1, 0, 0, 30, 0, time.UTC)
	start := time.Now()
	u, err := s.Unmet(anchor, time.Time{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC); !u.MostRecent.Equal(want) {
		t.Errorf("MostRecent = %v, want %v", u.MostRecent, want)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Unmet over 36 years of minutes took %v", elapsed)
	}
}

func TestClockChanges(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	seoul := mustZone(t, "Asia/Seoul")
	london := mustZone(t, "Europe/London")
	year := func(loc *time.Location) (time.Time, time.Time) {
		return time.Date(2026, 1, 1, 0, 0, 0, 0, loc), time.Date(2027, 1, 1, 0, 0, 0, 0, loc)
	}
	type change struct {
		At, From, To      string
		Skipped, Repeated []string
	}
	cases := map[string]struct {
		spec string
		loc  *time.Location
		want []change
	}{
		"daily 02:30 in New York": {
			spec: "30 2 * * *", loc: ny,
			want: []change{{At: "2026-03-08T07:00:00Z", From: "02:00", To: "03:00", Skipped: []string{"2026-03-08 02:30"}}},
		},
		"daily 01:30 in New York": {
			spec: "30 1 * * *", loc: ny,
			want: []change{{At: "2026-11-01T06:00:00Z", From: "02:00", To: "01:00", Repeated: []string{"2026-11-01 01:30"}}},
		},
		"every two hours in New York": {
			spec: "0 */2 * * *", loc: ny,
			want: []change{{At: "2026-03-08T07:00:00Z", From: "02:00", To: "03:00", Skipped: []string{"2026-03-08 02:00"}}},
		},
		"weekdays 01:15 and 01:45 in London": {
			spec: "15,45 1 * * 1-5", loc: london,
			// 2026-03-29 and 2026-10-25 are Sundays: nothing to skip or repeat.
		},
		"sundays 01:15 in London": {
			spec: "15 1 * * 0", loc: london,
			want: []change{
				{At: "2026-03-29T01:00:00Z", From: "01:00", To: "02:00", Skipped: []string{"2026-03-29 01:15"}},
				{At: "2026-10-25T01:00:00Z", From: "02:00", To: "01:00", Repeated: []string{"2026-10-25 01:15"}},
			},
		},
		"every hour is left out":      {spec: "30 * * * *", loc: ny},
		"every minute is left out":    {spec: "*/1 * * * *", loc: ny},
		"@every is left out":          {spec: "@every 1h", loc: ny},
		"no daylight saving in Seoul": {spec: "30 2 * * *", loc: seoul},
		"noon is never affected":      {spec: "0 12 * * *", loc: ny},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Parse(tc.spec, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			var got []change
			for _, c := range s.ClockChanges(year(tc.loc)) {
				g := change{At: c.At.UTC().Format(time.RFC3339), From: c.From.Format("15:04"), To: c.To.Format("15:04")}
				for _, w := range c.Skipped {
					g.Skipped = append(g.Skipped, w.Format("2006-01-02 15:04"))
				}
				for _, w := range c.Repeated {
					g.Repeated = append(g.Repeated, w.Format("2006-01-02 15:04"))
				}
				got = append(got, g)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ClockChanges (-want +got):\n%s", diff)
			}
		})
	}
}
