package kit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"quartet.dev/quartet/internal/controllers/kit"
	"quartet.dev/quartet/internal/controllers/kittest"
)

var (
	now     = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	setKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")
)

func set(name string, uid types.UID) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: uid},
		Spec:       appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}},
	}
}

func pod(name string, labels map[string]string, owner *appsv1.StatefulSet) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), Labels: labels, ResourceVersion: "1"}}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, setKind)}
	}
	return p
}

// router routes pod events to the sets in an indexer and records them as
// "owner op[ orphan][ released]".
func router(t *testing.T, sets ...*appsv1.StatefulSet) (*kit.Router[*appsv1.StatefulSet, *v1.Pod], *[]string) {
	t.Helper()
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, s := range sets {
		if err := indexer.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	r := &kit.Router[*appsv1.StatefulSet, *v1.Pod]{
		Owners: kit.NewOwners(setKind.Kind, indexer, func(s *appsv1.StatefulSet) *metav1.LabelSelector { return s.Spec.Selector }),
		Route: func(owner *appsv1.StatefulSet, ev kit.ChildEvent[*v1.Pod]) {
			line := fmt.Sprintf("%s %s", owner.Name, []string{"added", "updated", "deleted"}[ev.Op])
			if ev.Orphan {
				line += " orphan"
			}
			if ev.Released {
				line += " released"
			}
			got = append(got, line)
		},
	}
	return r, &got
}

func TestRouter(t *testing.T) {
	web, db := set("web", "web-uid"), set("db", "db-uid")
	other := set("web", "old-uid") // an earlier set of the same name
	relabel := func(p *v1.Pod, labels map[string]string) *v1.Pod {
		p = p.DeepCopy()
		p.Labels, p.ResourceVersion = labels, "2"
		return p
	}
	deleting := pod("web-1", nil, web)
	deleting.DeletionTimestamp = &metav1.Time{Time: now}
	cases := map[string]struct {
		do   func(r *kit.Router[*appsv1.StatefulSet, *v1.Pod])
		want []string
	}{
		"an owned pod goes to its owner": {
			do:   func(r *kit.Router[*appsv1.StatefulSet, *v1.Pod]) { r.OnAdd(pod("web-0", nil, web), false) },
			want: []string{"web added"},
		},
		"an owner of another UID is not the owner": {
			do: func(r *kit.Router[*appsv1.StatefulSet, *v1.Pod]) { r.OnAdd(pod("web-0", nil, other), false) },
		},
		"an orphan goes to every owner that selects it": {
			do: func(r *kit.Router[*appsv1.StatefulSet, *v1.Pod]) {
				r.OnAdd(pod("x", map[string]string{"app": "db"}, nil), false)
			},
			want: []string{"db added orphan"},
		},
		"an orphan without labels goes nowhere": {
			do: func(r *kit.Router[*appsv1.StatefulSet, *v1.Pod]) { r.OnAdd(pod("x", nil, nil), false) },
		},
		"a pod seen first while being deleted goes to its owner only": {
			do:   func(r *kit.Router[*appsv1.StatefulSet, *v1.Pod]) { r.OnAdd(deleting, false) },
			want: []string{"web added"},
		},
		"a resync goes nowhere": {
			do: func(r *kit.Router[*appsv1.StatefulSet, *v1.Pod]) {
				p := pod("web-0", nil, web)
				r.OnUpdate(p, p)
			},
		},
		"released: the old owner and the sets that select the orphan": {
			do: func(r *kit.Router[*appsv1.StatefulSet, *v1.Pod]) {
				p := pod("web-0", map[string]string{"app": "db"}, web)
				released := relabel(p, p.Labels)
				released.OwnerReferences = nil
				r.OnUpdate(p, released)
			},
			want: []string{"web updated released", "db updated orphan"},
		},
		"an orphan's new labels": {
			do: func(r *kit.Router[*appsv1.StatefulSet, *v1.Pod]) {
				p := pod("x", map[string]string{"app": "none"}, nil)
				r.OnUpdate(p, relabel(p, map[string]string{"app": "web"}))
			},
			want: []string{"web updated orphan"},
		},
		"deleted, through a tombstone": {
			do: func(r *kit.Router[*appsv1.StatefulSet, *v1.Pod]) {
				r.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/db-0", Obj: pod("db-0", nil, db)})
			},
			want: []string{"db deleted"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r, got := router(t, web, db)
			tc.do(r)
			if diff := cmp.Diff(tc.want, *got); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSortClaims(t *testing.T) {
	web := set("web", "web-uid")
	stranger := set("db", "db-uid")
	orphan := pod("orphan", map[string]string{"app": "web"}, nil)
	orphanElsewhere := orphan.DeepCopy()
	orphanElsewhere.Name, orphanElsewhere.Namespace = "elsewhere", "other"
	goingOrphan := orphan.DeepCopy()
	goingOrphan.Name, goingOrphan.DeletionTimestamp = "going", &metav1.Time{Time: now}
	candidates := []*v1.Pod{
		pod("owned", map[string]string{"app": "web"}, web),
		pod("mismatch", map[string]string{"app": "other"}, web),
		pod("theirs", map[string]string{"app": "web"}, stranger),
		orphan, orphanElsewhere, goingOrphan,
		pod("unmatched-orphan", map[string]string{"app": "other"}, nil),
	}
	matches := func(p *v1.Pod) bool { return p.Labels["app"] == "web" }
	names := func(pods []*v1.Pod) []string {
		var out []string
		for _, p := range pods {
			out = append(out, p.Name)
		}
		return out
	}
	c := kit.SortClaims(web, candidates, matches)
	if diff := cmp.Diff([][]string{{"owned"}, {"orphan"}, {"mismatch"}}, [][]string{names(c.Owned), names(c.Adopt), names(c.Release)}); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	deleted := web.DeepCopy()
	deleted.DeletionTimestamp = &metav1.Time{Time: now}
	c = kit.SortClaims(deleted, candidates, matches)
	if len(c.Adopt)+len(c.Release) != 0 || len(c.Owned) != 1 {
		t.Errorf("an owner being deleted adopts %v and releases %v", names(c.Adopt), names(c.Release))
	}
}

func TestClaim(t *testing.T) {
	web := set("web", "web-uid")
	owned := pod("owned", map[string]string{"app": "web"}, web)
	orphan := pod("orphan", map[string]string{"app": "web"}, nil)
	gone := pod("gone", map[string]string{"app": "web"}, nil)
	mismatch := pod("mismatch", map[string]string{"app": "x"}, web)
	client := kittest.NewAPI(owned, orphan, mismatch)
	patch := func(ctx context.Context, p *v1.Pod, data []byte) (*v1.Pod, error) {
		return client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, data, metav1.PatchOptions{})
	}
	claims := kit.Claims[*v1.Pod]{Owned: []*v1.Pod{owned}, Adopt: []*v1.Pod{orphan, gone}, Release: []*v1.Pod{mismatch}}
	ctx := context.Background()

	refused := kit.CanAdopt(ctx, web, func(context.Context) (metav1.Object, error) { return set("web", "new-uid"), nil })
	if _, err := kit.Claim(ctx, claims, web, setKind, refused, patch, "example.com/f"); err == nil {
		t.Fatal("adopted for an owner that was replaced")
	}

	reads := 0
	allowed := kit.CanAdopt(ctx, web, func(context.Context) (metav1.Object, error) { reads++; return web, nil })
	pods, err := kit.Claim(ctx, claims, web, setKind, allowed, patch, "example.com/f")
	if err != nil {
		t.Fatal(err)
	}
	if reads != 1 {
		t.Errorf("the owner was read %d times, want once", reads)
	}
	if len(pods) != 2 || pods[1].Name != "orphan" || !metav1.IsControlledBy(pods[1], web) || !slices.Contains(pods[1].Finalizers, "example.com/f") {
		t.Errorf("claimed %+v, want owned and the patched orphan", pods)
	}
	released, _ := client.CoreV1().Pods("ns").Get(ctx, "mismatch", metav1.GetOptions{})
	if len(released.OwnerReferences) != 0 {
		t.Errorf("released pod keeps %v", released.OwnerReferences)
	}
}

// store is a Store whose version and objects a test sets.
type store struct {
	version string
	objects map[string]metav1.Object
}

func (s *store) LastStoreSyncResourceVersion() string { return s.version }
func (s *store) GetByKey(key string) (any, bool, error) {
	o, ok := s.objects[key]
	return o, ok, nil
}

func TestOwnWrites(t *testing.T) {
	clk := clocktesting.NewFakeClock(now)
	pods := &store{version: "10", objects: map[string]metav1.Object{}}
	status := &store{version: "10"}
	w := kit.NewOwnWrites(clk, map[string]kit.Store{"pods": pods, "statefulsets": status})
	owner := types.UID("web-uid")
	written := func(name, rv string) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name), ResourceVersion: rv}}
	}

	if !w.Seen(owner) {
		t.Fatal("an owner without writes must be seen")
	}
	w.Wrote(owner, "pods", written("web-0", "12"))
	w.Wrote(owner, "pods", written("web-1", "11"))
	if w.Seen(owner) || w.Seen(owner, "pods") || !w.Seen(owner, "statefulsets") {
		t.Fatal("pods written at 12 must be unseen at 10, and only under pods")
	}
	if diff := cmp.Diff(map[types.UID]bool{"web-0": true, "web-1": true}, w.Unseen(owner, "pods")); diff != "" {
		t.Errorf("unseen (-want +got):\n%s", diff)
	}
	pods.version = "11"
	if w.CaughtUp(owner) {
		t.Error("caught up at 11 with a write at 12")
	}
	if diff := cmp.Diff(map[types.UID]bool{"web-0": true}, w.Unseen(owner, "pods")); diff != "" {
		t.Errorf("unseen at 11 (-want +got):\n%s", diff)
	}
	pods.version = "12"
	if !w.CaughtUp(owner) || w.CaughtUp(owner) {
		t.Error("CaughtUp must report the waiting owner once")
	}
	// A store's version that steps back does not undo what it showed.
	pods.version = "9"
	if !w.Seen(owner) {
		t.Error("a version stepping back un-saw a write")
	}

	// Deletes: seen once the object is gone or marked for deletion.
	pods.objects["ns/web-2"] = written("web-2", "5")
	w.Deleted(owner, "pods", "ns", "web-2", "web-2")
	if w.Seen(owner) || !w.Unseen(owner, "pods")["web-2"] {
		t.Error("a delete the store does not show is seen")
	}
	marked := written("web-2", "13")
	marked.DeletionTimestamp = &metav1.Time{Time: now}
	pods.objects["ns/web-2"] = marked
	if !w.Seen(owner) {
		t.Error("a pod marked for deletion does not show its delete")
	}
	pods.objects["ns/web-3"] = written("web-3", "5")
	w.Deleted(owner, "pods", "ns", "web-3", "web-3")
	pods.objects["ns/web-3"] = written("web-3", "14")
	pods.objects["ns/web-3"].SetUID("another")
	if !w.Seen(owner) {
		t.Error("an object of the same name but another UID does not show the delete")
	}

	// A store that has applied no version yet shows everything.
	empty := kit.NewOwnWrites(clk, map[string]kit.Store{"pods": &store{}})
	empty.Wrote(owner, "pods", written("web-9", "99"))
	if !empty.Seen(owner) {
		t.Error("a store without a version holds the owner back")
	}

	// Writes unseen for five minutes stop holding the owner back, but
	// Unseen still reports them.
	w.Wrote(owner, "pods", written("web-4", "20"))
	clk.Step(5*time.Minute + time.Second)
	if !w.Seen(owner) {
		t.Error("a write unseen for five minutes still holds the owner")
	}
	if len(w.Unseen(owner, "pods")) != 1 {
		t.Error("Unseen gave up on an old write")
	}
	w.Forget(owner)
	if w.Unseen(owner, "pods") != nil {
		t.Error("Forget kept writes")
	}
}

