package explain

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"quartet.dev/quartet/internal/manifest"
)

// findingIDs explains the manifests in docs (YAML documents) and returns
// the rule ids found, per object, in order.
func findingIDs(t *testing.T, docs string) [][]string {
	t.Helper()
	objs, errs := manifest.Read(strings.NewReader(docs), "test.yaml")
	if len(errs) > 0 {
		t.Fatalf("reading: %v", errs)
	}
	r := Manifests(objs, nil, Options{Now: testNow})
	var out [][]string
	for _, o := range r.Objects {
		ids := []string{}
		for _, f := range o.Findings {
			ids = append(ids, f.Rule)
		}
		out = append(out, ids)
	}
	return out
}

const (
	safeCronJob = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  schedule: "0 6 * * *"
  timeZone: Asia/Seoul
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 300
  jobTemplate:
    spec:
      backoffLimit: 1
      activeDeadlineSeconds: 600
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: i}]
`
	safeJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: once
spec:
  backoffLimit: 1
  activeDeadlineSeconds: 600
  ttlSecondsAfterFinished: 60
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: i}]
`
	headless = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: None
  selector: {app: web}
`
	statefulSet = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers: [{name: c, image: i}]
`
	daemonSet = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers: [{name: c, image: i}]
`
	deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers: [{name: c, image: i}]
      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
`
)

func edit(doc string, pairs ...string) string {
	return strings.NewReplacer(pairs...).Replace(doc)
}

