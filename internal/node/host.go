package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/images"
	"quartet.dev/quartet/internal/node/runtime"
	"quartet.dev/quartet/internal/node/runtime/oci"
	"quartet.dev/quartet/internal/node/runtime/process"
	"quartet.dev/quartet/internal/node/runtime/runc"
	"quartet.dev/quartet/internal/node/runtime/sim"
	"quartet.dev/quartet/internal/node/sandbox"
)

// Runtime modes.
const (
	RuntimeAuto    = "auto"
	RuntimeOCI     = "oci"
	RuntimeProcess = "process"
	RuntimeSim     = "sim"
)

// HostConfig configures a Host.
type HostConfig struct {
	// Client lists and watches pods and nodes for every node agent (the
	// shared informers): a read-only host identity. Everything a node does
	// besides goes through its own client (NodeClient).
	Client kubernetes.Interface
	// NodeClient returns the client of one node: `system:node:<name>` in
	// group system:nodes, which the apiserver's Node authorizer and
	// NodeRestriction admission limit to the node's own Node, Lease and
	// pods and the Secrets, ConfigMaps and claims of its pods, as a
	// kubelet's. Nil means Client (tests).
	NodeClient func(node string) (kubernetes.Interface, error)
	// AdminClient registers Node objects with the labels and taints the
	// operator asked for (NodeRestriction refuses node-role labels from a
	// node, as kubeadm labels nodes as admin) and deletes them in RemoveNode.
	// Nil means Client.
	AdminClient kubernetes.Interface
	// DataDir is quartet's data directory; the host keeps its state under
	// DataDir/nodes/<node>/ and reads DataDir/images.yaml.
	DataDir string
	// Runtime is "auto" (default), "oci", "process" or "sim".
	Runtime string
	// DNSAddress is "IP:PORT" of the cluster DNS server as the host reaches
	// it ("" = none yet).
	DNSAddress    string
	ClusterDomain string
	// Network gives every pod that is not hostNetwork a network namespace
	// of its own on the cluster's pod network (the pod sandbox). The caller
	// starts it before Run and stops it after Run has returned. With none,
	// pods share the host's network; NoNetwork then says why, for the event
	// pods with process containers get ("" = no event).
	Network   *sandbox.Manager
	NoNetwork string
	// PodDNS is the address pods in a sandbox ask for cluster DNS, on port
	// 53 (the kube-dns ClusterIP, or the host's address on the pod bridge).
	PodDNS string
	// NodeIP is every node's InternalIP: the pods' status.hostIP, the IP of
	// hostNetwork pods, and where the kubelet API listens (default
	// 127.0.0.1; with a pod network, the host's address on the bridge, which
	// pods reach too).
	NodeIP string
	// KubernetesService is "IP:PORT" of the apiserver as pods in a sandbox
	// reach it (the kubernetes Service's ClusterIP and port): their
	// KUBERNETES_SERVICE_HOST and _PORT. "" gives them none.
	KubernetesService string
	// ServingCert returns the certificate a node's kubelet API presents;
	// ClientCAs verifies the client certificates it accepts. With a nil
	// ServingCert no kubelet API is served (and `kubectl logs` fails).
	ServingCert func(nodeName string) (*tls.Certificate, error)
	ClientCAs   *x509.CertPool
	// ClientNames are the certificate common names (the apiserver's kubelet
	// client) that the kubelet API trusts without asking the apiserver;
	// every other user, by certificate or bearer token, must pass a
	// SubjectAccessReview for the node's subresource (nodes/proxy).
	ClientNames []string
	Clock       Clock
	// Workers is how many pods sync at once (default 32): a sync mostly
	// waits for its status write, so many overlap well.
	Workers int
	// ShutdownGrace is how long Run waits after SIGTERM before it kills
	// what still runs when ctx ends (default 5s).
	ShutdownGrace time.Duration
}

// Clock is what the host needs of a clock: tickers for probes and delayed
// functions for pod workers' timers (clock.RealClock and the testing
// FakeClock both are one).
type Clock interface {
	clock.WithTicker
	AfterFunc(d time.Duration, f func()) clock.Timer
}

// NodeSpec is one node to run.
type NodeSpec struct {
	Name   string
	Labels map[string]string
	Taints []v1.Taint
	// Capacity overrides the node's reported capacity (cpu, memory, pods,
	// ephemeral-storage); unset resources default to the machine's (110 pods).
	Capacity v1.ResourceList
}

