package statefulset

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// counts are the replica counts of a status.
type counts struct {
	replicas, ready, available, current, updated int32
}

func countsOf(s *appsv1.StatefulSetStatus) counts {
	return counts{s.Replicas, s.ReadyReplicas, s.AvailableReplicas, s.CurrentReplicas, s.UpdatedReplicas}
}

type planCase struct {
	replicas int32
	opts     []func(*appsv1.StatefulSet)
	// mutate changes the set after the revisions are made (status,
	// deletion).
	mutate func(f *fixture)
	pods   func(f *fixture) []*v1.Pod
	claims func(f *fixture) []*v1.PersistentVolumeClaim
	// rolling: the set's template is r2's while the pods are at r1.
	rolling bool
	// gateOff turns MaxUnavailableStatefulSet off.
	gateOff bool

	want        []string
	wantStatus  *counts
	wantRequeue time.Duration
	wantErr     bool
	wantNoWrite bool
	wantInvalid string
	// wantNotices are the keys of the plan's once-per-key notices.
	wantNotices []string
}

func runPlanCases(t *testing.T, cases map[string]planCase) {
	t.Helper()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, tc.replicas, tc.opts...)
			if tc.mutate != nil {
				tc.mutate(f)
			}
			in := observed{set: f.set, current: f.r1, update: f.r1, now: now, maxUnavailable: !tc.gateOff, claims: map[string]*v1.PersistentVolumeClaim{}}
			if tc.rolling {
				in.set = f.v2.DeepCopy()
				in.set.Status = f.set.Status
				in.set.Annotations = f.set.Annotations
				in.set.DeletionTimestamp = f.set.DeletionTimestamp
				in.update = f.r2
			}
			if tc.pods != nil {
				in.pods = tc.pods(f)
			}
			if tc.claims != nil {
				in.claims = claimMap(tc.claims(f)...)
			}
			p, err := decide(in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, describe(p)); diff != "" {
				t.Errorf("tasks (-want +got):\n%s", diff)
			}
			if tc.wantNoWrite != (p.status == nil) {
				t.Errorf("status %v, want a status write: %v", p.status, !tc.wantNoWrite)
			}
			if tc.wantStatus != nil && p.status != nil {
				if diff := cmp.Diff(*tc.wantStatus, countsOf(p.status), cmp.AllowUnexported(counts{})); diff != "" {
					t.Errorf("status counts (-want +got):\n%s", diff)
				}
			}
			if p.requeueAfter != tc.wantRequeue {
				t.Errorf("requeueAfter %v, want %v", p.requeueAfter, tc.wantRequeue)
			}
			if (p.err != nil) != tc.wantErr {
				t.Errorf("err %v, want error: %v", p.err, tc.wantErr)
			}
			if p.invalidReplaceAfter != tc.wantInvalid {
				t.Errorf("invalid annotation %q, want %q", p.invalidReplaceAfter, tc.wantInvalid)
			}
			var notices []string
			for _, n := range p.notices {
				notices = append(notices, n.key)
			}
			if diff := cmp.Diff(tc.wantNotices, notices); diff != "" {
				t.Errorf("notices (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanScaleUp(t *testing.T) {
	runPlanCases(t, map[string]planCase{
		"ordered: creates the first pod only": {
			replicas:   3,
			want:       []string{"replicas: Create web-0@" + "web-" + hashOf(t, 1)},
			wantStatus: &counts{},
		},
		"ordered: waits while web-0 is Pending": {
			replicas:   3,
			pods:       func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1)} },
			wantStatus: &counts{replicas: 1, current: 1, updated: 1},
		},
		"ordered: waits while web-0 is Running but not Ready": {
			replicas: 3,
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, unreadyFor(time.Second))} },
		},
		"ordered: creates web-1 once web-0 is Ready": {
			replicas:   3,
			pods:       func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready)} },
			want:       []string{"replicas: Create web-1@web-" + hashOf(t, 1)},
			wantStatus: &counts{replicas: 1, ready: 1, available: 1, current: 1, updated: 1},
		},
		"ordered: minReadySeconds holds web-1 back and requeues for the rest": {
			replicas:    3,
			opts:        fns(minReadySeconds(10)),
			pods:        func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, readyFor(4*time.Second))} },
			wantStatus:  &counts{replicas: 1, ready: 1, current: 1, updated: 1},
			wantRequeue: 6 * time.Second,
		},
		"ordered: minReadySeconds passed": {
			replicas:   3,
			opts:       fns(minReadySeconds(10)),
			pods:       func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, readyFor(10*time.Second))} },
			want:       []string{"replicas: Create web-1@web-" + hashOf(t, 1)},
			wantStatus: &counts{replicas: 1, ready: 1, available: 1, current: 1, updated: 1},
		},
		"ordered: ordinals start at spec.ordinals.start": {
			replicas: 2,
			opts: fns(func(s *appsv1.StatefulSet) {
				s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 4}
			}),
			pods: func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(4, f.r1, ready)} },
			want: []string{"replicas: Create web-5@web-" + hashOf(t, 1)},
		},
		"ordered: a pod below spec.ordinals.start is condemned": {
			replicas: 1,
			opts: fns(func(s *appsv1.StatefulSet) {
				s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 1}
			}),
			pods: func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready)} },
			want: []string{"scale-down: Delete web-0"},
		},
		"parallel: creates every pod in one batched stage": {
			replicas: 3,
			opts:     fns(parallel),
			want: []string{
				"replicas*: Create web-0@web-" + hashOf(t, 1),
				"replicas*: Create web-1@web-" + hashOf(t, 1),
				"replicas*: Create web-2@web-" + hashOf(t, 1),
			},
		},
		"parallel: does not wait for an unready pod": {
			replicas: 3,
			opts:     fns(parallel),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, unreadyFor(time.Minute))} },
			want: []string{
				"replicas*: Create web-1@web-" + hashOf(t, 1),
				"replicas*: Create web-2@web-" + hashOf(t, 1),
			},
		},
		"nothing to do when all pods are ready": {
			replicas:   2,
			pods:       func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready)} },
			wantStatus: &counts{replicas: 2, ready: 2, available: 2, current: 2, updated: 2},
		},
	})
}

