package kittest_test

import (
	"context"
	"strconv"
	"testing"

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
