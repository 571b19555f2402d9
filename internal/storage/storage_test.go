package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

const (
	annSelectedNode       = "volume.kubernetes.io/selected-node"
	annStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
)

// startProvisioner runs Run against client until the test ends and returns
// once the provisioner is ready.
func startProvisioner(t *testing.T, client kubernetes.Interface, root string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Client: client, Root: root}, func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("provisioner not ready after 30s")
	}
}

// pendingClaim is a claim as the PV controller leaves it once the scheduler
// has picked node for its pod.
func pendingClaim(name, class, node string, modes ...v1.PersistentVolumeAccessMode) *v1.PersistentVolumeClaim {
	c := testClaim(name, modes...)
	c.Spec.StorageClassName = &class
	c.Annotations = map[string]string{annStorageProvisioner: ProvisionerName, annSelectedNode: node}
	return c
}

func waitFor(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 20*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func waitForVolume(t *testing.T, client kubernetes.Interface, name string) *v1.PersistentVolume {
	t.Helper()
	var pv *v1.PersistentVolume
	waitFor(t, "volume "+name, func(ctx context.Context) (bool, error) {
		got, err := client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		pv = got
		return err == nil, err
	})
	return pv
}

// release does what the PV controller does when a bound claim is deleted.
func release(t *testing.T, client kubernetes.Interface, pv *v1.PersistentVolume) {
	t.Helper()
	pv = pv.DeepCopy()
	pv.Status.Phase = v1.VolumeReleased
	if _, err := client.CoreV1().PersistentVolumes().UpdateStatus(context.Background(), pv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRunCreatesClasses(t *testing.T) {
	client := fake.NewClientset()
	startProvisioner(t, client, t.TempDir())
	for _, want := range storageClasses() {
		got, err := client.StorageV1().StorageClasses().Get(context.Background(), want.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("class %s: %v", want.Name, err)
		}
		if got.Provisioner != ProvisionerName || *got.ReclaimPolicy != *want.ReclaimPolicy || *got.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			t.Errorf("class %s = %+v", want.Name, got)
		}
	}
}

func TestRunKeepsEditedClass(t *testing.T) {
	edited := storageClasses()[0]
	delete(edited.Annotations, annDefaultClass)
	client := fake.NewClientset(edited)
	startProvisioner(t, client, t.TempDir())
	got, err := client.StorageV1().StorageClasses().Get(context.Background(), DefaultClass, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Annotations[annDefaultClass]; ok {
		t.Errorf("Run overwrote the user's edit of %s", DefaultClass)
	}
}

func TestRunProvisionsAndDeletes(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	client := fake.NewClientset(testNode("node-1"))
	startProvisioner(t, client, root)

	claim := pendingClaim("data-web-0", DefaultClass, "node-1", v1.ReadWriteOnce)
	if _, err := client.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvName := "pvc-" + string(claim.UID)
	pv := waitForVolume(t, client, pvName)

	dir := filepath.Join(root, pvName)
	if pv.Spec.Local == nil || pv.Spec.Local.Path != dir {
		t.Errorf("local source = %+v, want path %s", pv.Spec.Local, dir)
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.Name != "data-web-0" || ref.Namespace != "default" || ref.UID != claim.UID {
		t.Errorf("claimRef = %+v", ref)
	}
	if pv.Spec.StorageClassName != DefaultClass || pv.Annotations["pv.kubernetes.io/provisioned-by"] != ProvisionerName {
		t.Errorf("class %q provisioned-by %q", pv.Spec.StorageClassName, pv.Annotations["pv.kubernetes.io/provisioned-by"])
	}
	if got := pv.Spec.Capacity[v1.ResourceStorage]; got.String() != "1Gi" {
		t.Errorf("capacity = %s", got.String())
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete {
		t.Errorf("reclaim = %s", pv.Spec.PersistentVolumeReclaimPolicy)
	}
	terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
	if len(terms) != 1 || terms[0].MatchExpressions[0].Values[0] != "node-1" {
		t.Errorf("node affinity = %+v", terms)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("volume directory: %v", err)
	}
	if st.Mode().Perm() != 0o777 {
		t.Errorf("directory mode = %v", st.Mode().Perm())
	}
	waitForEvent(t, client, "data-web-0", "ProvisioningSucceeded", pvName)

	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("web-0"), 0o644); err != nil {
		t.Fatal(err)
	}
	release(t, client, pv)
	waitFor(t, "volume deleted", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory of a deleted volume still exists: %v", err)
	}
}

func TestRunRetainKeepsVolume(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	client := fake.NewClientset(testNode("node-1"))
	startProvisioner(t, client, root)

	kept := pendingClaim("kept", RetainClass, "node-1", v1.ReadWriteOncePod)
	gone := pendingClaim("gone", DefaultClass, "node-1", v1.ReadWriteOnce)
	for _, c := range []*v1.PersistentVolumeClaim{kept, gone} {
		if _, err := client.CoreV1().PersistentVolumeClaims("default").Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	keptPV := waitForVolume(t, client, "pvc-"+string(kept.UID))
	gonePV := waitForVolume(t, client, "pvc-"+string(gone.UID))
	if keptPV.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRetain {
		t.Fatalf("reclaim = %s", keptPV.Spec.PersistentVolumeReclaimPolicy)
	}
	if modes := keptPV.Spec.AccessModes; len(modes) != 1 || modes[0] != v1.ReadWriteOncePod {
		t.Errorf("access modes = %v", modes)
	}
	// Release the Retain volume first, then a Delete one, and wait until the
	// Delete one is gone: the provisioner has seen both releases by then.
	release(t, client, keptPV)
	release(t, client, gonePV)
	waitFor(t, "Delete volume removed", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().PersistentVolumes().Get(ctx, gonePV.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if _, err := client.CoreV1().PersistentVolumes().Get(ctx, keptPV.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("Retain volume: %v", err)
	}
	if _, err := os.Stat(keptPV.Spec.Local.Path); err != nil {
		t.Errorf("Retain directory: %v", err)
	}
}

func TestRunRefusesWhatItCannotServe(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(testNode("node-1"), &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "bare"}})
	startProvisioner(t, client, t.TempDir())

	cases := map[string]struct {
		claim *v1.PersistentVolumeClaim
		want  string
	}{
		"rwx":      {pendingClaim("rwx", DefaultClass, "node-1", v1.ReadWriteMany), "access mode ReadWriteMany is not supported by quartet.dev/local-path"},
		"rox":      {pendingClaim("rox", DefaultClass, "node-1", v1.ReadOnlyMany), "access mode ReadOnlyMany is not supported"},
		"no-label": {pendingClaim("no-label", DefaultClass, "bare", v1.ReadWriteOnce), "node bare has no kubernetes.io/hostname label"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := client.CoreV1().PersistentVolumeClaims("default").Create(ctx, tc.claim, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			waitForEvent(t, client, tc.claim.Name, "ProvisioningFailed", tc.want)
			pvs, err := client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, pv := range pvs.Items {
				if pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.Name == tc.claim.Name {
					t.Errorf("volume %s created for a refused claim", pv.Name)
				}
			}
		})
	}
}

func waitForEvent(t *testing.T, client kubernetes.Interface, object, reason, message string) {
	t.Helper()
	waitFor(t, reason+" event for "+object, func(ctx context.Context) (bool, error) {
		events, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.InvolvedObject.Name == object && e.Reason == reason && strings.Contains(e.Message, message) {
				return true, nil
			}
		}
		return false, nil
	})
}

func TestEnsureClassesRetriesWithClock(t *testing.T) {
	client := fake.NewClientset()
	failures := 2
	client.PrependReactor("create", "storageclasses", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failures > 0 {
			failures--
			return true, nil, apierrors.NewServiceUnavailable("apiserver starting")
		}
		return false, nil, nil
	})
	clk := clocktesting.NewFakeClock(time.Now())
	done := make(chan error, 1)
	go func() { done <- ensureClasses(context.Background(), client, clk) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if failures != 0 {
				t.Fatalf("%d failures left", failures)
			}
			return
		case <-time.After(time.Millisecond):
			if clk.HasWaiters() {
				clk.Step(time.Second)
			}
		}
	}
}

func TestEnsureClassesStopsOnForbidden(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("create", "storageclasses", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "storage.k8s.io", Resource: "storageclasses"}, "local-path", errors.New("no RBAC"))
	})
	err := ensureClasses(context.Background(), client, clocktesting.NewFakeClock(time.Now()))
	if err == nil || !apierrors.IsForbidden(errors.Unwrap(err)) {
		t.Fatalf("error = %v, want Forbidden", err)
	}
}

func TestRunValidatesConfig(t *testing.T) {
	if err := Run(context.Background(), Config{Root: t.TempDir()}, nil); err == nil {
		t.Error("nil client accepted")
	}
	if err := Run(context.Background(), Config{Client: fake.NewClientset()}, nil); err == nil {
		t.Error("empty root accepted")
	}
}
