package statefulset

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"
)

var (
	_ podWriter      = (*fakeWriter)(nil)
	_ claimWriter    = (*fakeWriter)(nil)
	_ setWriter      = (*fakeWriter)(nil)
	_ revisionWriter = (*fakeWriter)(nil)
)

// fakeWriter records every write as "verb kind name" and fails the ones
// listed in fail (each failure is used up once unless sticky).
type fakeWriter struct {
	mu     sync.Mutex
	calls  []string
	fail   map[string][]error
	rv     int
	sets   map[string]*appsv1.StatefulSet
	claims map[string]*v1.PersistentVolumeClaim // what GetClaim reads
	status []appsv1.StatefulSetStatus
}

func newFakeWriter() *fakeWriter {
	return &fakeWriter{fail: map[string][]error{}, sets: map[string]*appsv1.StatefulSet{}, claims: map[string]*v1.PersistentVolumeClaim{}}
}

// failNext makes the next calls named call fail with errs, in order.
func (w *fakeWriter) failNext(call string, errs ...error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail[call] = append(w.fail[call], errs...)
}

func (w *fakeWriter) record(call string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, call)
	w.rv++
	if errs := w.fail[call]; len(errs) > 0 {
		w.fail[call] = errs[1:]
		return "", errs[0]
	}
	return strconv.Itoa(w.rv), nil
}

// written records call and returns a copy of obj at the call's resource
// version.
func written[T interface {
	metav1.Object
	DeepCopyObject() runtime.Object
}](w *fakeWriter, call string, obj T) (T, error) {
	rv, err := w.record(call)
	if err != nil {
		var none T
		return none, err
	}
	out := obj.DeepCopyObject().(T)
	out.SetResourceVersion(rv)
	return out, nil
}

func (w *fakeWriter) recorded() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

func (w *fakeWriter) CreatePod(_ context.Context, pod *v1.Pod) (*v1.Pod, error) {
	return written(w, "create pod "+pod.Name, pod)
}

func (w *fakeWriter) UpdatePod(_ context.Context, pod *v1.Pod) (*v1.Pod, error) {
	return written(w, "update pod "+pod.Name, pod)
}

func (w *fakeWriter) DeletePod(_ context.Context, _, name string) error {
	_, err := w.record("delete pod " + name)
	return err
}

func (w *fakeWriter) PatchPod(_ context.Context, _, name string, patch []byte) (*v1.Pod, error) {
	verb := "adopt"
	if strings.Contains(string(patch), `"$patch":"delete"`) {
		verb = "release"
	}
	rv, err := w.record(verb + " pod " + name)
	if err != nil {
		return nil, err
	}
	p := &v1.Pod{}
	p.Name, p.ResourceVersion = name, rv
	return p, nil
}

func (w *fakeWriter) CreateClaim(_ context.Context, claim *v1.PersistentVolumeClaim) (*v1.PersistentVolumeClaim, error) {
	return written(w, "create claim "+claim.Name, claim)
}

func (w *fakeWriter) UpdateClaim(_ context.Context, claim *v1.PersistentVolumeClaim) (*v1.PersistentVolumeClaim, error) {
	return written(w, "update claim "+claim.Name, claim)
}

func (w *fakeWriter) GetClaim(_ context.Context, _, name string) (*v1.PersistentVolumeClaim, error) {
	rv, err := w.record("get claim " + name)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.claims[name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumeclaims"}, name)
	}
	out := c.DeepCopy()
	out.ResourceVersion = rv
	return out, nil
}

func (w *fakeWriter) GetSet(_ context.Context, namespace, name string) (*appsv1.StatefulSet, error) {
	if _, err := w.record("get set " + name); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if set, ok := w.sets[namespace+"/"+name]; ok {
		return set.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "statefulsets"}, name)
}

func (w *fakeWriter) UpdateSetStatus(_ context.Context, set *appsv1.StatefulSet) (*appsv1.StatefulSet, error) {
	rv, err := w.record("update status " + set.Name)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.status = append(w.status, *set.Status.DeepCopy())
	w.mu.Unlock()
	out := set.DeepCopy()
	out.ResourceVersion = rv
	return out, nil
}

func (w *fakeWriter) CreateRevision(_ context.Context, _ *appsv1.StatefulSet, rev *appsv1.ControllerRevision, _ *int32) (*appsv1.ControllerRevision, error) {
	if _, err := w.record("create revision " + rev.Name); err != nil {
		return nil, err
	}
	return rev.DeepCopy(), nil
}

func (w *fakeWriter) RenumberRevision(_ context.Context, rev *appsv1.ControllerRevision, number int64) (*appsv1.ControllerRevision, error) {
	if _, err := w.record(fmt.Sprintf("renumber revision %s %d", rev.Name, number)); err != nil {
		return nil, err
	}
	out := rev.DeepCopy()
	out.Revision = number
	return out, nil
}

func (w *fakeWriter) DeleteRevision(_ context.Context, rev *appsv1.ControllerRevision) error {
	_, err := w.record("delete revision " + rev.Name)
	return err
}

func (w *fakeWriter) AdoptRevision(_ context.Context, _ *appsv1.StatefulSet, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	if _, err := w.record("adopt revision " + rev.Name); err != nil {
		return nil, err
	}
	return rev.DeepCopy(), nil
}

// events drains a fake recorder.
func events(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}
