package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"quartet.dev/quartet/internal/datadir"
)

const (
	// leaseDuration and renewInterval are the kubelet's defaults.
	leaseDuration = 40 * time.Second
	renewInterval = 10 * time.Second
	// statusReportInterval is the kubelet's nodeStatusReportFrequency: the
	// Node status is written when it changes and at least this often.
	statusReportInterval = 5 * time.Minute
	leaseNamespace       = "kube-node-lease"
	// KubeletVersion is what Nodes report as status.nodeInfo.kubeletVersion.
	KubeletVersion = "v1.37.2"
	// hostIP is the host's loopback address: the node IP by default, and
	// where probes of pods without a network of their own go.
	hostIP  = "127.0.0.1"
	maxPods = 110
)

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// agent is one node: its Node object, Lease, kubelet API and pod addresses.
type agent struct {
	host     *Host
	name     string
	spec     NodeSpec
	dir      string
	recorder record.EventRecorder
	// client is the node's own identity (HostConfig.NodeClient), set once
	// before start.
	client kubernetes.Interface

	cancel context.CancelFunc
	done   chan struct{}

	server *http.Server
	port   int

	mu         sync.Mutex
	isStopped  bool
	ipam       *ipam
	nodeUID    types.UID
	lastStatus *v1.NodeStatus
	lastReport time.Time
	lease      *coordinationv1.Lease
	cert       *tlsCertCache
}

func newAgent(h *Host, spec NodeSpec) *agent {
	return &agent{
		host:     h,
		name:     spec.Name,
		spec:     spec,
		dir:      datadir.Dir(h.cfg.DataDir).Node(spec.Name),
		recorder: h.recorderFor(spec.Name),
		done:     make(chan struct{}),
		cert:     &tlsCertCache{},
	}
}

func (a *agent) stopped() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.isStopped
}

// start serves the kubelet API, registers the Node, posts a Ready status and
// a Lease, and starts heartbeating under runCtx.
func (a *agent) start(ctx, runCtx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("node", a.name)
	if err := os.MkdirAll(filepath.Join(a.dir, "pods"), 0o750); err != nil {
		return err
	}
	if err := a.serve(); err != nil {
		return fmt.Errorf("node %s: kubelet API: %w", a.name, err)
	}
	node, err := a.register(ctx)
	if err != nil {
		return fmt.Errorf("node %s: registering: %w", a.name, err)
	}
	a.mu.Lock()
	a.nodeUID = node.UID
	a.mu.Unlock()
	a.setPodCIDR(node.Spec.PodCIDR)
	now := a.host.clock.Now()
	if err := a.syncStatus(ctx, node, now, true); err != nil {
		return fmt.Errorf("node %s: posting status: %w", a.name, err)
	}
	if err := a.renewLease(ctx, now); err != nil {
		return fmt.Errorf("node %s: lease: %w", a.name, err)
	}
	ref := &v1.ObjectReference{Kind: "Node", Name: a.name, UID: types.UID(a.name)}
	a.recorder.Eventf(ref, v1.EventTypeNormal, reasonStarting, "Starting kubelet.")
	a.recorder.Eventf(ref, v1.EventTypeNormal, reasonNodeReady, "Node %s status is now: NodeReady", a.name)
	logger.V(2).Info("Node registered and ready")

	hbCtx, cancel := context.WithCancel(runCtx)
	a.cancel = cancel
	go a.heartbeat(hbCtx)
	return nil
}

// stop ends heartbeats and the kubelet API. It does not touch pods.
func (a *agent) stop() {
	a.mu.Lock()
	if a.isStopped {
		a.mu.Unlock()
		return
	}
	a.isStopped = true
	a.mu.Unlock()
	if a.cancel != nil {
		a.cancel()
		<-a.done
	}
	if a.server != nil {
		_ = a.server.Close()
	}
}

// heartbeat renews the Lease every renewInterval (with jitter, so a thousand
// nodes do not renew at once) and writes the Node status when it changed or
// statusReportInterval has passed.
func (a *agent) heartbeat(ctx context.Context) {
	defer close(a.done)
	logger := klog.FromContext(ctx).WithValues("node", a.name)
	first := true
	for {
		d := renewInterval + time.Duration(rand.Int64N(int64(renewInterval/10)))
		if first {
			d = time.Duration(rand.Int64N(int64(renewInterval)))
			first = false
		}
		select {
		case <-ctx.Done():
			return
		case <-a.host.clock.After(d):
		}
		now := a.host.clock.Now()
		if err := a.renewLease(ctx, now); err != nil && ctx.Err() == nil {
			logger.Error(err, "Renewing node lease failed")
		}
		if err := a.syncStatus(ctx, nil, now, false); err != nil && ctx.Err() == nil {
			logger.Error(err, "Updating node status failed")
		}
	}
}