// Host runs node agents in this process: one shared pod informer, a worker
// per pod that owns its syncs, one agent per node for its Node object, Lease
// and kubelet API, and the runtimes, reached only through runtime.Runtime.
type Host struct {
	cfg    HostConfig
	client kubernetes.Interface
	admin  kubernetes.Interface
	clock  Clock
	mode   string

	// runtimes are the container runtimes by kind; order is the kinds a new
	// container instance may run under, tried in turn (the runtime mode).
	runtimes map[runtime.Kind]runtime.Runtime
	order    []runtime.Kind
	// isolated and isolationWhy say whether process containers get their own
	// namespaces, and why not.
	isolated     bool
	isolationWhy string
	// oci runs containers from images (nil when quartet cannot: not root,
	// or --runtime process|sim); images and puller are its image store.
	oci    *oci.Runtime
	images *images.Store
	// containers runs the isolated containers of the oci and process
	// runtimes and the pods' pause containers (nil when not isolated).
	containers *runc.Manager
	puller     *images.Puller
	// nodeImages caches the store's images for Node status.images.
	nodeImages imageList

	factory     informers.SharedInformerFactory
	podInformer cache.SharedIndexInformer
	nodeFactory informers.SharedInformerFactory
	nodeLister  cache.Indexer
	workers     *workerPool

	writer      podWriter
	broadcaster record.EventBroadcaster
	// recorderFor builds a node's event recorder; tests replace it.
	recorderFor func(node string) record.EventRecorder

	mu      sync.Mutex
	agents  map[string]*agent
	pods    map[types.UID]*podRecord
	runCtx  context.Context
	started chan struct{}
	stopped bool
}

const nodeNameIndex = "spec.nodeName"

// NewHost validates cfg and builds a Host; nothing runs until Run.
func NewHost(cfg HostConfig) (*Host, error) {
	if cfg.Client == nil {
		return nil, errors.New("node host: no client")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("node host: no data dir")
	}
	switch cfg.Runtime {
	case "":
		cfg.Runtime = RuntimeAuto
	case RuntimeAuto, RuntimeOCI, RuntimeProcess, RuntimeSim:
	default:
		return nil, fmt.Errorf("node host: runtime %q is not one of auto, oci, process, sim", cfg.Runtime)
	}
	if cfg.NodeIP == "" {
		cfg.NodeIP = hostIP
	} else if net.ParseIP(cfg.NodeIP) == nil {
		return nil, fmt.Errorf("node host: node IP %q is not an IP address", cfg.NodeIP)
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 5 * time.Second
	}
	if cfg.ServingCert != nil && cfg.ClientCAs == nil {
		return nil, errors.New("node host: ServingCert without ClientCAs")
	}
	h := &Host{
		cfg:      cfg,
		client:   cfg.Client,
		admin:    cfg.AdminClient,
		clock:    cfg.Clock,
		mode:     cfg.Runtime,
		runtimes: map[runtime.Kind]runtime.Runtime{runtime.KindSim: sim.New(cfg.Clock)},
		agents:   map[string]*agent{},
		pods:     map[types.UID]*podRecord{},
		started:  make(chan struct{}),
	}
	if h.admin == nil {
		h.admin = cfg.Client
	}
	switch cfg.Runtime {
	case RuntimeSim:
		h.order = []runtime.Kind{runtime.KindSim}
	case RuntimeProcess:
		h.order = []runtime.Kind{runtime.KindProcess}
	case RuntimeOCI:
		h.order = []runtime.Kind{runtime.KindOCI}
	default:
		h.order = []runtime.Kind{runtime.KindOCI, runtime.KindProcess, runtime.KindSim}
	}
	if cfg.Runtime != RuntimeSim {
		var containers *runc.Manager
		h.isolated, h.isolationWhy = process.Isolation()
		if h.isolated {
			abs, err := filepath.Abs(cfg.DataDir)
			if err != nil {
				return nil, err
			}
			containers, err = runc.New(runc.Config{
				StateRoot:    datadir.Dir(abs).Containers(),
				CgroupParent: runc.CgroupParentFor(cfg.DataDir),
				Masked:       []string{abs},
				Clock:        cfg.Clock,
			})
			if err != nil {
				return nil, fmt.Errorf("node host: %w", err)
			}
			h.containers = containers
		}
		if cfg.Runtime != RuntimeOCI {
			h.runtimes[runtime.KindProcess] = process.New(process.Config{
				Containers: containers,
				Clock:      cfg.Clock,
				Images:     process.NewImages(datadir.Dir(cfg.DataDir).Images()),
				StateRoot:  datadir.Dir(cfg.DataDir).Nodes(),
			})
		}
		if err := h.setUpOCI(containers); err != nil {
			return nil, err
		}
	}
	if cfg.Network != nil && cfg.Runtime != RuntimeSim && !h.isolated {
		// Only isolated (libcontainer) containers join a network namespace.
		return nil, fmt.Errorf("node host: a pod network needs isolated containers, and they are not (%s)", h.isolationWhy)
	}
	if err := os.MkdirAll(datadir.Dir(cfg.DataDir).Nodes(), 0o750); err != nil {
		return nil, fmt.Errorf("node host: %w", err)
	}

	// Only bound pods: a Pending pod the scheduler has not placed costs the
	// agents nothing. Neither cache keeps managedFields, which the agents
	// never read (often a third of a pod's size).
	h.factory = informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
		}), informers.WithTransform(dropManagedFields))
	h.podInformer = h.factory.Core().V1().Pods().Informer()
	if err := h.podInformer.AddIndexers(cache.Indexers{nodeNameIndex: func(obj interface{}) ([]string, error) {
		if pod, ok := obj.(*v1.Pod); ok && pod.Spec.NodeName != "" {
			return []string{pod.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, err
	}
	if _, err := h.podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { h.podChanged(obj, false) },
		UpdateFunc: func(_, obj interface{}) { h.podChanged(obj, false) },
		DeleteFunc: func(obj interface{}) { h.podChanged(obj, true) },
	}); err != nil {
		return nil, err
	}
	h.nodeFactory = informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0, informers.WithTransform(dropManagedFields))
	nodeInformer := h.nodeFactory.Core().V1().Nodes().Informer()
	h.nodeLister = nodeInformer.GetIndexer()
	if _, err := nodeInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { h.nodeChanged(obj) },
		UpdateFunc: func(_, obj interface{}) { h.nodeChanged(obj) },
	}); err != nil {
		return nil, err
	}
	h.writer = &apiPodWriter{clientOf: h.podClient}
	h.broadcaster = record.NewBroadcaster()
	h.recorderFor = func(node string) record.EventRecorder {
		return h.broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: node})
	}
	return h, nil
}

