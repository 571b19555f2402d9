package ui

import (
	"encoding/json"
	"net/http"
	"time"

	"quartet.dev/quartet/internal/explain"
)

// explainObject serves `quartet explain --live`'s reading of one object:
// the chapter's decision tree for it, its findings and, when it makes no
// progress, why.
func (s *Server) explainObject(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind, ns, name := q.Get("kind"), q.Get("namespace"), q.Get("name")
	if !explainable[kind] {
		http.Error(w, "quartet explain reads StatefulSets, DaemonSets, Jobs, CronJobs, Deployments and Pods, not "+kind, http.StatusNotFound)
		return
	}
	report, err := explain.Live(r.Context(), s.cfg.Client, ns, explain.Options{Now: time.Now(), Local: s.cfg.ControllerZone})
	if err != nil {
		http.Error(w, "quartet explain: "+err.Error(), http.StatusBadGateway)
		return
	}
	for _, e := range report.Objects {
		if e.Kind == kind && e.Namespace == ns && e.Name == name {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_ = json.NewEncoder(w).Encode(e) // the client went away
			return
		}
	}
	http.Error(w, kind+" "+ns+"/"+name+" not found", http.StatusNotFound)
}

var explainable = map[string]bool{"StatefulSet": true, "DaemonSet": true, "Job": true, "CronJob": true, "Deployment": true, "Pod": true}
