package explain

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"quartet.dev/quartet/internal/controllers/cronjob/schedule"
	"quartet.dev/quartet/internal/prose"
)

// Rule is one check. Every rule has an entry in docs/explain.md under its
// id, and test cases in rules_test.go.
type Rule struct {
	// ID is stable: scripts and --strict allow-lists rely on it.
	ID       string
	Severity Severity
	// Kinds are the kinds it looks at; nil means any kind.
	Kinds []string
	// Reference is the chapter section or upstream issue behind it.
	Reference string
	// Summary says in one line what it catches.
	Summary string
	check   func(*world, *object) []hit
}

// hit is one finding of a rule, before the rule's id and severity are added.
type hit struct{ message, fix string }

func (r Rule) appliesTo(o *object) bool {
	return r.Kinds == nil || slices.Contains(r.Kinds, o.src.Kind)
}

// Rules returns the table, for listing and documentation.
func Rules() []Rule { return slices.Clone(rules) }

// Rule ids referred to outside the table.
const (
	ruleScheduleInvalid = "cronjob-schedule-invalid"
	ruleTimeZoneInvalid = "cronjob-time-zone-invalid"
	ruleNeverFires      = "cronjob-never-fires"
)

// The chapter's sections, as rules cite them.
const (
	chapterStatefulSet   = `chapter §"StatefulSet — workloads that need identity and a disk"`
	chapterHeadless      = `chapter §"It pairs with a headless Service"`
	chapterPVCsRemain    = `chapter §"One operational caveat — PVCs remain on scale-down"`
	chapterNodeSelector  = `chapter §"Running on only some nodes — nodeSelector / tolerations"`
	chapterJobManifest   = `chapter §"The Job manifest"`
	chapterRestartPolicy = `chapter §"The constraint on restartPolicy"`
	chapterJobBehaviour  = `chapter §"Checking how a Job behaves"`
	chapterCronManifest  = `chapter §"The CronJob manifest"`
	chapterConcurrency   = `chapter §"The three concurrencyPolicy options"`
	chapterDeadline      = `chapter §"The risk when startingDeadlineSeconds is missing"`
)

// Upstream's source, for rules that restate its validation.
const (
	upstreamAppsValidation  = "upstream pkg/apis/apps/validation"
	upstreamBatchValidation = "upstream pkg/apis/batch/validation"
)