// dropManagedFields is the informers' transform: objects are cached without
// their managedFields.
func dropManagedFields(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
	}
	return obj, nil
}

// setUpOCI adds the oci runtime when containers can be isolated: strict
// under --runtime oci (which refuses to start without it), first choice
// under auto.
func (h *Host) setUpOCI(containers *runc.Manager) error {
	if containers == nil {
		if h.mode == RuntimeOCI {
			return fmt.Errorf("node host: --runtime oci runs containers from images, which needs isolated containers (%s)", h.isolationWhy)
		}
		h.order = removeKind(h.order, runtime.KindOCI)
		return nil
	}
	dir := datadir.Dir(h.cfg.DataDir)
	store, err := images.Open(dir.ImageStore())
	if err != nil {
		return fmt.Errorf("node host: image store: %w", err)
	}
	rt, err := oci.New(oci.Config{Containers: containers, Store: store, Clock: h.cfg.Clock})
	if err != nil {
		return fmt.Errorf("node host: %w", err)
	}
	h.oci, h.images = rt, store
	h.puller = &images.Puller{Store: store, Registries: func() (*images.Registries, error) {
		return images.LoadRegistries(dir.Registries())
	}}
	h.runtimes[runtime.KindOCI] = rt
	return nil
}

// Order lists the runtimes a new container may run under, tried in turn.
func (h *Host) Order() []string {
	out := make([]string, len(h.order))
	for i, k := range h.order {
		out[i] = string(k)
	}
	return out
}

func removeKind(kinds []runtime.Kind, k runtime.Kind) []runtime.Kind {
	out := kinds[:0:0]
	for _, x := range kinds {
		if x != k {
			out = append(out, x)
		}
	}
	return out
}

// Isolation reports whether process containers get their own mount and UTS
// namespaces, and why not when they do not (for `quartet up` to print).
func (h *Host) Isolation() (bool, string) {
	if h.runtimes[runtime.KindProcess] == nil && h.oci == nil {
		return false, "the sim runtime runs no processes"
	}
	return h.isolated, h.isolationWhy
}

// seccompWhyNot says why containers of a runtime cannot get a seccomp
// profile ("": they can; sim containers run nothing to confine).
func (h *Host) seccompWhyNot(kind runtime.Kind) string {
	switch {
	case kind == runtime.KindSim:
		return ""
	case kind == runtime.KindProcess && !h.isolated:
		return "containers run as plain host processes here (" + h.isolationWhy + ")"
	}
	if ok, why := runc.SeccompAvailable(); !ok {
		return why
	}
	return ""
}

