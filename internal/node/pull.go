package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"quartet.dev/quartet/internal/images"
)

// pullResult is a pull that ended, for the pod's next sync.
type pullResult struct {
	image string // the container's image it was for
	im    *images.Image
	err   error
	took  time.Duration // the fetch itself
	wait  time.Duration // since this pod asked, including waiting for another's
}

// defaultPullPolicy is the API's default: Always for ":latest" or no tag,
// IfNotPresent otherwise (the apiserver sets it; a pod from elsewhere may
// not have it).
func defaultPullPolicy(image string) v1.PullPolicy {
	if strings.Contains(image, "@") {
		return v1.PullIfNotPresent
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") && image[i+1:] != "latest" {
		return v1.PullIfNotPresent
	}
	return v1.PullAlways
}

// ensureImage makes a container's image ready for its next start under the
// oci runtime, as the kubelet's image manager does: a reference that does
// not parse is InvalidImageName; an image in the store is used unless the
// policy is Always; Never without the image is ErrImageNeverPull; else the
// image is pulled, in the background (the pod's next sync takes the
// result). Under --runtime auto, an image that cannot be had because no
// registry is reachable (or Never) is a fallback instead.
func (h *Host) ensureImage(ctx context.Context, rec *podRecord, pod *v1.Pod, c *v1.Container, now time.Time) {
	cs := rec.state.container(c.Name)
	ip := &cs.Pull
	if ip.Image != c.Image {
		*ip = imagePull{Image: c.Image}
	}
	if ip.Pulling {
		return
	}
	image := withDefaultTag(c.Image)
	fail := func(reason, msg string, retry time.Duration) {
		ip.Reason, ip.Message, ip.FailedAt, ip.RetryAt = reason, msg, now, now.Add(retry)
		h.podEvent(rec, pod, plannedEvent{Container: c.Name, Type: v1.EventTypeWarning, Reason: reasonFailed, Message: "Error: " + reason})
	}
	if _, err := images.ParseReference(c.Image); err != nil {
		msg := fmt.Sprintf("Failed to apply default image tag %q: couldn't parse image name %q: invalid reference format", c.Image, c.Image)
		h.podEvent(rec, pod, plannedEvent{Container: c.Name, Type: v1.EventTypeWarning, Reason: reasonInspectFailed, Message: msg})
		fail(reasonInvalidImageName, msg, retryUnrunnable)
		return
	}
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = defaultPullPolicy(c.Image)
	}
	// Read before the store is looked at, as the kubelet does: a secret
	// that cannot be read is reported whether or not a pull follows.
	creds := h.pullCredentials(ctx, rec, pod)
	present, ok, err := h.images.Get(c.Image)
	if err != nil {
		fail(reasonErrImagePull, err.Error(), initialPullBackoff)
		return
	}
	if ok && policy != v1.PullAlways {
		ip.Ready, ip.Reason, ip.Message = present.RepoDigest(), "", ""
		h.podEvent(rec, pod, plannedEvent{Container: c.Name, Type: v1.EventTypeNormal, Reason: reasonPulled,
			Message: fmt.Sprintf("Container image %q already present on machine", c.Image)})
		return
	}
	if policy == v1.PullNever {
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
		if h.mode == RuntimeAuto {
			ip.Fallback = msg
			return
		}
		h.podEvent(rec, pod, plannedEvent{Container: c.Name, Type: v1.EventTypeWarning, Reason: reasonErrImageNeverPul, Message: msg})
		fail(reasonErrImageNeverPul, msg, retryUnrunnable)
		return
	}
	h.podEvent(rec, pod, plannedEvent{Container: c.Name, Type: v1.EventTypeNormal, Reason: reasonPulling, Message: fmt.Sprintf("Pulling image %q", image)})
	ip.Pulling = true
	asked := time.Now()
	name, ref := c.Name, c.Image
	go func() {
		pull := h.puller.PullIfMissing
		if policy == v1.PullAlways {
			pull = h.puller.Pull
		}
		im, took, err := pull(ctx, ref, creds)
		rec.mu.Lock()
		if rec.pulled == nil {
			rec.pulled = map[string]*pullResult{}
		}
		rec.pulled[name] = &pullResult{image: ref, im: im, err: err, took: took, wait: time.Since(asked)}
		rec.mu.Unlock()
		rec.worker.wake()
	}()
}

