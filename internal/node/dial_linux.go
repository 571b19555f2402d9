//go:build linux

package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	goruntime "runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// dialInNetNS connects to localhost:port inside the network namespace file
// netns ("" or this process's own: the host's), as a container runtime's
// port-forward does: IPv4 first, then IPv6.
func dialInNetNS(ctx context.Context, netns string, port int) (net.Conn, error) {
	same := netns == ""
	if !same {
		var err error
		if same, err = sameNetNS(netns); err != nil {
			return nil, fmt.Errorf("opening the pod's network namespace: %w", err)
		}
	}
	if same {
		return dialLocalhost(ctx, port, "the host's network")
	}
	type result struct {
		conn net.Conn
		err  error
	}
	res := make(chan result, 1)
	go func() {
		// The socket is made in the namespace the thread is in; the thread
		// goes back to its own namespace afterwards, or dies with this
		// goroutine (never unlocked) when it cannot.
		goruntime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			res <- result{nil, err}
			return
		}
		defer own.Close()
		target, err := os.Open(netns)
		if err != nil {
			res <- result{nil, fmt.Errorf("opening the pod's network namespace: %w", err)}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			res <- result{nil, fmt.Errorf("entering the pod's network namespace: %w", err)}
			return
		}
		conn, err := dialLocalhost(ctx, port, "the pod's network namespace")
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			goruntime.UnlockOSThread()
		}
		res <- result{conn, err}
	}()
	r := <-res
	return r.conn, r.err
}

func dialLocalhost(ctx context.Context, port int, where string) (net.Conn, error) {
	var d net.Dialer
	p := strconv.Itoa(port)
	conn, err4 := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", p))
	if err4 == nil {
		return conn, nil
	}
	conn, err6 := d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", p))
	if err6 == nil {
		return conn, nil
	}
	return nil, fmt.Errorf("failed to connect to localhost:%d inside %s, IPv4: %w IPv6: %w", port, where, err4, err6)
}

// sameNetNS reports whether the namespace file is this process's network
// namespace.
func sameNetNS(netns string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Stat(netns, &a); err != nil {
		return false, err
	}
	if err := unix.Stat("/proc/self/ns/net", &b); err != nil {
		return false, errors.New("no /proc/self/ns/net")
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}