func TestPlanFailedAndDeletedPods(t *testing.T) {
	runPlanCases(t, map[string]planCase{
		"a Failed pod is deleted, and an ordered set waits for it": {
			replicas: 3,
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, failed), f.pod(2, f.r1, ready)}
			},
			want:       []string{"replicas: Delete web-1"},
			wantStatus: &counts{replicas: 3, ready: 2, available: 2, current: 3, updated: 3},
		},
		"a Succeeded pod is deleted too": {
			replicas: 1,
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, succeeded)} },
			want:     []string{"replicas: Delete web-0"},
		},
		"a Failed pod that is terminating is waited for": {
			replicas: 2,
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, failed, terminating), f.pod(1, f.r1, ready)}
			},
		},
		"parallel: a Failed pod is deleted while the others go on": {
			replicas: 3,
			opts:     fns(parallel),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, failed), f.pod(2, f.r1, ready)}
			},
			want: []string{"replicas*: Delete web-0", "replicas*: Create web-1@web-" + hashOf(t, 1)},
		},
		"a deleted pod comes back with the same name and claim": {
			replicas: 3,
			opts:     fns(withClaims),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(2, f.r1, ready)}
			},
			claims: func(f *fixture) []*v1.PersistentVolumeClaim {
				return []*v1.PersistentVolumeClaim{f.claim(0), f.claim(1), f.claim(2)}
			},
			want: []string{"replicas: Create web-1@web-" + hashOfClaims(t, 1)},
		},
		"ordered: a terminating pod blocks the ones after it": {
			replicas: 3,
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready, terminating)}
			},
			wantStatus: &counts{replicas: 2, ready: 2, available: 2, current: 1, updated: 1},
		},
		"parallel: a terminating pod does not block the others": {
			replicas: 3,
			opts:     fns(parallel),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready, terminating)}
			},
			want: []string{"replicas*: Create web-2@web-" + hashOf(t, 1)},
		},
	})
}

