package controlplane

import (
	"testing"

	"github.com/google/pprof/profile"
)

// stack makes a sample whose stack is fns, leaf first (as pprof stores it).
func stack(labels map[string][]string, fns ...string) *profile.Sample {
	s := &profile.Sample{Label: labels}
	for _, f := range fns {
		s.Location = append(s.Location, &profile.Location{Line: []profile.Line{{Function: &profile.Function{Name: f}}}})
	}
	return s
}

func TestComponentOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sample *profile.Sample
		want   string
	}{
		{"workload label", stack(map[string][]string{componentLabel: {workloadsLabel}}, "k8s.io/client-go/tools/cache.(*Reflector).watch"), ComponentWorkloads},
		{"addon label wins over the stack", stack(map[string][]string{componentLabel: {ComponentNodes}}, "go.etcd.io/etcd/server/v3/etcdserver.(*EtcdServer).run"), ComponentNodes},
		{"an apiserver handler's etcd client call is the apiserver's",
			stack(nil, "go.etcd.io/etcd/client/v3.(*kv).Get", "k8s.io/apiserver/pkg/endpoints/handlers.GetResource", "net/http.(*conn).serve"), ComponentAPIServer},
		{"etcd's own goroutine", stack(nil, "go.etcd.io/bbolt.(*Tx).Commit", "go.etcd.io/etcd/server/v3/storage/backend.(*backend).run", "runtime.goexit"), ComponentEtcd},
		{"scheduler", stack(nil, "k8s.io/kubernetes/pkg/scheduler/framework.(*Status).Code", "k8s.io/kubernetes/pkg/scheduler.(*Scheduler).ScheduleOne"), ComponentScheduler},
		{"garbage collector", stack(nil, "runtime.scanobject", "runtime.gcBgMarkWorker"), ComponentRuntime},
		{"unknown", stack(nil, "encoding/json.Marshal", "main.main"), ComponentOther},
	} {
		if got := componentOf(tc.sample); got != tc.want {
			t.Errorf("%s: componentOf = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestAttributeSumsToTotal(t *testing.T) {
	prof := &profile.Profile{SampleType: []*profile.ValueType{{Type: "samples"}, {Type: "cpu"}}}
	for _, s := range []*profile.Sample{
		stack(map[string][]string{componentLabel: {workloadsLabel}}, "x"),
		stack(nil, "k8s.io/apiserver/pkg/server.x"),
		stack(nil, "k8s.io/apiserver/pkg/server.y"),
		stack(nil, "main.main"),
	} {
		s.Value = []int64{1, 2e7} // 20 ms
		prof.Sample = append(prof.Sample, s)
	}
	got := attribute(prof, 1)
	if got.Total != 0.08 || got.WorkloadControllers != 0.02 || got.Components[ComponentAPIServer] != 0.04 || got.Components[ComponentOther] != 0.02 ||
		got.WorkloadParts[PartOther] != 0.02 || len(got.WorkloadParts) != 1 {
		t.Errorf("attribute = %+v", got)
	}
}

func TestWorkloadPart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sample *profile.Sample
		want   string
	}{
		{"a handler, whatever it calls", stack(nil, "quartet.dev/quartet/internal/controllers/job.(*Controller).podChanged",
			"k8s.io/client-go/tools/cache.(*processorListener).run"), PartHandlers},
		{"watch decoding", stack(nil, "k8s.io/api/core/v1.(*Pod).Unmarshal", "k8s.io/apimachinery/pkg/watch.(*StreamWatcher).receive"), PartInformers},
		{"a sync's request", stack(nil, "k8s.io/api/core/v1.(*Pod).Marshal", "k8s.io/client-go/rest.(*Request).Do",
			"quartet.dev/quartet/internal/controllers/job.(*Controller).sync"), PartRequests},
		{"a sync's lister read", stack(nil, "k8s.io/client-go/tools/cache.(*cache).List",
			"k8s.io/kubernetes/pkg/controller/job.(*Controller).syncJob"), PartSyncs},
		{"the informer's cache", stack(nil, "k8s.io/client-go/tools/cache.(*DeltaFIFO).Pop"), PartInformers},
		{"unknown", stack(nil, "runtime.mallocgc"), PartOther},
	} {
		if got := workloadPart(tc.sample); got != tc.want {
			t.Errorf("%s: workloadPart = %q, want %q", tc.name, got, tc.want)
		}
	}
}
