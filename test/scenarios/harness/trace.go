package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Trace is what one run recorded, normalized so that runs in different modes
// compare equal when the controllers behaved alike.
type Trace struct {
	// Order is "Kind name" per object, in the order the objects were
	// created (their creation resourceVersion).
	Order []string
	// Objects describes each created object as it was at creation, one
	// line each, sorted.
	Objects []string
	// Checkpoints are the workload statuses, pods and claims at each
	// WaitFor, in order.
	Checkpoints []Checkpoint
	// Events are the distinct "Type Reason Kind name: message" lines.
	Events []string
	// Notes are the values scenarios recorded with S.Note.
	Notes []string
}

// Checkpoint is the state at one WaitFor.
type Checkpoint struct {
	Name  string
	Lines []string
}

// recorder watches one namespace and builds the trace.
type recorder struct {
	client kubernetes.Interface
	ns     string
	parent context.Context
	cancel context.CancelFunc

	mu          sync.Mutex
	created     []createdObject
	seen        map[string]bool
	events      map[string]bool
	notes       []string
	checkpoints []Checkpoint
	names       *namer
}

type createdObject struct {
	rv   int64
	kind string
	obj  metav1.Object
	raw  map[string]any
}

func newRecorder(ctx context.Context, client kubernetes.Interface, ns string) (*recorder, error) {
	r := &recorder{client: client, ns: ns, seen: map[string]bool{}, events: map[string]bool{}, names: newNamer(), parent: ctx}
	return r, r.watch()
}

// reconnect replaces the watches after a cluster restart: client-go's
// reflectors back off up to 30 s after the apiserver went away, and objects
// made in that gap would be seen only in their later state.
func (r *recorder) reconnect() error {
	r.cancel()
	return r.watch()
}

func (r *recorder) watch() error {
	ctx, cancel := context.WithCancel(r.parent)
	r.cancel = cancel
	f := informers.NewSharedInformerFactoryWithOptions(r.client, 0, informers.WithNamespace(r.ns))
	add := func(kind string, inf cache.SharedIndexInformer) {
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(o any) { r.onAdd(kind, o) }})
	}
	add("Pod", f.Core().V1().Pods().Informer())
	add("PersistentVolumeClaim", f.Core().V1().PersistentVolumeClaims().Informer())
	add("StatefulSet", f.Apps().V1().StatefulSets().Informer())
	add("DaemonSet", f.Apps().V1().DaemonSets().Informer())
	add("ControllerRevision", f.Apps().V1().ControllerRevisions().Informer())
	add("Job", f.Batch().V1().Jobs().Informer())
	add("CronJob", f.Batch().V1().CronJobs().Informer())
	ev := f.Events().V1().Events().Informer()
	_, _ = ev.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { r.onEvent(o) },
		UpdateFunc: func(_, o any) { r.onEvent(o) },
	})
	f.Start(ctx.Done())
	for t, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("recorder: %v cache did not sync", t)
		}
	}
	return nil
}

func (r *recorder) stop() { r.cancel() }

func (r *recorder) onAdd(kind string, o any) {
	obj, ok := o.(runtime.Object)
	if !ok {
		return
	}
	m, ok := o.(metav1.Object)
	if !ok {
		return
	}
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return
	}
	rv, _ := strconv.ParseInt(m.GetResourceVersion(), 10, 64)
	r.mu.Lock()
	defer r.mu.Unlock()
	key := kind + "/" + m.GetName()
	if r.seen[key] {
		return
	}
	r.seen[key] = true
	r.names.learn(kind, m)
	r.created = append(r.created, createdObject{rv: rv, kind: kind, obj: m, raw: raw})
}

func (r *recorder) onEvent(o any) {
	e, ok := o.(*eventsv1.Event)
	if !ok {
		return
	}
	if !workloadControllerEvent(e) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%s", e.Type, e.Reason, e.Regarding.Kind, e.Regarding.Name, e.Note)
	r.events[key] = true
}

// workloadEventSources are the components whose events the trace keeps:
// the controllers quartet replaces. The scheduler's, the node agents' and
// the PV controller's events are the same components in both modes, and
// their timing races say nothing about the workload controllers.
var workloadEventSources = map[string]bool{
	"statefulset-controller":        true,
	"daemonset-controller":          true,
	"job-controller":                true,
	"cronjob-controller":            true,
	"ttl-after-finished-controller": true,
}

