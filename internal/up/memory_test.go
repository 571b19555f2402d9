package up

import "testing"

func TestMemoryLimit(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name       string
		live, held uint64
		rate       float64 // bytes a second
		want       int64
	}{
		{"empty", 0, 0, 0, memoryFloor},
		{"small cluster", 100 * mb, 50 * mb, 50 * mb, memoryFloor},
		{"1 GiB live, quiet: the floor", 1024 * mb, 0, 0, memoryFloor},
		{"2 GiB live, quiet: half of it", 2048 * mb, 0, 0, 3072 * mb},
		// A fragmented heap: the room in partly filled spans is added, so
		// half the live heap can still be allocated before a collection.
		{"held counts on top", 2048 * mb, 1024 * mb, 0, 4096 * mb},
		{"allocating 300 MB/s: 4 s of it", 2048 * mb, 0, 300 * mb, (2048 + 1200) * mb},
		{"allocating 1 GB/s: at most the live heap", 2048 * mb, 100 * mb, 1024 * mb, (2048*2 + 100) * mb},
		{"10 GiB live, quiet", 10240 * mb, 0, 0, 15360 * mb},
	} {
		got := memoryLimit(tc.live, tc.held, tc.rate)
		if got != tc.want {
			t.Errorf("%s: memoryLimit(%d MiB, %d MiB, %.0f MiB/s) = %d MiB, want %d MiB",
				tc.name, tc.live/mb, tc.held/mb, tc.rate/mb, got/mb, tc.want/mb)
		}
		if room := got - int64(tc.live+tc.held); room < int64(tc.live/2) {
			t.Errorf("%s: room to allocate %d MiB, under half the live heap", tc.name, room/mb)
		}
	}
}