func TestPlanScaleDown(t *testing.T) {
	threeReady := func(f *fixture) []*v1.Pod {
		return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r1, ready)}
	}
	runPlanCases(t, map[string]planCase{
		"ordered: removes the highest ordinal first, one per sync": {
			replicas:   1,
			pods:       threeReady,
			want:       []string{"scale-down: Delete web-2"},
			wantStatus: &counts{replicas: 3, ready: 3, available: 3, current: 3, updated: 3},
		},
		"ordered: waits for the removed pod to terminate": {
			replicas: 1,
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r1, ready, terminating)}
			},
		},
		"ordered: the lowest unhealthy condemned pod may go": {
			replicas: 1,
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r1, unreadyFor(time.Minute))}
			},
			want: []string{"scale-down: Delete web-2"},
		},
		"ordered: a healthy pod goes while a lower one is unhealthy": {
			replicas: 1,
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, unreadyFor(time.Minute)), f.pod(2, f.r1, ready)}
			},
			want: []string{"scale-down: Delete web-2"},
		},
		"ordered: halts when an unhealthy pod is not the lowest unhealthy one": {
			replicas: 1,
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, unreadyFor(time.Minute)), f.pod(2, f.r1, unreadyFor(time.Minute))}
			},
		},
		"ordered: halts while a wanted pod is unhealthy": {
			replicas: 1,
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, unreadyFor(time.Minute)), f.pod(1, f.r1, ready), f.pod(2, f.r1, ready)}
			},
		},
		"parallel: removes every condemned pod at once": {
			replicas: 1,
			opts:     fns(parallel),
			pods:     threeReady,
			want:     []string{"scale-down*: Delete web-2", "scale-down*: Delete web-1"},
		},
		"scale to zero": {
			replicas: 0,
			pods:     threeReady,
			want:     []string{"scale-down: Delete web-2"},
		},
		"claims are kept on scale-down by default": {
			replicas: 1,
			opts:     fns(withClaims),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready)}
			},
			claims: func(f *fixture) []*v1.PersistentVolumeClaim {
				return []*v1.PersistentVolumeClaim{f.claim(0), f.claim(1)}
			},
			want: []string{"scale-down: Delete web-1"},
		},
	})
}