func workloadControllerEvent(e *eventsv1.Event) bool {
	return workloadEventSources[e.ReportingController] || workloadEventSources[e.DeprecatedSource.Component]
}

// sync lists every watched kind once, so objects a watch missed (after a
// cluster restart the watches take a while to come back) are in the trace.
func (r *recorder) sync(ctx context.Context) {
	add := func(kind string, objs []runtime.Object) {
		for _, o := range objs {
			r.onAdd(kind, o)
		}
	}
	opts := metav1.ListOptions{}
	if l, err := r.client.BatchV1().CronJobs(r.ns).List(ctx, opts); err == nil {
		add("CronJob", itemsOf(l.Items))
	}
	if l, err := r.client.BatchV1().Jobs(r.ns).List(ctx, opts); err == nil {
		add("Job", itemsOf(l.Items))
	}
	if l, err := r.client.AppsV1().StatefulSets(r.ns).List(ctx, opts); err == nil {
		add("StatefulSet", itemsOf(l.Items))
	}
	if l, err := r.client.AppsV1().DaemonSets(r.ns).List(ctx, opts); err == nil {
		add("DaemonSet", itemsOf(l.Items))
	}
	if l, err := r.client.AppsV1().ControllerRevisions(r.ns).List(ctx, opts); err == nil {
		add("ControllerRevision", itemsOf(l.Items))
	}
	if l, err := r.client.CoreV1().PersistentVolumeClaims(r.ns).List(ctx, opts); err == nil {
		add("PersistentVolumeClaim", itemsOf(l.Items))
	}
	if l, err := r.client.CoreV1().Pods(r.ns).List(ctx, opts); err == nil {
		add("Pod", itemsOf(l.Items))
	}
}

// itemsOf turns a list's items into objects with pointer receivers.
func itemsOf[T any, PT interface {
	*T
	runtime.Object
}](items []T) []runtime.Object {
	out := make([]runtime.Object, len(items))
	for i := range items {
		out[i] = PT(&items[i])
	}
	return out
}

func (r *recorder) note(key, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, key+" = "+value)
}

// checkpoint records the namespace's state once it has settled: two reads
// 300 ms apart that agree (at most 5 s), so a status write racing the
// wait does not make the two modes differ.
func (r *recorder) checkpoint(ctx context.Context, name string) {
	var prev []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		cur := r.snapshot(ctx)
		if equalLines(prev, cur) || time.Now().After(deadline) {
			r.mu.Lock()
			r.checkpoints = append(r.checkpoints, Checkpoint{Name: name, Lines: cur})
			r.mu.Unlock()
			return
		}
		prev = cur
		time.Sleep(300 * time.Millisecond)
	}
}

func (r *recorder) snapshot(ctx context.Context) []string {
	var lines []string
	addStatus := func(kind, name string, status any) {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(status)
		if err != nil {
			return
		}
		r.mu.Lock()
		n := r.names.normalize(m)
		nm := r.names.name(kind, name)
		r.mu.Unlock()
		lines = append(lines, fmt.Sprintf("%s %s status %s", kind, nm, compactJSON(n)))
	}
	if l, err := r.client.AppsV1().StatefulSets(r.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for i := range l.Items {
			addStatus("StatefulSet", l.Items[i].Name, &l.Items[i].Status)
		}
	}
	if l, err := r.client.AppsV1().DaemonSets(r.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for i := range l.Items {
			addStatus("DaemonSet", l.Items[i].Name, &l.Items[i].Status)
		}
	}
	if l, err := r.client.BatchV1().Jobs(r.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for i := range l.Items {
			r.mu.Lock()
			r.names.learn("Job", &l.Items[i])
			r.mu.Unlock()
			addStatus("Job", l.Items[i].Name, &l.Items[i].Status)
		}
	}
	if l, err := r.client.BatchV1().CronJobs(r.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for i := range l.Items {
			addStatus("CronJob", l.Items[i].Name, &l.Items[i].Status)
		}
	}
	if l, err := r.client.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for i := range l.Items {
			p := &l.Items[i]
			r.mu.Lock()
			r.names.learn("Pod", p)
			nm := r.names.name("Pod", p.Name)
			r.mu.Unlock()
			lines = append(lines, fmt.Sprintf("Pod %s phase=%s ready=%v revision=%s deleting=%v",
				nm, p.Status.Phase, IsPodReady(p), p.Labels[appsv1.ControllerRevisionHashLabelKey], p.DeletionTimestamp != nil))
		}
	}
	if l, err := r.client.CoreV1().PersistentVolumeClaims(r.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for i := range l.Items {
			c := &l.Items[i]
			r.mu.Lock()
			owners := r.names.owners(c.OwnerReferences)
			r.mu.Unlock()
			lines = append(lines, fmt.Sprintf("PersistentVolumeClaim %s owners=%s deleting=%v", c.Name, owners, c.DeletionTimestamp != nil))
		}
	}
	sort.Strings(lines)
	return lines
}

