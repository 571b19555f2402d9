package storage

import (
	"context"
	"fmt"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// nodeGetter reads the node the scheduler selected for a claim.
type nodeGetter interface {
	Get(ctx context.Context, name string) (*v1.Node, error)
}

// cachedNodes reads nodes from an informer cache, and from the apiserver when
// the cache has not seen the node yet (a node that just joined must not look
// deleted).
type cachedNodes struct {
	lister corelisters.NodeLister
	client kubernetes.Interface
}

func (c cachedNodes) Get(ctx context.Context, name string) (*v1.Node, error) {
	if n, err := c.lister.Get(name); err == nil {
		return n, nil
	}
	return c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}

// provisioner is what sig-storage-lib-external-provisioner calls: it turns a
// claim into a directory plus a PersistentVolume, and a released volume back
// into nothing.
type provisioner struct {
	root  string
	nodes nodeGetter
	dirs  dirs
}

var _ controller.Provisioner = (*provisioner)(nil)

// Provision creates the directory for opts.PVName and returns its volume. The
// library then sets the claimRef, emits ProvisioningFailed with the returned
// error text when there is one, and creates the PV.
func (p *provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	logger := klog.FromContext(ctx)
	var node *v1.Node
	if opts.SelectedNodeName != "" {
		n, err := p.nodes.Get(ctx, opts.SelectedNodeName)
		if apierrors.IsNotFound(err) {
			// The scheduler picked a node that is gone: ask it to pick again.
			return nil, controller.ProvisioningReschedule, fmt.Errorf("selected node %s does not exist", opts.SelectedNodeName)
		}
		if err != nil {
			return nil, controller.ProvisioningFinished, fmt.Errorf("read selected node %s: %w", opts.SelectedNodeName, err)
		}
		node = n
	}
	pv, err := newVolume(opts.PVC, opts.StorageClass, opts.PVName, node, p.root)
	if err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	if err := p.dirs.Create(pv.Spec.Local.Path); err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	logger.V(2).Info("Provisioned local volume", "PVC", klog.KObj(opts.PVC), "PV", pv.Name, "path", pv.Spec.Local.Path, "node", opts.SelectedNodeName)
	return pv, controller.ProvisioningFinished, nil
}

// Delete removes the directory of a released volume whose reclaim policy is
// Delete; the library then deletes the PV object. It refuses to touch a path
// outside the directory it would have created for that volume.
func (p *provisioner) Delete(ctx context.Context, pv *v1.PersistentVolume) error {
	if pv.Spec.Local == nil {
		return &controller.IgnoredError{Reason: "not a local volume"}
	}
	want := filepath.Join(p.root, pv.Name)
	if filepath.Clean(pv.Spec.Local.Path) != want {
		return fmt.Errorf("refusing to delete %s: %s only deletes %s for volume %s", pv.Spec.Local.Path, ProvisionerName, want, pv.Name)
	}
	if err := p.dirs.Remove(want); err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Deleted local volume directory", "PV", pv.Name, "path", want)
	return nil
}
