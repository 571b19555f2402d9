package kit

import (
	"errors"
	"sync"
)

// SlowStart calls fn(0), ..., fn(n-1) concurrently, in order, with a window
// of calls in flight that starts at start and grows by one with each success
// (so it doubles every round trip), up to limit; after a failure it starts
// no more. A failing apiserver or an exhausted quota so costs about twice the
// calls that succeed rather than n, and, unlike fixed batches, one slow call
// does not hold back those after it. It returns how many calls it started,
// the window it ended with (1 after a failure), and the failures.
func SlowStart(n, start, limit int, fn func(i int) error) (started, window int, err error) {
	start = max(1, min(start, limit))
	var (
		mu       sync.Mutex
		changed  = sync.NewCond(&mu)
		inFlight int
		errs     []error
		calls    sync.WaitGroup
	)
	window = start
	mu.Lock()
	for ; started < n; started++ {
		for inFlight >= window && len(errs) == 0 {
			changed.Wait()
		}
		if len(errs) > 0 {
			break
		}
		inFlight++
		i := started
		calls.Go(func() {
			err := fn(i)
			mu.Lock()
			defer mu.Unlock()
			inFlight--
			if err != nil {
				errs = append(errs, err)
			} else if window < limit {
				window++
			}
			changed.Broadcast()
		})
	}
	mu.Unlock()
	calls.Wait()
	if len(errs) > 0 {
		window = 1
	}
	return started, window, errors.Join(errs...)
}
