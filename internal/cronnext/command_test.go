package cronnext

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
)

func TestNextCommand(t *testing.T) {
	fixed := time.Date(2026, 5, 19, 10, 0, 0, 0, time.UTC)
	type fetched struct{ kubeconfig, namespace, name string }
	cases := map[string]struct {
		args      []string
		fetchErr  error
		wantFetch *fetched
		wantOut   []string
		wantErr   string
	}{
		"from a file": {
			args:    []string{"-f", "testdata/db-backup.yaml", "--count", "2"},
			wantOut: []string{"CronJob db-backup", "Next 2 runs after", "Wed 2026-05-20 03:00 KST", "db-backup-29653560"},
		},
		"from a file, picking by name": {
			args:    []string{"rotate-logs", "-f", "testdata/multi.yaml", "--count", "1"},
			wantOut: []string{"CronJob web/rotate-logs", "Next 1 run after"},
		},
		"from a file, a name it does not hold": {
			args:    []string{"nope", "-f", "testdata/multi.yaml"},
			wantErr: `no CronJob named "nope" (it holds rotate-logs)`,
		},
		"from the cluster": {
			args:      []string{"backup", "-n", "ops", "--kubeconfig", "/k", "--count", "1"},
			wantFetch: &fetched{"/k", "ops", "backup"},
			wantOut:   []string{"CronJob ops/backup", "Next 1 run after Tue 2026-05-19 10:00 UTC"},
		},
		"from the cluster, failing": {
			args:      []string{"backup"},
			fetchErr:  errors.New("connection refused"),
			wantFetch: &fetched{"", "", "backup"},
			wantErr:   "connection refused",
		},
		"--from": {
			args:    []string{"-f", "testdata/db-backup.yaml", "--count", "1", "--from", "2026-12-31T20:00:00Z"},
			wantOut: []string{"Sat 2027-01-02 03:00 KST"},
		},
		"nothing to read":  {wantErr: "name a CronJob to read from the cluster, or give a manifest with -f FILE"},
		"bad --from":       {args: []string{"-f", "testdata/db-backup.yaml", "--from", "tomorrow"}, wantErr: `--from "tomorrow"`},
		"bad --count":      {args: []string{"-f", "testdata/db-backup.yaml", "--count", "0"}, wantErr: "CronJob db-backup: count must be between 1 and 1000"},
		"two names":        {args: []string{"a", "b"}, wantErr: "accepts at most 1 arg"},
		"missing manifest": {args: []string{"-f", "testdata/absent.yaml"}, wantErr: "no such file"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got *fetched
			o := options{
				now:   func() time.Time { return fixed },
				local: func() *time.Location { return time.UTC },
				fetch: func(_ context.Context, kubeconfig, namespace, name string) (*batchv1.CronJob, error) {
					got = &fetched{kubeconfig, namespace, name}
					if tc.fetchErr != nil {
						return nil, tc.fetchErr
					}
					cj := cronJob()
					cj.Spec.TimeZone = nil
					return cj, nil
				},
			}
			cmd := newNextCommand(o)
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(tc.args)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.ExecuteContext(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if (tc.wantFetch == nil) != (got == nil) || (got != nil && *got != *tc.wantFetch) {
				t.Errorf("fetched %+v, want %+v", got, tc.wantFetch)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestCommandTree(t *testing.T) {
	c := Command()
	next, _, err := c.Find([]string{"next"})
	if err != nil || next.Name() != "next" {
		t.Fatalf("cron has no next subcommand: %v", err)
	}
	for _, f := range []string{"filename", "count", "namespace", "kubeconfig", "from"} {
		if next.Flags().Lookup(f) == nil {
			t.Errorf("next has no --%s flag", f)
		}
	}
}

// TestFetchFromCluster reads a CronJob through a kubeconfig from an HTTP
// server that answers like the API server.
func TestFetchFromCluster(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/batch/v1/namespaces/team/cronjobs/backup" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"cronjobs.batch \"x\" not found"}`))
			return
		}
		cj := cronJob()
		cj.Namespace = "team"
		cj.APIVersion, cj.Kind = "batch/v1", "CronJob"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(cj)
	}))
	defer srv.Close()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	config := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "` + srv.URL + `"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: team}}]
current-context: x
`
	if err := os.WriteFile(kubeconfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cj, err := fetchFromCluster(context.Background(), kubeconfig, "", "backup")
	if err != nil {
		t.Fatal(err)
	}
	if cj.Namespace != "team" || cj.Spec.Schedule != "0 3 * * *" {
		t.Errorf("fetched %s/%s with schedule %q", cj.Namespace, cj.Name, cj.Spec.Schedule)
	}
	if _, err := fetchFromCluster(context.Background(), kubeconfig, "other", "backup"); err == nil || !strings.Contains(err.Error(), "reading CronJob other/backup") {
		t.Errorf("fetch of a missing CronJob: %v", err)
	}
	if _, err := fetchFromCluster(context.Background(), filepath.Join(t.TempDir(), "none"), "", "backup"); err == nil {
		t.Error("fetch with a missing kubeconfig succeeded")
	}
}

func TestMachineZone(t *testing.T) {
	t.Setenv("TZ", "Asia/Seoul")
	// time.Local was fixed at start-up, so only a TZ that agrees with it is
	// taken; otherwise MachineZone falls back to time.Local itself.
	loc := MachineZone()
	if loc != time.Local && !sameOffsets(loc, time.Local) {
		t.Errorf("MachineZone = %v, which disagrees with time.Local", loc)
	}
}

func TestSameOffsets(t *testing.T) {
	if !sameOffsets(mustZone(t, "Asia/Seoul"), mustZone(t, "Asia/Tokyo")) {
		t.Error("Seoul and Tokyo should agree")
	}
	if sameOffsets(mustZone(t, "Asia/Seoul"), mustZone(t, "Europe/Berlin")) {
		t.Error("Seoul and Berlin should differ")
	}
	if sameOffsets(mustZone(t, "Europe/London"), time.UTC) {
		t.Error("London and UTC differ in summer")
	}
}
