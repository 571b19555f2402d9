package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/time/rate"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

const (
	// DefaultClass is the default StorageClass: volumes deleted with their claim.
	DefaultClass = "local-path"
	// RetainClass keeps the volume and its directory after the claim is gone.
	RetainClass = "local-path-retain"

	annDefaultClass = "storageclass.kubernetes.io/is-default-class"
	labelManagedBy  = "app.kubernetes.io/managed-by"
)

// Config is what the control plane gives the provisioner.
type Config struct {
	// Client needs: persistentvolumes get/list/watch/create/delete/patch,
	// persistentvolumeclaims get/list/watch/update, storageclasses
	// get/list/watch/create, events create/patch/update, nodes get/list/watch.
	Client kubernetes.Interface
	// Root is <data-dir>/storage: one directory per volume, named after it.
	Root string
	// Clock paces the start-up retries; nil means the real clock.
	Clock clock.WithTicker
}

// Run is New and Provisioner.Run in one.
func Run(ctx context.Context, cfg Config, ready func()) error {
	p, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	return p.Run(ctx, ready)
}

// Provisioner is the local-path provisioner, built and not yet running.
type Provisioner struct {
	cfg     Config
	root    string
	clk     clock.WithTicker
	factory informers.SharedInformerFactory
	synced  []cache.InformerSynced
	ctrl    *controller.ProvisionController
}

// New builds the provisioner. The provisioner library registers the core
// API types into client-go's shared scheme when it is built, which is a
// write to maps every client and informer of the process reads: call New
// before anything else in the process runs, and once. The library's event
// broadcaster lives until ctx is done.
func New(ctx context.Context, cfg Config) (*Provisioner, error) {
	if cfg.Client == nil {
		return nil, errors.New("storage: Config.Client is required")
	}
	if cfg.Root == "" {
		return nil, errors.New("storage: Config.Root is required")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("storage: root %s: %w", cfg.Root, err)
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithName("local-path"))
	factory := informers.NewSharedInformerFactory(cfg.Client, 0)
	claims := factory.Core().V1().PersistentVolumeClaims().Informer()
	volumes := factory.Core().V1().PersistentVolumes().Informer()
	classes := factory.Storage().V1().StorageClasses().Informer()
	nodes := factory.Core().V1().Nodes()
	prov := &provisioner{root: root, nodes: cachedNodes{lister: nodes.Lister(), client: cfg.Client}, dirs: osDirs{}}
	return &Provisioner{
		cfg:     cfg,
		root:    root,
		clk:     clk,
		factory: factory,
		synced:  []cache.InformerSynced{claims.HasSynced, volumes.HasSynced, classes.HasSynced, nodes.Informer().HasSynced},
		ctrl:    controller.NewProvisionController(ctx, cfg.Client, ProvisionerName, prov, provisionOptions(claims, volumes, classes)...),
	}, nil
}

// Run ensures the StorageClasses local-path (the default class,
// WaitForFirstConsumer, reclaim Delete) and local-path-retain (reclaim Retain)
// exist, calls ready once the provisioner's caches are synced, and provisions
// until ctx is done. It returns an error only if it cannot start. A
// Provisioner runs once.
func (p *Provisioner) Run(ctx context.Context, ready func()) error {
	if err := os.MkdirAll(p.root, 0o755); err != nil {
		return fmt.Errorf("storage: create root: %w", err)
	}
	logger := klog.FromContext(ctx).WithName("local-path")
	ctx = klog.NewContext(ctx, logger)
	if err := ensureClasses(ctx, p.cfg.Client, p.clk); err != nil {
		return err
	}
	p.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		p.factory.Shutdown()
		return fmt.Errorf("storage: caches did not sync: %w", context.Cause(ctx))
	}
	logger.Info("Local-path provisioner ready", "root", p.root)
	if ready != nil {
		ready()
	}
	p.ctrl.Run(ctx)
	p.factory.Shutdown()
	return nil
}

// provisionOptions tunes the library for one machine, where the apiserver is
// a loopback call away: nothing waits on a default meant for cloud disks.
//   - No leader election: one provisioner per quartet process.
//   - Failed claims retry after 250 ms, doubling to 5 min, forever (a claim the
//     provisioner cannot serve repeats its ProvisioningFailed event at most
//     every 5 minutes); the library's default starts at 15 s.
//   - A PV that fails to save is retried in the background from 100 ms,
//     without ever deleting the directory (the default blocks the worker for
//     10 s between five attempts, then deletes the directory).
//   - The informers are this package's own, so Run can report readiness after
//     they sync.
func provisionOptions(claims cache.SharedIndexInformer, volumes, classes cache.SharedInformer) []func(*controller.ProvisionController) error {
	retry := func(base time.Duration) workqueue.TypedRateLimiter[string] {
		return workqueue.NewTypedMaxOfRateLimiter(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](base, 5*time.Minute),
			&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(50), 500)},
		)
	}
	return []func(*controller.ProvisionController) error{
		controller.LeaderElection(false),
		controller.Threadiness(4),
		controller.RateLimiter(retry(250 * time.Millisecond)),
		controller.FailedProvisionThreshold(0),
		controller.FailedDeleteThreshold(0),
		controller.CreateProvisionedPVLimiter(retry(100 * time.Millisecond)),
		controller.ResyncPeriod(0),
		controller.ClaimsInformer(claims),
		controller.VolumesInformer(volumes),
		controller.ClassesInformer(classes),
	}
}

// storageClasses returns the classes quartet provides.
func storageClasses() []*storagev1.StorageClass {
	class := func(name string, reclaim v1.PersistentVolumeReclaimPolicy, isDefault bool) *storagev1.StorageClass {
		wait := storagev1.VolumeBindingWaitForFirstConsumer
		expand := false
		sc := &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Labels:      map[string]string{labelManagedBy: "quartet"},
				Annotations: map[string]string{},
			},
			Provisioner:          ProvisionerName,
			ReclaimPolicy:        &reclaim,
			VolumeBindingMode:    &wait,
			AllowVolumeExpansion: &expand,
		}
		if isDefault {
			sc.Annotations[annDefaultClass] = "true"
		}
		return sc
	}
	return []*storagev1.StorageClass{
		class(DefaultClass, v1.PersistentVolumeReclaimDelete, true),
		class(RetainClass, v1.PersistentVolumeReclaimRetain, false),
	}
}

// ensureClasses creates quartet's StorageClasses when they are missing and
// leaves existing ones alone: a user may have edited them (for example, taken
// away the default-class annotation). Errors the apiserver may outgrow while
// starting are retried for up to 30 s.
func ensureClasses(ctx context.Context, client kubernetes.Interface, clk clock.WithTicker) error {
	logger := klog.FromContext(ctx)
	for _, sc := range storageClasses() {
		delay := 50 * time.Millisecond
		deadline := clk.Now().Add(30 * time.Second)
		for {
			_, err := client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
			if err == nil {
				logger.Info("Created StorageClass", "storageClass", sc.Name)
				break
			}
			if apierrors.IsAlreadyExists(err) {
				break
			}
			if !retriable(err) || !clk.Now().Before(deadline) {
				return fmt.Errorf("storage: create StorageClass %s: %w", sc.Name, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("storage: create StorageClass %s: %w", sc.Name, context.Cause(ctx))
			case <-clk.After(delay):
			}
			delay = min(2*delay, 2*time.Second)
		}
	}
	return nil
}

// retriable says whether err may go away while the apiserver finishes
// starting; authorization and validation errors will not.
func retriable(err error) bool {
	permanent := apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)
	return !permanent
}
