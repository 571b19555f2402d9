package storage

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func testClaim(name string, modes ...v1.PersistentVolumeAccessMode) *v1.PersistentVolumeClaim {
	class := DefaultClass
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes:      modes,
			StorageClassName: &class,
			Resources: v1.VolumeResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			},
		},
	}
}

func testNode(name string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelHostname: name}}}
}

func classNamed(name string) *storagev1.StorageClass {
	for _, sc := range storageClasses() {
		if sc.Name == name {
			return sc
		}
	}
	panic("no class " + name)
}

func TestNewVolume(t *testing.T) {
	filesystem := v1.PersistentVolumeFilesystem
	block := v1.PersistentVolumeBlock
	pinned := func(host string) *v1.VolumeNodeAffinity {
		return &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
			MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{host}}},
		}}}}
	}
	volume := func(modes []v1.PersistentVolumeAccessMode, reclaim v1.PersistentVolumeReclaimPolicy, size string, affinity *v1.VolumeNodeAffinity, ann map[string]string) *v1.PersistentVolume {
		return &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pvc-1", Annotations: ann},
			Spec: v1.PersistentVolumeSpec{
				Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)},
				AccessModes:                   modes,
				PersistentVolumeReclaimPolicy: reclaim,
				VolumeMode:                    &filesystem,
				PersistentVolumeSource:        v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: "/data/storage/pvc-1"}},
				NodeAffinity:                  affinity,
			},
		}
	}
	rwo := []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}

	cases := map[string]struct {
		claim   *v1.PersistentVolumeClaim
		class   *storagev1.StorageClass
		node    *v1.Node
		want    *v1.PersistentVolume
		wantErr string
	}{
		"RWO claim on node-2, Delete class": {
			claim: testClaim("data-web-0", v1.ReadWriteOnce),
			class: classNamed(DefaultClass),
			node:  testNode("node-2"),
			want:  volume(rwo, v1.PersistentVolumeReclaimDelete, "1Gi", pinned("node-2"), map[string]string{annNode: "node-2"}),
		},
		"RWOP claim, Retain class": {
			claim: testClaim("c", v1.ReadWriteOncePod),
			class: classNamed(RetainClass),
			node:  testNode("node-1"),
			want:  volume([]v1.PersistentVolumeAccessMode{v1.ReadWriteOncePod}, v1.PersistentVolumeReclaimRetain, "1Gi", pinned("node-1"), map[string]string{annNode: "node-1"}),
		},
		"node whose hostname label differs from its name": {
			claim: testClaim("c", v1.ReadWriteOnce),
			class: classNamed(DefaultClass),
			node:  &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{v1.LabelHostname: "host-a"}}},
			want:  volume(rwo, v1.PersistentVolumeReclaimDelete, "1Gi", pinned("host-a"), map[string]string{annNode: "node-1"}),
		},
		"no selected node (Immediate class): usable on every node": {
			claim: testClaim("c", v1.ReadWriteOnce),
			class: classNamed(DefaultClass),
			want: volume(rwo, v1.PersistentVolumeReclaimDelete, "1Gi", &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpExists}},
			}}}}, map[string]string{}),
		},
		"class without reclaim policy defaults to Delete": {
			claim: testClaim("c", v1.ReadWriteOnce),
			class: &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "custom"}, Provisioner: ProvisionerName},
			node:  testNode("node-1"),
			want:  volume(rwo, v1.PersistentVolumeReclaimDelete, "1Gi", pinned("node-1"), map[string]string{annNode: "node-1"}),
		},
		"ReadWriteMany is refused": {
			claim:   testClaim("c", v1.ReadWriteMany),
			class:   classNamed(DefaultClass),
			node:    testNode("node-1"),
			wantErr: "access mode ReadWriteMany is not supported by quartet.dev/local-path",
		},
		"ReadOnlyMany next to ReadWriteOnce is refused": {
			claim:   testClaim("c", v1.ReadWriteOnce, v1.ReadOnlyMany),
			class:   classNamed(DefaultClass),
			node:    testNode("node-1"),
			wantErr: "access mode ReadOnlyMany is not supported",
		},
		"no access modes": {
			claim:   testClaim("c"),
			class:   classNamed(DefaultClass),
			wantErr: "has no access modes",
		},
		"block volume is refused": {
			claim: func() *v1.PersistentVolumeClaim {
				c := testClaim("c", v1.ReadWriteOnce)
				c.Spec.VolumeMode = &block
				return c
			}(),
			class:   classNamed(DefaultClass),
			wantErr: "volumeMode Block is not supported",
		},
		"data source is refused": {
			claim: func() *v1.PersistentVolumeClaim {
				c := testClaim("c", v1.ReadWriteOnce)
				c.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "other"}
				return c
			}(),
			class:   classNamed(DefaultClass),
			wantErr: "names a data source",
		},
		"missing size": {
			claim: func() *v1.PersistentVolumeClaim {
				c := testClaim("c", v1.ReadWriteOnce)
				c.Spec.Resources.Requests = nil
				return c
			}(),
			class:   classNamed(DefaultClass),
			wantErr: "requests no storage size",
		},
		"class parameters are refused": {
			claim: testClaim("c", v1.ReadWriteOnce),
			class: &storagev1.StorageClass{
				ObjectMeta:  metav1.ObjectMeta{Name: "fast"},
				Provisioner: ProvisionerName,
				Parameters:  map[string]string{"type": "ssd"},
			},
			wantErr: `StorageClass fast: parameter "type" is not supported`,
		},
		"class mount options are refused": {
			claim: testClaim("c", v1.ReadWriteOnce),
			class: &storagev1.StorageClass{
				ObjectMeta:   metav1.ObjectMeta{Name: "ro"},
				Provisioner:  ProvisionerName,
				MountOptions: []string{"ro"},
			},
			wantErr: "mountOptions are not supported",
		},
		"node without hostname label": {
			claim:   testClaim("c", v1.ReadWriteOnce),
			class:   classNamed(DefaultClass),
			node:    &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "bare"}},
			wantErr: "node bare has no kubernetes.io/hostname label",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := newVolume(tc.claim, tc.class, "pvc-1", tc.node, "/data/storage")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("volume mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewVolumeRejectsPathTricks(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", `a\b`} {
		if _, err := newVolume(testClaim("c", v1.ReadWriteOnce), classNamed(DefaultClass), name, nil, "/data"); err == nil {
			t.Errorf("volume name %q accepted", name)
		}
	}
}

func TestStorageClasses(t *testing.T) {
	got := map[string]*storagev1.StorageClass{}
	for _, sc := range storageClasses() {
		got[sc.Name] = sc
	}
	for name, want := range map[string]struct {
		reclaim   v1.PersistentVolumeReclaimPolicy
		isDefault bool
	}{
		DefaultClass: {v1.PersistentVolumeReclaimDelete, true},
		RetainClass:  {v1.PersistentVolumeReclaimRetain, false},
	} {
		sc := got[name]
		if sc == nil {
			t.Fatalf("class %s missing", name)
		}
		if sc.Provisioner != ProvisionerName || *sc.ReclaimPolicy != want.reclaim || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			t.Errorf("class %s = provisioner %s reclaim %s mode %s", name, sc.Provisioner, *sc.ReclaimPolicy, *sc.VolumeBindingMode)
		}
		if (sc.Annotations[annDefaultClass] == "true") != want.isDefault {
			t.Errorf("class %s default annotation = %q, want default %v", name, sc.Annotations[annDefaultClass], want.isDefault)
		}
	}
}