// rules is the table. Order is the order findings are printed in within a
// severity.
var rules = []Rule{
	// Errors: the API server refuses the object, or it never runs.
	{
		ID: "manifest-invalid", Severity: Error, Reference: "kubernetes/enhancements#2885 (server-side field validation)",
		Summary: "an object of a known kind that does not decode: a misspelt field, a wrong type",
		check: func(_ *world, o *object) []hit {
			if o.decodeErr == nil {
				return nil
			}
			return []hit{{fmt.Sprintf("%s does not decode: %v; kubectl apply refuses it (or, with --validate=false, silently drops the field).", o.title(), o.decodeErr),
				"correct the field's name or type (kubectl explain " + strings.ToLower(o.src.Kind) + ".spec lists the fields)."}}
		},
	},
	{
		ID: "api-version-not-served", Severity: Error, Reference: "upstream staging/src/k8s.io/api (APILifecycleRemoved: v1.16 for apps/v1beta1, apps/v1beta2 and extensions/v1beta1 workloads, v1.25 for batch/v1beta1)",
		Summary: "a known kind under an apiVersion Kubernetes v1.37 no longer serves (apps/v1beta1, batch/v1beta1, extensions/v1beta1)",
		check: func(_ *world, o *object) []hit {
			if !o.badVersion {
				return nil
			}
			want := kinds[o.src.Kind].apiVersion
			return []hit{{fmt.Sprintf("%s has apiVersion %s, which Kubernetes v1.37 does not serve: the API server answers \"no matches for kind\".", o.title(), o.src.APIVersion),
				fmt.Sprintf("use apiVersion %s (and check the fields that changed with it).", want)}}
		},
	},
	{
		ID: "selector-does-not-match-template", Severity: Error, Kinds: []string{"StatefulSet", "DaemonSet", "Deployment", "ReplicaSet"},
		Reference: upstreamAppsValidation,
		Summary:   "spec.selector is missing or does not select the pod template's labels",
		check:     checkSelector,
	},
	{
		ID: "job-restart-policy-always", Severity: Error, Kinds: []string{"Job", "CronJob"}, Reference: chapterRestartPolicy,
		Summary: "a Job's (or a CronJob's Job template's) restartPolicy is Always or unset",
		check:   checkRestartPolicy,
	},
	{
		ID: ruleScheduleInvalid, Severity: Error, Kinds: []string{"CronJob"}, Reference: chapterCronManifest,
		Summary: "spec.schedule is empty or does not parse as five cron fields or a descriptor",
		check:   cronProblem(ruleScheduleInvalid, "write five fields, minute hour day-of-month month day-of-week (\"0 3 * * *\"), or a descriptor such as @daily."),
	},
	{
		ID: ruleTimeZoneInvalid, Severity: Error, Kinds: []string{"CronJob"}, Reference: chapterCronManifest,
		Summary: `spec.timeZone is "", "Local" or not an IANA zone name`,
		check:   cronProblem(ruleTimeZoneInvalid, `name an IANA zone, such as "Asia/Seoul", or leave timeZone out.`),
	},
	{
		ID: ruleNeverFires, Severity: Error, Kinds: []string{"CronJob"}, Reference: "upstream pkg/controller/cronjob/utils.go (event InvalidSchedule)",
		Summary: "a schedule that parses but names no date that comes (0 0 30 2 *)",
		check:   cronProblem(ruleNeverFires, "name a date that exists (February has at most 29 days, April, June, September and November 30)."),
	},
	{
		ID: "cronjob-tz-in-schedule", Severity: Error, Kinds: []string{"CronJob"}, Reference: "kubernetes#116252 (TZ= and CRON_TZ= refused on create since v1.29); " + upstreamBatchValidation,
		Summary: "the schedule names its zone with TZ= or CRON_TZ=",
		check: func(_ *world, o *object) []hit {
			cj := o.typed.(*batchv1.CronJob)
			if !schedule.HasTZPrefix(cj.Spec.Schedule) {
				return nil
			}
			return []hit{{fmt.Sprintf("the schedule %q names its zone inside the string: the API server refuses that on create.", cj.Spec.Schedule),
				"move the zone to spec.timeZone."}}
		},
	},
	{
		ID: "cronjob-name-too-long", Severity: Error, Kinds: []string{"CronJob"}, Reference: "kubernetes#50850; " + upstreamBatchValidation,
		Summary: "a CronJob name longer than 52 characters (its Jobs append 11)",
		check: func(_ *world, o *object) []hit {
			if len(o.src.Name) <= 52 {
				return nil
			}
			return []hit{{fmt.Sprintf("the name is %d characters: the API server refuses CronJob names over 52, because each Job's name adds \"-\" and the scheduled minute.", len(o.src.Name)),
				"shorten the name to 52 characters or fewer."}}
		},
	},

	// Warnings: the traps.
	{
		ID: "cronjob-no-starting-deadline", Severity: Warning, Kinds: []string{"CronJob"}, Reference: chapterDeadline + "; kubernetes#42649",
		Summary: "startingDeadlineSeconds is not set",
		check: func(_ *world, o *object) []hit {
			cj := o.typed.(*batchv1.CronJob)
			if cj.Spec.StartingDeadlineSeconds != nil {
				return nil
			}
			return []hit{{"startingDeadlineSeconds is not set: a run missed while the control plane was down starts when it comes back, however late (a 03:00 backup may start at 14:00); " +
				"past 100 missed runs the controller warns TooManyMissedTimes. (Kubernetes v1.37 and quartet start only the most recent missed run, not all of them.)",
				"set startingDeadlineSeconds, for example 300, so that a run that cannot start within 5 minutes is skipped."}}
		},
	},
	{
		ID: "cronjob-starting-deadline-too-short", Severity: Warning, Kinds: []string{"CronJob"}, Reference: "kubernetes#86647; kubernetes/website#23622",
		Summary: "startingDeadlineSeconds is 0 or under 10",
		check: func(_ *world, o *object) []hit {
			d := o.typed.(*batchv1.CronJob).Spec.StartingDeadlineSeconds
			switch {
			case d == nil || *d >= 10:
				return nil
			case *d <= 0:
				return []hit{{"startingDeadlineSeconds is 0: no run can ever start, because the controller always starts a run a little after its time.", "use at least 10; 300 is a sound default."}}
			}
			return []hit{{fmt.Sprintf("startingDeadlineSeconds is %d: a run delayed more than %d seconds by a busy control plane is skipped.", *d, *d), "use at least 10; 300 is a sound default."}}
		},
	},
	{
		ID: "cronjob-allow-overlap", Severity: Warning, Kinds: []string{"CronJob"}, Reference: chapterConcurrency,
		Summary: "concurrencyPolicy Allow (the default) with Jobs that can outlast the period, or on a backup",
		check:   checkAllowOverlap,
	},
	{
		ID: "cronjob-no-time-zone", Severity: Warning, Kinds: []string{"CronJob"}, Reference: chapterCronManifest + "; kubernetes#47202; kubernetes#78795",
		Summary: "timeZone is not set",
		check: func(w *world, o *object) []hit {
			cj := o.typed.(*batchv1.CronJob)
			if cj.Spec.TimeZone != nil || schedule.HasTZPrefix(cj.Spec.Schedule) {
				return nil
			}
			return []hit{{fmt.Sprintf("timeZone is not set, so %q is read in the time zone of the process running the CronJob controller: UTC on most clusters, "+
				"this machine's (%s) on quartet (\"why does the 3 a.m. backup run at noon\").", cj.Spec.Schedule, w.local),
				`set spec.timeZone to an IANA name, such as "Asia/Seoul".`}}
		},
	},
	{
		ID: "cronjob-history-piles-up", Severity: Warning, Kinds: []string{"CronJob"}, Reference: chapterCronManifest,
		Summary: "successfulJobsHistoryLimit or failedJobsHistoryLimit above 10",
		check: func(_ *world, o *object) []hit {
			cj := o.typed.(*batchv1.CronJob)
			var out []hit
			for _, l := range []struct {
				field string
				limit *int32
			}{{"successfulJobsHistoryLimit", cj.Spec.SuccessfulJobsHistoryLimit}, {"failedJobsHistoryLimit", cj.Spec.FailedJobsHistoryLimit}} {
				if l.limit != nil && *l.limit > 10 {
					out = append(out, hit{fmt.Sprintf("%s is %d: that many finished Jobs, and their pods, stay in etcd per CronJob.", l.field, *l.limit),
						"keep the defaults (3 and 1) or a handful; ship logs elsewhere if you need a long history."})
				}
			}
			return out
		},
	},
	{
		ID: "cronjob-daylight-saving", Severity: Warning, Kinds: []string{"CronJob"}, Reference: chapterCronManifest + "; kubernetes#121594",
		Summary: "runs that a daylight-saving change skips or repeats within the next year",
		check: func(w *world, o *object) []hit {
			cj := o.typed.(*batchv1.CronJob)
			c := cronOf(w, cj)
			if c.problem != nil {
				return nil
			}
			var out []hit
			for _, ch := range c.sched.ClockChanges(w.now, w.now.Add(clockChangeHorizon)) {
				out = append(out, hit{clockChangeMessage(ch, c.sched.Location) + ".",
					"schedule outside 01:00-03:00 local time, or use a zone without daylight saving (UTC) for this CronJob."})
			}
			return out
		},
	},
	{
		ID: "statefulset-no-headless-service", Severity: Warning, Kinds: []string{"StatefulSet"}, Reference: chapterHeadless,
		Summary: "serviceName names no Service in the input (or, live, in the namespace)",
		check:   checkHeadless(false),
	},
	{
		ID: "statefulset-service-not-headless", Severity: Warning, Kinds: []string{"StatefulSet"}, Reference: chapterHeadless,
		Summary: "serviceName names a Service that is not headless, or that selects other pods",
		check:   checkHeadless(true),
	},
	{
		ID: "statefulset-partition-with-ordinals-start", Severity: Warning, Kinds: []string{"StatefulSet"}, Reference: "kubernetes#128529",
		Summary: "rollingUpdate.partition together with ordinals.start",
		check: func(_ *world, o *object) []hit {
			set := o.typed.(*appsv1.StatefulSet)
			ru := set.Spec.UpdateStrategy.RollingUpdate
			if set.Spec.Ordinals == nil || set.Spec.Ordinals.Start == 0 || ru == nil || ru.Partition == nil || *ru.Partition == 0 {
				return nil
			}
			start, p := set.Spec.Ordinals.Start, *ru.Partition
			return []hit{{fmt.Sprintf("partition %d with ordinals.start %d: the controller compares the partition with the pod's index, not its ordinal, "+
				"so an update reaches %s-%d and above, not %s-%d and above as the field's documentation suggests.", p, start, set.Name, start+p, set.Name, p),
				fmt.Sprintf("count the partition from ordinals.start: partition %d keeps %s-%d..%s-%d on the old revision.", p, set.Name, start, set.Name, start+p-1)}}
		},
	},
	{
		ID: "daemonset-no-control-plane-toleration", Severity: Warning, Kinds: []string{"DaemonSet"}, Reference: chapterNodeSelector,
		Summary: "a DaemonSet for every node that does not tolerate the control-plane taint",
		check:   checkControlPlaneToleration,
	},
	{
		ID: "deployment-shared-claim", Severity: Warning, Kinds: []string{"Deployment", "ReplicaSet"}, Reference: chapterStatefulSet,
		Summary: "a Deployment whose replicas all mount one PersistentVolumeClaim",
		check:   checkSharedClaim,
	},
	{
		ID: "job-no-ttl", Severity: Warning, Kinds: []string{"Job"}, Reference: chapterJobBehaviour,
		Summary: "a one-off Job without ttlSecondsAfterFinished",
		check: func(_ *world, o *object) []hit {
			j := o.typed.(*batchv1.Job)
			if j.Spec.TTLSecondsAfterFinished != nil || metav1.GetControllerOf(j) != nil {
				return nil
			}
			return []hit{{"ttlSecondsAfterFinished is not set: the finished Job and its pods stay in the cluster until someone deletes them, and applying the manifest again does not run it again while it exists.",
				"set ttlSecondsAfterFinished (for example 86400, a day to read its logs), or delete the Job when done."}}
		},
	},
	{
		ID: "job-no-active-deadline", Severity: Warning, Kinds: []string{"Job", "CronJob"}, Reference: chapterJobManifest,
		Summary: "a Job (or Job template) without activeDeadlineSeconds",
		check:   checkActiveDeadline,
	},

	// Notes: intended behaviour that surprises.
	{
		ID: "statefulset-claims-outlive", Severity: Note, Kinds: []string{"StatefulSet"}, Reference: chapterPVCsRemain,
		Summary: "volumeClaimTemplates whose claims are kept on scale-down and delete",
		check: func(_ *world, o *object) []hit {
			set := o.typed.(*appsv1.StatefulSet)
			if len(set.Spec.VolumeClaimTemplates) == 0 {
				return nil
			}
			p := set.Spec.PersistentVolumeClaimRetentionPolicy
			scaled, deleted := p == nil || p.WhenScaled != appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
				p == nil || p.WhenDeleted != appsv1.DeletePersistentVolumeClaimRetentionPolicyType
			var when []string
			if scaled {
				when = append(when, "scaled down")
			}
			if deleted {
				when = append(when, "deleted")
			}
			if len(when) == 0 {
				return nil
			}
			var names []string
			for _, t := range set.Spec.VolumeClaimTemplates {
				names = append(names, t.Name+"-"+set.Name+"-N")
			}
			return []hit{{fmt.Sprintf("claims %s stay when the set is %s (on purpose: the data survives a mistaken scale-down, and a pod that comes back mounts its old claim).",
				strings.Join(names, ", "), strings.Join(when, " or ")),
				"delete them with kubectl delete pvc when the data is no longer needed, or set persistentVolumeClaimRetentionPolicy."}}
		},
	},
	{
		ID: "statefulset-no-service-name", Severity: Note, Kinds: []string{"StatefulSet"}, Reference: chapterHeadless,
		Summary: "a StatefulSet without serviceName: its pods get no DNS names",
		check: func(_ *world, o *object) []hit {
			if o.typed.(*appsv1.StatefulSet).Spec.ServiceName != "" {
				return nil
			}
			return []hit{{"serviceName is not set: the pods get no DNS names of their own (web-0.web.<namespace>.svc), which is what most stateful software uses to find its peers.",
				"create a headless Service (clusterIP: None) and name it in serviceName."}}
		},
	},
	{
		ID: "job-default-backoff-limit", Severity: Note, Kinds: []string{"Job", "CronJob"}, Reference: chapterJobManifest,
		Summary: "backoffLimit left at its default of 6",
		check: func(_ *world, o *object) []hit {
			spec := jobSpecOf(o)
			if spec.BackoffLimit != nil || spec.BackoffLimitPerIndex != nil {
				return nil
			}
			return []hit{{"backoffLimit is not set: a failing pod is retried up to 6 times over about 10 minutes (10 s, 20 s, 40 s ... between tries) before the Job is Failed; work that is not idempotent runs again after a partial failure.",
				"set backoffLimit deliberately: 0 for work that must not run twice, a small number otherwise."}}
		},
	},
	{
		ID: "job-on-failure-keeps-one-pod", Severity: Note, Kinds: []string{"Job", "CronJob"}, Reference: chapterRestartPolicy,
		Summary: "restartPolicy OnFailure: retries restart the container in the same pod",
		check: func(_ *world, o *object) []hit {
			if jobSpecOf(o).Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
				return nil
			}
			return []hit{{"restartPolicy is OnFailure: a failed container restarts in the same pod, so only the last failed attempt's logs remain (kubectl logs --previous) and the restarts count toward backoffLimit.",
				"use restartPolicy Never when the logs of every failed attempt matter (each retry is then a new pod)."}}
		},
	},
}

