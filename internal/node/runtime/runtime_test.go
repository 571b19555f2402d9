package runtime

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestArgv(t *testing.T) {
	img := ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}}
	cases := map[string]struct {
		command, args []string
		img           ImageConfig
		want          []string
	}{
		"command and args":        {command: []string{"sh", "-c"}, args: []string{"echo"}, want: []string{"sh", "-c", "echo"}},
		"command drops image cmd": {command: []string{"run"}, img: img, want: []string{"run"}},
		"image defaults":          {img: img, want: []string{"/entry", "default"}},
		"args replace cmd":        {args: []string{"x"}, img: img, want: []string{"/entry", "x"}},
		"nothing to run":          {args: nil, want: []string{}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Argv(tc.command, tc.args, tc.img)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	for id, want := range map[string]Kind{"process://ab": KindProcess, "sim://x": KindSim, "nonsense": ""} {
		if got := KindOf(id); got != want {
			t.Errorf("KindOf(%q) = %q, want %q", id, got, want)
		}
	}
}
