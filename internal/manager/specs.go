package manager

import (
	"fmt"
	"slices"
	"strings"

	"quartet.dev/quartet/internal/controllers"
)

// Spec is one of quartet's workload controllers (controllers.All lists
// them).
type Spec = controllers.Spec

// Names returns the names of every controller, in start order.
func Names() []string {
	var names []string
	for _, s := range controllers.All {
		names = append(names, s.Name)
	}
	return names
}

// Select reads a --controllers value: controller names, "*" for every one,
// and "-name" to leave one out ("*,-cronjob"). The result keeps the start
// order of controllers.All.
func Select(items []string) ([]Spec, error) {
	chosen := map[string]bool{}
	known := func(name string) error {
		if !slices.Contains(Names(), name) {
			return fmt.Errorf("--controllers: unknown controller %q (want %s, or *)", name, strings.Join(Names(), ", "))
		}
		return nil
	}
	for _, item := range items {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
		case item == "*":
			for _, n := range Names() {
				chosen[n] = true
			}
		case strings.HasPrefix(item, "-"):
			if err := known(item[1:]); err != nil {
				return nil, err
			}
			chosen[item[1:]] = false
		default:
			if err := known(item); err != nil {
				return nil, err
			}
			chosen[item] = true
		}
	}
	var out []Spec
	for _, s := range controllers.All {
		if chosen[s.Name] {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--controllers %q: no controller chosen (want some of %s, or *)", strings.Join(items, ","), strings.Join(Names(), ", "))
	}
	return out, nil
}

// JobManagedBy is the spec.managedBy value that hands a Job to quartet's Job
// controller run by `quartet controllers`; the cluster's own Job controller
// leaves such Jobs alone.
const JobManagedBy = "quartet.dev/job-controller"
