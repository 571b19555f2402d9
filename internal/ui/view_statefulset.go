package ui

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// StatefulSetsView lists the StatefulSets and draws the selected one.
type StatefulSetsView struct {
	Items    []StatefulSetSummary `json:"items"`
	Selected *StatefulSetDetail   `json:"selected"`
}

// StatefulSetSummary is one line of the list.
type StatefulSetSummary struct {
	Ref      Ref   `json:"ref"`
	Replicas int32 `json:"replicas"`
	Ready    int32 `json:"ready"`
	Updated  int32 `json:"updated"`
}

// StatefulSetDetail is one StatefulSet: its ordinals in order, each with
// its pod and claims, the partition line, the rollout, and the claims kept
// from ordinals scaled away.
type StatefulSetDetail struct {
	Ref                 Ref    `json:"ref"`
	ServiceName         string `json:"serviceName"`
	Replicas            int32  `json:"replicas"`
	FirstOrdinal        int    `json:"firstOrdinal"`
	PodManagementPolicy string `json:"podManagementPolicy"`
	UpdateStrategy      string `json:"updateStrategy"`
	// Partition is set for RollingUpdate: ordinals at or above it are
	// updated, those below keep the current revision.
	Partition       *int32 `json:"partition,omitempty"`
	CurrentRevision string `json:"currentRevision"`
	UpdateRevision  string `json:"updateRevision"`
	// Status counts.
	ReadyReplicas     int32 `json:"readyReplicas"`
	CurrentReplicas   int32 `json:"currentReplicas"`
	UpdatedReplicas   int32 `json:"updatedReplicas"`
	AvailableReplicas int32 `json:"availableReplicas"`
	// RolloutDone is true when every ordinal in range runs the update
	// revision (below the partition: the current one) and is ready.
	RolloutDone bool `json:"rolloutDone"`
	// WhenScaled and WhenDeleted are the claim retention policy.
	WhenScaled     string    `json:"whenScaled"`
	WhenDeleted    string    `json:"whenDeleted"`
	Ordinals       []Ordinal `json:"ordinals"`
	RetainedClaims []Claim   `json:"retainedClaims"`
	Events         []Event   `json:"events"`
}

// Ordinal is one identity of the set, with or without a pod.
type Ordinal struct {
	Ordinal int    `json:"ordinal"`
	PodName string `json:"podName"`
	// InRange is false for an ordinal at or past replicas whose pod is
	// still there (being scaled away).
	InRange bool      `json:"inRange"`
	Pod     *PodBrief `json:"pod,omitempty"`
	// Revision is the pod's controller-revision-hash; Updated says it is
	// the update revision.
	Revision string  `json:"revision,omitempty"`
	Updated  bool    `json:"updated"`
	Claims   []Claim `json:"claims"`
}

// Claim is a PersistentVolumeClaim of a volumeClaimTemplate.
type Claim struct {
	Name     string `json:"name"`
	Template string `json:"template"`
	Ordinal  int    `json:"ordinal"`
	// Exists is false for a claim the set will create but has not yet.
	Exists       bool   `json:"exists"`
	Phase        string `json:"phase,omitempty"`
	Volume       string `json:"volume,omitempty"`
	StorageClass string `json:"storageClass,omitempty"`
	Capacity     string `json:"capacity,omitempty"`
}

func statefulSetsView(s *snapshot, namespace, name string) StatefulSetsView {
	sets := slices.Clone(s.StatefulSets)
	byNamespaceName(sets)
	v := StatefulSetsView{Items: []StatefulSetSummary{}}
	var selected *appsv1.StatefulSet
	for _, set := range sets {
		if namespace != "" && set.Namespace != namespace && name == "" {
			continue
		}
		v.Items = append(v.Items, StatefulSetSummary{
			Ref:      Ref{Kind: "StatefulSet", Namespace: set.Namespace, Name: set.Name},
			Replicas: replicasOf(set), Ready: set.Status.ReadyReplicas, Updated: set.Status.UpdatedReplicas,
		})
		if set.Namespace == namespace && set.Name == name {
			selected = set
		}
	}
	if selected == nil && name == "" && len(v.Items) > 0 {
		first := v.Items[0].Ref
		for _, set := range sets {
			if set.Namespace == first.Namespace && set.Name == first.Name {
				selected = set
			}
		}
	}
	if selected != nil {
		d := statefulSetDetail(s, selected)
		v.Selected = &d
	}
	return v
}

