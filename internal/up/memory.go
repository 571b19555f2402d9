package up

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The whole cluster is one Go process, whose heap grows to twice its live
// objects between collections (GOGC=100). On a large cluster that doubling
// is most of quartet's memory (1,000 sim nodes and 10,000 pods: about 1.1
// GB live, 2.6 GB resident). Above a floor, quartet lets the heap grow by
// half its live objects instead: a soft memory limit (the Go runtime's) of
// max(memoryFloor, 1.5 × live heap), moved as the live heap changes, so the
// collector works harder only on heaps that large and never runs back to
// back (the limit stays above the live heap). Small clusters, whose heaps
// stay far below the floor, are not affected. GOMEMLIMIT or GOGC in the
// environment leave the runtime's settings as they are.
const (
	memoryFloor      = 1536 << 20
	memoryHeadroom   = 1.5
	memoryLimitEvery = 2 * time.Second
)

// limitMemory keeps the soft memory limit until ctx ends.
func limitMemory(ctx context.Context) {
	if os.Getenv("GOMEMLIMIT") != "" || os.Getenv("GOGC") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() {
		metrics.Read(sample)
		var live uint64
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = sample[0].Value.Uint64()
		}
		debug.SetMemoryLimit(memoryLimit(live))
	}
	set()
	go func() {
		t := time.NewTicker(memoryLimitEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				debug.SetMemoryLimit(math.MaxInt64)
				return
			case <-t.C:
				set()
			}
		}
	}()
}

// memoryLimit is the soft limit for a live heap of live bytes.
func memoryLimit(live uint64) int64 {
	return max(int64(memoryFloor), int64(float64(live)*memoryHeadroom))
}
