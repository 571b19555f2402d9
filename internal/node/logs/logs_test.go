package logs

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestWriteAndServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	w, err := Create(path, clk)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Copy(Stdout, strings.NewReader("one\ntwo\n")); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Minute)
	if err := w.Copy(Stderr, strings.NewReader("three\nno newline")); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", maxLine+10)
	if err := w.Copy(Stdout, strings.NewReader(long+"\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()

	since := clk.Now()
	limit := int64(5)
	tail := int64(2)
	cases := map[string]struct {
		opts Options
		want string
	}{
		"all":       {Options{}, "one\ntwo\nthree\nno newline\n" + long + "\n"},
		"stdout":    {Options{Stream: "Stdout"}, "one\ntwo\n" + long + "\n"},
		"tail 2":    {Options{TailLines: &tail, Stream: "Stderr"}, "three\nno newline\n"},
		"limit":     {Options{LimitBytes: &limit}, "one\nt"},
		"since":     {Options{Since: &since, Stream: "Stderr"}, "three\nno newline\n"},
		"timestamp": {Options{Timestamps: true, TailLines: &tail, Stream: "Stderr"}, "2026-01-01T00:01:00Z three\n2026-01-01T00:01:00Z no newline\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Serve(context.Background(), &buf, path, tc.opts, nil, 0); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want {
				t.Errorf("got %q\nwant %q", buf.String(), tc.want)
			}
		})
	}
}

func TestFollowStopsWhenFinished(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	w, err := Create(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = w.WriteRecord(Stdout, false, []byte("first"))
	finished := make(chan struct{})
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = w.WriteRecord(Stdout, false, []byte("second"))
		close(finished)
	}()
	var buf bytes.Buffer
	done := func() bool {
		select {
		case <-finished:
			return true
		default:
			return false
		}
	}
	if err := Serve(context.Background(), &buf, path, Options{Follow: true}, done, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "first\nsecond\n" {
		t.Errorf("followed %q", buf.String())
	}
}
