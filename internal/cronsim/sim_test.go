package cronsim

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with the current output")

// start is a simulation's start: a Tuesday morning, on a minute.
var start = time.Date(2026, 5, 19, 8, 0, 0, 0, time.UTC)

// exercise3 is the chapter's exercise 3 CronJob, read from the same file
// the scenarios chapter/exercise-3-{allow,forbid,replace} apply.
func exercise3(t *testing.T, policy batchv1.ConcurrencyPolicy) *batchv1.CronJob {
	t.Helper()
	path := filepath.Join("..", "..", "examples", "chapter", "exercise-3-cronjob.yaml")
	cjs, err := manifest.LoadCronJobs(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cj := cjs[0]
	cj.Spec.ConcurrencyPolicy = policy
	return cj
}

func timesOf(r *Result, kind Kind) []time.Duration {
	var out []time.Duration
	for _, e := range r.Timeline {
		if e.Kind == kind {
			// To the second: the controller wakes 10 ms after a time.
			out = append(out, e.At.Sub(start).Truncate(time.Second))
		}
	}
	return out
}

// TestExercise3 checks the simulation against what the scenarios
// chapter/exercise-3-* observe on a real cluster, with quartet's controllers
// and with upstream's (test/scenarios/chapter_test.go: Allow runs two Jobs at
// once, Forbid one with JobAlreadyActive, Replace one while creating a Job
// every minute), and against the table in docs/cronjob.md that records their
// outcomes: Jobs of 150 s stopped at 90 s, watched for three schedules.
func TestExercise3(t *testing.T) {
	duration := 150 * time.Second // the manifest's quartet.dev/sim-run-seconds
	min := func(m, s int) time.Duration { return time.Duration(m)*time.Minute + time.Duration(s)*time.Second }
	run := func(p batchv1.ConcurrencyPolicy) *Result {
		r, err := Simulate(Config{CronJob: exercise3(t, p), From: start, For: 4*time.Minute + 59*time.Second, JobDuration: duration})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	allow := run(batchv1.AllowConcurrent)
	if allow.Peak != 2 {
		t.Errorf("Allow: %d Jobs at once, want 2 (the scenario expects overlap)", allow.Peak)
	}
	// A new Job every minute, each failing at 90 s with DeadlineExceeded;
	// failedJobsHistoryLimit 1 keeps only the newest failed one.
	if got, want := timesOf(allow, Created), []time.Duration{min(1, 0), min(2, 0), min(3, 0), min(4, 0)}; !equal(got, want) {
		t.Errorf("Allow: Jobs created at %v, want %v", got, want)
	}
	if got, want := timesOf(allow, Failed), []time.Duration{min(2, 30), min(3, 30), min(4, 30)}; !equal(got, want) {
		t.Errorf("Allow: Jobs failed at %v, want %v", got, want)
	}
	if got, want := timesOf(allow, Pruned), []time.Duration{min(3, 30), min(4, 30)}; !equal(got, want) {
		t.Errorf("Allow: failed Jobs pruned at %v, want %v", got, want)
	}

	forbid := run(batchv1.ForbidConcurrent)
	if forbid.Peak != 1 || forbid.Counts[Held] == 0 {
		t.Errorf("Forbid: %d Jobs at once and %d JobAlreadyActive, want 1 and some", forbid.Peak, forbid.Counts[Held])
	}
	// The 08:02 run is held back, starts when the first Job fails at 90 s
	// (30 s late); the 08:03 run is held again; about one Job every 90 s.
	if got, want := timesOf(forbid, Created), []time.Duration{min(1, 0), min(2, 30), min(4, 0)}; !equal(got, want) {
		t.Errorf("Forbid: Jobs created at %v, want %v", got, want)
	}
	if len(forbid.Late) != 1 || forbid.Late[0].Started.Sub(forbid.Late[0].Scheduled).Truncate(time.Second) != 30*time.Second {
		t.Errorf("Forbid: late runs %v, want the 08:02 run 30 s late", forbid.Late)
	}

	replace := run(batchv1.ReplaceConcurrent)
	if replace.Peak != 1 || replace.Counts[Created] < 2 {
		t.Errorf("Replace: %d Jobs at once, %d created; the scenario expects 1 and at least 2", replace.Peak, replace.Counts[Created])
	}
	// A new Job every minute; the previous one is deleted 60 s into its
	// run, so none reaches its deadline.
	if got, want := timesOf(replace, Replaced), []time.Duration{min(2, 0), min(3, 0), min(4, 0)}; !equal(got, want) {
		t.Errorf("Replace: Jobs replaced at %v, want %v", got, want)
	}
	if replace.Counts[Failed] != 0 {
		t.Errorf("Replace: %d Jobs failed, want none", replace.Counts[Failed])
	}
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func everyMinute(deadline *int64) *batchv1.CronJob {
	cj := &batchv1.CronJob{}
	cj.Name = "every-minute"
	cj.Spec.Schedule = "*/1 * * * *"
	cj.Spec.StartingDeadlineSeconds = deadline
	cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = "OnFailure"
	return cj
}

// TestNoBurstAfterDowntime is the scenario chapter/cronjob-no-burst-after-
// downtime: a */1 CronJob with startingDeadlineSeconds 300, the control
// plane down for ten minutes: one Job at most when it comes back, not ten.
func TestNoBurstAfterDowntime(t *testing.T) {
	out := &Window{Start: start.Add(10*time.Minute + 30*time.Second), End: start.Add(20*time.Minute + 30*time.Second)}
	r, err := Simulate(Config{CronJob: everyMinute(ptr.To[int64](300)), From: start, For: 25 * time.Minute, JobDuration: time.Second, Outage: out})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.AfterOutage.Missed) != 10 || len(r.AfterOutage.Started) != 1 {
		t.Fatalf("after the outage: %+v, want 10 missed and one started", r.AfterOutage)
	}
	if s := r.AfterOutage.Started[0]; !s.Scheduled.Equal(start.Add(20*time.Minute)) || !s.Started.Equal(out.End) {
		t.Errorf("started %+v, want the 08:20 run at 08:20:30", s)
	}
}

// TestTooManyMissedTimes is the scenario cronjob/too-many-missed-times: three
// hours behind without startingDeadlineSeconds gives TooManyMissedTimes and
// still starts only the most recent run.
func TestTooManyMissedTimes(t *testing.T) {
	out := &Window{Start: start.Add(30 * time.Second), End: start.Add(3*time.Hour + 30*time.Second)}
	r, err := Simulate(Config{CronJob: everyMinute(nil), From: start, For: 3*time.Hour + time.Minute, JobDuration: time.Second, Outage: out})
	if err != nil {
		t.Fatal(err)
	}
	e := r.AfterOutage
	if len(e.Missed) != 180 || len(e.Started) != 1 || !strings.Contains(strings.Join(e.Warnings, " "), "TooManyMissedTimes") {
		t.Errorf("after the outage: %d missed, started %v, warnings %v; want 180, one, TooManyMissedTimes", len(e.Missed), e.Started, e.Warnings)
	}
	// With a deadline, the count is bounded by it: no warning.
	r, err = Simulate(Config{CronJob: everyMinute(ptr.To[int64](300)), From: start, For: 3*time.Hour + time.Minute, JobDuration: time.Second, Outage: out})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.AfterOutage.Warnings) != 0 {
		t.Errorf("with startingDeadlineSeconds: warnings %v", r.AfterOutage.Warnings)
	}
}

// TestBackupAfterOutage: the chapter's 03:00 backup across a control-plane
// outage from 02:00 to 04:00. Without a deadline it starts at 04:00, an hour
// late; with 300 s it is skipped with MissSchedule.
func TestBackupAfterOutage(t *testing.T) {
	cj := &batchv1.CronJob{}
	cj.Name = "db-backup"
	cj.Spec.Schedule = "0 3 * * *"
	cj.Spec.TimeZone = ptr.To("Asia/Seoul")
	cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
	seoul, _ := time.LoadLocation("Asia/Seoul")
	from := time.Date(2026, 5, 19, 0, 0, 0, 0, seoul)
	out := &Window{Start: from.Add(2 * time.Hour), End: from.Add(4 * time.Hour)}
	c, err := Compare(Config{CronJob: cj, From: from, For: 6 * time.Hour, JobDuration: 20 * time.Minute, Outage: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range c.Variants {
		e := v.Result.AfterOutage
		if v.Deadline == nil {
			if len(e.Started) != 1 || e.Started[0].Started.Sub(e.Started[0].Scheduled) != time.Hour {
				t.Errorf("%s without deadline: %+v, want the 03:00 run an hour late", v.Policy, e)
			}
			continue
		}
		if *v.Deadline != SuggestedDeadline || len(e.Started) != 0 || strings.Join(e.Warnings, " ") != "MissSchedule" || len(v.Result.Skipped) != 1 {
			t.Errorf("%s with deadline %v: %+v, want the run skipped with MissSchedule", v.Policy, *v.Deadline, e)
		}
	}
}

func TestTTLDeletesFinishedJobs(t *testing.T) {
	cj := everyMinute(nil)
	cj.Spec.JobTemplate.Spec.TTLSecondsAfterFinished = ptr.To[int32](30)
	r, err := Simulate(Config{CronJob: cj, From: start, For: 3 * time.Minute, JobDuration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := timesOf(r, Expired), []time.Duration{time.Minute + 40*time.Second, 2*time.Minute + 40*time.Second}; !equal(got, want) {
		t.Errorf("Jobs deleted by their TTL at %v, want %v", got, want)
	}
}

func TestSimulateRefuses(t *testing.T) {
	cases := map[string]Config{
		"no CronJob":           {From: start, For: time.Hour},
		"no time":              {CronJob: everyMinute(nil), From: start},
		"outage outside":       {CronJob: everyMinute(nil), From: start, For: time.Hour, Outage: &Window{Start: start.Add(2 * time.Hour), End: start.Add(3 * time.Hour)}},
		"outage backwards":     {CronJob: everyMinute(nil), From: start, For: time.Hour, Outage: &Window{Start: start.Add(time.Minute), End: start}},
		"unparseable":          {CronJob: func() *batchv1.CronJob { cj := everyMinute(nil); cj.Spec.Schedule = "soon"; return cj }(), From: start, For: time.Hour},
		"too long to simulate": {CronJob: everyMinute(nil), From: start, For: 24 * 365 * time.Hour},
	}
	for name, cfg := range cases {
		if _, err := Simulate(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRenderGolden(t *testing.T) {
	cases := map[string]struct {
		args []string
	}{
		"exercise-3":        {args: []string{"-f", "../../examples/chapter/exercise-3-cronjob.yaml", "--for", "5m"}},
		"backup-outage":     {args: []string{"-f", "testdata/db-backup-no-deadline.yaml", "--from", "00:00", "--for", "6h", "--job-duration", "20m", "--outage", "02:00-04:00"}},
		"exercise-3-outage": {args: []string{"-f", "../../examples/chapter/exercise-3-cronjob.yaml", "--for", "6h", "--job-duration", "90s", "--outage", "10:00-11:00", "--timeline=false"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := runCommand(tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update creates it)", err)
			}
			if string(want) != out {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, out)
			}
		})
	}
}

func runCommand(args ...string) (string, error) {
	cmd := Command(Deps{Now: func() time.Time { return start }, Local: func() *time.Location { return time.UTC }})
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestCommandErrors(t *testing.T) {
	cases := map[string]struct {
		args []string
		want string
	}{
		"no file":              {args: []string{}, want: "give the CronJob's manifest with -f FILE"},
		"no duration":          {args: []string{"-f", "testdata/db-backup-no-deadline.yaml"}, want: "--job-duration"},
		"bad outage":           {args: []string{"-f", "testdata/db-backup-no-deadline.yaml", "--job-duration", "1m", "--outage", "10-11"}, want: "want HH:MM-HH:MM"},
		"outage after the end": {args: []string{"-f", "testdata/db-backup-no-deadline.yaml", "--job-duration", "1m", "--for", "1h", "--outage", "10:00-11:00"}, want: "not inside the simulated time"},
		"bad from":             {args: []string{"-f", "testdata/db-backup-no-deadline.yaml", "--job-duration", "1m", "--from", "noon"}, want: "--from \"noon\""},
		"missing file":         {args: []string{"-f", "testdata/absent.yaml", "--job-duration", "1m"}, want: "no such file"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := runCommand(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseOutage(t *testing.T) {
	seoul, _ := time.LoadLocation("Asia/Seoul")
	from := time.Date(2026, 5, 19, 8, 0, 0, 0, seoul)
	w, err := parseOutage("23:30-00:30", from, seoul)
	if err != nil {
		t.Fatal(err)
	}
	if !w.Start.Equal(time.Date(2026, 5, 19, 23, 30, 0, 0, seoul)) || w.End.Sub(w.Start) != time.Hour {
		t.Errorf("23:30-00:30 = %v..%v", w.Start, w.End)
	}
	w, _ = parseOutage("07:00-07:30", from, seoul)
	if !w.Start.Equal(time.Date(2026, 5, 20, 7, 0, 0, 0, seoul)) {
		t.Errorf("an outage before the start is the next day's: %v", w.Start)
	}
}
