package kittest_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"

	"quartet.dev/quartet/internal/controllers/kittest"
)

func TestAPI(t *testing.T) {
	ctx := context.Background()
	client := kittest.NewAPI(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "old"}})
	pods := client.CoreV1().Pods("ns")
	created, err := pods.Create(ctx, &v1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "web-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Name == "" || created.UID == "" || created.CreationTimestamp.IsZero() || created.Status.Phase != v1.PodPending {
		t.Errorf("created %+v: want a name, UID, creation time and phase Pending", created.ObjectMeta)
	}
	old, _ := pods.Get(ctx, "old", metav1.GetOptions{})
	version := func(p *v1.Pod) int { n, _ := strconv.Atoi(p.ResourceVersion); return n }
	if version(created) <= version(old) {
		t.Errorf("created at %s, not after the initial object's %s", created.ResourceVersion, old.ResourceVersion)
	}
	patched, err := pods.Patch(ctx, created.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"a":"b"}}}`), metav1.PatchOptions{})
	if err != nil || version(patched) <= version(created) {
		t.Fatalf("patch: %v, version %s after %s", err, patched.ResourceVersion, created.ResourceVersion)
	}
	if _, err := pods.Update(ctx, created, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("an update from a stale copy: %v, want a conflict", err)
	}
	if _, err := pods.Update(ctx, patched, metav1.UpdateOptions{}); err != nil {
		t.Errorf("an update from the current copy: %v", err)
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	lister := factory.Core().V1().Pods().Lister()
	kittest.Start(t, factory)
	kittest.Eventually(t, "the pods in the cache", func() bool {
		list, _ := lister.List(labels.Everything())
		return len(list) == 2
	})
}

func TestFailAndCalls(t *testing.T) {
	ctx := context.Background()
	client := kittest.NewAPI(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}}, &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}})
	pods := client.CoreV1().Pods("ns")
	refused := apierrors.NewForbidden(v1.Resource("pods"), "b", errors.New("no"))
	kittest.Fail(client, "delete", "pods", refused, "b")
	if err := pods.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete a: %v", err)
	}
	if err := pods.Delete(ctx, "b", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("delete b: %v, want the error Fail gave", err)
	}
	if _, err := pods.Create(ctx, &v1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "web-"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b, _ := pods.Get(ctx, "b", metav1.GetOptions{})
	if _, err := pods.UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"delete a", "delete b", "create web-", "get b", "update/status b"}
	if diff := cmp.Diff(want, kittest.Calls(client, "pods")); diff != "" {
		t.Errorf("Calls (-want +got):\n%s", diff)
	}
}