// collectPull takes the result of a container's pull, if one has ended.
func (h *Host) collectPull(rec *podRecord, pod *v1.Pod, c *v1.Container, now time.Time) {
	rec.mu.Lock()
	res := rec.pulled[c.Name]
	delete(rec.pulled, c.Name)
	rec.mu.Unlock()
	if res == nil {
		return
	}
	cs := rec.state.container(c.Name)
	ip := &cs.Pull
	if ip.Image != res.image {
		return // the spec's image changed meanwhile
	}
	ip.Pulling = false
	image := withDefaultTag(c.Image)
	if res.err == nil {
		ip.Ready, ip.Reason, ip.Message, ip.Backoff = res.im.RepoDigest(), "", "", 0
		h.podEvent(rec, pod, plannedEvent{Container: c.Name, Type: v1.EventTypeNormal, Reason: reasonPulled,
			Message: fmt.Sprintf("Successfully pulled image %q in %v (%v including waiting). Image size: %d bytes.",
				image, res.took.Truncate(time.Millisecond), res.wait.Truncate(time.Millisecond), res.im.Size)})
		return
	}
	var unreachable *images.UnreachableError
	if errors.As(res.err, &unreachable) && h.mode == RuntimeAuto {
		// An image already in the store still runs from it.
		if present, ok, _ := h.images.Get(c.Image); ok {
			ip.Ready = present.RepoDigest()
			h.podEvent(rec, pod, plannedEvent{Container: c.Name, Type: v1.EventTypeWarning, Reason: reasonFailed,
				Message: fmt.Sprintf("Failed to pull image %q: %v; running the image already in the store", image, res.err)})
			return
		}
		ip.Fallback = fmt.Sprintf("no registry could be reached to pull image %q: %v", image, res.err)
		return
	}
	msg := fmt.Sprintf("failed to pull and unpack image %q: %v", images.Canonical(c.Image), res.err)
	h.podEvent(rec, pod, plannedEvent{Container: c.Name, Type: v1.EventTypeWarning, Reason: reasonFailed,
		Message: fmt.Sprintf("Failed to pull image %q: %s", image, msg)})
	ip.Backoff = nextDelay(ip.Backoff, initialPullBackoff, maxPullBackoff)
	ip.Reason, ip.Message, ip.FailedAt, ip.RetryAt = reasonErrImagePull, msg, now, now.Add(ip.Backoff)
	h.podEvent(rec, pod, plannedEvent{Container: c.Name, Type: v1.EventTypeWarning, Reason: reasonFailed, Message: "Error: " + reasonErrImagePull})
}

// pullCredentials are the pod's image pull secrets (kubernetes.io/
// dockerconfigjson or dockercfg), read as the pod's node, as the kubelet
// reads them: the service account's are in the pod's already (the API
// server's ServiceAccount admission copies them into a pod that names
// none). A secret that cannot be read is skipped with the kubelet's
// warning event.
func (h *Host) pullCredentials(ctx context.Context, rec *podRecord, pod *v1.Pod) *images.Credentials {
	creds := &images.Credentials{}
	var missing []string
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := h.podClient(pod).CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			missing = append(missing, ref.Name)
			continue
		}
		switch s.Type {
		case v1.SecretTypeDockerConfigJson:
			err = creds.AddDockerConfig(s.Data[v1.DockerConfigJsonKey], false)
		case v1.SecretTypeDockercfg:
			err = creds.AddDockerConfig(s.Data[v1.DockerConfigKey], true)
		default:
			continue
		}
		if err != nil {
			missing = append(missing, ref.Name)
		}
	}
	if len(missing) > 0 {
		h.podEvent(rec, pod, plannedEvent{Key: "pullsecrets/" + strings.Join(missing, ","), Type: v1.EventTypeWarning, Reason: reasonFailedPullSecret,
			Message: fmt.Sprintf("Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(missing, ", "))})
	}
	return creds
}

// imageList caches the store's images for Node status.images.
type imageList struct {
	mu   sync.Mutex
	at   time.Time
	list []v1.ContainerImage
}

// maxNodeImages is the kubelet's nodeStatusMaxImages.
const maxNodeImages = 50

// nodeStatusImages lists the store's images for Node status.images, the
// largest first, at most 50 (read from the store at most every 10 s).
func (h *Host) nodeStatusImages(now time.Time) []v1.ContainerImage {
	if h.images == nil {
		return nil
	}
	c := &h.nodeImages
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && now.Sub(c.at) < 10*time.Second && now.After(c.at) {
		return c.list
	}
	list, err := h.images.List()
	if err != nil {
		return c.list
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Size > list[j].Size })
	out := make([]v1.ContainerImage, 0, min(len(list), maxNodeImages))
	for _, im := range list {
		if len(out) == maxNodeImages {
			break
		}
		out = append(out, v1.ContainerImage{Names: im.Names(), SizeBytes: im.Size})
	}
	c.list, c.at = out, now
	return out
}