func TestPlanClaims(t *testing.T) {
	retainDelete := retention(appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType)
	deleteRetain := retention(appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType)
	deleteDelete := retention(appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType)
	runPlanCases(t, map[string]planCase{
		"the claim is created with the pod": {
			replicas: 2,
			opts:     fns(withClaims),
			want:     []string{"replicas: Create web-0@web-" + hashOfClaims(t, 1) + " +data-web-0"},
		},
		"an existing claim is reused": {
			replicas: 1,
			opts:     fns(withClaims),
			claims:   func(f *fixture) []*v1.PersistentVolumeClaim { return []*v1.PersistentVolumeClaim{f.claim(0)} },
			want:     []string{"replicas: Create web-0@web-" + hashOfClaims(t, 1)},
		},
		"a claim being deleted holds the pod back": {
			replicas: 1,
			opts:     fns(withClaims),
			claims: func(f *fixture) []*v1.PersistentVolumeClaim {
				c := f.claim(0)
				c.DeletionTimestamp = &metav1.Time{Time: now}
				return []*v1.PersistentVolumeClaim{c}
			},
			want: []string{"replicas: Create web-0@web-" + hashOfClaims(t, 1) + " deleting:data-web-0"},
		},
		"a Pending pod gets its missing claim back": {
			replicas: 1,
			opts:     fns(withClaims),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1)} },
			want:     []string{"replicas: Claims web-0 +data-web-0"},
		},
		"whenDeleted Delete: a Pending pod's claim gets a reference to the set": {
			replicas: 1,
			opts:     fns(withClaims, deleteRetain),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1)} },
			claims:   func(f *fixture) []*v1.PersistentVolumeClaim { return []*v1.PersistentVolumeClaim{f.claim(0)} },
			want:     []string{"replicas: Claims web-0 data-web-0→StatefulSet/web"},
		},
		"whenDeleted Delete: a Ready pod's claim is fixed through a pod update": {
			replicas: 1,
			opts:     fns(withClaims, deleteRetain),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready)} },
			claims:   func(f *fixture) []*v1.PersistentVolumeClaim { return []*v1.PersistentVolumeClaim{f.claim(0)} },
			want:     []string{"replicas: Conform web-0 data-web-0→StatefulSet/web"},
		},
		"whenDeleted Delete: claims that are right are left alone": {
			replicas: 1,
			opts:     fns(withClaims, deleteRetain),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready)} },
			claims: func(f *fixture) []*v1.PersistentVolumeClaim {
				return []*v1.PersistentVolumeClaim{f.claim(0, f.setRef())}
			},
		},
		"policy back to Retain removes the set's reference": {
			replicas: 1,
			opts:     fns(withClaims),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready)} },
			claims: func(f *fixture) []*v1.PersistentVolumeClaim {
				return []*v1.PersistentVolumeClaim{f.claim(0, f.setRef())}
			},
			want: []string{"replicas: Conform web-0 data-web-0→none"},
		},
		"whenScaled Delete: a condemned pod's claim gets a reference to the pod before the pod goes": {
			replicas: 1,
			opts:     fns(withClaims, retainDelete),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready)} },
			claims: func(f *fixture) []*v1.PersistentVolumeClaim {
				return []*v1.PersistentVolumeClaim{f.claim(0), f.claim(1)}
			},
			want: []string{"condemned-claims: Owners web-1 data-web-1→Pod/web-1", "scale-down: Delete web-1"},
		},
		"whenScaled and whenDeleted Delete: the condemned claim moves from the set to the pod": {
			replicas: 1,
			opts:     fns(withClaims, deleteDelete),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready)} },
			claims: func(f *fixture) []*v1.PersistentVolumeClaim {
				return []*v1.PersistentVolumeClaim{f.claim(0, f.setRef()), f.claim(1, f.setRef())}
			},
			want: []string{"condemned-claims: Owners web-1 data-web-1→Pod/web-1", "scale-down: Delete web-1"},
		},
		"whenScaled Delete: a claim still owned by the previous web-1 holds the new one back": {
			replicas: 2,
			opts:     fns(withClaims, retainDelete),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready)} },
			claims: func(f *fixture) []*v1.PersistentVolumeClaim {
				old := f.pod(1, f.r1)
				old.UID = "uid-earlier-web-1"
				return []*v1.PersistentVolumeClaim{f.claim(0), f.claim(1, podRef(old))}
			},
		},
		"whenScaled Retain: a claim owned by the previous web-1 is reused": {
			replicas: 2,
			opts:     fns(withClaims),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready)} },
			claims: func(f *fixture) []*v1.PersistentVolumeClaim {
				old := f.pod(1, f.r1)
				old.UID = "uid-earlier-web-1"
				return []*v1.PersistentVolumeClaim{f.claim(0), f.claim(1, podRef(old))}
			},
			want: []string{"replicas: Create web-1@web-" + hashOfClaims(t, 1)},
		},
		"another controller's claim: the policy steps aside and warns": {
			replicas: 1,
			opts:     fns(withClaims, deleteRetain),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready)} },
			claims: func(f *fixture) []*v1.PersistentVolumeClaim {
				other := metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Database", Name: "db", UID: "uid-db", Controller: ptr.To(true)}
				return []*v1.PersistentVolumeClaim{f.claim(0, other, f.setRef())}
			},
			want: []string{"replicas: Conform web-0 data-web-0!→Database/db"},
		},
		"another controller's claim without our references is left alone": {
			replicas: 1,
			opts:     fns(withClaims, deleteRetain),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready)} },
			claims: func(f *fixture) []*v1.PersistentVolumeClaim {
				other := metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Database", Name: "db", UID: "uid-db", Controller: ptr.To(true)}
				return []*v1.PersistentVolumeClaim{f.claim(0, other)}
			},
		},
		"a plain (non-controller) reference to the set is made a controller reference": {
			replicas: 1,
			opts:     fns(withClaims, deleteRetain),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready)} },
			claims: func(f *fixture) []*v1.PersistentVolumeClaim {
				ref := f.setRef()
				ref.Controller = nil
				return []*v1.PersistentVolumeClaim{f.claim(0, ref)}
			},
			want: []string{"replicas: Conform web-0 data-web-0→StatefulSet/web"},
		},
	})
}

func TestPlanIdentity(t *testing.T) {
	runPlanCases(t, map[string]planCase{
		"an adopted pod gets its identity labels": {
			replicas: 1,
			pods: func(f *fixture) []*v1.Pod {
				p := f.pod(0, f.r1, ready)
				delete(p.Labels, appsv1.StatefulSetPodNameLabel)
				return []*v1.Pod{p}
			},
			want: []string{"replicas: Conform web-0 write"},
		},
		"a pod without the claim volume gets it, and the claim": {
			replicas: 1,
			opts:     fns(withClaims),
			pods: func(f *fixture) []*v1.Pod {
				p := f.pod(0, f.r1, ready)
				p.Spec.Volumes = nil
				return []*v1.Pod{p}
			},
			want: []string{"replicas: Conform web-0 +data-web-0 write"},
		},
		"a pod with an unparsable ordinal is ignored": {
			replicas: 1,
			pods: func(f *fixture) []*v1.Pod {
				p := f.pod(0, f.r1, ready)
				p.Name = "web-99999999999"
				return []*v1.Pod{f.pod(0, f.r1, ready), p}
			},
			wantStatus: &counts{replicas: 1, ready: 1, available: 1, current: 1, updated: 1},
		},
	})
}

