package ttlafterfinished

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	batch "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
	"quartet.dev/quartet/internal/controllers/kittest"
)

func start(t *testing.T, clk *clocktesting.FakeClock, objects ...runtime.Object) (*Controller, *fake.Clientset, context.Context) {
	t.Helper()
	client := kittest.NewAPI(objects...)
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(kit.Config{Client: client, Informers: factory, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return c, client, kittest.Start(t, factory)
}

// fakeJobDeleter serves fresh Jobs from a map and records deletions.
type fakeJobDeleter struct {
	mu      sync.Mutex
	jobs    map[string]*batch.Job
	deleted []string
}

var _ jobDeleter = (*fakeJobDeleter)(nil)

func (f *fakeJobDeleter) getFresh(_ context.Context, namespace, name string) (*batch.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	job, ok := f.jobs[namespace+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(batch.Resource("jobs"), name)
	}
	return job.DeepCopy(), nil
}

func (f *fakeJobDeleter) deleteJob(_ context.Context, namespace, name string, uid types.UID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, namespace+"/"+name+"@"+string(uid))
	return nil
}

func deletions(client *fake.Clientset) []k8stesting.DeleteActionImpl {
	var out []k8stesting.DeleteActionImpl
	for _, a := range client.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok {
			out = append(out, d)
		}
	}
	return out
}

func TestSyncWaitsThenDeletesInTheForeground(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	job := finishedJob(ptr.To[int32](60), batch.JobComplete, testNow.Add(-20*time.Second))
	c, client, ctx := start(t, clk, job)

	requeue, err := c.sync(ctx, "default/pi")
	if err != nil || requeue != 40*time.Second {
		t.Fatalf("sync = %v, %v; want 40s", requeue, err)
	}
	if n := len(deletions(client)); n != 0 {
		t.Fatalf("deleted before the TTL ran out")
	}
	clk.Step(40 * time.Second)
	if requeue, err = c.sync(ctx, "default/pi"); err != nil || requeue != 0 {
		t.Fatalf("sync = %v, %v", requeue, err)
	}
	dels := deletions(client)
	if len(dels) != 1 {
		t.Fatalf("deletions = %d, want 1", len(dels))
	}
	opts := dels[0].DeleteOptions
	if ptr.Deref(opts.PropagationPolicy, "") != metav1.DeletePropagationForeground {
		t.Errorf("propagation = %v, want Foreground", opts.PropagationPolicy)
	}
	if opts.Preconditions == nil || ptr.Deref(opts.Preconditions.UID, "") != "uid-1" {
		t.Errorf("preconditions = %+v, want uid-1", opts.Preconditions)
	}
	// The apiserver was read once, just before deleting.
	var gets int
	for _, a := range client.Actions() {
		if a.GetVerb() == "get" {
			gets++
		}
	}
	if gets != 1 {
		t.Errorf("fresh reads = %d, want 1", gets)
	}
}

func TestSyncHonoursAnExtendedTTL(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	cached := finishedJob(ptr.To[int32](10), batch.JobComplete, testNow.Add(-time.Minute))
	c, _, ctx := start(t, clk, cached)
	fresh := cached.DeepCopy()
	fresh.Spec.TTLSecondsAfterFinished = ptr.To[int32](3600)
	fake := &fakeJobDeleter{jobs: map[string]*batch.Job{"default/pi": fresh}}
	c.apply = fake
	requeue, err := c.sync(ctx, "default/pi")
	if err != nil || requeue != 59*time.Minute {
		t.Errorf("sync = %v, %v; want 59m", requeue, err)
	}
	if len(fake.deleted) != 0 {
		t.Errorf("deleted %v despite the longer TTL", fake.deleted)
	}

	// A fresh Job with the TTL removed is not deleted either.
	fresh.Spec.TTLSecondsAfterFinished = nil
	if requeue, err = c.sync(ctx, "default/pi"); err != nil || requeue != 0 || len(fake.deleted) != 0 {
		t.Errorf("sync = %v, %v, deleted %v", requeue, err, fake.deleted)
	}
	// Gone from the apiserver: nothing to do.
	delete(fake.jobs, "default/pi")
	if _, err = c.sync(ctx, "default/pi"); err != nil {
		t.Errorf("sync of a vanished Job: %v", err)
	}
}

func TestSyncDeletesTheFreshJobsUID(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	cached := finishedJob(ptr.To[int32](0), batch.JobFailed, testNow)
	c, _, ctx := start(t, clk, cached)
	fresh := cached.DeepCopy()
	fresh.UID = "uid-2"
	fake := &fakeJobDeleter{jobs: map[string]*batch.Job{"default/pi": fresh}}
	c.apply = fake
	if _, err := c.sync(ctx, "default/pi"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fake.deleted, []string{"default/pi@uid-2"}) {
		t.Errorf("deleted = %v", fake.deleted)
	}
}

func TestSyncIgnoresUnfinishedAndMissingJobs(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	running := finishedJob(ptr.To[int32](0), "", time.Time{})
	c, client, ctx := start(t, clk, running)
	for _, key := range []string{"default/pi", "default/missing"} {
		if requeue, err := c.sync(ctx, key); err != nil || requeue != 0 {
			t.Errorf("sync %s = %v, %v", key, requeue, err)
		}
	}
	if n := len(deletions(client)); n != 0 {
		t.Errorf("deletions = %d", n)
	}
}

func TestRunDeletesAfterTheTTL(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	job := finishedJob(ptr.To[int32](30), batch.JobComplete, testNow)
	c, client, ctx := start(t, clk, job)
	go c.Run(ctx, 1)
	// Wait until the worker has looked at the Job and set its timer.
	kittest.Eventually(t, "the controller waiting for the TTL", clk.HasWaiters)
	if n := len(deletions(client)); n != 0 {
		t.Fatalf("deleted before the TTL")
	}
	clk.Step(30 * time.Second)
	kittest.Eventually(t, "the Job deleted after its TTL", func() bool { return len(deletions(client)) == 1 })
}
