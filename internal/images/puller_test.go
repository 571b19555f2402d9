package images

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// countingRegistry is a loopback registry that counts the GETs of each
// blob.
type countingRegistry struct {
	host  string
	mu    sync.Mutex
	blobs map[string]int
}

func newCountingRegistry(t *testing.T) *countingRegistry {
	t.Helper()
	c := &countingRegistry{blobs: map[string]int{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			c.mu.Lock()
			c.blobs[r.URL.Path]++
			c.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.host = strings.TrimPrefix(srv.URL, "http://")
	return c
}

// fetched returns how many blobs were fetched and the most times one was.
func (c *countingRegistry) fetched() (blobs, most int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.blobs {
		most = max(most, n)
	}
	return len(c.blobs), most
}

func (c *countingRegistry) reset() {
	c.mu.Lock()
	clear(c.blobs)
	c.mu.Unlock()
}

// TestPullerFetchesEachBlobOnce: pods starting at once on an image not
// yet pulled look in the store, find nothing and ask the puller — some of
// them only after the first pull has ended. Each blob is fetched once.
func TestPullerFetchesEachBlobOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("unpacking with ownership needs root")
	}
	reg := newCountingRegistry(t)
	ref := reg.host + "/app:1"
	img := image(t, layer(t, entry{name: "bin/", dir: true}, entry{name: "bin/app", body: "app"}),
		layer(t, entry{name: "data/", dir: true}, entry{name: "data/x", body: "x"}))
	push(t, ref, img)
	reg.reset()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := &Puller{Store: s}
	ctx := context.Background()

	// As the node agent does: look in the store, then ask for a pull.
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, ok, err := s.Get(ref); err != nil || ok {
				return
			}
			if _, _, err := p.PullIfMissing(ctx, ref, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if blobs, most := reg.fetched(); blobs != 3 || most != 1 {
		t.Fatalf("50 concurrent pulls: %d blobs fetched, one of them %d times (want 3, once each)", blobs, most)
	}

	// One that saw the image missing but asks after the pull ended (the
	// window between the agent's look and its pull) fetches nothing.
	if _, _, err := p.PullIfMissing(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if _, most := reg.fetched(); most != 1 {
		t.Errorf("a pull asked after another ended fetched a blob again (%d times)", most)
	}

	// A pull policy of Always asks the registry again (the manifest) but
	// fetches no blob the store holds, under this or another tag.
	push(t, reg.host+"/same:2", img)
	reg.reset()
	for _, r := range []string{ref, reg.host + "/same:2"} {
		im, _, err := p.Pull(ctx, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if im.Ref != r || len(im.Layers) != 2 || im.Entrypoint[0] != "/bin/app" {
			t.Errorf("Pull(%s) = %+v", r, im)
		}
	}
	if blobs, _ := reg.fetched(); blobs != 0 {
		t.Errorf("pulls of an image the store holds fetched %d blobs", blobs)
	}
	if list, _ := s.List(); len(list) != 2 {
		t.Errorf("store = %+v, want app:1 and same:2", list)
	}
}