func jobSpecOf(o *object) *batchv1.JobSpec {
	switch v := o.typed.(type) {
	case *batchv1.Job:
		return &v.Spec
	case *batchv1.CronJob:
		return &v.Spec.JobTemplate.Spec
	}
	return &batchv1.JobSpec{}
}

// The rules' checks run only on objects of their kinds that decoded; the
// table wraps them.
func init() {
	for i := range rules {
		check := rules[i].check
		needsTyped := rules[i].Kinds != nil
		rules[i].check = func(w *world, o *object) []hit {
			if needsTyped && o.typed == nil {
				return nil
			}
			return check(w, o)
		}
	}
}

func checkSelector(_ *world, o *object) []hit {
	var (
		sel    *metav1.LabelSelector
		labels map[string]string
	)
	switch v := o.typed.(type) {
	case *appsv1.StatefulSet:
		sel, labels = v.Spec.Selector, v.Spec.Template.Labels
	case *appsv1.DaemonSet:
		sel, labels = v.Spec.Selector, v.Spec.Template.Labels
	case *appsv1.Deployment:
		sel, labels = v.Spec.Selector, v.Spec.Template.Labels
	case *appsv1.ReplicaSet:
		sel, labels = v.Spec.Selector, v.Spec.Template.Labels
	}
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return []hit{{"spec.selector is missing or empty: apps/v1 requires one, and the API server refuses the object.",
			"add spec.selector.matchLabels with the pod template's labels."}}
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return []hit{{fmt.Sprintf("spec.selector is invalid: %v.", err), "fix the selector's expressions."}}
	}
	if !s.Matches(labelSet(labels)) {
		return []hit{{fmt.Sprintf("spec.selector (%s) does not select the pod template's labels (%s): the API server refuses the object.", s, labelList(labels)),
			"make spec.template.metadata.labels carry every label the selector asks for."}}
	}
	return nil
}

