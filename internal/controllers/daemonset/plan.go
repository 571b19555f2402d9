package daemonset

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2"

	"quartet.dev/quartet/internal/controllers/kit"
)

// Event reasons. The first ones are Kubernetes' own; the last two belong to
// quartet's canary-by-node extension.
const (
	reasonSelectingAll       = "SelectingAll"
	reasonFailedDaemonPod    = "FailedDaemonPod"
	reasonSucceededDaemonPod = "SucceededDaemonPod"

	reasonRolloutPausedOutsideCanary = "RolloutPausedOutsideCanary"
	reasonInvalidRolloutNodeSelector = "InvalidRolloutNodeSelector"
)

// burstReplicas caps the pods one sync creates, and separately the pods it
// deletes; the rest wait until the writes already made are observed.
const burstReplicas = 250

// failedPodBackoff bounds the per-node delay between deleting one failed
// daemon pod and the next.
const (
	failedPodBackoffInitial = time.Second
	failedPodBackoffMax     = 15 * time.Minute
)

// observed is everything one sync decides from.
type observed struct {
	logger klog.Logger
	set    *appsv1.DaemonSet
	// nodes are all nodes of the cluster.
	nodes []*corev1.Node
	// pods are the set's pods; podsByNode are those by target node,
	// without terminal pods that are already being deleted.
	pods       []*corev1.Pod
	podsByNode map[string][]*corev1.Pod
	// hash is the controller-revision-hash of the current revision.
	hash string
	now  time.Time
	// act is false while earlier creates or deletes are still unobserved:
	// the plan then decides no pod writes (and the sync writes no status,
	// whose counts would be behind).
	act bool
	// backoff spaces out the deletion of failed pods, per node: the plan
	// reads it, the sync advances it.
	backoff *flowcontrol.Backoff
	// canary restricts a rolling update to matching nodes; nil when the set
	// does not opt in.
	canary labels.Selector
}

// counts are the status fields the plan computes.
type counts struct {
	desired, current, misscheduled, ready, updated, available, unavailable int32
}

// decision is what one sync writes.
type decision struct {
	// createOn names the nodes that get a new pod, at most burstReplicas.
	createOn []string
	// remove are the pods to delete, at most burstReplicas.
	remove []*corev1.Pod
	// backoffSteps are back-off keys of nodes whose failed pod is deleted.
	backoffSteps []string
	events       []kit.Event
	// rollout is true when createOn and remove come from the rolling update
	// rather than from placement.
	rollout bool
	// heldByCanary counts old pods a rolling update leaves alone because their
	// nodes do not match the canary selector.
	heldByCanary int
	status       counts
	// requeueAfter, when positive, is when the set should be looked at again
	// even if nothing changes: a back-off ending or a pod becoming available.
	requeueAfter time.Duration
}

func (p *decision) requeue(after time.Duration) {
	if after > 0 && (p.requeueAfter == 0 || after < p.requeueAfter) {
		p.requeueAfter = after
	}
}

// decide decides one sync of a DaemonSet: first placement (a pod on every
// node that should run one, none elsewhere, failed and excess pods removed);
// when placement has nothing to do, one step of the rolling update; and
// always the status. On error the decision still carries the status.
func decide(in *observed) (*decision, error) {
	p := &decision{}
	v := &view{observed: in, generation: templateGeneration(in.set),
		fits: make(map[string]nodeFit, len(in.nodes)), byName: make(map[string]*corev1.Node, len(in.nodes))}
	names := slices.AppendSeq(make([]string, 0, len(in.nodes)+len(in.podsByNode)), maps.Keys(in.podsByNode))
	fit := fitFor(in.logger, in.set)
	for _, n := range in.nodes {
		names = append(names, n.Name)
		v.fits[n.Name] = fit(n)
		v.byName[n.Name] = n
	}
	slices.Sort(names)
	v.names = slices.Compact(names)
	p.status = p.computeStatus(v)
	if !in.act {
		return p, nil
	}
	p.place(v)
	if len(p.createOn) == 0 && len(p.remove) == 0 && in.set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if err := p.roll(v); err != nil {
			// The status is still right; nothing is written for this step.
			p.createOn, p.remove = nil, nil
			return p, err
		}
		p.rollout = true
	}
	p.createOn = p.createOn[:min(len(p.createOn), burstReplicas)]
	p.remove = p.remove[:min(len(p.remove), burstReplicas)]
	return p, nil
}

