package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"sync"

	"github.com/google/pprof/profile"

	"quartet.dev/quartet/internal/component"
)

// Goroutines of the workload controllers (quartet's in quartet mode,
// upstream's in upstream mode), and every goroutine they start, carry this
// value of the components' pprof label (component.ProfileLabel), so a CPU
// profile of the whole process tells their CPU time apart from the
// apiserver's, etcd's and the rest.
const (
	componentLabel = component.ProfileLabel
	workloadsLabel = "workload-controllers"
)

func withWorkloadLabel(ctx context.Context, f func(context.Context) error) error {
	var err error
	pprof.Do(ctx, pprof.Labels(componentLabel, workloadsLabel), func(ctx context.Context) { err = f(ctx) })
	return err
}

// CPUProfiler records a CPU profile of the process between Start and Stop.
type CPUProfiler struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

// CPUSeconds is CPU time by component.
type CPUSeconds struct {
	Total               float64 `json:"total"`
	WorkloadControllers float64 `json:"workloadControllers"`
	// Components is the whole process's CPU time by component (see
	// componentOf); it sums to Total.
	Components map[string]float64 `json:"components"`
	// WorkloadParts is WorkloadControllers by part (see workloadPart).
	WorkloadParts map[string]float64 `json:"workloadParts"`
}

// Start begins profiling; only one profile runs at a time.
func (p *CPUProfiler) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf != nil {
		return errors.New("a CPU profile is already running")
	}
	buf := &bytes.Buffer{}
	if err := pprof.StartCPUProfile(buf); err != nil {
		return err
	}
	p.buf = buf
	return nil
}

// Stop ends profiling and sums the samples by component.
func (p *CPUProfiler) Stop() (any, error) { return p.stop() }

func (p *CPUProfiler) stop() (CPUSeconds, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf == nil {
		return CPUSeconds{}, errors.New("no CPU profile is running")
	}
	pprof.StopCPUProfile()
	buf := p.buf
	p.buf = nil
	prof, err := profile.Parse(buf)
	if err != nil {
		return CPUSeconds{}, fmt.Errorf("parsing the CPU profile: %w", err)
	}
	idx := -1
	for i, st := range prof.SampleType {
		if st.Type == "cpu" {
			idx = i
		}
	}
	if idx < 0 {
		return CPUSeconds{}, errors.New("the CPU profile has no cpu samples")
	}
	return attribute(prof, idx), nil
}

// attribute sums the samples' CPU seconds (value idx) in all and by
// component.
func attribute(prof *profile.Profile, idx int) CPUSeconds {
	out := CPUSeconds{Components: map[string]float64{}, WorkloadParts: map[string]float64{}}
	for _, s := range prof.Sample {
		sec := float64(s.Value[idx]) / 1e9
		out.Total += sec
		if v := s.Label[componentLabel]; len(v) > 0 && v[0] == workloadsLabel {
			out.WorkloadControllers += sec
			out.WorkloadParts[workloadPart(s)] += sec
		}
		out.Components[componentOf(s)] += sec
	}
	return out
}