// trace assembles the normalized trace.
func (r *recorder) trace(unordered []string) Trace {
	r.mu.Lock()
	defer r.mu.Unlock()
	created := append([]createdObject(nil), r.created...)
	sortByCreation(created)
	for _, c := range created {
		r.names.learn(c.kind, c.obj)
	}
	r.names.final = true
	for _, c := range created {
		r.names.learn(c.kind, c.obj)
	}
	var t Trace
	unord := map[string]bool{}
	for _, k := range unordered {
		unord[k] = true
	}
	var tail []string
	for _, c := range created {
		line := c.kind + " " + r.names.name(c.kind, c.obj.GetName())
		if unord[c.kind] {
			tail = append(tail, line)
		} else {
			t.Order = append(t.Order, line)
		}
		t.Objects = append(t.Objects, r.describe(c))
	}
	sort.Strings(tail)
	t.Order = append(t.Order, tail...)
	sort.Strings(t.Objects)
	t.Checkpoints = append(t.Checkpoints, r.checkpoints...)
	for k := range r.events {
		f := strings.Split(k, "\x00")
		t.Events = append(t.Events, fmt.Sprintf("%s %s %s %s: %s", f[0], f[1], f[2], r.names.name(f[2], f[3]), r.names.text(f[4])))
	}
	sort.Strings(t.Events)
	t.Notes = append(t.Notes, r.notes...)
	return t
}

// describe is one created object, normalized: metadata quartet's
// controllers are responsible for, and the spec of objects they create.
func (r *recorder) describe(c createdObject) string {
	meta, _ := c.raw["metadata"].(map[string]any)
	out := map[string]any{}
	for _, k := range []string{"labels", "annotations", "ownerReferences", "finalizers", "generateName"} {
		if v, ok := meta[k]; ok {
			out[k] = v
		}
	}
	if ann, ok := out["annotations"].(map[string]any); ok {
		delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
		delete(ann, "deployment.kubernetes.io/revision")
		if len(ann) == 0 {
			delete(out, "annotations")
		}
	}
	switch c.kind {
	case "Pod":
		spec, _ := c.raw["spec"].(map[string]any)
		spec = copyMap(spec)
		delete(spec, "nodeName")
		out["spec"] = spec
	case "PersistentVolumeClaim", "Job":
		spec, _ := c.raw["spec"].(map[string]any)
		spec = copyMap(spec)
		delete(spec, "volumeName")
		out["spec"] = spec
	case "ControllerRevision":
		out["revision"] = c.raw["revision"]
	}
	return fmt.Sprintf("%s %s %s", c.kind, r.names.name(c.kind, c.obj.GetName()), compactJSON(r.names.normalize(out)))
}

// namer maps real names to normalized ones: generated suffixes become "*",
// CronJob-made Jobs become "<cronjob>-@N" in order of appearance, UIDs and
// times become placeholders.
type namer struct {
	real2norm map[string]string // "Kind/name" and plain generated names
	generated []string          // real generated names, longest first for text replacement
	uids      map[string]string
	cronCount map[string]int
	final     bool // no more objects will arrive: name what is left as it is
}

func newNamer() *namer {
	return &namer{real2norm: map[string]string{}, uids: map[string]string{}, cronCount: map[string]int{}}
}

