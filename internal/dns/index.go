package dns

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// index holds the records of every Service, keyed by "<service>.<ns>" (the
// two labels in front of ".svc.<zone>" in a query), the reverse records by
// address, and the set of namespaces. Queries take the read lock only.
type index struct {
	zone string

	mu         sync.RWMutex
	services   map[string]*serviceRecords
	reverse    map[netip.Addr]map[string][]string // address -> service key -> names
	namespaces map[string]bool
	// serial is the SOA serial: it grows with every change.
	serial atomic.Uint32
}

func newIndex(zone string, serial uint32) *index {
	ix := &index{
		zone:       zone,
		services:   map[string]*serviceRecords{},
		reverse:    map[netip.Addr]map[string][]string{},
		namespaces: map[string]bool{},
	}
	ix.serial.Store(serial)
	return ix
}

func serviceKey(namespace, name string) string { return name + "." + namespace }

// setService replaces the records of one Service; nil removes them.
func (ix *index) setService(key string, rec *serviceRecords) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old := ix.services[key]; old != nil {
		for ip := range old.ptr {
			if m := ix.reverse[ip]; m != nil {
				delete(m, key)
				if len(m) == 0 {
					delete(ix.reverse, ip)
				}
			}
		}
	}
	if rec == nil {
		delete(ix.services, key)
	} else {
		ix.services[key] = rec
		for ip, names := range rec.ptr {
			m := ix.reverse[ip]
			if m == nil {
				m = map[string][]string{}
				ix.reverse[ip] = m
			}
			m[key] = names
		}
	}
	ix.serial.Add(1)
}

func (ix *index) setNamespace(name string, exists bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if exists {
		ix.namespaces[name] = true
	} else {
		delete(ix.namespaces, name)
	}
	ix.serial.Add(1)
}

// byServiceName indexes EndpointSlices by the Service they belong to.
const byServiceName = "serviceName"

// feed keeps an index current from informers.
type feed struct {
	ix       *index
	services corelisters.ServiceLister
	slices   cache.Indexer

	// mu serializes rebuilds: a rebuild reads the listers and then writes the
	// index, and two rebuilds of one Service must not interleave.
	mu sync.Mutex
}

// watch registers informers on factory that keep ix current and returns the
// functions that report when each handler has seen the initial list.
func watch(ctx context.Context, factory informers.SharedInformerFactory, ix *index) ([]cache.InformerSynced, error) {
	logger := klog.FromContext(ctx)
	svcInformer := factory.Core().V1().Services()
	sliceInformer := factory.Discovery().V1().EndpointSlices()
	nsInformer := factory.Core().V1().Namespaces()

	if err := sliceInformer.Informer().AddIndexers(cache.Indexers{byServiceName: func(obj any) ([]string, error) {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			return nil, nil
		}
		name := s.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			return nil, nil
		}
		return []string{s.Namespace + "/" + name}, nil
	}}); err != nil {
		return nil, err
	}
	f := &feed{ix: ix, services: svcInformer.Lister(), slices: sliceInformer.Informer().GetIndexer()}

	svcReg, err := svcInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { f.serviceChanged(logger, obj) },
		UpdateFunc: func(_, obj any) { f.serviceChanged(logger, obj) },
		DeleteFunc: func(obj any) { f.serviceChanged(logger, obj) },
	})
	if err != nil {
		return nil, err
	}
	sliceReg, err := sliceInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { f.sliceChanged(logger, obj) },
		UpdateFunc: func(old, obj any) {
			f.sliceChanged(logger, old)
			f.sliceChanged(logger, obj)
		},
		DeleteFunc: func(obj any) { f.sliceChanged(logger, obj) },
	})
	if err != nil {
		return nil, err
	}
	nsReg, err := nsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { f.namespaceChanged(obj, true) },
		UpdateFunc: func(_, obj any) { f.namespaceChanged(obj, true) },
		DeleteFunc: func(obj any) { f.namespaceChanged(obj, false) },
	})
	if err != nil {
		return nil, err
	}
	return []cache.InformerSynced{svcReg.HasSynced, sliceReg.HasSynced, nsReg.HasSynced}, nil
}

func (f *feed) serviceChanged(logger klog.Logger, obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		logger.Error(err, "Cannot key Service")
		return
	}
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	f.rebuild(logger, ns, name)
}

func (f *feed) sliceChanged(logger klog.Logger, obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
		f.rebuild(logger, s.Namespace, name)
	}
}

func (f *feed) namespaceChanged(obj any, exists bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if ns, ok := obj.(*v1.Namespace); ok {
		f.ix.setNamespace(ns.Name, exists)
	}
}

// rebuild recomputes one Service's records from the listers.
func (f *feed) rebuild(logger klog.Logger, namespace, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := serviceKey(namespace, name)
	svc, err := f.services.Services(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		f.ix.setService(key, nil)
		return
	}
	if err != nil {
		logger.Error(err, "Cannot read Service", "service", klog.KRef(namespace, name))
		return
	}
	objs, err := f.slices.ByIndex(byServiceName, namespace+"/"+name)
	if err != nil {
		logger.Error(err, "Cannot read EndpointSlices", "service", klog.KObj(svc))
		return
	}
	slices := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if s, ok := o.(*discoveryv1.EndpointSlice); ok {
			slices = append(slices, s)
		}
	}
	f.ix.setService(key, buildRecords(svc, slices, f.ix.zone))
}

// trim drops what DNS never reads from cached objects, to keep the caches
// small in clusters with many Services and endpoints.
func trim(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		if _, isSlice := obj.(*discoveryv1.EndpointSlice); isSlice {
			m.SetAnnotations(nil)
		}
	}
	return obj, nil
}

// newFactory returns the informer factory DNS watches through.
func newFactory(client kubernetes.Interface) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(trim))
}

// errNotSynced is returned by Start when the caches never sync.
func errNotSynced(ctx context.Context) error {
	return fmt.Errorf("dns: caches did not sync: %w", context.Cause(ctx))
}