// view is what every stage of decide reads: the observed, and what decide
// works out from it once.
type view struct {
	*observed
	// names are every node that exists or has a pod of the set, sorted so
	// that each decision is made in the same order on every sync.
	names []string
	// fits and byName hold the nodes that exist.
	fits       map[string]nodeFit
	byName     map[string]*corev1.Node
	generation *int64
}

// place is the placement half of the plan.
func (p *decision) place(v *view) {
	// With maxSurge a node may run two pods during an update.
	maxSurge, _, _ := rollingLimits(v.set, 1)
	for _, name := range v.names {
		pods := v.podsByNode[name]
		if v.byName[name] == nil {
			// The node is gone. Pods the scheduler never bound there can
			// never run and the pod garbage collector does not see them.
			for _, pod := range pods {
				if pod.Spec.NodeName == "" {
					p.remove = append(p.remove, pod)
				}
			}
			continue
		}
		f := v.fits[name]
		switch {
		case f.shouldRun && len(pods) == 0:
			p.createOn = append(p.createOn, name)
		case f.shouldContinueRunning:
			p.tidyNode(v.observed, name, pods, f.shouldRun, maxSurge > 0)
		default:
			for _, pod := range pods {
				if pod.DeletionTimestamp == nil {
					p.remove = append(p.remove, pod)
				}
			}
		}
	}
}

// tidyNode handles a node where the set may keep a pod: it replaces failed
// and succeeded pods (failed ones at most once per back-off period) and
// removes the extra pods, keeping the oldest; with surge it keeps one pod of
// each revision while the new one is not yet available.
func (p *decision) tidyNode(in *observed, node string, pods []*corev1.Pod, shouldRun, surge bool) {
	var running []*corev1.Pod
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		switch pod.Status.Phase {
		case corev1.PodFailed:
			key := backoffKey(in.set, node)
			if slices.Contains(p.backoffSteps, key) {
				// One failed pod per node per back-off period.
				p.requeue(failedPodBackoffInitial)
				continue
			}
			if in.backoff.IsInBackOffSinceUpdate(key, in.now) {
				delay := in.backoff.Get(key)
				in.logger.V(4).Info("Failed daemon pod waits for its node's back-off", "pod", klog.KObj(pod), "node", node, "delay", delay)
				p.requeue(delay)
				continue
			}
			p.backoffSteps = append(p.backoffSteps, key)
			p.events = append(p.events, kit.Event{Type: corev1.EventTypeWarning, Reason: reasonFailedDaemonPod,
				Message: fmt.Sprintf("Found failed daemon pod %s/%s on node %s, will try to kill it", pod.Namespace, pod.Name, node)})
			p.remove = append(p.remove, pod)
		case corev1.PodSucceeded:
			p.events = append(p.events, kit.Event{Type: corev1.EventTypeNormal, Reason: reasonSucceededDaemonPod,
				Message: fmt.Sprintf("Found succeeded daemon pod %s/%s on node %s, will try to delete it", pod.Namespace, pod.Name, node)})
			p.remove = append(p.remove, pod)
		default:
			running = append(running, pod)
		}
	}
	if len(running) == 0 {
		// Without surge a node whose only pod is going away waits for it to
		// be gone; with surge it gets its replacement at once.
		if surge && shouldRun {
			p.createOn = append(p.createOn, node)
		}
		return
	}
	slices.SortFunc(running, comparePodAge)
	if !surge {
		p.remove = append(p.remove, running[1:]...)
		return
	}
	// Here, as in Kubernetes, only the hash label tells new from old.
	var newPod, oldPod *corev1.Pod
	for _, pod := range running {
		current := pod.Labels[appsv1.ControllerRevisionHashLabelKey] == in.hash
		switch {
		case current && newPod == nil:
			newPod = pod
		case !current && oldPod == nil:
			oldPod = pod
		default:
			p.remove = append(p.remove, pod)
		}
	}
	if newPod == nil || oldPod == nil {
		return
	}
	switch wait := kit.AvailableIn(newPod, in.set.Spec.MinReadySeconds, in.now); {
	case !kit.IsReady(oldPod):
		in.logger.V(5).Info("Old daemon pod is not ready, removing it for its replacement", "oldPod", klog.KObj(oldPod), "newPod", klog.KObj(newPod))
		p.remove = append(p.remove, oldPod)
	case wait == 0:
		in.logger.V(5).Info("New daemon pod is available, removing the old one", "oldPod", klog.KObj(oldPod), "newPod", klog.KObj(newPod))
		p.remove = append(p.remove, oldPod)
	default:
		p.requeue(wait)
	}
}