func TestSlowStart(t *testing.T) {
	var inFlight, most atomic.Int32
	calls, window, err := kit.SlowStart(100, 1, 10, func(int) error {
		n := inFlight.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		inFlight.Add(-1)
		return nil
	})
	if err != nil || calls != 100 || window != 10 || most.Load() > 10 {
		t.Errorf("SlowStart = %d calls, window %d, %v; at most %d in flight", calls, window, err, most.Load())
	}

	// With every call from the fourth on failing, few calls are made.
	var mu sync.Mutex
	var made []int
	calls, window, err = kit.SlowStart(100, 1, 500, func(i int) error {
		mu.Lock()
		made = append(made, i)
		mu.Unlock()
		if i >= 3 {
			return errors.New("quota exceeded")
		}
		return nil
	})
	sort.Ints(made)
	if err == nil || window != 1 || calls > 8 || calls != len(made) || made[0] != 0 {
		t.Errorf("SlowStart with failures = %d calls (%v), window %d, %v", calls, made, window, err)
	}
}

// TestSlowStartStraggler checks that a slow call does not hold back the
// calls after it.
func TestSlowStartStraggler(t *testing.T) {
	release := make(chan struct{})
	started := make(chan int, 1200)
	done := make(chan error)
	go func() {
		_, _, err := kit.SlowStart(1200, 1, 500, func(i int) error {
			started <- i
			if i == 1 {
				<-release
			}
			return nil
		})
		done <- err
	}()
	for range 1200 {
		<-started // every call starts while call 1 is still running
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCanAdopt(t *testing.T) {
	web := set("web", "web-uid")
	deleting := web.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: now}
	cases := map[string]struct {
		fresh metav1.Object
		err   error
		ok    bool
	}{
		"the same owner": {fresh: web, ok: true},
		"unreadable":     {err: errors.New("down")},
		"replaced":       {fresh: set("web", "new-uid")},
		"being deleted":  {fresh: deleting},
	}
	for name, tc := range cases {
		reads := 0
		check := kit.CanAdopt(context.Background(), web, func(context.Context) (metav1.Object, error) { reads++; return tc.fresh, tc.err })
		for range 2 {
			if err := check(); (err == nil) != tc.ok {
				t.Errorf("%s: CanAdopt = %v, want ok %v", name, err, tc.ok)
			}
		}
		if reads != 1 {
			t.Errorf("%s: the owner was read %d times, want once", name, reads)
		}
	}
}

func TestOnce(t *testing.T) {
	var o kit.Once
	steps := []struct {
		do   func() bool
		want bool
	}{
		{func() bool { return o.First("a", "annotation", "soon") }, true},
		{func() bool { return o.First("a", "annotation", "soon") }, false},
		{func() bool { return o.First("b", "annotation", "soon") }, true},
		{func() bool { return o.First("a", "annotation", "later") }, true},
		{func() bool { o.Clear("a", "annotation"); return o.First("a", "annotation", "later") }, true},
		{func() bool { o.Forget("a"); return o.First("a", "annotation", "later") }, true},
	}
	for i, s := range steps {
		if got := s.do(); got != s.want {
			t.Errorf("step %d = %v, want %v", i, got, s.want)
		}
	}
}

func TestAvailableIn(t *testing.T) {
	ready := func(since time.Time) *v1.Pod {
		return &v1.Pod{Status: v1.PodStatus{Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.Time{Time: since}}}}}
	}
	cases := map[string]struct {
		pod      *v1.Pod
		minReady int32
		want     time.Duration
	}{
		"not ready":                   {pod: &v1.Pod{}, want: -1},
		"ready, no minReadySeconds":   {pod: ready(now), want: 0},
		"ready 4s of 10":              {pod: ready(now.Add(-4 * time.Second)), minReady: 10, want: 6 * time.Second},
		"ready long enough":           {pod: ready(now.Add(-time.Minute)), minReady: 10, want: 0},
		"ready since an unknown time": {pod: ready(time.Time{}), minReady: 10, want: 10 * time.Second},
	}
	for name, tc := range cases {
		if got := kit.AvailableIn(tc.pod, tc.minReady, now); got != tc.want {
			t.Errorf("%s: AvailableIn = %v, want %v", name, got, tc.want)
		}
		if kit.IsAvailable(tc.pod, tc.minReady, now) != (tc.want == 0) {
			t.Errorf("%s: IsAvailable disagrees", name)
		}
	}
}