func replicasOf(set *appsv1.StatefulSet) int32 {
	if set.Spec.Replicas == nil {
		return 1
	}
	return *set.Spec.Replicas
}

// statefulSetSpec is a StatefulSet's detail from its spec and status alone.
func statefulSetSpec(set *appsv1.StatefulSet) StatefulSetDetail {
	d := StatefulSetDetail{
		Ref:                 Ref{Kind: "StatefulSet", Namespace: set.Namespace, Name: set.Name},
		ServiceName:         set.Spec.ServiceName,
		Replicas:            replicasOf(set),
		PodManagementPolicy: string(cmp.Or(set.Spec.PodManagementPolicy, appsv1.OrderedReadyPodManagement)),
		UpdateStrategy:      string(cmp.Or(set.Spec.UpdateStrategy.Type, appsv1.RollingUpdateStatefulSetStrategyType)),
		CurrentRevision:     set.Status.CurrentRevision,
		UpdateRevision:      set.Status.UpdateRevision,
		ReadyReplicas:       set.Status.ReadyReplicas,
		CurrentReplicas:     set.Status.CurrentReplicas,
		UpdatedReplicas:     set.Status.UpdatedReplicas,
		AvailableReplicas:   set.Status.AvailableReplicas,
		WhenScaled:          string(appsv1.RetainPersistentVolumeClaimRetentionPolicyType),
		WhenDeleted:         string(appsv1.RetainPersistentVolumeClaimRetentionPolicyType),
		Ordinals:            []Ordinal{},
		RetainedClaims:      []Claim{},
	}
	if set.Spec.Ordinals != nil {
		d.FirstOrdinal = int(set.Spec.Ordinals.Start)
	}
	if d.UpdateStrategy == string(appsv1.RollingUpdateStatefulSetStrategyType) {
		var p int32
		if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
			p = *ru.Partition
		}
		d.Partition = &p
	}
	if rp := set.Spec.PersistentVolumeClaimRetentionPolicy; rp != nil {
		d.WhenScaled = string(cmp.Or(rp.WhenScaled, appsv1.RetainPersistentVolumeClaimRetentionPolicyType))
		d.WhenDeleted = string(cmp.Or(rp.WhenDeleted, appsv1.RetainPersistentVolumeClaimRetentionPolicyType))
	}

	return d
}

// statefulSetDetail is the selected StatefulSet: its ordinals with their
// pods and claims, the claims it retains, its events.
func statefulSetDetail(s *snapshot, set *appsv1.StatefulSet) StatefulSetDetail {
	d := statefulSetSpec(set)
	pods := map[int]*corev1.Pod{}
	for _, p := range s.Pods {
		if p.Namespace != set.Namespace || !ownedBy(p, "StatefulSet", set.Name) {
			continue
		}
		if ord, ok := ordinalOf(set.Name, p.Name); ok {
			pods[ord] = p
		}
	}
	claims := map[string]*corev1.PersistentVolumeClaim{}
	for _, c := range s.Claims {
		if c.Namespace == set.Namespace {
			claims[c.Name] = c
		}
	}
	ords := d.addOrdinals(s, set, pods, claims)
	d.RetainedClaims = retainedClaims(s, set, claims, ords)
	d.Events = eventsAbout(s.Events, "StatefulSet", set.Namespace, set.Name, 50)
	return d
}