// machineID derives stable per-node identifiers from the node name.
func machineID(name, salt string) string {
	sum := sha256.Sum256([]byte(salt + "/" + name))
	return hex.EncodeToString(sum[:16])
}

// newNode is the Node an agent registers (pure).
func newNode(spec NodeSpec) *v1.Node {
	labels := map[string]string{
		v1.LabelHostname:          spec.Name,
		v1.LabelOSStable:          goruntime.GOOS,
		v1.LabelArchStable:        goruntime.GOARCH,
		"beta.kubernetes.io/os":   goruntime.GOOS,
		"beta.kubernetes.io/arch": goruntime.GOARCH,
	}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        spec.Name,
			Labels:      labels,
			Annotations: map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
		},
		Spec: v1.NodeSpec{Taints: append([]v1.Taint(nil), spec.Taints...)},
	}
}

// machineCapacity is what the machine offers each node unless the NodeSpec
// says otherwise: all CPUs, all memory, 110 pods.
func machineCapacity(dataDir string, override v1.ResourceList) v1.ResourceList {
	c := v1.ResourceList{
		v1.ResourceCPU:    *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		v1.ResourceMemory: *resource.NewQuantity(memTotal(), resource.BinarySI),
		v1.ResourcePods:   *resource.NewQuantity(maxPods, resource.DecimalSI),
	}
	if disk := diskTotal(dataDir); disk > 0 {
		c[v1.ResourceEphemeralStorage] = *resource.NewQuantity(disk, resource.BinarySI)
	}
	for k, v := range override {
		c[k] = v.DeepCopy()
	}
	return c
}

// nodeStatus is the status an agent reports (pure apart from its inputs).
// Heartbeat times are set to now; transition times are kept from old.
func nodeStatus(name, nodeIP string, capacity v1.ResourceList, port int, runtimeVersion, kernel string, old *v1.NodeStatus, now time.Time) v1.NodeStatus {
	t := metav1.NewTime(now)
	conds := []v1.NodeCondition{
		{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: v1.NodeDiskPressure, Status: v1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: v1.NodePIDPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		// Ready last, as the kubelet orders it.
		{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
	}
	for i := range conds {
		conds[i].LastHeartbeatTime = t
		conds[i].LastTransitionTime = t
		if old != nil {
			for _, o := range old.Conditions {
				if o.Type == conds[i].Type && o.Status == conds[i].Status {
					conds[i].LastTransitionTime = o.LastTransitionTime
				}
			}
		}
	}
	return v1.NodeStatus{
		Capacity:    capacity.DeepCopy(),
		Allocatable: capacity.DeepCopy(),
		Conditions:  conds,
		Addresses: []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: nodeIP},
			{Type: v1.NodeHostName, Address: name},
		},
		DaemonEndpoints: v1.NodeDaemonEndpoints{KubeletEndpoint: v1.DaemonEndpoint{Port: int32(port)}},
		NodeInfo: v1.NodeSystemInfo{
			MachineID:               machineID(name, "machine"),
			SystemUUID:              machineID(name, "system"),
			BootID:                  machineID(name, "boot"),
			KernelVersion:           kernel,
			OSImage:                 "quartet node agent",
			ContainerRuntimeVersion: runtimeVersion,
			KubeletVersion:          KubeletVersion,
			OperatingSystem:         goruntime.GOOS,
			Architecture:            goruntime.GOARCH,
		},
	}
}

// sameIgnoringHeartbeats compares two node statuses apart from heartbeat times.
func sameIgnoringHeartbeats(a, b *v1.NodeStatus) bool {
	if a == nil || b == nil {
		return false
	}
	ac, bc := a.DeepCopy(), b.DeepCopy()
	for i := range ac.Conditions {
		ac.Conditions[i].LastHeartbeatTime = metav1.Time{}
	}
	for i := range bc.Conditions {
		bc.Conditions[i].LastHeartbeatTime = metav1.Time{}
	}
	return apiequality.Semantic.DeepEqual(ac, bc)
}

