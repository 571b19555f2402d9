package runtime

import (
	"bytes"
	"errors"
	"testing"
)

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("client gone") }

func TestFanout(t *testing.T) {
	var f Fanout
	if n, err := f.Write([]byte("nobody listens\n")); n != 15 || err != nil {
		t.Fatalf("Write with no client = %d, %v", n, err)
	}
	var a, b bytes.Buffer
	_, detachA := f.Add(&a)
	_, _ = f.Add(&b)
	failed, _ := f.Add(failingWriter{})
	_, _ = f.Write([]byte("one\n"))
	select {
	case <-failed:
	default:
		t.Errorf("a failing client was not told")
	}
	detachA()
	if n, err := f.Write([]byte("two\n")); n != 4 || err != nil {
		t.Errorf("Write after a client failed = %d, %v", n, err)
	}
	if a.String() != "one\n" || b.String() != "one\ntwo\n" {
		t.Errorf("a = %q, b = %q", a.String(), b.String())
	}
	if _, detach := f.Add(nil); detach == nil {
		t.Errorf("Add(nil) gave no detach")
	}
}