// backoffKey identifies a node's back-off for one generation of one set, so
// a new template starts without delay.
func backoffKey(set *appsv1.DaemonSet, node string) string {
	return fmt.Sprintf("%s/%d/%s", set.UID, set.Status.ObservedGeneration, node)
}

// roll is one step of a RollingUpdate. Without maxSurge it deletes old pods
// (placement then creates their replacements) while at most maxUnavailable
// pods are unavailable; with maxSurge it first creates a new pod next to an
// old one, on at most maxSurge nodes at a time, and placement removes the old
// pod once the new one is available. Old pods that are not available are
// replaced at once in both modes: they serve nothing.
func (p *decision) roll(v *view) error {
	// The status's desired number: the nodes that should run the set.
	desired := int(p.status.desired)
	maxSurge, maxUnavailable, err := rollingLimits(v.set, desired)
	if err != nil {
		return err
	}
	if desired > 0 && maxSurge == 0 && maxUnavailable == 0 {
		// The apiserver rejects this; if it ever gets through, fall back to
		// the default rather than never progressing.
		maxUnavailable = 1
	}
	// The nodes a rolling update looks at: those with pods, and those that
	// should have one.
	var names []string
	for _, name := range v.names {
		if len(v.podsByNode[name]) > 0 || v.fits[name].shouldRun {
			names = append(names, name)
		}
	}
	if maxSurge == 0 {
		p.replaceInPlace(v, names, maxUnavailable)
	} else {
		p.surge(v, names, maxSurge, desired)
	}
	return nil
}

// inCanary reports whether the rolling update may replace the pod on node
// name: every node, unless the set names canary nodes.
func (v *view) inCanary(name string) bool {
	var nodeLabels labels.Set
	if n := v.byName[name]; n != nil {
		nodeLabels = n.Labels
	}
	return v.canary == nil || v.canary.Matches(nodeLabels)
}

// surge is the rolling update with maxSurge.
func (p *decision) surge(v *view, names []string, maxSurge, desired int) {
	minReady := v.set.Spec.MinReadySeconds
	surged, available := 0, 0
	var surgeCandidates []string
	var leaving []*corev1.Pod
	for _, name := range names {
		newPod, oldPod, ok := splitByRevision(v.podsByNode[name], v.hash, v.generation)
		if !ok {
			// Placement prunes the extra pods first; count the node as surged.
			surged++
			continue
		}
		if current := cmp.Or(oldPod, newPod); current != nil && kit.IsAvailable(current, minReady, v.now) {
			available++
		}
		switch {
		case oldPod == nil:
			// Up to date, or empty: placement's business.
		case newPod == nil:
			if v.byName[name] == nil {
				v.logger.V(4).Info("Old daemon pod is on a node that no longer exists; leaving it to the pod garbage collector", "pod", klog.KObj(oldPod), "node", name)
				continue
			}
			oldAvailable := kit.IsAvailable(oldPod, minReady, v.now)
			switch {
			case !v.fits[name].shouldRun && !oldAvailable:
				p.remove = append(p.remove, oldPod)
			case !v.fits[name].shouldRun:
				leaving = append(leaving, oldPod)
			case !v.inCanary(name):
				p.heldByCanary++
			case !oldAvailable:
				p.createOn = append(p.createOn, name)
			case surged < maxSurge:
				surgeCandidates = append(surgeCandidates, name)
			}
		default:
			if wait := kit.AvailableIn(newPod, minReady, v.now); wait != 0 {
				surged++
				p.requeue(wait)
				continue
			}
			p.remove = append(p.remove, oldPod)
		}
	}
	// Pods on nodes the set no longer wants go only once as many pods are
	// available elsewhere as the set wants: with surge, the owner asked for
	// no loss of availability.
	if extra := available - desired; extra > 0 {
		p.remove = append(p.remove, leaving[:min(extra, len(leaving))]...)
	}
	room := max(0, min(maxSurge-surged, len(surgeCandidates)))
	p.createOn = append(p.createOn, surgeCandidates[:room]...)
}