// Run starts the informers and pod workers and runs until ctx is done. On
// return every process the host started has ended.
func (h *Host) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if os.Geteuid() == 0 {
		if n := unmountUnder(filepath.Join(h.cfg.DataDir, "nodes")); n > 0 {
			logger.Info("Unmounted subPath staging mounts and image root filesystems left by a previous run", "count", n)
		}
	}
	for _, kind := range sortedKinds(h.runtimes) {
		n, err := h.runtimes[kind].KillLeftovers(ctx)
		if err != nil {
			return fmt.Errorf("%s runtime: killing what a previous run left: %w", kind, err)
		}
		if n > 0 {
			logger.Info("Killed containers left running by a previous run", "runtime", kind, "count", n)
		}
	}
	h.workers = newWorkerPool(ctx, h.cfg.Workers)
	h.broadcaster.StartRecordingToSink(nodeEventSink{h})
	defer h.broadcaster.Shutdown()

	h.factory.Start(ctx.Done())
	h.nodeFactory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), h.podInformer.HasSynced) {
		h.workers.close()
		h.shutdown(logger)
		return ctx.Err()
	}
	h.nodeFactory.WaitForCacheSync(ctx.Done())
	h.mu.Lock()
	h.runCtx = ctx
	close(h.started)
	h.mu.Unlock()
	if h.images != nil {
		go h.collectImages(ctx)
	}

	<-ctx.Done()
	h.workers.close()
	h.shutdown(logger)
	h.factory.Shutdown()
	h.nodeFactory.Shutdown()
	return nil
}

// Image garbage collection, as the kubelet's defaults: every 5 minutes,
// when the image store's filesystem is 85% full or more, images no
// container uses (pulled over 2 minutes ago) go, least recently used
// first, until it is 80% full.
const (
	imageGCPeriod = 5 * time.Minute
	imageGCHigh   = 85
	imageGCLow    = 80
	imageGCMinAge = 2 * time.Minute
)

func (h *Host) collectImages(ctx context.Context) {
	logger := klog.FromContext(ctx)
	t := h.clock.NewTicker(imageGCPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		removed, err := h.images.GC(images.GCPolicy{HighPercent: imageGCHigh, LowPercent: imageGCLow, MinAge: imageGCMinAge,
			LastUsed: h.oci.LastUsed, InUse: h.oci.InUse, Now: h.clock.Now})
		for _, im := range removed {
			logger.Info("Image garbage collection removed an image", "image", im.Ref, "digest", im.Digest)
		}
		if err != nil {
			logger.Error(err, "Image garbage collection failed")
		}
	}
}

// shutdown stops every agent and every process.
func (h *Host) shutdown(logger klog.Logger) {
	h.mu.Lock()
	h.stopped = true
	agents := make([]*agent, 0, len(h.agents))
	for _, a := range h.agents {
		agents = append(agents, a)
	}
	h.mu.Unlock()
	for _, a := range agents {
		a.stop()
	}
	for _, kind := range sortedKinds(h.runtimes) {
		h.runtimes[kind].Shutdown(h.cfg.ShutdownGrace)
	}
	h.mu.Lock()
	for _, rec := range h.pods {
		rec.stopProbes()
	}
	h.mu.Unlock()
	logger.V(2).Info("Node host stopped")
}

