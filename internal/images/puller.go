package images

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// downFor is how long a registry that could not be reached is not asked
// again: pulls meanwhile fail at once with the error it gave.
const downFor = time.Minute

// Puller pulls images into a store for the node agents: concurrent pulls
// of one reference with the same credentials are one fetch (fifty pods
// starting from one image fetch it once), and a registry that could not be
// reached is not asked again for a minute, so an offline machine learns
// it once rather than once per pod.
type Puller struct {
	Store *Store
	// Registries returns the registries file in force (nil: none).
	Registries func() (*Registries, error)
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	mu       sync.Mutex
	inflight map[string]*pullCall
	down     map[string]downEntry
}

type pullCall struct {
	done chan struct{}
	im   *Image
	err  error
	took time.Duration
}

type downEntry struct {
	err   error
	until time.Time
}

// UnreachableError is a pull that found no registry reachable.
type UnreachableError struct {
	Err error
}

func (e *UnreachableError) Error() string { return e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

func (p *Puller) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Pull pulls ref with the credentials creds (nil: none) and says how long
// the fetch took. An error for which IsUnreachable holds is an
// *UnreachableError.
func (p *Puller) Pull(ctx context.Context, ref string, creds *Credentials) (*Image, time.Duration, error) {
	return p.pull(ctx, ref, creds, false)
}

// PullIfMissing is Pull for a pull policy of IfNotPresent: a caller that
// saw the image missing from the store may ask after another pull of it
// has ended; it then gets the store's image without a fetch.
func (p *Puller) PullIfMissing(ctx context.Context, ref string, creds *Credentials) (*Image, time.Duration, error) {
	return p.pull(ctx, ref, creds, true)
}

func (p *Puller) pull(ctx context.Context, ref string, creds *Credentials, ifMissing bool) (*Image, time.Duration, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, 0, err
	}
	host := r.Context().RegistryStr()
	key := canonical(r) + "|" + creds.Key()
	p.mu.Lock()
	if p.inflight == nil {
		p.inflight, p.down = map[string]*pullCall{}, map[string]downEntry{}
	}
	// Checked with p.mu held: a pull leaves inflight only once its image
	// is in the store, so there is no moment at which it is in neither.
	if ifMissing {
		if im, ok, err := p.Store.Get(ref); err == nil && ok {
			p.mu.Unlock()
			return im, 0, nil
		}
	}
	if d, ok := p.down[host]; ok && p.now().Before(d.until) {
		p.mu.Unlock()
		return nil, 0, &UnreachableError{Err: d.err}
	}
	if c, ok := p.inflight[key]; ok {
		p.mu.Unlock()
		select {
		case <-c.done:
			return c.im, c.took, c.err
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	start := time.Now()
	c := &pullCall{done: make(chan struct{})}
	p.inflight[key] = c
	p.mu.Unlock()

	var regs *Registries
	if p.Registries != nil {
		if regs, err = p.Registries(); err != nil {
			err = fmt.Errorf("registries file: %w", err)
		}
	}
	if err == nil {
		opts := PullOptions{Registries: regs}
		if !creds.Empty() {
			opts.Keychain = creds
		}
		// A pull outlives the sync that started it (other pods may wait for
		// it); it ends with the agent's context.
		c.im, c.err = p.Store.Pull(ctx, ref, opts)
	} else {
		c.err = err
	}
	if c.err != nil && IsUnreachable(c.err) && ctx.Err() == nil {
		c.err = &UnreachableError{Err: c.err}
	}
	p.mu.Lock()
	delete(p.inflight, key)
	if _, ok := c.err.(*UnreachableError); ok {
		p.down[host] = downEntry{err: c.err.(*UnreachableError).Err, until: p.now().Add(downFor)}
	} else if c.err == nil {
		delete(p.down, host)
	}
	c.took = time.Since(start)
	p.mu.Unlock()
	close(c.done)
	return c.im, c.took, c.err
}

// Usage is the use of the filesystem that holds the store, in bytes.
func (s *Store) Usage() (used, capacity uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.root, &st); err != nil {
		return 0, 0, err
	}
	capacity = st.Blocks * uint64(st.Bsize)
	used = capacity - st.Bavail*uint64(st.Bsize)
	return used, capacity, nil
}

// GCPolicy is the kubelet's image garbage collection: when the store's
// filesystem is HighPercent full or more, images no container uses are
// removed, least recently used first, until it is LowPercent full.
type GCPolicy struct {
	HighPercent, LowPercent int
	// Usage measures the filesystem (nil: Store.Usage).
	Usage func() (used, capacity uint64, err error)
	// LastUsed is when an image (by digest) was last used by a container
	// started by this process; zero falls back to when it was pulled.
	LastUsed func(digest string) time.Time
	// InUse reports whether a container uses the image (besides leases).
	InUse func(digest string) bool
	// MinAge is how long after its pull an image is kept whatever the
	// usage (the kubelet's ImageMinimumGCAge, 2 minutes by default), so
	// that an image is not removed between its pull and its container's
	// start.
	MinAge time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// GC collects images by policy and returns those it removed.
func (s *Store) GC(pol GCPolicy) ([]Image, error) {
	usage := pol.Usage
	if usage == nil {
		usage = s.Usage
	}
	used, capacity, err := usage()
	if err != nil || capacity == 0 {
		return nil, err
	}
	// As the kubelet counts: the percentage available rounded down, so
	// 84.5% used is 85%.
	if 100-(capacity-min(used, capacity))*100/capacity < uint64(pol.HighPercent) {
		return nil, nil
	}
	now := time.Now()
	if pol.Now != nil {
		now = pol.Now()
	}
	release, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer release()
	list, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	leased := s.leases()
	type cand struct {
		im   Image
		last time.Time
	}
	var cands []cand
	for _, im := range list {
		if leased[im.Digest] || (pol.InUse != nil && pol.InUse(im.Digest)) || now.Sub(im.Pulled) < pol.MinAge {
			continue
		}
		last := im.Pulled
		if pol.LastUsed != nil {
			if t := pol.LastUsed(im.Digest); t.After(last) {
				last = t
			}
		}
		cands = append(cands, cand{im, last})
	}
	sortBy(cands, func(a, b cand) bool { return a.last.Before(b.last) })
	var removed []Image
	for _, c := range cands {
		if used*100 <= uint64(pol.LowPercent)*capacity {
			break
		}
		if err := s.removeLocked(list, c.im); err != nil {
			return removed, err
		}
		removed = append(removed, c.im)
		if list, err = s.readIndex(); err != nil {
			return removed, err
		}
		if used, capacity, err = usage(); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