// replaceInPlace is the rolling update without surge.
func (p *decision) replaceInPlace(v *view, names []string, maxUnavailable int) {
	minReady := v.set.Spec.MinReadySeconds
	unavailable := 0
	var candidates []*corev1.Pod
	for _, name := range names {
		newPod, oldPod, ok := splitByRevision(v.podsByNode[name], v.hash, v.generation)
		switch {
		case !ok, newPod == nil && oldPod == nil, newPod != nil && oldPod != nil:
			// Placement has work here first; the node counts as unavailable.
			unavailable++
		case newPod != nil:
			if wait := kit.AvailableIn(newPod, minReady, v.now); wait != 0 {
				unavailable++
				p.requeue(wait)
			}
		default:
			oldAvailable := kit.IsAvailable(oldPod, minReady, v.now)
			switch {
			case !v.inCanary(name):
				p.heldByCanary++
				if !oldAvailable {
					unavailable++
				}
			case !oldAvailable:
				p.remove = append(p.remove, oldPod)
				unavailable++
			case unavailable < maxUnavailable:
				candidates = append(candidates, oldPod)
			}
		}
	}
	room := max(0, min(maxUnavailable-unavailable, len(candidates)))
	p.remove = append(p.remove, candidates[:room]...)
}

// splitByRevision returns a node's live new and old pod; ok is false when
// the node has more than one of either.
func splitByRevision(pods []*corev1.Pod, hash string, generation *int64) (newPod, oldPod *corev1.Pod, ok bool) {
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		slot := &oldPod
		if isUpdated(pod, hash, generation) {
			slot = &newPod
		}
		if *slot != nil {
			return nil, nil, false
		}
		*slot = pod
	}
	return newPod, oldPod, true
}

// computeStatus counts, over the nodes, what the status reports. A node's
// state is its oldest pod's.
func (p *decision) computeStatus(v *view) counts {
	var c counts
	minReady := v.set.Spec.MinReadySeconds
	for _, name := range v.names {
		f, exists := v.fits[name]
		if !exists {
			continue
		}
		pods := v.podsByNode[name]
		if !f.shouldRun {
			if len(pods) > 0 {
				c.misscheduled++
			}
			continue
		}
		c.desired++
		if len(pods) == 0 {
			continue
		}
		c.current++
		slices.SortFunc(pods, comparePodAge)
		pod := pods[0]
		if kit.IsReady(pod) {
			c.ready++
			if wait := kit.AvailableIn(pod, minReady, v.now); wait == 0 {
				c.available++
			} else {
				p.requeue(wait)
			}
		}
		if isUpdated(pod, v.hash, v.generation) {
			c.updated++
		}
	}
	c.unavailable = c.desired - c.available
	return c
}

// addCreated counts the pods this sync created on nodes that had none: each
// is its node's pod from now on, scheduled and of the current revision, as
// the status computed once the cache shows it will say. Writing that status
// now saves writing the older counts first (upstream, which counts from
// the cache after its creates, usually finds them there too).
func (c *counts) addCreated(in *observed, nodes []string) {
	for _, node := range nodes {
		if len(in.podsByNode[node]) == 0 {
			c.current++
			c.updated++
		}
	}
}

// rollingLimits resolves maxSurge and maxUnavailable against the number of
// nodes that should run the set (percentages round up); both are 0 unless
// the set rolls, maxSurge also unless it is set.
func rollingLimits(set *appsv1.DaemonSet, desired int) (maxSurge, maxUnavailable int, err error) {
	ru := set.Spec.UpdateStrategy.RollingUpdate
	if set.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil {
		return 0, 0, nil
	}
	if ru.MaxSurge != nil {
		if maxSurge, err = intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, desired, true); err != nil {
			return 0, 0, fmt.Errorf("invalid maxSurge: %w", err)
		}
	}
	if maxUnavailable, err = intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, desired, true); err != nil {
		return maxSurge, 0, fmt.Errorf("invalid maxUnavailable: %w", err)
	}
	return maxSurge, maxUnavailable, nil
}
