package process

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"quartet.dev/quartet/internal/datadir"
)

// ImageEntry says what the process runtime runs for an image, in the image
// config's own terms: a container's command replaces Entrypoint, its args
// replace Cmd.
type ImageEntry struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
}

// DefaultImages is the built-in image map. Each entry runs the host's own
// program, not the image's: busybox and alpine get the host's sh (not
// busybox's applets), ubuntu and debian the host's bash, pause a sleep. No
// image is mapped to a stand-in that only pretends to be it (there is no
// fake nginx): an image that is not mapped runs only when the container gives
// a command, or simulated with --runtime auto.
func DefaultImages() map[string]ImageEntry {
	return map[string]ImageEntry{
		"busybox":               {Cmd: []string{"sh"}},
		"alpine":                {Cmd: []string{"/bin/sh"}},
		"ubuntu":                {Cmd: []string{"/bin/bash"}},
		"debian":                {Cmd: []string{"bash"}},
		"registry.k8s.io/pause": {Entrypoint: []string{"sleep", "infinity"}},
		"k8s.gcr.io/pause":      {Entrypoint: []string{"sleep", "infinity"}},
		"registry.k8s.io/e2e-test-images/busybox": {Cmd: []string{"sh"}},
	}
}

// NormalizeImage reduces an image reference to the key the image map uses:
// the repository without the docker.io/library prefixes, plus ":tag" when
// withTag is true and the reference has a tag. Digests are dropped.
func NormalizeImage(image string, withTag bool) string {
	ref := strings.TrimSpace(image)
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	tag := ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		tag = ref[i+1:]
		ref = ref[:i]
	}
	for _, p := range []string{"docker.io/", "index.docker.io/", "registry-1.docker.io/"} {
		ref = strings.TrimPrefix(ref, p)
	}
	ref = strings.TrimPrefix(ref, "library/")
	if withTag && tag != "" {
		return ref + ":" + tag
	}
	return ref
}

// Images is the image map: the defaults overlaid with <data-dir>/images.yaml,
// which is re-read when it changes.
type Images struct {
	path string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	entries map[string]ImageEntry
	err     error
}

// NewImages returns the map backed by the file at path ("" for defaults only).
func NewImages(path string) *Images {
	im := &Images{path: path}
	im.entries = normalizeKeys(DefaultImages())
	return im
}

func normalizeKeys(in map[string]ImageEntry) map[string]ImageEntry {
	out := make(map[string]ImageEntry, len(in))
	for k, v := range in {
		out[NormalizeImage(k, true)] = v
	}
	return out
}

// reload re-reads the file when its size or modification time changed. A
// file that does not parse keeps the previous map and is reported by Err.
func (im *Images) reload() {
	if im.path == "" {
		return
	}
	fi, err := os.Stat(im.path)
	if err != nil {
		if os.IsNotExist(err) && !im.modTime.IsZero() {
			im.entries = normalizeKeys(DefaultImages())
			im.modTime, im.size, im.err = time.Time{}, 0, nil
		}
		return
	}
	if fi.ModTime().Equal(im.modTime) && fi.Size() == im.size {
		return
	}
	im.modTime, im.size = fi.ModTime(), fi.Size()
	// A file another user could have written would let that user choose
	// what runs (as root, when quartet is): keep the previous map.
	if err := datadir.CheckOwned(im.path); err != nil {
		im.err = err
		return
	}
	data, err := os.ReadFile(im.path)
	if err != nil {
		im.err = err
		return
	}
	var file map[string]ImageEntry
	if err := yaml.UnmarshalStrict(data, &file); err != nil {
		im.err = fmt.Errorf("%s: %w", im.path, err)
		return
	}
	entries := DefaultImages()
	for k, v := range file {
		entries[k] = v
	}
	im.entries = normalizeKeys(entries)
	im.err = nil
}

// Lookup returns the entry for image: an entry for "name:tag" wins over one
// for "name".
func (im *Images) Lookup(image string) (ImageEntry, bool) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.reload()
	if e, ok := im.entries[NormalizeImage(image, true)]; ok {
		return e, true
	}
	e, ok := im.entries[NormalizeImage(image, false)]
	return e, ok
}

// Err reports why the last change of the file was not applied.
func (im *Images) Err() error {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.reload()
	return im.err
}

// Names lists the mapped images, for messages.
func (im *Images) Names() []string {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.reload()
	names := make([]string, 0, len(im.entries))
	for k := range im.entries {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