// TestRules checks each rule on its edges: where it must fire and where it
// must stay quiet. Every rule's plain "fires" case is its corpus file
// (TestEveryRuleHasACorpusFile).
func TestRules(t *testing.T) {
	cases := map[string]struct {
		docs string
		want [][]string
	}{
		"a safe CronJob": {docs: safeCronJob, want: [][]string{{}}},
		"a safe Job":     {docs: safeJob, want: [][]string{{}}},
		"a Job of a CronJob needs no ttl": {
			docs: edit(safeJob, "  ttlSecondsAfterFinished: 60\n", "", "name: once\n", "name: once\n  ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: report, uid: u, controller: true}]\n"),
			want: [][]string{{}},
		},
		"Forbid bounded by a deadline":     {docs: safeCronJob, want: [][]string{{}}},
		"Replace without a deadline is ok": {docs: edit(safeCronJob, "Forbid", "Replace", "      activeDeadlineSeconds: 600\n", ""), want: [][]string{{}}},
		"Allow bounded inside the period": {
			docs: edit(safeCronJob, "Forbid", "Allow"), want: [][]string{{}},
		},
		"Allow on a backup": {
			docs: edit(safeCronJob, "Forbid", "Allow", "name: report", "name: nightly-pg-dump"),
			want: [][]string{{"cronjob-allow-overlap"}},
		},
		"Forbid without a deadline": {
			docs: edit(safeCronJob, "      activeDeadlineSeconds: 600\n", ""),
			want: [][]string{{"job-no-active-deadline"}},
		},
		"a zone without daylight saving at 02:30": {docs: edit(safeCronJob, `"0 6 * * *"`, `"30 2 * * *"`), want: [][]string{{}}},
		"hourly runs cross daylight saving unharmed": {
			docs: edit(safeCronJob, `"0 6 * * *"`, `"0 * * * *"`, "Asia/Seoul", "Europe/Berlin", "activeDeadlineSeconds: 600", "activeDeadlineSeconds: 60"),
			want: [][]string{{}},
		},
		"a history of ten is fine":          {docs: edit(safeCronJob, "  startingDeadlineSeconds: 300\n", "  startingDeadlineSeconds: 300\n  successfulJobsHistoryLimit: 10\n"), want: [][]string{{}}},
		"a starting deadline of 10 is fine": {docs: edit(safeCronJob, "startingDeadlineSeconds: 300", "startingDeadlineSeconds: 10"), want: [][]string{{}}},
		"an unparseable schedule reports that alone": {
			docs: edit(safeCronJob, `"0 6 * * *"`, `"61 * * * *"`), want: [][]string{{"cronjob-schedule-invalid"}},
		},
		"a StatefulSet with its headless Service": {docs: headless + "---\n" + statefulSet, want: [][]string{{}, {}}},
		"the Service in another namespace does not count": {
			docs: edit(headless, "name: web\n", "name: web\n  namespace: other\n") + "---\n" + statefulSet,
			want: [][]string{{}, {"statefulset-no-headless-service"}},
		},
		"a headless Service selecting other pods": {
			docs: edit(headless, "{app: web}", "{app: db}") + "---\n" + statefulSet,
			want: [][]string{{}, {"statefulset-service-not-headless"}},
		},
		"partition without ordinals.start": {
			docs: headless + "---\n" + statefulSet + "  updateStrategy: {rollingUpdate: {partition: 2}}\n",
			want: [][]string{{}, {}},
		},
		"ordinals.start without partition": {
			docs: headless + "---\n" + statefulSet + "  ordinals: {start: 5}\n",
			want: [][]string{{}, {}},
		},
		"claims deleted on scale-down and with the set": {
			docs: headless + "---\n" + statefulSet + "  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete, whenDeleted: Delete}\n" +
				"  volumeClaimTemplates: [{metadata: {name: data}, spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}]\n",
			want: [][]string{{}, {}},
		},
		"claims kept": {
			docs: headless + "---\n" + statefulSet +
				"  volumeClaimTemplates: [{metadata: {name: data}, spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}]\n",
			want: [][]string{{}, {"statefulset-claims-outlive"}},
		},
		"a DaemonSet for labelled nodes needs no control-plane toleration": {
			docs: edit(daemonSet, "      containers:", "      nodeSelector: {accel: tpu}\n      containers:"), want: [][]string{{}},
		},
		"a DaemonSet pinned to linux nodes is still for every node": {
			docs: edit(daemonSet, "      containers:", "      nodeSelector: {kubernetes.io/os: linux}\n      containers:"),
			want: [][]string{{"daemonset-no-control-plane-toleration"}},
		},
		"a DaemonSet tolerating the control plane": {
			docs: edit(daemonSet, "      containers:", "      tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]\n      containers:"),
			want: [][]string{{}},
		},
		"a DaemonSet tolerating everything": {
			docs: edit(daemonSet, "      containers:", "      tolerations: [{operator: Exists}]\n      containers:"), want: [][]string{{}},
		},
		"a DaemonSet for every node": {docs: daemonSet, want: [][]string{{"daemonset-no-control-plane-toleration"}}},
		"a Deployment sharing a ReadWriteMany claim": {
			docs: "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {accessModes: [ReadWriteMany]}\n---\n" + deployment,
			want: [][]string{{}, {}},
		},
		"a Deployment of one replica with a claim": {
			docs: edit(deployment, "replicas: 2", "replicas: 1"), want: [][]string{{"deployment-shared-claim"}},
		},
		"a Deployment without a claim": {
			docs: edit(deployment, "      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]\n", ""), want: [][]string{{}},
		},
		"restartPolicy Never and OnFailure": {
			docs: safeJob + "---\n" + edit(safeJob, "Never", "OnFailure"),
			want: [][]string{{}, {"job-on-failure-keeps-one-pod"}},
		},
		"a selector with expressions that match": {
			docs: edit(deployment, "    matchLabels: {app: api}", "    matchExpressions: [{key: app, operator: In, values: [api, web]}]",
				"      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]\n", ""),
			want: [][]string{{}},
		},
		"a kind explain does not read": {docs: "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replica: 3}\n", want: [][]string{{}}},
		"an old apiVersion of a kind explain reads": {
			docs: edit(statefulSet, "apps/v1", "apps/v1beta2"), want: [][]string{{"api-version-not-served"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, findingIDs(t, tc.docs)); diff != "" {
				t.Errorf("finding ids per object (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRuleTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules() {
		if seen[r.ID] {
			t.Errorf("rule id %s is used twice", r.ID)
		}
		seen[r.ID] = true
		if r.ID != strings.ToLower(r.ID) || strings.ContainsAny(r.ID, " _") {
			t.Errorf("rule id %q: want lower-case words joined by -", r.ID)
		}
		if r.Reference == "" || r.Summary == "" || r.check == nil {
			t.Errorf("rule %s lacks a reference, a summary or a check", r.ID)
		}
		if !slices.Contains([]Severity{Error, Warning, Note}, r.Severity) {
			t.Errorf("rule %s has severity %q", r.ID, r.Severity)
		}
		for _, k := range r.Kinds {
			if _, ok := kinds[k]; !ok {
				t.Errorf("rule %s names kind %s, which explain does not decode", r.ID, k)
			}
		}
	}
}

func TestPhraseSchedule(t *testing.T) {
	cases := map[string]string{
		"* * * * *":      "every minute",
		"*/1 * * * *":    "every minute",
		"*/15 * * * *":   "every 15 minutes",
		"5 * * * *":      "hourly at :05",
		"0 */6 * * *":    "every 6 hours at :00",
		"0 3 * * *":      "daily 03:00",
		"30 9,17 * * *":  "daily 09:30 and 17:30",
		"0 9 * * 1-5":    "weekdays 09:00",
		"0 10 * * 0,6":   "weekends 10:00",
		"0 8 * * 1":      "on Mondays 08:00",
		"0 8 * * 2,4":    "on Tuesdays and Thursdays 08:00",
		"0 0 1 * *":      "monthly on the 1st at 00:00",
		"0 0 22 * *":     "monthly on the 22nd at 00:00",
		"0 0 30 2 *":     "yearly on February 30 at 00:00",
		"@daily":         "daily 00:00",
		"@weekly":        "weekly on Sunday at 00:00",
		"*/5 9-17 * * *": "",
		"0 3 1 * 1":      "",
	}
	for spec, want := range cases {
		if got, _ := phraseSchedule(spec); got != want {
			t.Errorf("phraseSchedule(%q) = %q, want %q", spec, got, want)
		}
	}
}

// upstreamIssue is how rules cite an issue or pull request of Kubernetes'
// repositories: kubernetes#N, kubernetes/website#N.
var upstreamIssue = regexp.MustCompile(`^kubernetes(/[a-z-]+)?#[0-9]+$`)

// TestDocsHaveEveryRule checks that docs/explain.md has a "### <id>"
// section for every rule, and none for a rule that does not exist.
func TestDocsHaveEveryRule(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "explain.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{} // id -> the section's text
	inRules, current := false, ""
	for _, line := range strings.Split(string(doc), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			inRules, current = line == "## The rules", ""
		case inRules && strings.HasPrefix(line, "### "):
			current = strings.TrimPrefix(line, "### ")
			documented[current] = ""
		case current != "":
			documented[current] += line + " "
		}
	}
	for _, r := range Rules() {
		text, ok := documented[r.ID]
		if !ok {
			t.Errorf("docs/explain.md has no section ### %s", r.ID)
			continue
		}
		// The entry cites what the rule cites: the chapter's section, an
		// upstream issue, or upstream's source.
		for _, part := range strings.Split(r.Reference, "; ") {
			cite, _, _ := strings.Cut(part, " (")
			switch {
			case strings.HasPrefix(cite, "chapter §"):
				cite = strings.TrimPrefix(cite, "chapter ")
			case upstreamIssue.MatchString(cite):
			case strings.HasPrefix(cite, "upstream pkg/"), strings.HasPrefix(cite, "upstream staging/"):
				cite = strings.TrimPrefix(cite, "upstream ")
			default:
				t.Errorf("rule %s cites %q: want a chapter section (chapter §\"...\"), an upstream issue (kubernetes#N) or upstream's source (upstream pkg/... or staging/...)", r.ID, part)
				continue
			}
			if !strings.Contains(text, cite) {
				t.Errorf("docs/explain.md's ### %s does not cite %s", r.ID, cite)
			}
		}
		delete(documented, r.ID)
	}
	for id := range documented {
		t.Errorf("docs/explain.md documents %s, which is not a rule", id)
	}
}
