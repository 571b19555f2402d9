package statefulset

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"quartet.dev/quartet/internal/controllers/kit"
	"quartet.dev/quartet/internal/controllers/kittest"
)

var (
	podsResource   = schema.GroupResource{Resource: "pods"}
	claimsResource = schema.GroupResource{Resource: "persistentvolumeclaims"}
)

// newTestApplier is an applier on kittest's fake apiserver holding objs,
// whose cache holds cached.
func newTestApplier(objs []runtime.Object, cached ...*v1.Pod) (*applier, *record.FakeRecorder, *fake.Clientset) {
	client := kittest.NewAPI(objs...)
	rec := record.NewFakeRecorder(1000)
	byName := map[string]*v1.Pod{}
	for _, p := range cached {
		byName[p.Name] = p
	}
	return &applier{
		client: client, recorder: rec,
		cachedPod: func(_, name string) (*v1.Pod, error) {
			if p, ok := byName[name]; ok {
				return p, nil
			}
			return nil, apierrors.NewNotFound(podsResource, name)
		},
		cachedSet: func(_, name string) (*appsv1.StatefulSet, error) {
			return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "statefulsets"}, name)
		},
		writes: kit.NewOwnWrites(testingclock.NewFakeClock(now), nil),
	}, rec, client
}

// failNext makes the next requests named call ("create pod web-0", "update
// status web") fail with errs, in order.
func failNext(client *fake.Clientset, call string, errs ...error) {
	f := strings.Fields(call)
	verb, resource, name := f[0], map[string]string{"pod": "pods", "claim": "persistentvolumeclaims", "status": "statefulsets"}[f[1]], f[2]
	if verb == "adopt" || verb == "release" {
		verb = "patch"
	}
	kittest.FailNext(client, verb, resource, name, errs...)
}

// writes lists the requests made to pods, claims and sets, in order, as
// "verb kind name": "create claim data-web-0", "update status web", and for
// pod patches "adopt pod web-0" or "release pod web-3".
func writes(client *fake.Clientset) []string {
	var out []string
	for _, a := range client.Actions() {
		verb, kind := a.GetVerb(), map[string]string{"pods": "pod", "persistentvolumeclaims": "claim", "statefulsets": "set"}[a.GetResource().Resource]
		if verb == "list" || verb == "watch" || kind == "" {
			continue
		}
		var name string
		switch a := a.(type) {
		case k8stesting.CreateAction:
			name = a.GetObject().(metav1.Object).GetName()
		case k8stesting.PatchAction:
			name, verb = a.GetName(), "adopt"
			if strings.Contains(string(a.GetPatch()), `"$patch":"delete"`) {
				verb = "release"
			}
		case interface{ GetName() string }:
			name = a.GetName()
		}
		if a.GetSubresource() == "status" {
			kind = "status"
		}
		out = append(out, verb+" "+kind+" "+name)
	}
	return out
}

