package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"sync"

	"github.com/google/pprof/profile"
)

// Goroutines of the workload controllers (quartet's in quartet mode,
// upstream's in upstream mode), and every goroutine they start, carry this
// pprof label, so a CPU profile of the whole process tells their CPU time
// apart from the apiserver's, etcd's and the rest.
const (
	componentLabel   = "quartet.component"
	workloadsLabel   = "workload-controllers"
	unlabelledBucket = "rest of the process"
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
	var out CPUSeconds
	for _, s := range prof.Sample {
		sec := float64(s.Value[idx]) / 1e9
		out.Total += sec
		if v := s.Label[componentLabel]; len(v) > 0 && v[0] == workloadsLabel {
			out.WorkloadControllers += sec
		}
	}
	return out, nil
}
