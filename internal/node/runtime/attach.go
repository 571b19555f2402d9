package runtime

import (
	"io"
	"sync"
)

// AttachOptions is one client attached to a running instance's stdio, as
// `kubectl attach` and `kubectl run -it` are. Stdin (if not nil) is copied
// to the instance's stdin or terminal; Stdout and Stderr receive what the
// instance writes from the moment of attaching (with a terminal, all of it
// on Stdout); Resize resizes the instance's terminal.
type AttachOptions struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Resize <-chan TerminalSize
}

// Fanout is an instance's output stream as attached clients see it: every
// write goes to each attached writer. A writer that fails is detached (its
// client has gone). The zero value is ready.
type Fanout struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	w      io.Writer
	failed chan struct{}
}

// Write implements io.Writer; it never fails, so the instance's log is
// written whatever its clients do.
func (f *Fanout) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if _, err := s.w.Write(p); err != nil {
			close(s.failed)
			delete(f.subs, s)
		}
	}
	return len(p), nil
}

// Add attaches w until the returned detach is called; failed is closed if
// a write to w fails first. A nil w attaches nothing.
func (f *Fanout) Add(w io.Writer) (failed <-chan struct{}, detach func()) {
	if w == nil {
		return nil, func() {}
	}
	s := &subscriber{w: w, failed: make(chan struct{})}
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[*subscriber]struct{}{}
	}
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return s.failed, func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
	}
}
