package up

import "testing"

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int64
	}{
		{0, memoryFloor},
		{100 << 20, memoryFloor},
		{1 << 30, memoryFloor},
		{2 << 30, 3 << 30},
		{10 << 30, 15 << 30},
	} {
		if got := memoryLimit(tc.live); got != tc.want {
			t.Errorf("memoryLimit(%d MiB) = %d MiB, want %d MiB", tc.live>>20, got>>20, tc.want>>20)
		}
		if got := memoryLimit(tc.live); uint64(got) <= tc.live {
			t.Errorf("memoryLimit(%d MiB) = %d MiB: not above the live heap", tc.live>>20, got>>20)
		}
	}
}
