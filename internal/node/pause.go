package node

import (
	"context"
	"path/filepath"
	"syscall"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"quartet.dev/quartet/internal/node/runtime"
	"quartet.dev/quartet/internal/node/runtime/runc"
)

// joinPod makes an isolated container join its pod's namespaces, as the
// kubelet's pod sandbox does: IPC and UTS (the pod's hostname; the host's
// for hostNetwork pods) and /dev/shm always, PID with
// shareProcessNamespace. A pause container holds them (runc.Pause); the
// pod's first isolated container starts it, and so does the next start
// after it has ended.
func (h *Host) joinPod(ctx context.Context, rec *podRecord, pod *v1.Pod, spec *runtime.ContainerSpec) error {
	rec.mu.Lock()
	p := rec.pause
	rec.mu.Unlock()
	if p != nil {
		if _, ended := p.Exited(); ended {
			p = nil
		}
	}
	if p == nil {
		var err error
		p, err = h.containers.StartPause(newContainerID(), spec.Hostname, filepath.Join(rec.dir, "pause"))
		if err != nil {
			return err
		}
		rec.mu.Lock()
		rec.pause = p
		rec.mu.Unlock()
		go h.watchPause(klog.FromContext(ctx), rec, p)
	}
	spec.IPCNamespacePath = p.Namespace("ipc")
	if spec.Hostname != "" {
		spec.UTSNamespacePath = p.Namespace("uts")
	}
	if share := pod.Spec.ShareProcessNamespace; share != nil && *share {
		spec.PIDNamespacePath = p.Namespace("pid")
	}
	spec.ShmPath = p.Shm()
	return nil
}

// watchPause waits for a pause to end. One that ends while it is still
// the pod's (killed from outside: teardown forgets it first) leaves the
// running containers in namespaces no new container can join, so they are
// killed and restart by their policy with a new pause, as the kubelet
// re-creates a pod sandbox that died (in a shared PID namespace the kernel
// has killed them already).
func (h *Host) watchPause(logger klog.Logger, rec *podRecord, p *runc.Pause) {
	<-p.Done()
	rec.mu.Lock()
	current := rec.pause == p
	if current {
		rec.pause = nil
		for _, inst := range rec.instances {
			if kind := runtime.KindOf(inst.ID()); kind == runtime.KindOCI || kind == runtime.KindProcess {
				_ = inst.Signal(syscall.SIGKILL)
			}
		}
	}
	rec.mu.Unlock()
	if current && !rec.agent.stopped() {
		logger.Info("A pod's pause container ended; its containers are killed and restart with a new one", "podUID", rec.uid)
		rec.worker.wake()
	}
}

// removePause ends the pod's pause container, once its containers have
// ended (or are being killed).
func (rec *podRecord) removePause() {
	rec.mu.Lock()
	p := rec.pause
	rec.pause = nil
	rec.mu.Unlock()
	if p != nil {
		p.Remove()
	}
}
