package ttlafterfinished

import (
	"context"
	"slices"
	"testing"
	"time"

	batch "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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

// serveFresh makes the fake apiserver answer a get of a Job from fresh
// (NotFound when absent there), while the informer cache keeps the Jobs it
// listed.
func serveFresh(client *fake.Clientset, fresh map[string]*batch.Job) {
	client.PrependReactor("get", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		get := a.(k8stesting.GetAction)
		job, ok := fresh[get.GetNamespace()+"/"+get.GetName()]
		if !ok {
			return true, nil, apierrors.NewNotFound(batch.Resource("jobs"), get.GetName())
		}
		return true, job.DeepCopy(), nil
	})
}

// deleted lists the Jobs deleted, as "namespace/name@precondition UID".
func deleted(client *fake.Clientset) []string {
	var out []string
	for _, d := range deletions(client) {
		out = append(out, d.Namespace+"/"+d.Name+"@"+string(ptr.Deref(d.DeleteOptions.Preconditions.UID, "")))
	}
	return out
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
	fresh := cached.DeepCopy()
	fresh.Spec.TTLSecondsAfterFinished = ptr.To[int32](3600)
	c, client, ctx := start(t, clk, cached)
	jobs := map[string]*batch.Job{"default/pi": fresh}
	serveFresh(client, jobs)
	requeue, err := c.sync(ctx, "default/pi")
	if err != nil || requeue != 59*time.Minute {
		t.Errorf("sync = %v, %v; want 59m", requeue, err)
	}
	if d := deleted(client); len(d) != 0 {
		t.Errorf("deleted %v despite the longer TTL", d)
	}

	// A fresh Job with the TTL removed is not deleted either.
	fresh.Spec.TTLSecondsAfterFinished = nil
	if requeue, err = c.sync(ctx, "default/pi"); err != nil || requeue != 0 || len(deleted(client)) != 0 {
		t.Errorf("sync = %v, %v, deleted %v", requeue, err, deleted(client))
	}
	// Gone from the apiserver: nothing to do.
	delete(jobs, "default/pi")
	if _, err = c.sync(ctx, "default/pi"); err != nil {
		t.Errorf("sync of a vanished Job: %v", err)
	}
}

func TestSyncDeletesTheFreshJobsUID(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	cached := finishedJob(ptr.To[int32](0), batch.JobFailed, testNow)
	fresh := cached.DeepCopy()
	fresh.UID = "uid-2"
	c, client, ctx := start(t, clk, cached)
	serveFresh(client, map[string]*batch.Job{"default/pi": fresh})
	if _, err := c.sync(ctx, "default/pi"); err != nil {
		t.Fatal(err)
	}
	if d := deleted(client); !slices.Equal(d, []string{"default/pi@uid-2"}) {
		t.Errorf("deleted = %v", d)
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
