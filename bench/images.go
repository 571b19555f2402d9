package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"quartet.dev/quartet/internal/node/runtime/runc"
	"quartet.dev/quartet/test/imagetest"
)

// Issue 14's targets for pods from images (the oci runtime): one node,
// containers from a test-built image served by an in-process registry on
// a loopback port (each scenario its own registry, so each pulls into the
// cluster's empty store). Quartet mode only: the workload controllers play
// no part. Needs root (libcontainer); the scenarios fail saying so when
// containers cannot run here.

// imageSizes are how many pods the image scenarios use: issue 14's counts,
// or small ones for the quick run.
type imageSizes struct {
	AtOnce, Cached, Memory int
}

func imageSizesFor(quick bool) imageSizes {
	if quick {
		return imageSizes{AtOnce: 10, Cached: 5, Memory: 20}
	}
	return imageSizes{AtOnce: 50, Cached: 20, Memory: 100}
}

// imageSession is the cluster the image scenarios run in.
func imageSession(quick bool) Session {
	n := imageSizesFor(quick)
	return Session{
		Name: "images (oci runtime, one node)",
		Args: []string{"--runtime=oci", "--nodes=1"},
		Scenarios: []*Scenario{
			imagePullScenario(n), imageCachedScenario(n), imageMemoryScenario(n),
		},
	}
}

const imageNote = "quartet mode only; oci runtime, loopback registry"

// imageRegistry is a scenario's registry and what it counts.
type imageRegistry struct {
	*imagetest.Registry
	mu      sync.Mutex
	fetches map[string]int // blob path → GETs
}

func newImageRegistry() (*imageRegistry, error) {
	if ok, why := runc.Available(); !ok {
		return nil, fmt.Errorf("containers cannot run here: %s", why)
	}
	r := &imageRegistry{fetches: map[string]int{}}
	r.Registry = imagetest.NewRegistry(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
				r.mu.Lock()
				r.fetches[req.URL.Path]++
				r.mu.Unlock()
			}
			h.ServeHTTP(w, req)
		})
	})
	return r, nil
}

// mostFetches is how often the most fetched blob was fetched since the
// last reset, and how many blobs were.
func (r *imageRegistry) mostFetches(reset bool) (most, blobs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.fetches {
		most = max(most, n)
	}
	blobs = len(r.fetches)
	if reset {
		clear(r.fetches)
	}
	return most, blobs
}

// pushApp pushes the test app image, with a layer of extra random bytes
// if pad > 0 (a new layer, so that the image must be fetched).
func (r *imageRegistry) pushApp(repoTag string, pad int) (string, ggcrv1.Image, error) {
	opts := imagetest.Options{}
	if pad > 0 {
		b := make([]byte, pad)
		if _, err := rand.Read(b); err != nil {
			return "", nil, err
		}
		opts.Files = map[string]imagetest.File{"pad": {Body: b}}
	}
	img, err := imagetest.AppImage(opts)
	if err != nil {
		return "", nil, err
	}
	ref, err := r.Push(repoTag, img)
	return ref, img, err
}

// imagePod is a benchmark pod (see podSpec) bound to node-1 running the
// test app with args.
func imagePod(ns, name, image string, restart corev1.RestartPolicy, args ...string) *corev1.Pod {
	spec := podSpec(restart)
	spec.NodeName = "node-1"
	spec.Containers[0].Image, spec.Containers[0].Args = image, args
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec}
}

func isSucceeded(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded }

// runPods creates the pods (16 at a time) and waits until pred holds for
// all of them; it returns how long that took.
func runPods(ctx context.Context, e *Env, pods []*corev1.Pod, what string, pred func(*corev1.Pod) bool) (time.Duration, error) {
	tr, err := trackPods(ctx, e, e.NS, map[string]func(*corev1.Pod) bool{"ok": pred})
	if err != nil {
		return 0, err
	}
	defer tr.Stop()
	start := time.Now()
	err = parallel(ctx, len(pods), 16, func(ctx context.Context, i int) error {
		_, err := e.Client.CoreV1().Pods(e.NS).Create(ctx, pods[i], metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return 0, err
	}
	at, err := tr.Wait(ctx, what, func(v View[*corev1.Pod]) bool { return v.Count("ok") >= len(pods) })
	return at.Sub(start), err
}

func deletePods(ctx context.Context, e *Env) error {
	zero := int64(0)
	return e.Client.CoreV1().Pods(e.NS).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
}

// pulledIn is the fetch time of the node's Pulled event for a pod
// ("Successfully pulled image "…" in 312ms (315ms including waiting)…").
var pulledIn = regexp.MustCompile(`^Successfully pulled image ".*" in (\S+) \(`)

func pullTime(ctx context.Context, e *Env, pod string) (time.Duration, string, error) {
	for {
		list, err := e.Client.CoreV1().Events(e.NS).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod + ",reason=Pulled"})
		if err != nil {
			return 0, "", err
		}
		for _, ev := range list.Items {
			if m := pulledIn.FindStringSubmatch(ev.Message); m != nil {
				d, err := time.ParseDuration(m[1])
				return d, ev.Message, err
			}
		}
		select { // events are recorded after the status; reading one, not timing
		case <-ctx.Done():
			return 0, "", errors.New("no Pulled event for " + pod)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// imagePullScenario: a pull of a 10 MB image (the node's Pulled event
// says how long the fetch took), then n pods at once on an image not yet
// pulled, counting the registry's fetches of each blob.
func imagePullScenario(n imageSizes) *Scenario {
	type data struct {
		reg         *imageRegistry
		big, atOnce string
		bigSize     int64
	}
	return &Scenario{
		ID: "image-pull", QuartetOnly: true, Estimate: 20 * time.Second,
		Metrics: []Metric{
			{Key: "pull10", Name: "pull a 10 MB image from a loopback registry (the node's Pulled event)", Unit: "ms",
				Targets: []Target{QuartetAtMost(1000, "< 1 s (issue 14)")}, Note: imageNote},
			{Key: "fetches", Name: fmt.Sprintf("%d pods at once on an image not yet pulled: fetches of its most fetched blob", n.AtOnce), Unit: "fetches",
				Targets: []Target{QuartetAtMost(1, "each blob fetched once (issue 14)")}, Note: imageNote},
			{Key: "atonce", Name: fmt.Sprintf("%d pods at once on an image not yet pulled: all Succeeded", n.AtOnce), Unit: "s", Note: imageNote},
		},
		Setup: func(ctx context.Context, e *Env) error {
			reg, err := newImageRegistry()
			if err != nil {
				return err
			}
			d := &data{reg: reg}
			e.SetData(d)
			// The app's layer is compressed; the pad tops the image up to
			// 10 MB (random bytes do not compress).
			_, app, err := reg.pushApp("app:0", 0)
			if err != nil {
				return err
			}
			appSize, err := compressedSize(app)
			if err != nil {
				return err
			}
			var big ggcrv1.Image
			if d.big, big, err = reg.pushApp("big:1", max(1<<20, 10<<20-int(appSize))); err != nil {
				return err
			}
			if d.bigSize, err = compressedSize(big); err != nil {
				return err
			}
			if d.atOnce, _, err = reg.pushApp("shared:1", 1<<10); err != nil {
				return err
			}
			reg.mostFetches(true)
			return nil
		},
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			d := e.Data().(*data)
			out := map[string]float64{}
			if _, err := runPods(ctx, e, []*corev1.Pod{imagePod(e.NS, "big", d.big, corev1.RestartPolicyNever, "exit", "0")}, "the 10 MB image's pod Succeeded", isSucceeded); err != nil {
				return out, err
			}
			took, msg, err := pullTime(ctx, e, "big")
			if err != nil {
				return out, err
			}
			e.Logf("%s (layers and config: %d bytes)", msg, d.bigSize)
			out["pull10"] = ms(took)

			d.reg.mostFetches(true)
			pods := make([]*corev1.Pod, n.AtOnce)
			for i := range pods {
				pods[i] = imagePod(e.NS, fmt.Sprintf("at-once-%d", i), d.atOnce, corev1.RestartPolicyNever, "exit", "0")
			}
			all, err := runPods(ctx, e, pods, "every pod Succeeded", isSucceeded)
			if err != nil {
				return out, err
			}
			most, blobs := d.reg.mostFetches(false)
			e.Logf("%d pods at once: %d blobs fetched, the most fetched %d time(s)", n.AtOnce, blobs, most)
			out["fetches"], out["atonce"] = float64(most), all.Seconds()
			return out, nil
		},
		Teardown: func(ctx context.Context, e *Env) error {
			if d, ok := e.Data().(*data); ok {
				d.reg.Close()
			}
			return deletePods(ctx, e)
		},
	}
}

func compressedSize(img ggcrv1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return size, nil
}

// warmImage pushes the app image and runs one pod of it to its end, so
// that the image is in the store and the node has started a container.
func warmImage(ctx context.Context, e *Env) (*imageRegistry, string, error) {
	reg, err := newImageRegistry()
	if err != nil {
		return nil, "", err
	}
	image, _, err := reg.pushApp("app:1", 0)
	if err == nil {
		_, err = runPods(ctx, e, []*corev1.Pod{imagePod(e.NS, "warm", image, corev1.RestartPolicyNever, "exit", "0")}, "the warm-up pod Succeeded", isSucceeded)
	}
	if err == nil {
		err = e.Client.CoreV1().Pods(e.NS).Delete(ctx, "warm", metav1.DeleteOptions{})
	}
	if err != nil {
		reg.Close()
		return nil, "", err
	}
	return reg, image, nil
}

// imageCachedScenario: pods bound to the node one after another on an
// image in the store, each timed from its creation to Running as a watch
// sees it.
func imageCachedScenario(n imageSizes) *Scenario {
	type data struct {
		reg   *imageRegistry
		image string
	}
	name := fmt.Sprintf("image pod bound→Running, cached image, %d one after another", n.Cached)
	return &Scenario{
		ID: "image-cached", QuartetOnly: true, Estimate: 15 * time.Second,
		Metrics: []Metric{
			{Key: "p50", Name: name + ": median", Unit: "ms", Targets: []Target{QuartetAtMost(300, "< 300 ms (issue 14)")}, Note: imageNote},
			{Key: "p99", Name: name + ": p99", Unit: "ms", Targets: []Target{QuartetAtMost(1000, "< 1 s (issue 14)")}, Note: imageNote},
		},
		Setup: func(ctx context.Context, e *Env) error {
			reg, image, err := warmImage(ctx, e)
			if err == nil {
				e.SetData(&data{reg, image})
			}
			return err
		},
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			d := e.Data().(*data)
			tr, err := trackPods(ctx, e, e.NS, map[string]func(*corev1.Pod) bool{"running": isRunning})
			if err != nil {
				return nil, err
			}
			defer tr.Stop()
			var lat []float64
			for i := range n.Cached {
				name := fmt.Sprintf("cached-%d", i)
				start := time.Now()
				if _, err := e.Client.CoreV1().Pods(e.NS).Create(ctx, imagePod(e.NS, name, d.image, corev1.RestartPolicyAlways, "sleep"), metav1.CreateOptions{}); err != nil {
					return nil, err
				}
				at, err := tr.Wait(ctx, name+" Running", func(v View[*corev1.Pod]) bool {
					return v.Any("running", func(p *corev1.Pod) bool { return p.Name == name })
				})
				if err != nil {
					return nil, err
				}
				lat = append(lat, ms(at.Sub(start)))
			}
			return map[string]float64{"p50": Median(lat), "p99": Percentile(lat, 99)}, nil
		},
		Teardown: func(ctx context.Context, e *Env) error {
			if d, ok := e.Data().(*data); ok {
				d.reg.Close()
			}
			return deletePods(ctx, e)
		},
	}
}

// imageMemoryScenario: quartet's resident memory with no container
// running (after a warm-up pod), then with n running image containers.
func imageMemoryScenario(n imageSizes) *Scenario {
	type data struct {
		reg   *imageRegistry
		image string
	}
	return &Scenario{
		ID: "image-memory", QuartetOnly: true, Follows: "image-cached", Estimate: 30 * time.Second,
		Metrics: []Metric{
			{Key: "per", Name: fmt.Sprintf("quartet's resident memory growth per running image container, %d containers", n.Memory), Unit: "MB",
				Targets: []Target{QuartetAtMost(2, "< 2 MB per container (issue 14)")}, Note: imageNote},
		},
		Setup: func(ctx context.Context, e *Env) error {
			// The earlier scenarios' pods gone first: their containers
			// would count in the baseline.
			for _, ns := range []string{"image-pull", "image-cached"} {
				for {
					list, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
					if err != nil {
						return err
					}
					if len(list.Items) == 0 {
						break
					}
					select { // setup, not a measurement
					case <-ctx.Done():
						return fmt.Errorf("%d pods still in %s", len(list.Items), ns)
					case <-time.After(200 * time.Millisecond):
					}
				}
			}
			reg, image, err := warmImage(ctx, e)
			if err == nil {
				e.SetData(&data{reg, image})
			}
			return err
		},
		Run: func(ctx context.Context, e *Env) (map[string]float64, error) {
			d := e.Data().(*data)
			settle := func() {
				select { // let the process settle before reading its memory
				case <-time.After(e.Size.Settle):
				case <-ctx.Done():
				}
			}
			settle()
			rss0, _, err := ProcessMemoryMB(e.Cluster.Pid())
			if err != nil {
				return nil, err
			}
			pods := make([]*corev1.Pod, n.Memory)
			for i := range pods {
				pods[i] = imagePod(e.NS, fmt.Sprintf("mem-%d", i), d.image, corev1.RestartPolicyAlways, "sleep")
			}
			if _, err := runPods(ctx, e, pods, "every pod Running", isRunning); err != nil {
				return nil, err
			}
			settle()
			rss, _, err := ProcessMemoryMB(e.Cluster.Pid())
			if err != nil {
				return nil, err
			}
			e.Logf("quartet's resident memory: %.0f MB with no container running, %.0f MB with %d", rss0, rss, n.Memory)
			return map[string]float64{"per": (rss - rss0) / float64(n.Memory)}, nil
		},
		Teardown: func(ctx context.Context, e *Env) error {
			if d, ok := e.Data().(*data); ok {
				d.reg.Close()
			}
			return deletePods(ctx, e)
		},
	}
}
