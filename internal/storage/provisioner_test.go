package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// recordingDirs records what the provisioner asks of the disk and fails on
// demand.
type recordingDirs struct {
	mu      sync.Mutex
	created []string
	removed []string
	fail    error
}

var _ dirs = (*recordingDirs)(nil)

func (r *recordingDirs) Create(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.created = append(r.created, path)
	return nil
}

func (r *recordingDirs) Remove(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.removed = append(r.removed, path)
	return nil
}

// fakeNodes serves nodes from a map; a missing node is NotFound.
type fakeNodes struct {
	nodes map[string]*v1.Node
	err   error
}

func (f fakeNodes) Get(_ context.Context, name string) (*v1.Node, error) {
	if f.err != nil {
		return nil, f.err
	}
	if n, ok := f.nodes[name]; ok {
		return n, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, name)
}

var errDisk = errors.New("injected disk failure")

func TestProvision(t *testing.T) {
	nodes := fakeNodes{nodes: map[string]*v1.Node{"node-1": testNode("node-1")}}
	cases := map[string]struct {
		claim       *v1.PersistentVolumeClaim
		node        string
		nodes       fakeNodes
		diskErr     error
		wantState   controller.ProvisioningState
		wantErr     string
		wantCreated []string
	}{
		"provisions on the selected node": {
			claim: testClaim("data-web-0", v1.ReadWriteOnce), node: "node-1", nodes: nodes,
			wantState: controller.ProvisioningFinished, wantCreated: []string{"/root/pvc-1"},
		},
		"selected node gone: reschedule": {
			claim: testClaim("c", v1.ReadWriteOnce), node: "node-9", nodes: nodes,
			wantState: controller.ProvisioningReschedule, wantErr: "selected node node-9 does not exist",
		},
		"node read fails: retry": {
			claim: testClaim("c", v1.ReadWriteOnce), node: "node-1", nodes: fakeNodes{err: errors.New("apiserver down")},
			wantState: controller.ProvisioningFinished, wantErr: "read selected node node-1: apiserver down",
		},
		"RWX refused before touching the disk": {
			claim: testClaim("c", v1.ReadWriteMany), node: "node-1", nodes: nodes,
			wantState: controller.ProvisioningFinished, wantErr: "access mode ReadWriteMany is not supported",
		},
		"disk failure": {
			claim: testClaim("c", v1.ReadWriteOnce), node: "node-1", nodes: nodes, diskErr: errDisk,
			wantState: controller.ProvisioningFinished, wantErr: "injected disk failure",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := &recordingDirs{fail: tc.diskErr}
			p := &provisioner{root: "/root", nodes: tc.nodes, dirs: d}
			pv, state, err := p.Provision(context.Background(), controller.ProvisionOptions{
				StorageClass: classNamed(DefaultClass), PVName: "pvc-1", PVC: tc.claim, SelectedNodeName: tc.node,
			})
			if state != tc.wantState {
				t.Errorf("state = %s, want %s", state, tc.wantState)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				if pv != nil {
					t.Errorf("volume returned with an error")
				}
			} else if err != nil {
				t.Fatalf("unexpected error: %v", err)
			} else if pv.Spec.Local.Path != "/root/pvc-1" {
				t.Errorf("path = %s", pv.Spec.Local.Path)
			}
			if diff := cmp.Diff(tc.wantCreated, d.created); diff != "" {
				t.Errorf("created dirs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	local := func(name, path string) *v1.PersistentVolume {
		return &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: path}}},
		}
	}
	cases := map[string]struct {
		pv          *v1.PersistentVolume
		wantErr     string
		wantIgnored bool
		wantRemoved []string
	}{
		"removes its own directory": {
			pv: local("pvc-1", "/root/pvc-1"), wantRemoved: []string{"/root/pvc-1"},
		},
		"uncleaned path is still its own": {
			pv: local("pvc-1", "/root//pvc-1/"), wantRemoved: []string{"/root/pvc-1"},
		},
		"refuses a path outside root": {
			pv: local("pvc-1", "/etc"), wantErr: "refusing to delete /etc",
		},
		"refuses another volume's directory": {
			pv: local("pvc-1", "/root/pvc-2"), wantErr: "refusing to delete /root/pvc-2",
		},
		"ignores non-local volumes": {
			pv: &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "nfs"}}, wantIgnored: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := &recordingDirs{}
			p := &provisioner{root: "/root", dirs: d}
			err := p.Delete(context.Background(), tc.pv)
			var ignored *controller.IgnoredError
			switch {
			case tc.wantIgnored:
				if !errors.As(err, &ignored) {
					t.Fatalf("error = %v, want IgnoredError", err)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tc.wantRemoved, d.removed); diff != "" {
				t.Errorf("removed dirs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOSDirs(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "pvc-1")
	var d osDirs
	if err := d.Create(path); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(path); err != nil {
		t.Fatalf("second create: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o777 {
		t.Errorf("mode = %v, want 0777", st.Mode().Perm())
	}
	// A pod leaves a read-only directory with a file in it.
	ro := filepath.Join(path, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ro, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(path); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("directory still there: %v", err)
	}
	if err := d.Remove(path); err != nil {
		t.Errorf("removing a missing directory: %v", err)
	}
}

func TestCachedNodesFallsBackToTheAPI(t *testing.T) {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := indexer.Add(testNode("cached")); err != nil {
		t.Fatal(err)
	}
	c := cachedNodes{lister: corelisters.NewNodeLister(indexer), client: fake.NewClientset(testNode("cached"), testNode("just-joined"))}
	for _, name := range []string{"cached", "just-joined"} {
		if n, err := c.Get(context.Background(), name); err != nil || n.Name != name {
			t.Errorf("Get(%s) = %v, %v", name, n, err)
		}
	}
	if _, err := c.Get(context.Background(), "gone"); !apierrors.IsNotFound(err) {
		t.Errorf("Get(gone) error = %v, want NotFound", err)
	}
}
