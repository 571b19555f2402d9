package kubeproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	v1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/kubernetes/pkg/proxy/apis"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyconfigscheme "k8s.io/kubernetes/pkg/proxy/apis/config/scheme"
	proxyconfig "k8s.io/kubernetes/pkg/proxy/config"
	"k8s.io/kubernetes/pkg/proxy/nftables"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	"sigs.k8s.io/knftables"
)

// Available says why Services cannot be routed here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("quartet is not running as root")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return errors.New("the nft program is missing (install the nftables package, e.g. apt-get install nftables)")
	}
	return nil
}

// proxyConfig is kube-proxy's default configuration in nftables mode, with
// quartet's cluster range and NodePorts on every address of the machine.
func proxyConfig(clusterCIDR string) (*kubeproxyconfig.KubeProxyConfiguration, error) {
	versioned := &v1alpha1.KubeProxyConfiguration{}
	versioned.Mode = v1alpha1.ProxyMode(kubeproxyconfig.ProxyModeNFTables)
	proxyconfigscheme.Scheme.Default(versioned)
	internal, err := proxyconfigscheme.Scheme.ConvertToVersion(versioned, kubeproxyconfig.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	c := internal.(*kubeproxyconfig.KubeProxyConfiguration)
	c.DetectLocalMode = kubeproxyconfig.LocalModeClusterCIDR
	c.DetectLocal.ClusterCIDRs = []string{clusterCIDR}
	// Every address of the machine (the nftables proxier never serves
	// NodePorts on 127.0.0.1).
	c.NodePortAddresses = []string{"0.0.0.0/0"}
	return c, nil
}

// Start claims the machine's proxier, removes the table a crashed owner
// left, and starts the proxier; it returns once the proxier has written its
// rules for the first time. It runs until ctx is done, then removes its
// table and releases the lock (see Done).
func Start(ctx context.Context, cfg Config) (*Proxy, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if _, _, err := net.ParseCIDR(cfg.ClusterCIDR); err != nil {
		return nil, fmt.Errorf("kube-proxy: cluster CIDR %q: %w", cfg.ClusterCIDR, err)
	}
	lockPath := cfg.LockPath
	if lockPath == "" {
		lockPath = DefaultLockPath
	}
	unlock, err := claim(lockPath, cfg.Owner)
	if err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx).WithName("kube-proxy")
	ctx = klog.NewContext(ctx, logger)
	// Nobody else runs the proxier now: whatever table exists is a crashed
	// run's.
	nftables.CleanupLeftovers(ctx)

	config, err := proxyConfig(cfg.ClusterCIDR)
	if err != nil {
		unlock()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: cfg.Client.EventsV1()})
	broadcaster.StartRecordingToSink(runCtx.Done())
	recorder := broadcaster.NewRecorder(proxyconfigscheme.Scheme, "kube-proxy")
	proxier, err := nftables.NewProxier(runCtx, config, v1.IPv4Protocol, proxyutil.NewDetectLocalByCIDR(cfg.ClusterCIDR),
		"", cfg.NodeIP, recorder, nil, false)
	if err != nil {
		cancel()
		broadcaster.Shutdown()
		unlock()
		return nil, fmt.Errorf("kube-proxy: %w", err)
	}

	shutdown, synced := watch(runCtx, cfg.Client, config.ConfigSyncPeriod.Duration, proxier)
	go proxier.SyncLoop()

	p := &Proxy{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		<-runCtx.Done()
		shutdown()
		broadcaster.Shutdown()
		// The proxier has no way to stop (its loop runs forever): with its
		// watches gone nothing asks it to sync again, but a sync already
		// asked for runs within its minimum period. Remove the table after
		// that; the next sync it could run on its own is an hour away.
		time.Sleep(config.MinSyncPeriod.Duration + 500*time.Millisecond)
		nftables.CleanupLeftovers(context.WithoutCancel(ctx))
		unlock()
	}()
	if err := waitFirstSync(ctx, synced); err != nil {
		cancel()
		<-p.done
		return nil, err
	}
	context.AfterFunc(ctx, cancel)
	return p, nil
}

// watch starts the watches of kube-proxy's server, feeding proxier until
// ctx ends: Services that name no other proxy and are not headless, their
// EndpointSlices, ServiceCIDRs. It returns what stops the informers and
// what tells that the Services and EndpointSlices have synced.
func watch(ctx context.Context, client kubernetes.Interface, period time.Duration, proxier *nftables.Proxier) (func(), []cache.InformerSynced) {
	noProxyName, _ := labels.NewRequirement(apis.LabelServiceProxyName, selection.DoesNotExist, nil)
	noHeadless, _ := labels.NewRequirement(v1.IsHeadlessService, selection.DoesNotExist, nil)
	serviceFactory := informers.NewSharedInformerFactoryWithOptions(client, period,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.NewSelector().Add(*noProxyName).String()
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.clusterIP", v1.ClusterIPNone).String()
		}))
	sliceFactory := informers.NewSharedInformerFactoryWithOptions(client, period,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.NewSelector().Add(*noHeadless).String()
		}))
	cidrFactory := informers.NewSharedInformerFactory(client, period)
	serviceConfig := proxyconfig.NewServiceConfig(ctx, serviceFactory.Core().V1().Services(), period)
	serviceConfig.RegisterEventHandler(proxier)
	sliceConfig := proxyconfig.NewEndpointSliceConfig(ctx, sliceFactory.Discovery().V1().EndpointSlices(), period)
	sliceConfig.RegisterEventHandler(proxier)
	cidrConfig := proxyconfig.NewServiceCIDRConfig(ctx, cidrFactory.Networking().V1().ServiceCIDRs(), period)
	cidrConfig.RegisterEventHandler(proxier)
	go serviceConfig.Run(ctx.Done())
	go sliceConfig.Run(ctx.Done())
	go cidrConfig.Run(ctx.Done())
	serviceFactory.Start(ctx.Done())
	sliceFactory.Start(ctx.Done())
	cidrFactory.Start(ctx.Done())
	shutdown := func() {
		serviceFactory.Shutdown()
		sliceFactory.Shutdown()
		cidrFactory.Shutdown()
	}
	return shutdown, []cache.InformerSynced{
		serviceFactory.Core().V1().Services().Informer().HasSynced,
		sliceFactory.Discovery().V1().EndpointSlices().Informer().HasSynced,
	}
}

// waitFirstSync waits until the watches have synced and the proxier has
// written its table.
func waitFirstSync(ctx context.Context, synced []cache.InformerSynced) error {
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return ctx.Err()
	}
	nft, err := knftables.New(knftables.IPv4Family, tableName)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := nft.List(ctx, "chain"); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("kube-proxy wrote no rules in 30s: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// claim takes the machine-wide lock, recording owner in it; the returned
// function releases it. A held lock is a BusyError naming its owner.
func claim(path, owner string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := lockFile(path)
	if err != nil {
		if errors.Is(err, errLocked) {
			b, _ := os.ReadFile(path)
			o := strings.TrimSpace(string(b))
			if o == "" {
				o = "another cluster"
			}
			return nil, &BusyError{Owner: o}
		}
		return nil, fmt.Errorf("kube-proxy lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(owner+"\n"), 0)
	}
	return func() {
		_ = f.Truncate(0)
		_ = f.Close()
	}, nil
}