// addOrdinals fills d's ordinals (those in range and those with a pod) and
// whether the rollout is done; it returns the ordinals shown.
func (d *StatefulSetDetail) addOrdinals(s *snapshot, set *appsv1.StatefulSet, pods map[int]*corev1.Pod, claims map[string]*corev1.PersistentVolumeClaim) map[int]bool {
	first, last := d.FirstOrdinal, d.FirstOrdinal+int(d.Replicas)-1
	ords := map[int]bool{}
	for o := first; o <= last; o++ {
		ords[o] = true
	}
	for o := range pods {
		ords[o] = true
	}
	keys := make([]int, 0, len(ords))
	for o := range ords {
		keys = append(keys, o)
	}
	slices.Sort(keys)
	done := set.Status.ObservedGeneration >= set.Generation
	for _, o := range keys {
		ord := Ordinal{Ordinal: o, PodName: set.Name + "-" + strconv.Itoa(o), InRange: o >= first && o <= last, Claims: []Claim{}}
		if p := pods[o]; p != nil {
			b := podBrief(p)
			ord.Pod = &b
			ord.Revision = p.Labels[appsv1.ControllerRevisionHashLabelKey]
			ord.Updated = ord.Revision != "" && ord.Revision == set.Status.UpdateRevision
		}
		for _, t := range set.Spec.VolumeClaimTemplates {
			ord.Claims = append(ord.Claims, claimOf(claims, s.Volumes, t.Name, set.Name, o))
		}
		d.Ordinals = append(d.Ordinals, ord)
		if !ord.InRange || ord.Pod == nil || !ord.Pod.Ready {
			done = false
			continue
		}
		want := set.Status.UpdateRevision
		if d.Partition != nil && int32(o-first) < *d.Partition {
			want = ord.Revision // below the partition any revision stays
		}
		if ord.Revision != want {
			done = false
		}
	}
	d.RolloutDone = done

	return ords
}

// retainedClaims are the claims of the templates for ordinals with no pod
// and out of range.
func retainedClaims(s *snapshot, set *appsv1.StatefulSet, claims map[string]*corev1.PersistentVolumeClaim, ords map[int]bool) []Claim {
	retained := []Claim{}
	for _, t := range set.Spec.VolumeClaimTemplates {
		prefix := t.Name + "-" + set.Name + "-"
		for cname := range claims {
			rest, ok := strings.CutPrefix(cname, prefix)
			if !ok {
				continue
			}
			o, err := strconv.Atoi(rest)
			if err != nil || o < 0 || strconv.Itoa(o) != rest || ords[o] {
				continue
			}
			retained = append(retained, claimOf(claims, s.Volumes, t.Name, set.Name, o))
		}
	}
	slices.SortFunc(retained, func(a, b Claim) int {
		return cmp.Or(cmp.Compare(a.Ordinal, b.Ordinal), cmp.Compare(a.Template, b.Template))
	})
	return retained
}

// ordinalOf parses "<set>-<n>".
func ordinalOf(setName, podName string) (int, bool) {
	rest, ok := strings.CutPrefix(podName, setName+"-")
	if !ok {
		return 0, false
	}
	o, err := strconv.Atoi(rest)
	if err != nil || o < 0 || strconv.Itoa(o) != rest {
		return 0, false
	}
	return o, true
}

func claimOf(claims map[string]*corev1.PersistentVolumeClaim, volumes []*corev1.PersistentVolume, template, set string, ordinal int) Claim {
	c := Claim{Name: template + "-" + set + "-" + strconv.Itoa(ordinal), Template: template, Ordinal: ordinal}
	pvc := claims[c.Name]
	if pvc == nil {
		return c
	}
	c.Exists = true
	c.Phase = string(pvc.Status.Phase)
	c.Volume = pvc.Spec.VolumeName
	if pvc.Spec.StorageClassName != nil {
		c.StorageClass = *pvc.Spec.StorageClassName
	}
	if q, ok := pvc.Status.Capacity[corev1.ResourceStorage]; ok {
		c.Capacity = q.String()
	} else if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		c.Capacity = q.String()
	}
	if c.Volume != "" && c.StorageClass == "" {
		for _, pv := range volumes {
			if pv.Name == c.Volume {
				c.StorageClass = pv.Spec.StorageClassName
			}
		}
	}
	if pvc.DeletionTimestamp != nil {
		c.Phase = "Terminating"
	}
	return c
}