func TestPlanRollingUpdate(t *testing.T) {
	allAt := func(rev func(f *fixture) *appsv1.ControllerRevision, n int) func(f *fixture) []*v1.Pod {
		return func(f *fixture) []*v1.Pod {
			var pods []*v1.Pod
			for i := 0; i < n; i++ {
				pods = append(pods, f.pod(i, rev(f), ready))
			}
			return pods
		}
	}
	r1 := func(f *fixture) *appsv1.ControllerRevision { return f.r1 }
	runPlanCases(t, map[string]planCase{
		"ordered: the highest outdated pod goes first": {
			replicas:   3,
			rolling:    true,
			pods:       allAt(r1, 3),
			want:       []string{"rolling-update: Delete web-2 rollout"},
			wantStatus: &counts{replicas: 3, ready: 3, available: 3, current: 3},
		},
		"ordered: waits for the updated pod to be Ready": {
			replicas: 3,
			rolling:  true,
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r2, unreadyFor(time.Second))}
			},
			wantStatus: &counts{replicas: 3, ready: 2, available: 2, current: 2, updated: 1},
		},
		"ordered: a recreated pod comes at the update revision": {
			replicas: 3,
			rolling:  true,
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready)}
			},
			want: []string{"replicas: Create web-2@" + "web-" + hashOf2(t)},
		},
		"ordered: next outdated pod once the updated one is Ready": {
			replicas: 3,
			rolling:  true,
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r2, ready)}
			},
			want: []string{"rolling-update: Delete web-1 rollout"},
		},
		"partition: pods below it stay, and are recreated, at the current revision": {
			replicas: 3,
			rolling:  true,
			opts:     fns(partition(2)),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(1, f.r1, ready), f.pod(2, f.r2, ready)}
			},
			want: []string{"replicas: Create web-0@web-" + hashOf(t, 1)},
		},
		"partition: nothing below it is deleted": {
			replicas: 3,
			rolling:  true,
			opts:     fns(partition(2)),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r2, ready)}
			},
			wantStatus: &counts{replicas: 3, ready: 3, available: 3, current: 2, updated: 1},
		},
		"ordered: maxUnavailable 2 deletes two at once": {
			replicas: 3,
			rolling:  true,
			opts:     fns(maxUnavailable("2")),
			pods:     allAt(r1, 3),
			want:     []string{"rolling-update: Delete web-2 rollout", "rolling-update: Delete web-1 rollout"},
		},
		"maxUnavailable as a percentage rounds down but is at least 1": {
			replicas: 3,
			rolling:  true,
			opts:     fns(maxUnavailable("10%")),
			pods:     allAt(r1, 3),
			want:     []string{"rolling-update: Delete web-2 rollout"},
		},
		"maxUnavailable 66% of 3 is 1": {
			replicas: 3,
			rolling:  true,
			opts:     fns(maxUnavailable("66%"), parallel),
			pods:     allAt(r1, 3),
			want:     []string{"rolling-update: Delete web-2 rollout"},
		},
		"parallel: maxUnavailable counts pods that are already unavailable": {
			replicas: 4,
			rolling:  true,
			opts:     fns(maxUnavailable("2"), parallel),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r1, ready), f.pod(3, f.r2, unreadyFor(time.Second))}
			},
			want: []string{"rolling-update: Delete web-2 rollout"},
		},
		"parallel: outdated unavailable pods are replaced first, at no extra cost": {
			replicas: 3,
			rolling:  true,
			opts:     fns(parallel),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, unreadyFor(time.Hour)), f.pod(1, f.r1, ready), f.pod(2, f.r1, ready)}
			},
			want: []string{"rolling-update: Delete web-0 rollout"},
		},
		"parallel: at the budget with nothing stuck, waits": {
			replicas: 3,
			rolling:  true,
			opts:     fns(parallel),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r2, unreadyFor(time.Second))}
			},
		},
		"without the MaxUnavailableStatefulSet gate: one at a time, waiting for an unavailable updated pod": {
			replicas: 3,
			rolling:  true,
			gateOff:  true,
			opts:     fns(maxUnavailable("3"), parallel),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r2, unreadyFor(time.Second))}
			},
		},
		"without the gate: deletes the highest outdated pod": {
			replicas: 3,
			rolling:  true,
			gateOff:  true,
			opts:     fns(maxUnavailable("3"), parallel),
			pods:     allAt(r1, 3),
			want:     []string{"rolling-update: Delete web-2 rollout"},
		},
		"OnDelete: nothing is deleted, new pods come at the update revision": {
			replicas: 3,
			rolling:  true,
			opts:     fns(onDelete),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready)}
			},
			want: []string{"replicas: Create web-2@web-" + hashOf2(t)},
		},
		"OnDelete: a fully outdated set is left alone": {
			replicas: 2,
			rolling:  true,
			opts:     fns(onDelete),
			pods:     allAt(r1, 2),
		},
		"type RollingUpdate without rollingUpdate: ordinals below currentReplicas are recreated at the current revision": {
			replicas: 3,
			rolling:  true,
			opts: fns(func(s *appsv1.StatefulSet) {
				s.Spec.UpdateStrategy.RollingUpdate = nil
				s.Status.CurrentReplicas = 2
			}),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(2, f.r2, ready)}
			},
			want: []string{"replicas: Create web-1@web-" + hashOf(t, 1)},
		},
		"scale-down goes before the rolling update": {
			replicas: 2,
			rolling:  true,
			pods:     allAt(r1, 3),
			want:     []string{"scale-down: Delete web-2"},
		},
	})
}

