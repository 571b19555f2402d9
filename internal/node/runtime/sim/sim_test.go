package sim

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"quartet.dev/quartet/internal/node/runtime"
)

func TestParseBehaviour(t *testing.T) {
	three := int32(3)
	cases := map[string]struct {
		in      map[string]string
		want    Behaviour
		wantErr bool
	}{
		"none":            {in: nil, want: Behaviour{}},
		"exit code":       {in: map[string]string{AnnotationExitCode: "3"}, want: Behaviour{ExitCode: &three}},
		"exit after 1.5s": {in: map[string]string{AnnotationExitCode: "3", AnnotationRunSeconds: "1.5"}, want: Behaviour{ExitCode: &three, RunFor: 1500 * time.Millisecond}},
		"unready":         {in: map[string]string{AnnotationReady: "false"}, want: Behaviour{Unready: true}},
		"ready":           {in: map[string]string{AnnotationReady: "true"}, want: Behaviour{}},
		"bad exit code":   {in: map[string]string{AnnotationExitCode: "256"}, wantErr: true},
		"bad run seconds": {in: map[string]string{AnnotationExitCode: "1", AnnotationRunSeconds: "-1"}, want: Behaviour{ExitCode: ptr(1)}, wantErr: true},
		"bad ready value": {in: map[string]string{AnnotationReady: "maybe"}, wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseBehaviour(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" && !tc.wantErr {
				t.Errorf("behaviour (-want +got):\n%s", diff)
			}
		})
	}
}

func ptr(i int32) *int32 { return &i }

func TestInstance(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := New(clk)
	exits := 0
	inst, err := r.Start(context.Background(), &runtime.ContainerSpec{PodUID: "u", Name: "c"}, func() { exits++ })
	if err != nil {
		t.Fatal(err)
	}
	if _, done := inst.Exited(); done {
		t.Fatal("a new instance has exited")
	}
	clk.Step(time.Second)
	if err := inst.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st, done := inst.Exited()
	if !done || st.ExitCode != 143 || st.Reason != "Error" || !st.FinishedAt.Equal(clk.Now()) || exits != 1 {
		t.Errorf("after SIGTERM: %+v %v exits=%d", st, done, exits)
	}
	inst.(*Instance).Finish(0, clk.Now())
	if st2, _ := inst.Exited(); st2 != st || exits != 1 {
		t.Errorf("a second finish changed the exit: %+v", st2)
	}
}