func (n *namer) learn(kind string, m metav1.Object) {
	key := kind + "/" + m.GetName()
	if _, ok := n.real2norm[key]; ok {
		return
	}
	norm := m.GetName()
	switch {
	case kind == "Job" && ownerKind(m) == "CronJob":
		cj := ownerName(m, "CronJob")
		if strings.HasPrefix(m.GetName(), cj+"-") {
			n.cronCount[cj]++
			norm = fmt.Sprintf("%s-@%d", cj, n.cronCount[cj])
		}
	case m.GetGenerateName() != "" && strings.HasPrefix(m.GetName(), m.GetGenerateName()):
		prefix := m.GetGenerateName()
		// A generateName that embeds a CronJob-made Job's name.
		if owner := ownerName(m, "Job"); owner != "" {
			jn, ok := n.real2norm["Job/"+owner]
			if !ok && !n.final {
				// The Job's own watch event has not arrived yet: learn
				// this name later (trace relearns in creation order).
				return
			}
			if ok && strings.HasPrefix(prefix, owner) {
				prefix = jn + prefix[len(owner):]
			}
		}
		norm = prefix + "*"
	}
	n.real2norm[key] = norm
	if norm != m.GetName() {
		n.real2norm[m.GetName()] = norm
		n.generated = append(n.generated, m.GetName())
		sort.Slice(n.generated, func(i, j int) bool { return len(n.generated[i]) > len(n.generated[j]) })
	}
	if uid := string(m.GetUID()); uid != "" {
		n.uids[uid] = fmt.Sprintf("<uid:%s %s>", kind, norm)
	}
}

func (n *namer) name(kind, name string) string {
	if v, ok := n.real2norm[kind+"/"+name]; ok {
		return v
	}
	if v, ok := n.real2norm[name]; ok {
		return v
	}
	return name
}

var (
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timeRE = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`)
	// Random suffixes of names that were generated outside the namespace's
	// objects (service-account token volumes).
	apiAccessRE = regexp.MustCompile(`kube-api-access-[a-z0-9]{5}`)
)

// text normalizes free text: known generated names, UIDs and times.
func (n *namer) text(s string) string {
	for _, g := range n.generated {
		s = strings.ReplaceAll(s, g, n.real2norm[g])
	}
	s = uuidRE.ReplaceAllStringFunc(s, func(u string) string {
		if v, ok := n.uids[u]; ok {
			return v
		}
		return "<uid>"
	})
	s = timeRE.ReplaceAllString(s, "<time>")
	return apiAccessRE.ReplaceAllString(s, "kube-api-access-*")
}

// normalize rewrites every string in a JSON-like value with text, and
// drops fields that differ between any two runs by nature.
func (n *namer) normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			switch k {
			case "resourceVersion", "uid", "creationTimestamp", "managedFields":
				continue
			}
			out[k] = n.normalize(val)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i := range t {
			out[i] = n.normalize(t[i])
		}
		return out
	case string:
		return n.text(t)
	default:
		return v
	}
}

func (n *namer) owners(refs []metav1.OwnerReference) string {
	var parts []string
	for _, o := range refs {
		parts = append(parts, fmt.Sprintf("%s/%s(controller=%v)", o.Kind, n.name(o.Kind, o.Name), o.Controller != nil && *o.Controller))
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, ",") + "]"
}

func ownerKind(m metav1.Object) string {
	for _, o := range m.GetOwnerReferences() {
		if o.Controller != nil && *o.Controller {
			return o.Kind
		}
	}
	return ""
}

func ownerName(m metav1.Object, kind string) string {
	for _, o := range m.GetOwnerReferences() {
		if o.Kind == kind {
			return o.Name
		}
	}
	return ""
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func compactJSON(v any) string {
	b, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) || a == nil {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sortByCreation puts the objects in the order they were created. An object
// first seen through a watch carries its creation resourceVersion; one first
// seen through a list (after a cluster restart, before the watches came back)
// carries a later one. So: creation second first, then resourceVersion, where
// an owner counts as created just before the first of its dependents when that
// is earlier than its own resourceVersion says.
func sortByCreation(objs []createdObject) {
	rv := map[types.UID]int64{}
	for _, c := range objs {
		rv[c.obj.GetUID()] = c.rv
	}
	for _, c := range objs {
		for _, o := range c.obj.GetOwnerReferences() {
			if r, ok := rv[o.UID]; ok && c.rv-1 < r {
				rv[o.UID] = c.rv - 1
			}
		}
	}
	sort.SliceStable(objs, func(i, j int) bool {
		ti, tj := objs[i].obj.GetCreationTimestamp().Unix(), objs[j].obj.GetCreationTimestamp().Unix()
		if ti != tj {
			return ti < tj
		}
		return rv[objs[i].obj.GetUID()] < rv[objs[j].obj.GetUID()]
	})
}
