package ui

import (
	"net/http"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"
)

// yaml serves an object from the UI's caches as YAML (without
// managedFields), as `kubectl get -o yaml` would show it.
func (s *Server) yaml(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind, ns, name := q.Get("kind"), q.Get("namespace"), q.Get("name")
	inf := map[string]cache.SharedIndexInformer{
		"Pod": s.store.pods, "Node": s.store.nodes, "PersistentVolumeClaim": s.store.claims,
		"PersistentVolume": s.store.volumes, "Event": s.store.events, "StatefulSet": s.store.statefulSets,
		"DaemonSet": s.store.daemonSets, "ControllerRevision": s.store.revisions, "Job": s.store.jobs, "CronJob": s.store.cronJobs,
	}[kind]
	if inf == nil {
		http.Error(w, "no such kind in the UI: "+kind, http.StatusNotFound)
		return
	}
	key := name
	if ns != "" {
		key = ns + "/" + name
	}
	obj, ok, err := inf.GetIndexer().GetByKey(key)
	if err != nil || !ok {
		http.Error(w, kind+" "+key+" not found", http.StatusNotFound)
		return
	}
	out, err := toYAML(obj.(runtime.Object))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(out) // the client went away
}

// toYAML renders a cached object with its apiVersion and kind, which
// objects from informers lack.
func toYAML(obj runtime.Object) ([]byte, error) {
	obj = obj.DeepCopyObject()
	if gvks, _, err := scheme.Scheme.ObjectKinds(obj); err == nil && len(gvks) > 0 {
		obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	}
	return yaml.Marshal(obj)
}