func labelSet(m map[string]string) labels.Set { return labels.Set(m) }

func checkRestartPolicy(_ *world, o *object) []hit {
	policy := jobSpecOf(o).Template.Spec.RestartPolicy
	if policy == corev1.RestartPolicyOnFailure || policy == corev1.RestartPolicyNever {
		return nil
	}
	what := "restartPolicy is Always"
	if policy == "" {
		what = "restartPolicy is not set, so it defaults to Always"
	}
	if o.src.Kind == "CronJob" {
		what = "the Job template's " + what
	}
	return []hit{{what + ": the API server refuses it in a Job, because Always would restart a pod that finished successfully and the Job could never complete.",
		"set restartPolicy: OnFailure (retry in the same pod) or Never (each retry a new pod)."}}
}

// cronProblem reports a CronJob the controller cannot run, when cronOf
// attributes it to rule id.
func cronProblem(id, fix string) func(*world, *object) []hit {
	return func(w *world, o *object) []hit {
		c := cronOf(w, o.typed.(*batchv1.CronJob))
		if c.problem == nil || c.problemRule != id {
			return nil
		}
		return []hit{{c.problem.Error() + ".", fix}}
	}
}

// backupLike matches names of work that must not run twice at once.
var backupLike = regexp.MustCompile(`(?i)backup|dump|snapshot|migrat|sync|export`)

