package cronjob

import (
	"context"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
)

var (
	_ jobControl     = (*recordingJobControl)(nil)
	_ cronJobControl = (*recordingCronJobControl)(nil)
)

var jobsResource = schema.GroupResource{Group: "batch", Resource: "jobs"}

// recordingJobControl is an in-memory jobControl that records every call.
type recordingJobControl struct {
	existing map[string]*batchv1.Job // by name
	// createErr and getErr fail every call; deleteErr fails deletes by name.
	createErr, getErr error
	deleteErr         map[string]error
	calls             []string
}

func (r *recordingJobControl) CreateJob(_ context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	r.calls = append(r.calls, "create "+job.Name)
	if r.createErr != nil {
		return nil, r.createErr
	}
	if _, ok := r.existing[job.Name]; ok {
		return nil, apierrors.NewAlreadyExists(jobsResource, job.Name)
	}
	created := job.DeepCopy()
	created.UID = types.UID("uid-" + job.Name)
	created.ResourceVersion = "1"
	if r.existing == nil {
		r.existing = map[string]*batchv1.Job{}
	}
	r.existing[job.Name] = created
	return created.DeepCopy(), nil
}

func (r *recordingJobControl) GetJob(_ context.Context, namespace, name string) (*batchv1.Job, error) {
	r.calls = append(r.calls, "get "+name)
	if r.getErr != nil {
		return nil, r.getErr
	}
	if j, ok := r.existing[name]; ok && j.Namespace == namespace {
		return j.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(jobsResource, name)
}

func (r *recordingJobControl) DeleteJob(_ context.Context, _, name string, uid types.UID) error {
	r.calls = append(r.calls, "delete "+name)
	if err := r.deleteErr[name]; err != nil {
		return err
	}
	j, ok := r.existing[name]
	if !ok {
		return apierrors.NewNotFound(jobsResource, name)
	}
	if j.UID != uid {
		return apierrors.NewConflict(jobsResource, name, fmt.Errorf("uid precondition failed"))
	}
	delete(r.existing, name)
	return nil
}

// recordingCronJobControl records status writes.
type recordingCronJobControl struct {
	fresh     *batchv1.CronJob
	getErr    error
	updateErr error
	updates   []*batchv1.CronJob
}

func (r *recordingCronJobControl) GetCronJob(_ context.Context, _, name string) (*batchv1.CronJob, error) {
	if r.getErr != nil {
		return nil, r.getErr
	}
	if r.fresh == nil {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "batch", Resource: "cronjobs"}, name)
	}
	return r.fresh.DeepCopy(), nil
}

func (r *recordingCronJobControl) UpdateStatus(_ context.Context, cj *batchv1.CronJob) (*batchv1.CronJob, error) {
	r.updates = append(r.updates, cj.DeepCopy())
	if r.updateErr != nil {
		return nil, r.updateErr
	}
	return cj, nil
}

// drain returns the events a FakeRecorder holds as "Type Reason" strings,
// or with messages when full is set.
func drain(rec *record.FakeRecorder, full bool) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			if !full {
				f := strings.Fields(e)
				e = strings.Join(f[:min(2, len(f))], " ")
			}
			out = append(out, e)
		default:
			return out
		}
	}
}
