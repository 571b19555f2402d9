package cronnext

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// LoadCronJob reads the one CronJob in a YAML or JSON manifest at path ("-"
// for standard input). The file may hold several documents and Lists; other
// kinds are skipped. It is an error if the file holds no CronJob or more
// than one.
func LoadCronJob(path string) (*batchv1.CronJob, error) {
	cjs, err := LoadCronJobs(path)
	if err != nil {
		return nil, err
	}
	return pick(cjs, "", path)
}

// LoadCronJobs reads every CronJob in a manifest at path ("-" for standard
// input).
func LoadCronJobs(path string) ([]*batchv1.CronJob, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	return readCronJobs(r, path)
}

// pick returns the CronJob called name, or the only one when name is "".
func pick(cjs []*batchv1.CronJob, name, source string) (*batchv1.CronJob, error) {
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

func readCronJobs(r io.Reader, source string) ([]*batchv1.CronJob, error) {
	docs := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var (
		cjs    []*batchv1.CronJob
		others []string
	)
	for n := 1; ; n++ {
		data, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		found, kinds, err := decode(data)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, n, err)
		}
		cjs = append(cjs, found...)
		others = append(others, kinds...)
	}
	if len(cjs) == 0 {
		if len(others) == 0 {
			return nil, fmt.Errorf("%s: no CronJob found: the file holds no objects", source)
		}
		return nil, fmt.Errorf("%s: no CronJob found (it holds %s)", source, strings.Join(others, ", "))
	}
	return cjs, nil
}

// decode reads one document: a CronJob, a List of objects, or something
// else, whose kind it returns.
func decode(data []byte) ([]*batchv1.CronJob, []string, error) {
	var fields map[string]any
	if err := yaml.Unmarshal(data, &fields); err != nil {
		return nil, nil, fmt.Errorf("not YAML or JSON: %w", err)
	}
	if len(fields) == 0 {
		return nil, nil, nil // empty, or only comments
	}
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return nil, nil, fmt.Errorf("reading apiVersion and kind: %w", err)
	}
	switch {
	case head.Kind == "":
		return nil, nil, errors.New("an object without a kind")
	case head.Kind == "CronJob":
		if head.APIVersion != batchv1.SchemeGroupVersion.String() {
			return nil, nil, fmt.Errorf("CronJob with apiVersion %q: Kubernetes v1.37 serves CronJobs as batch/v1 only", head.APIVersion)
		}
		return decodeCronJob(data)
	case strings.HasSuffix(head.Kind, "List") && head.Items != nil:
		var cjs []*batchv1.CronJob
		var kinds []string
		for i, item := range head.Items {
			found, k, err := decode(item)
			if err != nil {
				return nil, nil, fmt.Errorf("items[%d]: %w", i, err)
			}
			cjs, kinds = append(cjs, found...), append(kinds, k...)
		}
		return cjs, kinds, nil
	default:
		return nil, []string{head.Kind}, nil
	}
}

// decodeCronJob decodes strictly, as the API server does with
// fieldValidation=Strict, so that a misspelt field is reported with its
// path instead of silently ignored.
func decodeCronJob(data []byte) ([]*batchv1.CronJob, []string, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, nil, fmt.Errorf("not YAML or JSON: %w", err)
	}
	cj := &batchv1.CronJob{}
	strict, err := kjson.UnmarshalStrict(js, cj)
	if err != nil {
		return nil, nil, fmt.Errorf("CronJob: %w", err)
	}
	if len(strict) > 0 {
		return nil, nil, fmt.Errorf("CronJob: %w", errors.Join(strict...))
	}
	return []*batchv1.CronJob{cj}, nil, nil
}