func checkAllowOverlap(w *world, o *object) []hit {
	cj := o.typed.(*batchv1.CronJob)
	if p := cj.Spec.ConcurrencyPolicy; p != "" && p != batchv1.AllowConcurrent {
		return nil
	}
	c := cronOf(w, cj)
	if c.problem != nil {
		return nil
	}
	policy := "concurrencyPolicy is Allow"
	if cj.Spec.ConcurrencyPolicy == "" {
		policy = "concurrencyPolicy is not set, so it is Allow"
	}
	fix := "use Forbid (skip a run while the previous one is active) or Replace (stop the previous one), or bound each Job with activeDeadlineSeconds shorter than the period."
	ads := cj.Spec.JobTemplate.Spec.ActiveDeadlineSeconds
	switch {
	case ads == nil:
		return []hit{{fmt.Sprintf("%s and the Job template sets no activeDeadlineSeconds: a run that is slow or hangs is still going when the next one starts (runs can be %s apart), and they pile up.", policy, prose.Duration(c.period)), fix}}
	case time.Duration(*ads)*time.Second > c.period:
		return []hit{{fmt.Sprintf("%s and activeDeadlineSeconds (%s) is longer than the shortest gap between runs (%s): runs can overlap.", policy, prose.Duration(time.Duration(*ads)*time.Second), prose.Duration(c.period)), fix}}
	case backupLike.MatchString(cj.Name):
		return []hit{{fmt.Sprintf("%s on %q, which looks like work that two runs must not do at once (a backup, a dump, a migration): if one run is late, the next starts beside it.", policy, cj.Name),
			"use Forbid: the chapter's answer for a DB backup."}}
	}
	return nil
}

