package runtime

import (
	"io"
	"sync"
	"time"
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
// write is queued for each attached writer, which its own goroutine
// drains. A client that fails, or falls so far behind that its queue is
// full, is detached: the instance (whose log is written through the
// fan-out) never waits for a client. The zero value is ready.
type Fanout struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

// fanoutQueue is how many writes a client may lag behind.
const fanoutQueue = 1024

type subscriber struct {
	queue  chan []byte
	failed chan struct{}
	done   chan struct{}
	once   sync.Once
}

func (s *subscriber) fail() { s.once.Do(func() { close(s.failed) }) }

// Write implements io.Writer; it never fails and never blocks.
func (f *Fanout) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) == 0 {
		return len(p), nil
	}
	b := append([]byte(nil), p...)
	for s := range f.subs {
		select {
		case s.queue <- b:
		default:
			s.fail()
			close(s.queue)
			delete(f.subs, s)
		}
	}
	return len(p), nil
}

// Add attaches w until the returned detach is called, which first hands w
// what is still queued for it (for at most a few seconds). failed is
// closed if writing to w fails or w falls behind. A nil w attaches nothing.
func (f *Fanout) Add(w io.Writer) (failed <-chan struct{}, detach func()) {
	if w == nil {
		return nil, func() {}
	}
	s := &subscriber{queue: make(chan []byte, fanoutQueue), failed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for b := range s.queue {
			if _, err := w.Write(b); err != nil {
				s.fail()
				f.remove(s)
				for range s.queue {
				}
				return
			}
		}
	}()
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[*subscriber]struct{}{}
	}
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return s.failed, func() {
		f.remove(s)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
		}
	}
}

// remove detaches s and ends its queue, once.
func (f *Fanout) remove(s *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		close(s.queue)
	}
}