func TestPlanSetLifecycle(t *testing.T) {
	runPlanCases(t, map[string]planCase{
		"a set being deleted only reports status": {
			replicas: 3,
			mutate: func(f *fixture) {
				f.set.DeletionTimestamp = &metav1.Time{Time: now}
			},
			pods:       func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready)} },
			wantStatus: &counts{replicas: 1, ready: 1, available: 1, current: 1, updated: 1},
		},
		"Recreate without its feature gate is refused like upstream": {
			replicas: 1,
			opts: fns(func(s *appsv1.StatefulSet) {
				s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RecreateStatefulSetStrategyType}
			}),
			wantNoWrite: true,
			wantErr:     true,
		},
		"an invalid maxUnavailable fails the sync but still reports status": {
			replicas: 2,
			rolling:  true,
			opts:     fns(maxUnavailable("lots")),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready)}
			},
			wantErr: true,
		},
	})
}

func TestPlanReplaceUnready(t *testing.T) {
	after := annotate(ReplaceUnreadyAfterAnnotation, "2m")
	runPlanCases(t, map[string]planCase{
		"ordered: an outdated pod unready past the limit is replaced": {
			replicas: 3,
			rolling:  true,
			opts:     fns(after),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r1, unreadyFor(3*time.Minute))}
			},
			want: []string{"replace-unready: Delete web-2 rollout note:ReplacingUnreadyPod"},
		},
		"not yet past the limit: look again when it will be": {
			replicas: 3,
			rolling:  true,
			opts:     fns(after),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r1, unreadyFor(30*time.Second))}
			},
			wantRequeue: 90 * time.Second,
		},
		"a pod at the update revision is not replaced": {
			replicas: 3,
			rolling:  true,
			opts:     fns(after),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r2, unreadyFor(time.Hour))}
			},
		},
		"without the annotation the rollout stays stuck, as upstream's does": {
			replicas: 3,
			rolling:  true,
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready), f.pod(2, f.r1, unreadyFor(time.Hour))}
			},
		},
		"the partition is respected": {
			replicas: 3,
			rolling:  true,
			opts:     fns(after, partition(2)),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, unreadyFor(time.Hour)), f.pod(2, f.r2, ready)}
			},
		},
		"OnDelete sets are left alone": {
			replicas: 2,
			rolling:  true,
			opts:     fns(after, onDelete),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, unreadyFor(time.Hour))}
			},
		},
		"ordered: the lowest stuck pod goes first, one within maxUnavailable 1": {
			replicas: 3,
			rolling:  true,
			opts:     fns(after),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, unreadyFor(time.Hour)), f.pod(2, f.r1, unreadyFor(time.Hour))}
			},
			want: []string{"replace-unready: Delete web-1 rollout note:ReplacingUnreadyPod"},
		},
		"a replacement already under way uses up maxUnavailable": {
			replicas: 3,
			rolling:  true,
			opts:     fns(after),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, ready, terminating), f.pod(2, f.r1, unreadyFor(time.Hour))}
			},
			wantNotices: []string{"deferred/web-2/web-" + hashOf2(t)},
		},
		"maxUnavailable 2 replaces two": {
			replicas: 3,
			rolling:  true,
			opts:     fns(after, maxUnavailable("2")),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, unreadyFor(time.Hour)), f.pod(2, f.r1, unreadyFor(time.Hour))}
			},
			want: []string{
				"replace-unready: Delete web-1 rollout note:ReplacingUnreadyPod",
				"replace-unready: Delete web-2 rollout note:ReplacingUnreadyPod",
			},
		},
		"parallel: the rolling update does not delete the replaced pod twice": {
			replicas: 2,
			rolling:  true,
			opts:     fns(after, parallel),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r1, ready), f.pod(1, f.r1, unreadyFor(time.Hour))}
			},
			want: []string{"replace-unready: Delete web-1 rollout note:ReplacingUnreadyPod"},
		},
		"ordered, 2 replicas: a first pod that never became Ready is replaced; the second waits for it (issue 13 item 10)": {
			replicas: 2,
			rolling:  true,
			opts:     fns(after),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, running, createdAgo(5*time.Minute))} },
			want:     []string{"replace-unready: Delete web-0 rollout note:ReplacingUnreadyPod"},
		},
		"ordered, 3 replicas: the stuck first pod is replaced though two pods are missing above it": {
			replicas: 3,
			rolling:  true,
			opts:     fns(after),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, unreadyFor(time.Hour))} },
			want:     []string{"replace-unready: Delete web-0 rollout note:ReplacingUnreadyPod"},
		},
		"ordered: a missing pod below the stuck one still counts against maxUnavailable": {
			replicas:    2,
			rolling:     true,
			opts:        fns(after),
			pods:        func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(1, f.r1, unreadyFor(time.Hour))} },
			want:        []string{"replicas: Create web-0@web-" + hashOf2(t)},
			wantNotices: []string{"deferred/web-1/web-" + hashOf2(t)},
		},
		"parallel: the rolling update replaces an unavailable outdated pod at once, so no notice": {
			replicas: 2,
			rolling:  true,
			opts:     fns(after, parallel),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, unreadyFor(time.Hour))} },
			want:     []string{"replicas*: Create web-1@web-" + hashOf2(t), "rolling-update: Delete web-0 rollout"},
		},
		"an unready pod at the update revision uses up maxUnavailable: the stuck pod waits, and a notice says why": {
			replicas: 3,
			rolling:  true,
			opts:     fns(after),
			pods: func(f *fixture) []*v1.Pod {
				return []*v1.Pod{f.pod(0, f.r2, unreadyFor(time.Hour)), f.pod(1, f.r1, unreadyFor(time.Hour)), f.pod(2, f.r1, ready)}
			},
			wantNotices: []string{"deferred/web-1/web-" + hashOf2(t)},
		},
		"a pod that never reported Ready counts from its creation": {
			replicas: 1,
			rolling:  true,
			opts:     fns(after),
			pods:     func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, running, createdAgo(5*time.Minute))} },
			want:     []string{"replace-unready: Delete web-0 rollout note:ReplacingUnreadyPod"},
		},
		"an invalid value is reported and ignored": {
			replicas:    1,
			rolling:     true,
			opts:        fns(annotate(ReplaceUnreadyAfterAnnotation, "soon")),
			pods:        func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, unreadyFor(time.Hour))} },
			wantInvalid: "soon",
		},
		"a negative value is invalid": {
			replicas:    1,
			opts:        fns(annotate(ReplaceUnreadyAfterAnnotation, "-1m")),
			pods:        func(f *fixture) []*v1.Pod { return []*v1.Pod{f.pod(0, f.r1, ready)} },
			wantInvalid: "-1m",
		},
	})
}

