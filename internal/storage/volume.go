package storage

import (
	"fmt"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// ProvisionerName is the provisioner field of quartet's StorageClasses and
	// the value of the pv.kubernetes.io/provisioned-by annotation on the
	// volumes it creates.
	ProvisionerName = "quartet.dev/local-path"

	// hostnameLabel is the node label a local volume's node affinity matches.
	// The scheduler's volume binding compares PV node affinity with node
	// labels only (never with the node's name), so pinning needs a label.
	hostnameLabel = v1.LabelHostname

	// annNode records, on the volume, the node whose disk holds it. It is
	// informational: nodeAffinity is what the scheduler reads.
	annNode = "quartet.dev/local-path-node"
)

// newVolume decides the PersistentVolume that serves claim: a local volume at
// <root>/<pvName>, as large as the claim asks, with the claim's access modes,
// the class's reclaim policy, and node affinity to node (or to every node when
// node is nil, which happens only for a class with volumeBindingMode
// Immediate). It makes no API calls and touches no disk.
func newVolume(claim *v1.PersistentVolumeClaim, class *storagev1.StorageClass, pvName string, node *v1.Node, root string) (*v1.PersistentVolume, error) {
	if err := checkClaim(claim); err != nil {
		return nil, err
	}
	if err := checkClass(class); err != nil {
		return nil, err
	}
	size, ok := claim.Spec.Resources.Requests[v1.ResourceStorage]
	if !ok || size.IsZero() {
		return nil, fmt.Errorf("claim %s/%s requests no storage size (spec.resources.requests.storage)", claim.Namespace, claim.Name)
	}
	if pvName == "" || strings.ContainsAny(pvName, `/\`) || pvName == "." || pvName == ".." {
		return nil, fmt.Errorf("invalid volume name %q", pvName)
	}

	reclaim := v1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	filesystem := v1.PersistentVolumeFilesystem

	var term v1.NodeSelectorTerm
	annotations := map[string]string{}
	if node != nil {
		hostname, ok := node.Labels[hostnameLabel]
		if !ok || hostname == "" {
			return nil, fmt.Errorf("node %s has no %s label: a local volume is pinned to its node by that label", node.Name, hostnameLabel)
		}
		term.MatchExpressions = []v1.NodeSelectorRequirement{{
			Key: hostnameLabel, Operator: v1.NodeSelectorOpIn, Values: []string{hostname},
		}}
		annotations[annNode] = node.Name
	} else {
		// Every quartet node shares this machine's disk, so a volume created
		// before any node was chosen is usable from each of them.
		term.MatchExpressions = []v1.NodeSelectorRequirement{{
			Key: hostnameLabel, Operator: v1.NodeSelectorOpExists,
		}}
	}

	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        pvName,
			Annotations: annotations,
		},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: size.DeepCopy()},
			AccessModes:                   append([]v1.PersistentVolumeAccessMode(nil), claim.Spec.AccessModes...),
			PersistentVolumeReclaimPolicy: reclaim,
			VolumeMode:                    &filesystem,
			PersistentVolumeSource: v1.PersistentVolumeSource{
				Local: &v1.LocalVolumeSource{Path: filepath.Join(root, pvName)},
			},
			NodeAffinity: &v1.VolumeNodeAffinity{
				Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{term}},
			},
		},
	}, nil
}

// checkClaim rejects what a directory on one node cannot honestly serve.
func checkClaim(claim *v1.PersistentVolumeClaim) error {
	if len(claim.Spec.AccessModes) == 0 {
		return fmt.Errorf("claim %s/%s has no access modes", claim.Namespace, claim.Name)
	}
	for _, mode := range claim.Spec.AccessModes {
		switch mode {
		case v1.ReadWriteOnce, v1.ReadWriteOncePod:
		default:
			return fmt.Errorf("access mode %s is not supported by %s: a local-path volume is a directory on one node, so only ReadWriteOnce and ReadWriteOncePod are served", mode, ProvisionerName)
		}
	}
	if claim.Spec.VolumeMode != nil && *claim.Spec.VolumeMode == v1.PersistentVolumeBlock {
		return fmt.Errorf("volumeMode Block is not supported by %s: only Filesystem volumes are served", ProvisionerName)
	}
	if claim.Spec.DataSource != nil || claim.Spec.DataSourceRef != nil {
		return fmt.Errorf("claim %s/%s names a data source: %s cannot clone volumes or restore snapshots", claim.Namespace, claim.Name, ProvisionerName)
	}
	return nil
}

// checkClass rejects class settings this provisioner would otherwise ignore
// silently.
func checkClass(class *storagev1.StorageClass) error {
	for k := range class.Parameters {
		return fmt.Errorf("StorageClass %s: parameter %q is not supported by %s (it takes no parameters)", class.Name, k, ProvisionerName)
	}
	if len(class.MountOptions) > 0 {
		return fmt.Errorf("StorageClass %s: mountOptions are not supported by %s (the volume is a bind-mounted directory)", class.Name, ProvisionerName)
	}
	if class.ReclaimPolicy != nil && *class.ReclaimPolicy == v1.PersistentVolumeReclaimRecycle {
		return fmt.Errorf("StorageClass %s: reclaimPolicy Recycle is not supported by %s (use Delete or Retain)", class.Name, ProvisionerName)
	}
	return nil
}
