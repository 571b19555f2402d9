package images

import (
	"os"
	"testing"
	"time"
)

// TestGC: the kubelet's thresholds (85% high, counted with the available
// percentage rounded down, 80% low), least recently used first, never an
// image in use, leased or pulled less than MinAge ago.
func TestGC(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	type img struct {
		ref      string
		size     uint64
		pulled   time.Duration // before now
		lastUsed time.Duration // before now; 0: not used since start
		inUse    bool
		leased   bool
	}
	// Capacity 1000; what the images hold comes on top of base.
	four := []img{
		{ref: "a", size: 30, pulled: time.Hour},
		{ref: "b", size: 30, pulled: 2 * time.Hour, lastUsed: time.Minute},
		{ref: "c", size: 30, pulled: 3 * time.Hour},
		{ref: "d", size: 30, pulled: 4 * time.Hour, lastUsed: 10 * time.Minute},
	}
	for _, tc := range []struct {
		name   string
		base   uint64
		images []img
		want   []string // removed, in order
	}{
		{name: "under the high threshold", base: 719, images: four}, // 839 = 83.9%: 84%
		{name: "84.5% counts as 85%", base: 725, images: four, want: []string{"c", "a"}},
		{name: "least recently used first, to 80%", base: 760, images: four, want: []string{"c", "a", "d"}}, // 880 → 850 → 820 → 790
		{name: "in use, leased or too young: kept", base: 800, images: []img{
			{ref: "used", size: 50, pulled: 5 * time.Hour, inUse: true},
			{ref: "leased", size: 50, pulled: 5 * time.Hour, leased: true},
			{ref: "young", size: 50, pulled: time.Minute},
			{ref: "old", size: 10, pulled: 3 * time.Hour},
		}, want: []string{"old"}},
		{name: "nothing to remove", base: 900, images: []img{{ref: "used", size: 50, pulled: time.Hour, inUse: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			sizes, inUse, lastUsed := map[string]uint64{}, map[string]bool{}, map[string]time.Time{}
			for i, im := range tc.images {
				digest := "sha256:" + im.ref
				layer := "sha256:layer-" + im.ref
				if err := os.MkdirAll(s.LayerDir(layer), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := s.add(Image{Ref: "example.com/" + im.ref + ":1", Digest: digest, Layers: []string{layer},
					Size: int64(im.size), Pulled: now.Add(-im.pulled)}); err != nil {
					t.Fatal(err)
				}
				sizes[digest], inUse[digest] = im.size, im.inUse
				if im.lastUsed != 0 {
					lastUsed[digest] = now.Add(-im.lastUsed)
				}
				if im.leased {
					if err := s.Lease("container-"+string(rune('a'+i)), digest); err != nil {
						t.Fatal(err)
					}
				}
			}
			usage := func() (uint64, uint64, error) {
				list, err := s.readIndex() // GC holds the store's lock

				used := tc.base
				for _, im := range list {
					used += sizes[im.Digest]
				}
				return used, 1000, err
			}
			removed, err := s.GC(GCPolicy{HighPercent: 85, LowPercent: 80, MinAge: 2 * time.Minute, Usage: usage,
				Now:      func() time.Time { return now },
				InUse:    func(d string) bool { return inUse[d] },
				LastUsed: func(d string) time.Time { return lastUsed[d] }})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, im := range removed {
				got = append(got, im.Ref[len("example.com/"):len(im.Ref)-len(":1")])
				if _, err := os.Stat(s.LayerDir(im.Layers[0])); !os.IsNotExist(err) {
					t.Errorf("%s: its layer is still there (%v)", im.Ref, err)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("removed %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("removed %v, want %v", got, tc.want)
				}
			}
			list, _ := s.List()
			if len(list) != len(tc.images)-len(tc.want) {
				t.Errorf("store holds %d images, want %d", len(list), len(tc.images)-len(tc.want))
			}
		})
	}
}