// register creates the Node, or adopts the one a previous run created: its
// labels are brought up to date, its taints and spec are left as they are
// (as a kubelet does; `kubectl taint` and cordon survive restarts).
func (a *agent) register(ctx context.Context) (*v1.Node, error) {
	want := newNode(a.spec)
	nodes := a.host.admin.CoreV1().Nodes()
	node, err := nodes.Create(ctx, want, metav1.CreateOptions{})
	if err == nil {
		return node, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	node, err = nodes.Get(ctx, a.name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	changed := false
	updated := node.DeepCopy()
	if updated.Labels == nil {
		updated.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		if updated.Labels[k] != v {
			updated.Labels[k] = v
			changed = true
		}
	}
	if !changed {
		return node, nil
	}
	return nodes.Update(ctx, updated, metav1.UpdateOptions{})
}

func (a *agent) runtimeVersion() string {
	return "quartet-" + a.host.mode + "://" + KubeletVersion
}

// syncStatus writes the Node status if it changed, or if force, or if the
// last report is older than statusReportInterval.
func (a *agent) syncStatus(ctx context.Context, node *v1.Node, now time.Time, force bool) error {
	a.mu.Lock()
	old := a.lastStatus
	lastReport := a.lastReport
	port := a.port
	a.mu.Unlock()
	if node == nil {
		// Compare with the Node as the API has it, not with what was last
		// written: the node-lifecycle controller may have set Ready=Unknown
		// after a late heartbeat, and that must be corrected now, not at the
		// next periodic report.
		if obj, ok, _ := a.host.nodeLister.GetByKey(a.name); ok {
			if n, ok := obj.(*v1.Node); ok {
				node = n
			}
		}
	}
	if node != nil {
		old = node.Status.DeepCopy()
	}
	want := nodeStatus(a.name, a.host.cfg.NodeIP, machineCapacity(a.host.cfg.DataDir, a.spec.Capacity), port, a.runtimeVersion(), kernelVersion(), old, now)
	want.Images = a.host.nodeStatusImages(now)
	if !force && sameIgnoringHeartbeats(old, &want) && now.Sub(lastReport) < statusReportInterval {
		return nil
	}
	base := v1.Node{}
	if old != nil {
		base.Status = *old
	}
	oldJSON, err := jsonMarshal(&base)
	if err != nil {
		return err
	}
	newJSON, err := jsonMarshal(&v1.Node{Status: want})
	if err != nil {
		return err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, v1.Node{})
	if err != nil {
		return err
	}
	if _, err := a.nodeClient().CoreV1().Nodes().Patch(ctx, a.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return err
	}
	a.mu.Lock()
	a.lastStatus = &want
	a.lastReport = now
	a.mu.Unlock()
	return nil
}

// renewLease creates or renews the node's Lease in kube-node-lease.
func (a *agent) renewLease(ctx context.Context, now time.Time) error {
	leases := a.nodeClient().CoordinationV1().Leases(leaseNamespace)
	a.mu.Lock()
	lease := a.lease
	nodeUID := a.nodeUID
	a.mu.Unlock()
	renew := metav1.NewMicroTime(now)
	if lease == nil {
		got, err := leases.Get(ctx, a.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			secs := int32(leaseDuration / time.Second)
			holder := a.name
			l := &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: leaseNamespace},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &renew},
			}
			if nodeUID != "" {
				l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: a.name, UID: nodeUID}}
			}
			created, err := leases.Create(ctx, l, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			a.mu.Lock()
			a.lease = created
			a.mu.Unlock()
			return nil
		case err != nil:
			return err
		}
		lease = got
	}
	l := lease.DeepCopy()
	holder := a.name
	secs := int32(leaseDuration / time.Second)
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &holder, &secs, &renew
	if nodeUID != "" && len(l.OwnerReferences) == 0 {
		l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: a.name, UID: nodeUID}}
	}
	updated, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		a.mu.Lock()
		a.lease = nil // read it again next time
		a.mu.Unlock()
		return err
	}
	a.mu.Lock()
	a.lease = updated
	a.mu.Unlock()
	return nil
}

// setPodCIDR records the node's podCIDR; it reports whether it was new.
func (a *agent) setPodCIDR(cidr string) bool {
	if cidr == "" {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ipam != nil && a.ipam.cidr == cidr {
		return false
	}
	p, err := newIPAM(cidr)
	if err != nil {
		return false
	}
	a.ipam = p
	return true
}

// podCIDR is the node's spec.podCIDR as the agent knows it ("" = none yet).
func (a *agent) podCIDR() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ipam == nil {
		return ""
	}
	return a.ipam.cidr
}

// allocateIP gives a pod an address from the node's podCIDR, reusing the
// one its status already shows when it is in range.
func (a *agent) allocateIP(uid types.UID, previous string) (string, error) {
	a.mu.Lock()
	p := a.ipam
	a.mu.Unlock()
	if p == nil {
		return "", fmt.Errorf("network is not ready: node %s has no podCIDR yet", a.name)
	}
	return p.allocate(string(uid), previous)
}

func (a *agent) releaseIP(uid types.UID) {
	a.mu.Lock()
	p := a.ipam
	a.mu.Unlock()
	if p != nil {
		p.release(string(uid))
	}
}

func (a *agent) serve() error {
	if a.host.cfg.ServingCert == nil {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.host.cfg.NodeIP, "0"))
	if err != nil {
		return err
	}
	a.port = ln.Addr().(*net.TCPAddr).Port
	if a.server, err = newKubeletServer(a); err != nil {
		ln.Close()
		return err
	}
	go func() { _ = a.server.ServeTLS(ln, "", "") }()
	return nil
}