func TestApplyTasks(t *testing.T) {
	boom := errors.New("boom")
	tests := map[string]struct {
		opts       []func(*appsv1.StatefulSet)
		task       func(f *fixture) podTask
		fail       map[string][]error
		apiClaims  func(f *fixture) []*v1.PersistentVolumeClaim // what the API holds
		wantCalls  []string
		wantEvents []string
		wantErr    bool
	}{
		"create: claim first, then the pod": {
			opts: fns(withClaims),
			task: func(f *fixture) podTask {
				p := newPod(f.set, 0, f.r1.Name)
				return podTask{kind: taskCreate, pod: p, newClaims: claimsFor(f.set, p)}
			},
			wantCalls: []string{"create claim data-web-0", "create pod web-0"},
			wantEvents: []string{
				"Normal SuccessfulCreate Create Claim data-web-0 Pod web-0 in StatefulSet web success",
				"Normal SuccessfulCreate Create Pod web-0 in StatefulSet web successful",
			},
		},
		"create: a failed claim stops the pod": {
			opts: fns(withClaims),
			task: func(f *fixture) podTask {
				p := newPod(f.set, 0, f.r1.Name)
				return podTask{kind: taskCreate, pod: p, newClaims: claimsFor(f.set, p)}
			},
			fail:      map[string][]error{"create claim data-web-0": {boom}},
			wantCalls: []string{"create claim data-web-0"},
			wantEvents: []string{
				"Warning FailedCreate Create Claim data-web-0 for Pod web-0 in StatefulSet web failed error: boom",
				"Warning FailedCreate Create Pod web-0 in StatefulSet web failed error: failed to create PVC data-web-0: boom",
			},
			wantErr: true,
		},
		"create: a claim that already exists is no claim event, but fails the pod": {
			opts: fns(withClaims),
			task: func(f *fixture) podTask {
				p := newPod(f.set, 0, f.r1.Name)
				return podTask{kind: taskCreate, pod: p, newClaims: claimsFor(f.set, p)}
			},
			fail:      map[string][]error{"create claim data-web-0": {apierrors.NewAlreadyExists(claimsResource, "data-web-0")}},
			wantCalls: []string{"create claim data-web-0"},
			wantEvents: []string{
				`Warning FailedCreate Create Pod web-0 in StatefulSet web failed error: failed to create PVC data-web-0: persistentvolumeclaims "data-web-0" already exists`,
			},
			wantErr: true,
		},
		"create: a claim being deleted holds the pod back": {
			opts: fns(withClaims),
			task: func(f *fixture) podTask {
				return podTask{kind: taskCreate, pod: newPod(f.set, 0, f.r1.Name), deletingClaims: []string{"data-web-0"}}
			},
			wantEvents: []string{"Warning FailedCreate Create Pod web-0 in StatefulSet web failed error: pvc data-web-0 is being deleted"},
			wantErr:    true,
		},
		"create: a pod that already exists is left to the next sync, silently": {
			task: func(f *fixture) podTask {
				return podTask{kind: taskCreate, pod: newPod(f.set, 0, f.r1.Name)}
			},
			fail:      map[string][]error{"create pod web-0": {apierrors.NewAlreadyExists(podsResource, "web-0")}},
			wantCalls: []string{"create pod web-0"},
			wantErr:   true,
		},
		"create: a refused pod is a FailedCreate": {
			task: func(f *fixture) podTask {
				return podTask{kind: taskCreate, pod: newPod(f.set, 0, f.r1.Name)}
			},
			fail:       map[string][]error{"create pod web-0": {boom}},
			wantCalls:  []string{"create pod web-0"},
			wantEvents: []string{"Warning FailedCreate Create Pod web-0 in StatefulSet web failed error: boom"},
			wantErr:    true,
		},
		"create: existing claims get their owners after the pod": {
			opts: fns(withClaims),
			task: func(f *fixture) podTask {
				c := f.claim(0)
				return podTask{kind: taskCreate, pod: newPod(f.set, 0, f.r1.Name), owners: []ownerChange{{claim: c.Name, update: c}}}
			},
			wantCalls:  []string{"create pod web-0", "update claim data-web-0"},
			wantEvents: []string{"Normal SuccessfulCreate Create Pod web-0 in StatefulSet web successful"},
		},
		"create: an owner update that fails is a FailedUpdate": {
			opts: fns(withClaims),
			task: func(f *fixture) podTask {
				c := f.claim(0)
				return podTask{kind: taskCreate, pod: newPod(f.set, 0, f.r1.Name), owners: []ownerChange{{claim: c.Name, update: c}}}
			},
			fail:       map[string][]error{"update claim data-web-0": {boom}},
			wantCalls:  []string{"create pod web-0", "update claim data-web-0"},
			wantEvents: []string{"Warning FailedUpdate Update Pod web-0 in StatefulSet web failed error: could not update claim data-web-0 for delete policy ownerRefs: boom"},
			wantErr:    true,
		},
		"delete": {
			task:       func(f *fixture) podTask { return podTask{kind: taskDelete, pod: f.pod(1, f.r1, ready)} },
			wantCalls:  []string{"delete pod web-1"},
			wantEvents: []string{"Normal SuccessfulDelete Delete Pod web-1 in StatefulSet web successful"},
		},
		"delete: a pod already gone counts as deleted": {
			task:       func(f *fixture) podTask { return podTask{kind: taskDelete, pod: f.pod(1, f.r1, ready)} },
			fail:       map[string][]error{"delete pod web-1": {apierrors.NewNotFound(podsResource, "web-1")}},
			wantCalls:  []string{"delete pod web-1"},
			wantEvents: []string{"Normal SuccessfulDelete Delete Pod web-1 in StatefulSet web successful"},
		},
		"delete: refused": {
			task:       func(f *fixture) podTask { return podTask{kind: taskDelete, pod: f.pod(1, f.r1, ready)} },
			fail:       map[string][]error{"delete pod web-1": {boom}},
			wantCalls:  []string{"delete pod web-1"},
			wantEvents: []string{"Warning FailedDelete Delete Pod web-1 in StatefulSet web failed error: boom"},
			wantErr:    true,
		},
		"delete with a note": {
			task: func(f *fixture) podTask {
				return podTask{kind: taskDelete, pod: f.pod(1, f.r1, ready), note: &kit.Event{Type: v1.EventTypeNormal, Reason: reasonReplacingUnreadyPod, Message: "why"}}
			},
			wantCalls: []string{"delete pod web-1"},
			wantEvents: []string{
				"Normal ReplacingUnreadyPod why",
				"Normal SuccessfulDelete Delete Pod web-1 in StatefulSet web successful",
			},
		},
		"conform: only claim owners change, the pod write is reported but not made": {
			opts: fns(withClaims),
			task: func(f *fixture) podTask {
				c := f.claim(0)
				return podTask{kind: taskConform, pod: f.pod(0, f.r1, ready), owners: []ownerChange{{claim: c.Name, update: c}}}
			},
			wantCalls:  []string{"update claim data-web-0"},
			wantEvents: []string{"Normal SuccessfulUpdate Update Pod web-0 in StatefulSet web successful"},
		},
		"conform: a foreign controller is warned about": {
			opts: fns(withClaims),
			task: func(f *fixture) podTask {
				return podTask{kind: taskConform, pod: f.pod(0, f.r1, ready), owners: []ownerChange{{claim: "data-web-0", foreign: true}}}
			},
			wantEvents: []string{
				"Warning ConflictingController PersistentVolumeClaim data-web-0 has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim",
				"Normal SuccessfulUpdate Update Pod web-0 in StatefulSet web successful",
			},
		},
		"conform: the pod write is retried after a conflict": {
			task: func(f *fixture) podTask {
				return podTask{kind: taskConform, pod: f.pod(0, f.r1, ready), writePod: true}
			},
			fail:       map[string][]error{"update pod web-0": {apierrors.NewConflict(podsResource, "web-0", boom)}},
			wantCalls:  []string{"update pod web-0", "update pod web-0"},
			wantEvents: []string{"Normal SuccessfulUpdate Update Pod web-0 in StatefulSet web successful"},
		},
		"conform: a refused pod write is a FailedUpdate": {
			task: func(f *fixture) podTask {
				return podTask{kind: taskConform, pod: f.pod(0, f.r1, ready), writePod: true}
			},
			fail:       map[string][]error{"update pod web-0": {apierrors.NewForbidden(podsResource, "web-0", boom)}},
			wantCalls:  []string{"update pod web-0"},
			wantEvents: []string{`Warning FailedUpdate Update Pod web-0 in StatefulSet web failed error: pods "web-0" is forbidden: boom`},
			wantErr:    true,
		},
		"claims of a Pending pod: failures are errors without a pod event": {
			opts: fns(withClaims),
			task: func(f *fixture) podTask {
				p := f.pod(0, f.r1)
				return podTask{kind: taskClaims, pod: p, newClaims: claimsFor(f.set, p)}
			},
			fail:       map[string][]error{"create claim data-web-0": {boom}},
			wantCalls:  []string{"create claim data-web-0"},
			wantEvents: []string{"Warning FailedCreate Create Claim data-web-0 for Pod web-0 in StatefulSet web failed error: boom"},
			wantErr:    true,
		},
		"owners: a claim changed meanwhile is read again and written": {
			opts: fns(withClaims, retention(appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType)),
			task: func(f *fixture) podTask {
				c := f.claim(0, f.setRef())
				return podTask{kind: taskOwners, pod: f.pod(0, f.r1, ready), owners: []ownerChange{{claim: c.Name, update: c}}}
			},
			apiClaims: func(f *fixture) []*v1.PersistentVolumeClaim { return []*v1.PersistentVolumeClaim{f.claim(0)} },
			fail:      map[string][]error{"update claim data-web-0": {apierrors.NewConflict(claimsResource, "data-web-0", boom)}},
			wantCalls: []string{"update claim data-web-0", "get claim data-web-0", "update claim data-web-0"},
		},
		"owners: a claim someone else already fixed is left alone": {
			opts: fns(withClaims, retention(appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType)),
			task: func(f *fixture) podTask {
				c := f.claim(0, f.setRef())
				return podTask{kind: taskOwners, pod: f.pod(0, f.r1, ready), owners: []ownerChange{{claim: c.Name, update: c}}}
			},
			apiClaims: func(f *fixture) []*v1.PersistentVolumeClaim {
				return []*v1.PersistentVolumeClaim{f.claim(0, f.setRef())}
			},
			fail:      map[string][]error{"update claim data-web-0": {apierrors.NewConflict(claimsResource, "data-web-0", boom)}},
			wantCalls: []string{"update claim data-web-0", "get claim data-web-0"},
		},
		"owners: a conflict on a claim that is gone ends there": {
			opts: fns(withClaims, retention(appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType)),
			task: func(f *fixture) podTask {
				c := f.claim(0, f.setRef())
				return podTask{kind: taskOwners, pod: f.pod(0, f.r1, ready), owners: []ownerChange{{claim: c.Name, update: c}}}
			},
			apiClaims: func(*fixture) []*v1.PersistentVolumeClaim { return nil },
			fail:      map[string][]error{"update claim data-web-0": {apierrors.NewConflict(claimsResource, "data-web-0", boom)}},
			wantCalls: []string{"update claim data-web-0", "get claim data-web-0"},
		},
		"owners of a condemned pod": {
			opts: fns(withClaims),
			task: func(f *fixture) podTask {
				c := f.claim(2)
				return podTask{kind: taskOwners, pod: f.pod(2, f.r1, ready), owners: []ownerChange{{claim: c.Name, update: c}}}
			},
			wantCalls: []string{"update claim data-web-2"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, 3, tc.opts...)
			task := tc.task(f)
			// The API holds the pod (unless created) and the claims whose
			// owners change, or apiClaims.
			var objs []runtime.Object
			if task.kind != taskCreate {
				objs = append(objs, task.pod)
			}
			if tc.apiClaims != nil {
				for _, c := range tc.apiClaims(f) {
					objs = append(objs, c)
				}
			} else {
				for _, o := range task.owners {
					if o.update != nil {
						objs = append(objs, o.update)
					}
				}
			}
			a, rec, client := newTestApplier(objs, task.pod)
			for call, errs := range tc.fail {
				failNext(client, call, errs...)
			}
			p := &decision{stages: []stage{{name: "test", units: [][]podTask{{task}}}}}
			_, err := a.apply(context.Background(), f.set, p)
			if (err != nil) != tc.wantErr {
				t.Errorf("err %v, want error: %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantCalls, writes(client)); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantEvents, kittest.Events(rec)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSlowStart(t *testing.T) {
	f := newFixture(t, 10)
	units := func(n int) [][]podTask {
		var out [][]podTask
		for i := 0; i < n; i++ {
			out = append(out, []podTask{{kind: taskCreate, pod: newPod(f.set, i, f.r1.Name)}})
		}
		return out
	}
	tests := map[string]struct {
		units  int
		failOn string
	}{
		"all succeed":            {units: 40},
		"the first call fails":   {units: 40, failOn: "create pod web-0"},
		"an early call fails":    {units: 40, failOn: "create pod web-2"},
		"a later call fails":     {units: 40, failOn: "create pod web-20"},
		"the last call fails":    {units: 40, failOn: "create pod web-39"},
		"a single unit succeeds": {units: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, _, client := newTestApplier(nil)
			if tc.failOn != "" {
				failNext(client, tc.failOn, errors.New("quota"))
			}
			p := &decision{stages: []stage{
				{name: "burst", batched: true, units: units(tc.units)},
				{name: "after", units: [][]podTask{{{kind: taskDelete, pod: f.pod(99, f.r1, ready)}}}},
			}}
			_, err := a.apply(context.Background(), f.set, p)
			if (err != nil) != (tc.failOn != "") {
				t.Fatalf("err %v", err)
			}
			creates, ranAfter := 0, false
			for _, c := range writes(client) {
				if c == "delete pod web-99" {
					ranAfter = true
				} else {
					creates++
				}
			}
			if tc.failOn == "" {
				if creates != tc.units || !ranAfter {
					t.Errorf("%d creations (want %d), later stage ran: %v", creates, tc.units, ranAfter)
				}
				return
			}
			// Nothing starts after the failure is seen: at most one call
			// more than twice the successes is made.
			successes := creates - 1
			if creates > 2*successes+1 || ranAfter {
				t.Errorf("%d calls for %d successes, later stage ran: %v", creates, successes, ranAfter)
			}
		})
	}
}

func TestExecuteSequentialStopsAtFirstError(t *testing.T) {
	f := newFixture(t, 3)
	a, _, client := newTestApplier(nil)
	failNext(client, "delete pod web-2", errors.New("nope"))
	p := &decision{stages: []stage{{name: "rolling-update", units: [][]podTask{
		{{kind: taskDelete, pod: f.pod(2, f.r1, ready), rollout: true}},
		{{kind: taskDelete, pod: f.pod(1, f.r1, ready), rollout: true}},
	}}}}
	rolled, err := a.apply(context.Background(), f.set, p)
	if err == nil || rolled != 0 {
		t.Errorf("rolled out %d, err %v", rolled, err)
	}
	if diff := cmp.Diff([]string{"delete pod web-2"}, writes(client)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}

	a, _, _ = newTestApplier([]runtime.Object{f.pod(2, f.r1, ready), f.pod(1, f.r1, ready)})
	if rolled, err = a.apply(context.Background(), f.set, p); err != nil || rolled != 2 {
		t.Errorf("rolled out %d, err %v", rolled, err)
	}
}

func TestWriteStatus(t *testing.T) {
	f := newFixture(t, 3)
	same := f.set.Status
	changed := appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 3}
	tests := map[string]struct {
		status    appsv1.StatefulSetStatus
		fail      []error
		wantCalls int
		wantErr   bool
	}{
		"unchanged status is not written": {status: same},
		"changed status is written once":  {status: changed, wantCalls: 1},
		"a conflict is retried":           {status: changed, fail: []error{apierrors.NewConflict(schema.GroupResource{Resource: "statefulsets"}, "web", errors.New("x"))}, wantCalls: 2},
		"another failure is returned":     {status: changed, fail: []error{errors.New("down")}, wantCalls: 1, wantErr: true},
		"a higher observedGeneration alone is written": {
			status: appsv1.StatefulSetStatus{ObservedGeneration: 5}, wantCalls: 1,
		},
		"a new collisionCount alone is not written (as upstream)": {
			status: appsv1.StatefulSetStatus{CollisionCount: new(int32)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, _, client := newTestApplier([]runtime.Object{f.set})
			failNext(client, "update status web", tc.fail...)
			err := a.writeStatus(context.Background(), f.set, &tc.status)
			if (err != nil) != tc.wantErr {
				t.Errorf("err %v", err)
			}
			if n := len(writes(client)); n != tc.wantCalls {
				t.Errorf("%d status writes, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestClaimPods(t *testing.T) {
	f := newFixture(t, 3)
	selector := labels.SelectorFromSet(f.set.Spec.Selector.MatchLabels)
	orphan := f.pod(0, f.r1, ready)
	orphan.OwnerReferences = nil
	gone := f.pod(1, f.r1, ready)
	gone.OwnerReferences = nil
	owned := f.pod(2, f.r1, ready)
	strayed := f.pod(3, f.r1, ready)
	strayed.Labels = map[string]string{"app": "other"}
	other := f.pod(4, f.r1, ready)
	other.OwnerReferences[0].UID = "someone-else"
	misnamed := f.pod(5, f.r1, ready)
	misnamed.Name = "db-5"
	misnamed.OwnerReferences = nil
	dying := f.pod(6, f.r1, ready, terminating)
	dying.OwnerReferences = nil

	claims := kit.SortClaims(f.set, []*v1.Pod{orphan, gone, owned, strayed, other, misnamed, dying}, matchesSet(f.set, selector))
	names := func(pods []*v1.Pod) []string {
		var out []string
		for _, p := range pods {
			out = append(out, p.Name)
		}
		return out
	}
	if diff := cmp.Diff([][]string{{"web-2"}, {"web-0", "web-1"}, {"web-3"}}, [][]string{names(claims.Owned), names(claims.Adopt), names(claims.Release)}); diff != "" {
		t.Errorf("owned, adopt, release (-want +got):\n%s", diff)
	}

	a, _, client := newTestApplier([]runtime.Object{orphan, strayed})
	failNext(client, "adopt pod web-1", apierrors.NewNotFound(podsResource, "web-1"))
	pods, err := kit.Claim(context.Background(), claims, f.set, setKind, func() error { return nil }, a.patchPod(f.set))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"web-2", "web-0"}, names(pods)); diff != "" {
		t.Errorf("pods after adoption (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"adopt pod web-0", "adopt pod web-1", "release pod web-3"}, writes(client)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// TestRetryConflicts: write is told it retries only after a conflict, and
// runs again after the backoff's pause (an object read at the conflict is
// stale by then if its writer goes on writing), at most the backoff's steps.
func TestRetryConflicts(t *testing.T) {
	conflict := apierrors.NewConflict(claimsResource, "data-web-0", errors.New("modified"))
	boom := errors.New("boom")
	pause := 20 * time.Millisecond
	for name, tc := range map[string]struct {
		results []error // write's results in turn; nil after the last
		want    string
		wantErr error
	}{
		"written at once":          {want: "write"},
		"written after a conflict": {results: []error{conflict}, want: "write again"},
		"conflicts use the steps":  {results: []error{conflict, conflict, conflict}, want: "write again again", wantErr: conflict},
		"other errors end it":      {results: []error{boom}, want: "write", wantErr: boom},
	} {
		t.Run(name, func(t *testing.T) {
			calls := []string{}
			var conflictAt time.Time
			err := retryConflicts(wait.Backoff{Steps: 3, Duration: pause, Factor: 1}, func(again bool) error {
				calls = append(calls, map[bool]string{false: "write", true: "again"}[again])
				if waited := time.Since(conflictAt); again && waited < pause {
					t.Errorf("retried %v after the conflict, want after the %v pause", waited, pause)
				}
				var err error
				if len(tc.results) > 0 {
					err, tc.results = tc.results[0], tc.results[1:]
				}
				conflictAt = time.Now()
				return err
			})
			if got := strings.Join(calls, " "); got != tc.want {
				t.Errorf("calls %q, want %q", got, tc.want)
			}
			if err != tc.wantErr {
				t.Errorf("err %v, want %v", err, tc.wantErr)
			}
		})
	}
}
