package daemonset

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestExpectations(t *testing.T) {
	type step struct {
		do   func(e *expectations)
		want bool
	}
	cases := map[string][]step{
		"unknown set is satisfied": {
			{do: func(*expectations) {}, want: true},
		},
		"creates are counted down": {
			{do: func(e *expectations) { e.expect("s", 2, nil) }, want: false},
			{do: func(e *expectations) { e.created("s", 1) }, want: false},
			{do: func(e *expectations) { e.created("s", 1) }, want: true},
		},
		"a delete seen twice counts once": {
			{do: func(e *expectations) { e.expect("s", 0, []string{"ns/a", "ns/b"}) }, want: false},
			{do: func(e *expectations) { e.deleted("s", "ns/a") }, want: false},
			{do: func(e *expectations) { e.deleted("s", "ns/a") }, want: false},
			{do: func(e *expectations) { e.deleted("s", "ns/b") }, want: true},
		},
		"a new expectation replaces the old": {
			{do: func(e *expectations) { e.expect("s", 5, nil) }, want: false},
			{do: func(e *expectations) { e.expect("s", 0, nil) }, want: true},
		},
		"others' pods do not count": {
			{do: func(e *expectations) { e.expect("s", 1, nil); e.created("other", 1) }, want: false},
		},
		"expired": {
			{do: func(e *expectations) { e.expect("s", 1, nil) }, want: false},
			{do: func(e *expectations) { e.clock.(*clocktesting.FakeClock).Step(expectationsTimeout) }, want: false},
			{do: func(e *expectations) { e.clock.(*clocktesting.FakeClock).Step(time.Millisecond) }, want: true},
		},
		"forgotten": {
			{do: func(e *expectations) { e.expect("s", 1, nil); e.forget("s") }, want: true},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			e := newExpectations(clocktesting.NewFakeClock(t0))
			for i, s := range steps {
				s.do(e)
				if got := e.satisfied("s"); got != s.want {
					t.Fatalf("step %d: satisfied = %v, want %v", i, got, s.want)
				}
			}
		})
	}
}