// waitStarted blocks until Run has synced its informers.
func (h *Host) waitStarted(ctx context.Context) error {
	select {
	case <-h.started:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Nodes lists the names of the running agents.
func (h *Host) Nodes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.agents))
	for n := range h.agents {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// AddNode registers a Node, starts its agent and returns once the Node is Ready.
func (h *Host) AddNode(ctx context.Context, spec NodeSpec) error {
	if err := ValidateNodeName(spec.Name); err != nil {
		return err
	}
	if err := h.waitStarted(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return errors.New("node host is stopped")
	}
	if _, ok := h.agents[spec.Name]; ok {
		h.mu.Unlock()
		return fmt.Errorf("node %q already exists", spec.Name)
	}
	a := newAgent(h, spec)
	h.agents[spec.Name] = a
	runCtx := h.runCtx
	h.mu.Unlock()

	client, err := h.newNodeClient(spec.Name)
	if err != nil {
		h.mu.Lock()
		delete(h.agents, spec.Name)
		h.mu.Unlock()
		return fmt.Errorf("node %s: client: %w", spec.Name, err)
	}
	a.setClient(client)

	if err := a.start(ctx, runCtx); err != nil {
		h.mu.Lock()
		delete(h.agents, spec.Name)
		h.mu.Unlock()
		a.stop()
		return err
	}
	// Pods already bound to this node (a restart on the same data dir).
	objs, _ := h.podInformer.GetIndexer().ByIndex(nodeNameIndex, spec.Name)
	for _, obj := range objs {
		if pod, ok := obj.(*v1.Pod); ok && pod.Status.PodIP != "" && !pod.Spec.HostNetwork &&
			pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed {
			_, _ = a.allocateIP(pod.UID, pod.Status.PodIP)
		}
	}
	for _, obj := range objs {
		h.podChanged(obj, false)
	}
	// Directories of pods that were deleted while quartet was down.
	known := map[string]bool{}
	for _, obj := range objs {
		if pod, ok := obj.(*v1.Pod); ok {
			known[string(pod.UID)] = true
		}
	}
	entries, _ := os.ReadDir(filepath.Join(a.dir, "pods"))
	for _, e := range entries {
		if !known[e.Name()] && h.record(types.UID(e.Name())) == nil {
			_ = os.RemoveAll(filepath.Join(a.dir, "pods", e.Name()))
		}
	}
	return nil
}

// RemoveNode stops a node's agent (its heartbeats and every process of its
// pods) and deletes the Node object.
func (h *Host) RemoveNode(ctx context.Context, name string) error {
	h.mu.Lock()
	a, ok := h.agents[name]
	if ok {
		delete(h.agents, name)
	}
	var recs []*podRecord
	for uid, rec := range h.pods {
		if rec.agent == a {
			recs = append(recs, rec)
			delete(h.pods, uid)
		}
	}
	h.mu.Unlock()
	if !ok {
		return fmt.Errorf("node %q is not run by this quartet", name)
	}
	a.stop()
	for _, rec := range recs {
		rec.kill()
	}
	for _, rec := range recs {
		h.teardownSandbox(ctx, rec)
	}
	if h.cfg.Network != nil {
		if err := h.cfg.Network.ReleaseNode(a.podCIDR()); err != nil {
			klog.FromContext(ctx).Error(err, "Removing the node's gateway from the pod bridge", "node", name)
		}
	}
	_ = os.RemoveAll(a.dir)
	err := h.admin.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("deleting Node %s: %w", name, err)
	}
	return nil
}

// podChanged routes an informer event to the pod's record.
func (h *Host) podChanged(obj interface{}, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*v1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return
	}
	h.mu.Lock()
	rec := h.pods[pod.UID]
	if rec == nil {
		a := h.agents[pod.Spec.NodeName]
		if a == nil || deleted || a.stopped() {
			h.mu.Unlock()
			return
		}
		rec = newPodRecord(a, pod)
		h.pods[pod.UID] = rec
	}
	h.mu.Unlock()
	rec.mu.Lock()
	if deleted {
		rec.gone = true
	} else {
		rec.pod = pod
	}
	rec.mu.Unlock()
	rec.worker.wake()
}

// nodeChanged lets an agent learn its podCIDR.
func (h *Host) nodeChanged(obj interface{}) {
	node, ok := obj.(*v1.Node)
	if !ok {
		return
	}
	h.mu.Lock()
	a := h.agents[node.Name]
	h.mu.Unlock()
	if a != nil && a.setPodCIDR(node.Spec.PodCIDR) {
		h.enqueueNode(a)
	}
}

// enqueueNode queues every pod of an agent.
func (h *Host) enqueueNode(a *agent) {
	h.mu.Lock()
	var recs []*podRecord
	for _, rec := range h.pods {
		if rec.agent == a {
			recs = append(recs, rec)
		}
	}
	h.mu.Unlock()
	for _, rec := range recs {
		rec.worker.wake()
	}
}

func (h *Host) record(uid types.UID) *podRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pods[uid]
}

func (h *Host) forget(rec *podRecord) {
	h.mu.Lock()
	if h.pods[rec.uid] == rec {
		delete(h.pods, rec.uid)
	}
	h.mu.Unlock()
	rec.worker.stop()
}

// wake asks for a sync of the pod with this UID, if the host knows it.
func (h *Host) wake(uid types.UID) {
	if rec := h.record(uid); rec != nil {
		rec.worker.wake()
	}
}

// runtimeFor returns the runtime that runs an instance.
func (h *Host) runtimeFor(inst runtime.Instance) (runtime.Runtime, error) {
	rt := h.runtimes[runtime.KindOf(inst.ID())]
	if rt == nil {
		return nil, fmt.Errorf("no runtime runs container %s", inst.ID())
	}
	return rt, nil
}

func sortedKinds(m map[runtime.Kind]runtime.Runtime) []runtime.Kind {
	kinds := make([]runtime.Kind, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i] < kinds[j] })
	return kinds
}
