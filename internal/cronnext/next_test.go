package cronnext

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func cronJob(mods ...func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: "ops"},
		Spec: batchv1.CronJobSpec{
			Schedule:                "0 3 * * *",
			TimeZone:                ptr.To("Asia/Seoul"),
			ConcurrencyPolicy:       batchv1.ForbidConcurrent,
			StartingDeadlineSeconds: ptr.To[int64](300),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				ActiveDeadlineSeconds: ptr.To[int64](1800),
				Template:              corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure}},
			}},
		},
	}
	for _, m := range mods {
		m(cj)
	}
	return cj
}

func TestNext(t *testing.T) {
	from := time.Date(2026, 5, 19, 10, 0, 0, 0, time.UTC)
	berlin := mustZone(t, "Europe/Berlin")
	cases := map[string]struct {
		cj    *batchv1.CronJob
		count int
		// wantRuns are RFC 3339 times in the schedule's zone.
		wantRuns []string
		// wantWarnings are distinctive words of each warning, in order.
		wantWarnings []string
		wantPeriod   time.Duration
		wantErr      string
	}{
		"safe settings give no warnings": {
			cj: cronJob(), count: 2,
			wantRuns:   []string{"2026-05-20T03:00:00+09:00", "2026-05-21T03:00:00+09:00"},
			wantPeriod: 24 * time.Hour,
		},
		"no time zone reads the schedule on this machine": {
			cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.TimeZone = nil }), count: 1,
			wantRuns:     []string{"2026-05-20T03:00:00+02:00"},
			wantWarnings: []string{"timeZone is not set, so \"0 3 * * *\" is read in the time zone of the process running the CronJob controller"},
			wantPeriod:   24 * time.Hour,
		},
		"no starting deadline": {
			cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = nil }), count: 1,
			wantRuns:     []string{"2026-05-20T03:00:00+09:00"},
			wantWarnings: []string{"startingDeadlineSeconds is not set"},
			wantPeriod:   24 * time.Hour,
		},
		"a starting deadline of zero": {
			cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptr.To[int64](0) }), count: 1,
			wantRuns:     []string{"2026-05-20T03:00:00+09:00"},
			wantWarnings: []string{"startingDeadlineSeconds is 0"},
			wantPeriod:   24 * time.Hour,
		},
		"a starting deadline under ten seconds": {
			cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptr.To[int64](5) }), count: 1,
			wantRuns:     []string{"2026-05-20T03:00:00+09:00"},
			wantWarnings: []string{"startingDeadlineSeconds is 5"},
			wantPeriod:   24 * time.Hour,
		},
		"Allow without activeDeadlineSeconds": {
			cj: cronJob(func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.AllowConcurrent
				cj.Spec.JobTemplate.Spec.ActiveDeadlineSeconds = nil
			}), count: 1,
			wantRuns:     []string{"2026-05-20T03:00:00+09:00"},
			wantWarnings: []string{"sets no activeDeadlineSeconds"},
			wantPeriod:   24 * time.Hour,
		},
		"an unset policy is Allow": {
			cj: cronJob(func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = ""
				cj.Spec.JobTemplate.Spec.ActiveDeadlineSeconds = nil
			}), count: 1,
			wantRuns:     []string{"2026-05-20T03:00:00+09:00"},
			wantWarnings: []string{"sets no activeDeadlineSeconds"},
			wantPeriod:   24 * time.Hour,
		},
		"Allow with a Job bounded inside the period": {
			cj: cronJob(func(cj *batchv1.CronJob) {
				cj.Name = "rotate-logs"
				cj.Spec.ConcurrencyPolicy = batchv1.AllowConcurrent
				cj.Spec.JobTemplate.Spec.ActiveDeadlineSeconds = ptr.To[int64](3600)
			}),
			count: 1, wantRuns: []string{"2026-05-20T03:00:00+09:00"}, wantPeriod: 24 * time.Hour,
		},
		"Allow with a Job that outlasts the shortest gap": {
			cj: cronJob(func(cj *batchv1.CronJob) {
				cj.Spec.Schedule = "0 9,10 * * *"
				cj.Spec.ConcurrencyPolicy = batchv1.AllowConcurrent
				cj.Spec.JobTemplate.Spec.ActiveDeadlineSeconds = ptr.To[int64](5400)
			}),
			count: 2, wantRuns: []string{"2026-05-20T09:00:00+09:00", "2026-05-20T10:00:00+09:00"}, wantPeriod: time.Hour,
			wantWarnings: []string{"(1h30m) is longer than the shortest gap between runs (1h)"},
		},
		"suspended": {
			cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.Suspend = ptr.To(true) }), count: 1,
			wantRuns: []string{"2026-05-20T03:00:00+09:00"}, wantWarnings: []string{"spec.suspend is true"}, wantPeriod: 24 * time.Hour,
		},
		"TZ in the schedule": {
			cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "TZ=UTC 0 3 * * *"; cj.Spec.TimeZone = nil }), count: 1,
			wantRuns: []string{"2026-05-20T03:00:00Z"}, wantWarnings: []string{"names its zone inside the string"}, wantPeriod: 24 * time.Hour,
		},
		"@every counts from the creation time": {
			cj: cronJob(func(cj *batchv1.CronJob) {
				cj.Spec.Schedule = "@every 7m"
				cj.CreationTimestamp = metav1.NewTime(from.Add(-time.Hour))
			}),
			count: 2, wantRuns: []string{"2026-05-19T19:03:00+09:00", "2026-05-19T19:10:00+09:00"}, wantPeriod: 7 * time.Minute,
		},
		"@every counts from the last run": {
			cj: cronJob(func(cj *batchv1.CronJob) {
				cj.Spec.Schedule = "@every 7m"
				cj.CreationTimestamp = metav1.NewTime(from.Add(-time.Hour))
				cj.Status.LastScheduleTime = ptr.To(metav1.NewTime(from.Add(-time.Minute)))
			}),
			count: 1, wantRuns: []string{"2026-05-19T19:06:00+09:00"}, wantPeriod: 7 * time.Minute,
		},
		"@every in a manifest counts from now": {
			cj:    cronJob(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "@every 7m" }),
			count: 1, wantRuns: []string{"2026-05-19T19:07:00+09:00"}, wantPeriod: 7 * time.Minute,
			wantWarnings: []string{"@every runs are counted"},
		},
		"daylight saving in the zone": {
			cj: cronJob(func(cj *batchv1.CronJob) {
				cj.Spec.Schedule = "30 2 * * *"
				cj.Spec.TimeZone = ptr.To("Europe/Berlin")
			}),
			// The repeated 02:30 makes two runs an hour apart.
			count: 1, wantRuns: []string{"2026-05-20T02:30:00+02:00"}, wantPeriod: time.Hour,
			wantWarnings: []string{"on Sun 2026-10-25 clocks in Europe/Berlin go back from 03:00 to 02:00: the 02:30 run happens twice", "on Sun 2027-03-28 clocks in Europe/Berlin go forward from 02:00 to 03:00: the 02:30 run does not happen"},
		},
		"count of one thousand": {
			cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "*/1 * * * *" }), count: 1000,
			wantPeriod: time.Minute,
		},
		"count of zero":                 {cj: cronJob(), count: 0, wantErr: "count must be between 1 and 1000"},
		"count too large":               {cj: cronJob(), count: 1001, wantErr: "count must be between 1 and 1000"},
		"empty schedule":                {cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.Schedule = " " }), count: 1, wantErr: "spec.schedule is empty"},
		"unparseable schedule":          {cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "at noon" }), count: 1, wantErr: `spec.schedule "at noon": expected exactly 5 fields`},
		"a schedule that panics robfig": {cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "TZ=UTC" }), count: 1, wantErr: "invalid schedule format"},
		"a date that never comes":       {cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "0 0 31 4 *" }), count: 1, wantErr: "never fires"},
		"unknown zone":                  {cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr.To("Mars/Olympus") }), count: 1, wantErr: "UnknownTimeZone"},
		"empty zone":                    {cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr.To("") }), count: 1, wantErr: `spec.timeZone is ""`},
		"Local zone":                    {cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr.To("Local") }), count: 1, wantErr: `"Local" is refused`},
		"no CronJob":                    {count: 1, wantErr: "no CronJob"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := Next(tc.cj, from, tc.count, berlin)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Next error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Runs) != tc.count {
				t.Errorf("%d runs, want %d", len(r.Runs), tc.count)
			}
			if tc.wantRuns != nil {
				var got []string
				for _, run := range r.Runs {
					got = append(got, run.Time.In(r.Zone).Format(time.RFC3339))
					if want := jobName(tc.cj.Name, run.Time); run.JobName != want {
						t.Errorf("job name %q, want %q", run.JobName, want)
					}
				}
				if diff := cmp.Diff(tc.wantRuns, got); diff != "" {
					t.Errorf("runs (-want +got):\n%s", diff)
				}
			}
			if r.Period != tc.wantPeriod {
				t.Errorf("period = %v, want %v", r.Period, tc.wantPeriod)
			}
			if len(r.Warnings) != len(tc.wantWarnings) {
				t.Fatalf("warnings = %q, want ones containing %q", r.Warnings, tc.wantWarnings)
			}
			for i, w := range tc.wantWarnings {
				if !strings.Contains(r.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, r.Warnings[i], w)
				}
			}
		})
	}
}
