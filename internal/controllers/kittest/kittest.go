// Package kittest is what the tests of quartet's controllers share: a fake
// apiserver that behaves like the real one where the controllers rely on it,
// informers started on it, and a helper that waits for a condition.
package kittest

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

// NewAPI returns client-go's fake clientset holding objs, with what the
// controllers rely on of the real apiserver: a created object gets a name
// from its generateName, a UID and a creation time, and a created pod the
// phase Pending; every create, update and patch gets a new resourceVersion
// from one counter, as etcd's revision is one counter; and an update whose
// resourceVersion is not the stored one is refused with a conflict. Objects
// in objs keep the resourceVersion they have, or get one.
//
// What it does not do: defaulting, validation, graceful deletion (a delete
// removes at once) and new resource versions on delete events.
func NewAPI(objs ...runtime.Object) *fake.Clientset {
	client := fake.NewClientset()
	api := &apiserver{ObjectTracker: client.Tracker(), version: 1000}
	client.PrependReactor("*", "*", k8stesting.ObjectReaction(api))
	for _, obj := range objs {
		if err := api.Add(obj); err != nil {
			panic(fmt.Sprintf("kittest.NewAPI: adding %T: %v", obj, err))
		}
	}
	return client
}

// apiserver is the fake clientset's object tracker with the apiserver's
// metadata handling.
type apiserver struct {
	k8stesting.ObjectTracker
	mu      sync.Mutex
	version int64
	serial  int64
}

func (a *apiserver) Add(obj runtime.Object) error {
	obj = obj.DeepCopyObject()
	if m, err := meta.Accessor(obj); err == nil && m.GetResourceVersion() == "" {
		a.stamp(m)
	}
	return a.ObjectTracker.Add(obj)
}

func (a *apiserver) Create(gvr schema.GroupVersionResource, obj runtime.Object, ns string, opts ...metav1.CreateOptions) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.serial++
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(fmt.Sprintf("%s%05d", m.GetGenerateName(), a.serial))
	}
	a.mu.Unlock()
	if m.GetUID() == "" {
		m.SetUID(types.UID(fmt.Sprintf("uid-%s-%d", m.GetName(), a.serial)))
	}
	if ts := m.GetCreationTimestamp(); ts.IsZero() {
		m.SetCreationTimestamp(metav1.Now())
	}
	if pod, ok := obj.(*v1.Pod); ok && pod.Status.Phase == "" {
		pod.Status.Phase = v1.PodPending
	}
	a.stamp(m)
	return a.ObjectTracker.Create(gvr, obj, ns, opts...)
}

func (a *apiserver) Update(gvr schema.GroupVersionResource, obj runtime.Object, ns string, opts ...metav1.UpdateOptions) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	if err := a.current(gvr, ns, m); err != nil {
		return err
	}
	a.stamp(m)
	return a.ObjectTracker.Update(gvr, obj, ns, opts...)
}

func (a *apiserver) Patch(gvr schema.GroupVersionResource, obj runtime.Object, ns string, opts ...metav1.PatchOptions) error {
	if m, err := meta.Accessor(obj); err == nil {
		a.stamp(m)
	}
	return a.ObjectTracker.Patch(gvr, obj, ns, opts...)
}

// current refuses an update from a copy older than the stored object.
func (a *apiserver) current(gvr schema.GroupVersionResource, ns string, m metav1.Object) error {
	if m.GetResourceVersion() == "" {
		return nil
	}
	stored, err := a.Get(gvr, ns, m.GetName())
	if err != nil {
		return err
	}
	sm, err := meta.Accessor(stored)
	if err != nil || sm.GetResourceVersion() == m.GetResourceVersion() {
		return err
	}
	return apierrors.NewConflict(gvr.GroupResource(), m.GetName(), fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
}

// stamp gives m the next resource version.
func (a *apiserver) stamp(m metav1.Object) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.version++
	m.SetResourceVersion(strconv.FormatInt(a.version, 10))
}

// Fail makes the fake apiserver refuse verb ("create", "update", "patch",
// "delete", "get") on resource ("pods") with err from now on: for every
// object, or only for those named.
func Fail(client *fake.Clientset, verb, resource string, err error, names ...string) {
	client.PrependReactor(verb, resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
		return len(names) == 0 || slices.Contains(names, actionName(a)), nil, err
	})
}

// FailNext makes the fake apiserver refuse the next len(errs) requests verb
// on resource for the object named name ("" for any), with errs in order;
// later ones go through.
func FailNext(client *fake.Clientset, verb, resource, name string, errs ...error) {
	var mu sync.Mutex
	client.PrependReactor(verb, resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) == 0 || (name != "" && actionName(a) != name) {
			return false, nil, nil
		}
		err := errs[0]
		errs = errs[1:]
		return true, nil, err
	})
}

// Calls lists the requests made to the fake apiserver for resource, in
// order, as "verb name" ("create web-0", "delete web-1"), or "verb/subresource
// name" ("update/status web"); lists and watches are left out. A created
// object without a name is named by its generateName.
func Calls(client *fake.Clientset, resource string) []string {
	var out []string
	for _, a := range client.Actions() {
		if a.GetResource().Resource != resource || a.GetVerb() == "list" || a.GetVerb() == "watch" {
			continue
		}
		out = append(out, path.Join(a.GetVerb(), a.GetSubresource())+" "+actionName(a))
	}
	return out
}

// actionName is the name of the object an action is about.
func actionName(a k8stesting.Action) string {
	switch a := a.(type) {
	case k8stesting.CreateAction: // and UpdateAction: the same methods
		if m, err := meta.Accessor(a.GetObject()); err == nil {
			return cmp.Or(m.GetName(), m.GetGenerateName())
		}
	case interface{ GetName() string }:
		return a.GetName()
	}
	return ""
}

// Start starts factory's informers and waits for their caches; they stop
// when the test ends.
func Start(t testing.TB, factory informers.SharedInformerFactory) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("cache for %v did not sync", typ)
		}
	}
	return ctx
}

// Eventually waits, polling, for cond to hold, and fails the test after ten
// seconds.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// Events drains a FakeRecorder: the events recorded so far, as
// "Type Reason message".
func Events(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}