// checkHeadless checks the Service a StatefulSet names. With exists false it
// reports a missing Service; with exists true, one that is not headless or
// selects other pods.
func checkHeadless(exists bool) func(*world, *object) []hit {
	return func(w *world, o *object) []hit {
		set := o.typed.(*appsv1.StatefulSet)
		if set.Spec.ServiceName == "" {
			return nil
		}
		var svc *corev1.Service
		for _, other := range w.objects {
			if s, ok := other.typed.(*corev1.Service); ok && other.namespace() == o.namespace() && s.Name == set.Spec.ServiceName {
				svc = s
			}
		}
		where := "in the input"
		if w.live {
			where = "in namespace " + o.namespace()
		}
		if !exists {
			if svc != nil {
				return nil
			}
			return []hit{{fmt.Sprintf("serviceName is %q but there is no Service %s %s: the pods get no DNS names (%s-0.%s.%s.svc.cluster.local does not resolve).",
				set.Spec.ServiceName, set.Spec.ServiceName, where, set.Name, set.Spec.ServiceName, o.namespace()),
				fmt.Sprintf("create a headless Service named %s (clusterIP: None) whose selector matches the pod labels (%s).", set.Spec.ServiceName, labelList(set.Spec.Template.Labels))}}
		}
		if svc == nil {
			return nil
		}
		var out []hit
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			out = append(out, hit{fmt.Sprintf("serviceName %q names a Service that is not headless: it gets a virtual IP in front of all the pods, and no per-pod DNS names.", svc.Name),
				"set clusterIP: None on that Service (clusterIP cannot be changed in place: delete and recreate it), or make a separate headless Service for the StatefulSet."})
		}
		if len(svc.Spec.Selector) > 0 && !labels.SelectorFromSet(svc.Spec.Selector).Matches(labelSet(set.Spec.Template.Labels)) {
			out = append(out, hit{fmt.Sprintf("Service %s selects %s, which the pods (labelled %s) do not carry: the pods get no DNS records.", svc.Name, labelList(svc.Spec.Selector), labelList(set.Spec.Template.Labels)),
				"make the Service's selector match the StatefulSet's pod labels."})
		}
		return out
	}
}

// controlPlaneTaint is the taint kubeadm and most installers put on
// control-plane nodes.
var controlPlaneTaint = corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}

