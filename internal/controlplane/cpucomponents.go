package controlplane

import (
	"strings"

	"github.com/google/pprof/profile"
)

// Components a CPU profile's samples are attributed to: the names of the
// components of `quartet up` (component.ProfileLabel's values), and three
// of no component.
const (
	ComponentWorkloads = "workload controllers"
	ComponentAPIServer = "kube-apiserver"
	ComponentEtcd      = "etcd"
	ComponentScheduler = "kube-scheduler"
	ComponentKCM       = "kube-controller-manager"
	ComponentNodes     = "nodes"
	ComponentDNS       = "cluster DNS"
	ComponentStorage   = "local-path storage"
	ComponentNetwork   = "network (kube-proxy, pod network)"
	ComponentRuntime   = "Go runtime (GC)"
	ComponentOther     = "rest of the process"
)

// stackComponents maps a function's package path prefix to the component
// whose code it is, for samples without a label. The first match from the
// stack's root (the goroutine's start) wins: an apiserver handler's etcd
// client call is the apiserver's, an etcd server's goroutine is etcd's.
var stackComponents = []struct{ prefix, component string }{
	{"go.etcd.io/etcd/server/", ComponentEtcd},
	{"go.etcd.io/etcd/api/", ComponentEtcd},
	{"go.etcd.io/etcd/pkg/", ComponentEtcd},
	{"go.etcd.io/raft/", ComponentEtcd},
	{"go.etcd.io/bbolt", ComponentEtcd},
	{"go.etcd.io/etcd/client/", ComponentAPIServer},
	{"k8s.io/apiserver/", ComponentAPIServer},
	{"k8s.io/kube-aggregator/", ComponentAPIServer},
	{"k8s.io/apiextensions-apiserver/", ComponentAPIServer},
	{"k8s.io/kubernetes/pkg/controlplane", ComponentAPIServer},
	{"k8s.io/kubernetes/pkg/registry/", ComponentAPIServer},
	{"k8s.io/kubernetes/plugin/pkg/admission", ComponentAPIServer},
	{"k8s.io/kubernetes/pkg/kubeapiserver", ComponentAPIServer},
	{"k8s.io/kubernetes/pkg/scheduler", ComponentScheduler},
	{"k8s.io/kubernetes/cmd/kube-scheduler", ComponentScheduler},
	{"k8s.io/kubernetes/pkg/controller/", ComponentKCM},
	{"k8s.io/kubernetes/cmd/kube-controller-manager", ComponentKCM},
	{"k8s.io/controller-manager/", ComponentKCM},
	{"quartet.dev/quartet/internal/controllers/", ComponentWorkloads},
	{"quartet.dev/quartet/internal/node/sandbox", ComponentNetwork},
	{"quartet.dev/quartet/internal/kubeproxy", ComponentNetwork},
	{"k8s.io/kubernetes/pkg/proxy", ComponentNetwork},
	{"quartet.dev/quartet/internal/node", ComponentNodes},
	{"quartet.dev/quartet/internal/dns", ComponentDNS},
	{"github.com/miekg/dns", ComponentDNS},
	{"quartet.dev/quartet/internal/storage", ComponentStorage},
	{"runtime.gcBgMarkWorker", ComponentRuntime},
	{"runtime.bgsweep", ComponentRuntime},
	{"runtime.bgscavenge", ComponentRuntime},
	{"runtime.mcall", ComponentRuntime},
	{"runtime.morestack", ComponentRuntime},
	{"runtime.systemstack", ComponentRuntime},
	{"runtime._System", ComponentRuntime},
	{"runtime._GC", ComponentRuntime},
	{"runtime._ExternalCode", ComponentRuntime},
}

// componentOf attributes one sample: its component label, else the first
// function from the stack's root whose package names a component.
func componentOf(s *profile.Sample) string {
	if v := s.Label[componentLabel]; len(v) > 0 {
		if v[0] == workloadsLabel {
			return ComponentWorkloads
		}
		return v[0]
	}
	for i := len(s.Location) - 1; i >= 0; i-- {
		lines := s.Location[i].Line
		for j := len(lines) - 1; j >= 0; j-- {
			if lines[j].Function == nil {
				continue
			}
			name := lines[j].Function.Name
			for _, sc := range stackComponents {
				if strings.HasPrefix(name, sc.prefix) {
					return sc.component
				}
			}
		}
	}
	return ComponentOther
}

// Parts of the workload controllers' CPU time, told apart by stack (see
// workloadPart): the same client-go machinery runs in both modes, so a
// difference between the modes outside "syncs" is the number of objects
// and events, not the controllers' own code.
const (
	PartHandlers  = "event handlers"
	PartRequests  = "API requests (encode, send, decode)"
	PartInformers = "informers (watch decoding, cache)"
	PartSyncs     = "syncs (the controllers' own code)"
	PartOther     = "other"
)

// workloadParts maps a function name's prefix to a part; the first entry
// that any function of the stack matches wins, so that a sync's request is
// a request, a sync's lister read is the sync's, and a handler is a
// handler whatever it calls.
var workloadParts = []struct{ prefix, part string }{
	{"k8s.io/client-go/tools/cache.(*processorListener).run", PartHandlers},
	{"k8s.io/apimachinery/pkg/watch.(*StreamWatcher)", PartInformers},
	{"k8s.io/client-go/rest.", PartRequests},
	{"net/http.", PartRequests},
	{"golang.org/x/net/http2.", PartRequests},
	{"quartet.dev/quartet/internal/controllers/", PartSyncs},
	{"k8s.io/kubernetes/pkg/controller/", PartSyncs},
	{"k8s.io/client-go/tools/cache.", PartInformers},
}

// workloadPart attributes one of the workload controllers' samples to a part.
func workloadPart(s *profile.Sample) string {
	for _, wp := range workloadParts {
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil && strings.HasPrefix(l.Function.Name, wp.prefix) {
					return wp.part
				}
			}
		}
	}
	return PartOther
}
