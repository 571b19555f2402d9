package runtime

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("client gone") }

// blockedWriter never returns from Write until released.
type blockedWriter struct{ release chan struct{} }

func (b blockedWriter) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestFanout(t *testing.T) {
	var f Fanout
	if n, err := f.Write([]byte("nobody listens\n")); n != 15 || err != nil {
		t.Fatalf("Write with no client = %d, %v", n, err)
	}
	var a, b lockedBuffer
	_, detachA := f.Add(&a)
	_, detachB := f.Add(&b)
	failed, _ := f.Add(failingWriter{})
	_, _ = f.Write([]byte("one\n"))
	select {
	case <-failed:
	case <-time.After(5 * time.Second):
		t.Errorf("a failing client was not told")
	}
	detachA()
	if n, err := f.Write([]byte("two\n")); n != 4 || err != nil {
		t.Errorf("Write after a client failed = %d, %v", n, err)
	}
	detachB()
	if a.b.String() != "one\n" || b.b.String() != "one\ntwo\n" {
		t.Errorf("a = %q, b = %q", a.b.String(), b.b.String())
	}
	if _, detach := f.Add(nil); detach == nil {
		t.Errorf("Add(nil) gave no detach")
	}
}

func TestFanoutNeverWaitsForASlowClient(t *testing.T) {
	var f Fanout
	slow := blockedWriter{release: make(chan struct{})}
	defer close(slow.release)
	failed, _ := f.Add(slow)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 3*fanoutQueue; i++ {
			_, _ = f.Write([]byte("x"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("writes waited for a client that does not read")
	}
	select {
	case <-failed:
	default:
		t.Errorf("the client that fell behind was not detached")
	}
}
