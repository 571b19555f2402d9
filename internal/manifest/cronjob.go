package manifest

import (
	"errors"
	"fmt"
	"io"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
)

// LoadCronJobs reads every CronJob in the manifest at path (Stdin for
// stdin). Any document that cannot be read, or a CronJob that does not
// decode, is an error: a command about one CronJob should not guess.
func LoadCronJobs(path string, stdin io.Reader) ([]*batchv1.CronJob, error) {
	objs, errs := Load([]string{path}, stdin)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	source := path
	if path == Stdin {
		source = "<stdin>"
	}
	var (
		cjs    []*batchv1.CronJob
		others []string
	)
	for _, o := range objs {
		if o.Kind != "CronJob" {
			others = append(others, o.Kind)
			continue
		}
		cj, err := DecodeCronJob(o)
		if err != nil {
			return nil, err
		}
		cjs = append(cjs, cj)
	}
	if len(cjs) == 0 {
		if len(others) == 0 {
			return nil, fmt.Errorf("%s: no CronJob found: the file holds no objects", source)
		}
		return nil, fmt.Errorf("%s: no CronJob found (it holds %s)", source, strings.Join(others, ", "))
	}
	return cjs, nil
}

// DecodeCronJob decodes a CronJob object strictly. Kubernetes v1.37 serves
// CronJobs as batch/v1 only.
func DecodeCronJob(o Object) (*batchv1.CronJob, error) {
	if o.APIVersion != batchv1.SchemeGroupVersion.String() {
		return nil, &Error{Where: o.Where(), Err: fmt.Errorf("CronJob with apiVersion %q: Kubernetes v1.37 serves CronJobs as batch/v1 only", o.APIVersion)}
	}
	cj := &batchv1.CronJob{}
	if err := o.Decode(cj); err != nil {
		return nil, &Error{Where: o.Where(), Err: fmt.Errorf("CronJob: %w", err)}
	}
	return cj, nil
}

// PickCronJob returns the CronJob called name, or the only one when name is
// "". source names the manifest in errors.
func PickCronJob(cjs []*batchv1.CronJob, name, source string) (*batchv1.CronJob, error) {
	var names []string
	for _, cj := range cjs {
		if name != "" && cj.Name == name {
			return cj, nil
		}
		names = append(names, cj.Name)
	}
	switch {
	case name != "":
		return nil, fmt.Errorf("%s: no CronJob named %q (it holds %s)", source, name, strings.Join(names, ", "))
	case len(cjs) == 1:
		return cjs[0], nil
	default:
		return nil, fmt.Errorf("%s holds %d CronJobs (%s): name the one you mean", source, len(cjs), strings.Join(names, ", "))
	}
}
