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
// GB live, 2.6 GB resident). Above a floor, quartet keeps a soft memory
// limit (the Go runtime's) instead, moved every memoryLimitEvery:
//
//	max(memoryFloor, held + live + room)
//
// where live is the live heap, held what the runtime keeps besides objects
// and free pages (the unused room in partly filled spans, stacks, its own
// metadata), and room what may be allocated before the next collection:
// what the process allocates in memoryGCEvery at its current rate, at least
// half the live heap and at most all of it. A quiet cluster, which
// allocates little, gets the tight limit (a heap of 1.5 times its live
// objects); a busy one gets up to GOGC=100's room, so that its collector
// does not run back to back. Measured deleting a Job of 20,000 Pending
// pods: 214 s with a limit of 1.5 times the live heap that did not count
// held (the runtime's room then shrank to a fraction of the live heap), 88
// s under GOGC=100, 111 s with this one. Small clusters, whose heaps stay
// below the floor, are not affected. GOMEMLIMIT or GOGC in the environment
// leave the runtime's settings as they are.
const (
	memoryFloor      = 1536 << 20
	memoryMinRoom    = 0.5
	memoryMaxRoom    = 1.0
	memoryGCEvery    = 4 * time.Second
	memoryLimitEvery = 2 * time.Second
)

// memorySamples are the runtime metrics the limit is computed from.
var memorySamples = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/gc/heap/allocs:bytes",
}

// limitMemory keeps the soft memory limit until ctx ends.
func limitMemory(ctx context.Context) {
	if os.Getenv("GOMEMLIMIT") != "" || os.Getenv("GOGC") != "" {
		return
	}
	samples := make([]metrics.Sample, len(memorySamples))
	for i, name := range memorySamples {
		samples[i].Name = name
	}
	var lastAllocs uint64
	var lastAt time.Time
	set := func() {
		now := time.Now()
		metrics.Read(samples)
		v := make([]uint64, len(samples))
		for i, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				v[i] = s.Value.Uint64()
			}
		}
		live, total, objects, free, released, allocs := v[0], v[1], v[2], v[3], v[4], v[5]
		var held uint64
		if total > objects+free+released {
			held = total - objects - free - released
		}
		var rate float64 // bytes a second since the last sample
		if !lastAt.IsZero() && allocs > lastAllocs {
			rate = float64(allocs-lastAllocs) / now.Sub(lastAt).Seconds()
		}
		lastAllocs, lastAt = allocs, now
		debug.SetMemoryLimit(memoryLimit(live, held, rate))
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

// memoryLimit is the soft limit for a live heap of live bytes when the
// runtime holds held bytes besides objects and free pages and the process
// allocates rate bytes a second.
func memoryLimit(live, held uint64, rate float64) int64 {
	room := min(max(rate*memoryGCEvery.Seconds(), memoryMinRoom*float64(live)), memoryMaxRoom*float64(live))
	return max(int64(memoryFloor), int64(held+live)+int64(room))
}