func checkControlPlaneToleration(w *world, o *object) []hit {
	ds := o.typed.(*appsv1.DaemonSet)
	spec := &ds.Spec.Template.Spec
	if selectsSomeNodes(spec.NodeSelector) || hasRequiredAffinity(spec) {
		return nil // meant for some nodes only
	}
	for _, t := range spec.Tolerations {
		if t.ToleratesTaint(logger, &controlPlaneTaint, false) {
			return nil
		}
	}
	msg := "it does not tolerate node-role.kubernetes.io/control-plane:NoSchedule, so it runs on no control-plane node whose installer taints it (kubeadm does): a log collector or node agent misses those nodes."
	if w.live {
		var tainted []string
		for _, n := range w.nodes {
			for _, t := range n.Spec.Taints {
				if t.Key == controlPlaneTaint.Key && t.Effect == corev1.TaintEffectNoSchedule {
					tainted = append(tainted, n.Name)
				}
			}
		}
		if len(tainted) == 0 {
			return nil
		}
		msg = fmt.Sprintf("it does not tolerate node-role.kubernetes.io/control-plane:NoSchedule, so it has no pod on %s.", strings.Join(tainted, ", "))
	}
	return []hit{{msg, "add the toleration {key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}, as kube-proxy has, if it must run on every node."}}
}

// everyNodeLabels are node labels a nodeSelector names without meaning
// "only some nodes": Helm charts pin daemons to kubernetes.io/os: linux.
var everyNodeLabels = []string{"kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch"}

func selectsSomeNodes(nodeSelector map[string]string) bool {
	for k := range nodeSelector {
		if !slices.Contains(everyNodeLabels, k) {
			return true
		}
	}
	return false
}

func checkSharedClaim(w *world, o *object) []hit {
	var (
		spec     *corev1.PodSpec
		replicas int32
		name     string
	)
	switch v := o.typed.(type) {
	case *appsv1.Deployment:
		spec, replicas, name = &v.Spec.Template.Spec, replicasOf(v.Spec.Replicas), "Deployment"
	case *appsv1.ReplicaSet:
		if metav1.GetControllerOf(v) != nil {
			return nil // its Deployment is checked
		}
		spec, replicas, name = &v.Spec.Template.Spec, replicasOf(v.Spec.Replicas), "ReplicaSet"
	}
	var out []hit
	for _, claim := range claimVolumes(spec) {
		modes := ""
		for _, other := range w.objects {
			if c, ok := other.typed.(*corev1.PersistentVolumeClaim); ok && other.namespace() == o.namespace() && c.Name == claim {
				for _, m := range c.Spec.AccessModes {
					modes += " " + string(m)
				}
			}
		}
		if strings.Contains(modes, string(corev1.ReadWriteMany)) || strings.Contains(modes, string(corev1.ReadOnlyMany)) {
			continue // shared on purpose
		}
		who := fmt.Sprintf("its %d replicas all mount claim %s", replicas, claim)
		if replicas <= 1 {
			who = fmt.Sprintf("it mounts claim %s, and during a rolling update the old and the new pod both do", claim)
		}
		out = append(out, hit{fmt.Sprintf("%s: one disk shared by interchangeable pods, not a disk per pod; a ReadWriteOnce volume cannot be mounted on two nodes, so pods scheduled elsewhere stay ContainerCreating.", who),
			fmt.Sprintf("if each pod needs its own disk, use a StatefulSet with volumeClaimTemplates; if the %s's pods really share it, use a ReadWriteMany claim (and the Recreate strategy for one writer).", name)})
	}
	return out
}

func checkActiveDeadline(w *world, o *object) []hit {
	spec := jobSpecOf(o)
	if spec.ActiveDeadlineSeconds != nil {
		return nil
	}
	if cj, ok := o.typed.(*batchv1.CronJob); ok {
		if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			return nil // Allow: cronjob-allow-overlap says it; Replace: the next run stops it
		}
		return []hit{{"concurrencyPolicy is Forbid and the Job template sets no activeDeadlineSeconds: one run that hangs holds back every later run, indefinitely.",
			"set jobTemplate.spec.activeDeadlineSeconds below the period between runs."}}
	}
	return []hit{{"activeDeadlineSeconds is not set: a run stuck in a loop or waiting forever is never stopped.",
		"set activeDeadlineSeconds to a generous bound on the run time (the chapter's migration uses 600)."}}
}
