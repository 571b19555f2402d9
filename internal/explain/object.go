package explain

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/internal/manifest"
)

// object is one object to explain: where it came from and, for the kinds
// explain reads, its decoded form.
type object struct {
	src manifest.Object
	// typed is a *appsv1.StatefulSet, *batchv1.CronJob, ... for the kinds in
	// kinds, nil for others and for objects that failed to decode.
	typed any
	// decodeErr is why a known kind did not decode.
	decodeErr error
	// badVersion is set when a known kind has an apiVersion Kubernetes
	// v1.37 does not serve.
	badVersion bool
}

// kindInfo is what explain knows about a kind.
type kindInfo struct {
	// apiVersion is the one v1.37 serves.
	apiVersion string
	// new returns an empty object to decode into.
	new func() any
}

// kinds are the kinds explain decodes. Others get a generic line.
var kinds = map[string]kindInfo{
	"StatefulSet":           {"apps/v1", func() any { return &appsv1.StatefulSet{} }},
	"DaemonSet":             {"apps/v1", func() any { return &appsv1.DaemonSet{} }},
	"Deployment":            {"apps/v1", func() any { return &appsv1.Deployment{} }},
	"ReplicaSet":            {"apps/v1", func() any { return &appsv1.ReplicaSet{} }},
	"Job":                   {"batch/v1", func() any { return &batchv1.Job{} }},
	"CronJob":               {"batch/v1", func() any { return &batchv1.CronJob{} }},
	"Pod":                   {"v1", func() any { return &corev1.Pod{} }},
	"Service":               {"v1", func() any { return &corev1.Service{} }},
	"PersistentVolumeClaim": {"v1", func() any { return &corev1.PersistentVolumeClaim{} }},
}

// newObject decodes m when explain knows its kind.
func newObject(m manifest.Object) *object {
	o := &object{src: m}
	info, ok := kinds[m.Kind]
	if !ok {
		return o
	}
	if m.APIVersion != info.apiVersion {
		o.badVersion = true
		return o
	}
	v := info.new()
	if err := m.Decode(v); err != nil {
		o.decodeErr = err
		return o
	}
	o.typed = v
	return o
}

// fromTyped wraps an object read from a cluster.
func fromTyped(kind, apiVersion, namespace, name string, v any) *object {
	return &object{
		src:   manifest.Object{Kind: kind, APIVersion: apiVersion, Namespace: namespace, Name: name, Item: -1},
		typed: v,
	}
}

// namespace is the object's namespace, or "default" when the manifest
// leaves it to the context (as kubectl does with the default context).
func (o *object) namespace() string {
	if o.src.Namespace == "" {
		return "default"
	}
	return o.src.Namespace
}

// title is "Kind name" or "Kind namespace/name" for messages.
func (o *object) title() string {
	name := o.src.Name
	if name == "" {
		name = "(unnamed)"
	}
	if o.src.Namespace != "" {
		name = o.src.Namespace + "/" + name
	}
	return fmt.Sprintf("%s %s", o.src.Kind, name)
}
