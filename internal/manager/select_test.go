package manager

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSelect(t *testing.T) {
	cases := map[string]struct {
		in   []string
		want []string
		err  string
	}{
		"all":                {in: []string{"*"}, want: Names()},
		"some, in run order": {in: []string{"job", "statefulset"}, want: []string{"statefulset", "job"}},
		"all but one":        {in: []string{"*", "-cronjob"}, want: []string{"statefulset", "daemonset", "job", "ttlafterfinished"}},
		"unknown":            {in: []string{"deployment"}, err: `unknown controller "deployment"`},
		"unknown exclusion":  {in: []string{"*", "-jobs"}, err: `unknown controller "jobs"`},
		"none left":          {in: []string{"job", "-job"}, err: "no controller chosen"},
		"empty":              {in: nil, err: "no controller chosen"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			specs, err := Select(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Select(%q) = %v, want an error with %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range specs {
				got = append(got, s.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Select(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestAccesses(t *testing.T) {
	got := Accesses(ElectionRules(), "ns")
	if len(got) != 3 || got[0].String() != "get leases.coordination.k8s.io in namespace ns" {
		t.Errorf("Accesses(ElectionRules) = %v", got)
	}
	sub := Accesses(ControllerRules("job"), "")
	found := false
	for _, a := range sub {
		if a.Resource == "jobs" && a.Subresource == "status" && a.Verb == "update" {
			found = a.String() == "update jobs/status.batch in every namespace"
		}
	}
	if !found {
		t.Errorf("update jobs/status missing or misnamed in %v", sub)
	}
}