// TestRun runs a controller made of Base and one Queue over the fake
// apiserver: its sync is called for each set, retried after an error, and
// called again when it asks to be.
func TestRun(t *testing.T) {
	client := kittest.NewAPI(set("web", "web-uid"), set("db", "db-uid"))
	factory := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakeClock(now)
	base, err := kit.NewBase(kit.Config{Client: client, Informers: factory, Clock: clk}, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	syncs := map[string]int{}
	queue := kit.NewQueue[string](base, "test", nil, func(_ context.Context, key string) (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		syncs[key]++
		switch {
		case key == "ns/db" && syncs[key] == 1:
			return 0, apierrors.NewConflict(schema.GroupResource{}, "db", errors.New("try again"))
		case key == "ns/web" && syncs[key] == 1:
			return time.Minute, nil
		}
		return 0, nil
	})
	informer := factory.Apps().V1().StatefulSets().Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		key, _ := cache.MetaNamespaceKeyFunc(obj)
		queue.Add(key)
	}}); err != nil {
		t.Fatal(err)
	}
	base.WaitFor(informer.HasSynced)
	var chores atomic.Int32
	base.Every(time.Hour, func(context.Context) { chores.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { base.Run(ctx, 2); close(done) }()
	defer func() { cancel(); <-done; factory.Shutdown() }()

	count := func(key string) int { mu.Lock(); defer mu.Unlock(); return syncs[key] }
	kittest.Eventually(t, "both synced once", func() bool { return count("ns/db") == 1 && count("ns/web") == 1 })
	kittest.Eventually(t, "the chore ran", func() bool { return chores.Load() == 1 })
	clk.Step(time.Second) // the first retry's back-off
	kittest.Eventually(t, "db retried after its error", func() bool { return count("ns/db") == 2 })
	if count("ns/web") != 1 {
		t.Errorf("web synced again before its minute")
	}
	clk.Step(time.Minute)
	kittest.Eventually(t, "web synced again after a minute", func() bool { return count("ns/web") == 2 })
}

func TestPodFromTemplate(t *testing.T) {
	owner := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", UID: "u1"}}
	tmpl := &v1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}, Finalizers: []string{"f"}},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c"}}},
	}
	pod := kit.PodFromTemplate(tmpl, owner, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))
	pod.Labels["extra"] = "x"
	pod.Annotations["extra"] = "x"
	pod.Spec.Containers[0].Name = "changed"
	if len(tmpl.Labels) != 1 || tmpl.Spec.Containers[0].Name != "c" {
		t.Errorf("the template was modified: %+v", tmpl)
	}
	ref := metav1.GetControllerOf(pod)
	if pod.Namespace != "ns" || pod.GenerateName != "agent-" || ref == nil || ref.UID != "u1" || ref.Kind != "DaemonSet" ||
		!slices.Equal(pod.Finalizers, []string{"f"}) {
		t.Errorf("pod = %+v", pod.ObjectMeta)
	}
}

func TestPodFromTemplateNamePrefix(t *testing.T) {
	for name, want := range map[string]string{"agent": "agent-", "Bad_Name": "Bad_Name"} {
		owner := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "u1"}}
		pod := kit.PodFromTemplate(&v1.PodTemplateSpec{}, owner, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))
		if pod.GenerateName != want {
			t.Errorf("owner %q: generateName %q, want %q", name, pod.GenerateName, want)
		}
	}
}