func TestCountPods(t *testing.T) {
	f := newFixture(t, 3, minReadySeconds(30))
	base := appsv1.StatefulSetStatus{CurrentRevision: f.r1.Name, UpdateRevision: f.r2.Name}
	pods := []*v1.Pod{
		f.pod(0, f.r1, ready),
		f.pod(1, f.r2, readyFor(10*time.Second)),
		f.pod(2, f.r2, ready, terminating),
		f.pod(3, f.r1),
		newPod(f.set, 4, f.r1.Name), // not created yet
	}
	got := countsOf(ptr.To(countPods(base, 30, now, pods)))
	want := counts{replicas: 4, ready: 3, available: 2, current: 2, updated: 1}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(counts{})); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestFinishStatus(t *testing.T) {
	f := newFixture(t, 2)
	tests := map[string]struct {
		base      appsv1.StatefulSetStatus
		rolledOut int
		want      appsv1.StatefulSetStatus
	}{
		"rollout complete: the update revision becomes current": {
			base: appsv1.StatefulSetStatus{Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2, CurrentReplicas: 0, CurrentRevision: "a", UpdateRevision: "b"},
			want: appsv1.StatefulSetStatus{Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2, CurrentReplicas: 2, CurrentRevision: "b", UpdateRevision: "b"},
		},
		"rollout under way: deletions count the pods out of currentReplicas": {
			base:      appsv1.StatefulSetStatus{Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 0, CurrentReplicas: 2, CurrentRevision: "a", UpdateRevision: "b"},
			rolledOut: 1,
			want:      appsv1.StatefulSetStatus{Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 0, CurrentReplicas: 1, CurrentRevision: "a", UpdateRevision: "b"},
		},
		"updated but not ready: not complete": {
			base: appsv1.StatefulSetStatus{Replicas: 2, ReadyReplicas: 1, UpdatedReplicas: 2, CurrentRevision: "a", UpdateRevision: "b"},
			want: appsv1.StatefulSetStatus{Replicas: 2, ReadyReplicas: 1, UpdatedReplicas: 2, CurrentRevision: "a", UpdateRevision: "b"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, finishStatus(f.set, tc.base, tc.rolledOut)); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitPodName(t *testing.T) {
	tests := map[string]struct {
		parent  string
		ordinal int
	}{
		"web-0":           {"web", 0},
		"web-12":          {"web", 12},
		"my-web-3":        {"my-web", 3},
		"web-01":          {"web", 1},
		"web":             {"", -1},
		"web-":            {"", -1},
		"web-a":           {"", -1},
		"web-1a":          {"", -1},
		"web-99999999999": {"web", -1},
	}
	for name, tc := range tests {
		parent, ord := splitPodName(name)
		if parent != tc.parent || ord != tc.ordinal {
			t.Errorf("splitPodName(%q) = %q, %d; want %q, %d", name, parent, ord, tc.parent, tc.ordinal)
		}
	}
}

func TestNewPodIdentity(t *testing.T) {
	f := newFixture(t, 3, withClaims, func(s *appsv1.StatefulSet) {
		s.Spec.Template.Spec.Volumes = []v1.Volume{{Name: "config", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	})
	p := newPod(f.set, 2, f.r1.Name)
	if p.Name != "web-2" || p.GenerateName != "web-" || p.Namespace != "default" {
		t.Errorf("name %q generateName %q namespace %q", p.Name, p.GenerateName, p.Namespace)
	}
	if p.Spec.Hostname != "web-2" || p.Spec.Subdomain != "web" {
		t.Errorf("hostname %q subdomain %q", p.Spec.Hostname, p.Spec.Subdomain)
	}
	wantLabels := map[string]string{
		"app":                           "web",
		appsv1.StatefulSetPodNameLabel:  "web-2",
		appsv1.PodIndexLabel:            "2",
		appsv1.StatefulSetRevisionLabel: f.r1.Name,
	}
	if diff := cmp.Diff(wantLabels, p.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	ref := metav1.GetControllerOf(p)
	if ref == nil || ref.Kind != "StatefulSet" || ref.Name != "web" || ref.UID != f.set.UID || !*ref.BlockOwnerDeletion {
		t.Errorf("controller ref %+v", ref)
	}
	wantVolumes := []v1.Volume{
		{Name: "data", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "data-web-2"}}},
		{Name: "config", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
	}
	if diff := cmp.Diff(wantVolumes, p.Spec.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	if !hasIdentity(f.set, p) || !hasStorage(f.set, p) {
		t.Error("a new pod does not conform to its own set")
	}
	claim := claimsFor(f.set, p)[0]
	if claim.Name != "data-web-2" || claim.Namespace != "default" || claim.Labels["app"] != "web" {
		t.Errorf("claim %s/%s labels %v", claim.Namespace, claim.Name, claim.Labels)
	}
	// The template must not be shared with the pod.
	p.Spec.Containers[0].Image = "changed"
	if f.set.Spec.Template.Spec.Containers[0].Image == "changed" {
		t.Error("newPod shares the template's containers")
	}
}

func fns(fs ...func(*appsv1.StatefulSet)) []func(*appsv1.StatefulSet) { return fs }

// hashOf is the hash part of the name of revision 1 of the plain test set.
func hashOf(t *testing.T, _ int) string {
	f := newFixture(t, 1)
	return f.r1.Name[len("web-"):]
}

func hashOf2(t *testing.T) string {
	f := newFixture(t, 1)
	return f.r2.Name[len("web-"):]
}

// hashOfClaims is hashOf for the set with a volumeClaimTemplate.
func hashOfClaims(t *testing.T, _ int) string {
	f := newFixture(t, 1, withClaims)
	return f.r1.Name[len("web-"):]
}
