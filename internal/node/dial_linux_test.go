//go:build linux

package node

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDialInNetNS checks that port-forward's dial reaches localhost inside
// a pod's network namespace, not the host's: a server on the same port in
// each answers with where it is.
func TestDialInNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	// A process in a network namespace of its own (loopback up) holds the
	// namespace for the test.
	holder := exec.Command("unshare", "--net", "sh", "-c", "ip link set lo up && echo up && exec sleep 120")
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "up\n" {
		t.Fatalf("the namespace's holder: %q, %v", line, err)
	}
	netns := "/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/net"

	inside := listenIn(t, netns)
	port := inside.Addr().(*net.TCPAddr).Port
	serve(t, inside, "pod")
	if host, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
		serve(t, host, "host")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := dialInNetNS(ctx, netns, port)
	if err != nil {
		t.Fatalf("dialInNetNS: %v", err)
	}
	got, _ := io.ReadAll(conn)
	conn.Close()
	if string(got) != "pod" {
		t.Errorf("dialInNetNS reached %q, want the server in the pod's namespace", got)
	}

	// Nothing listens on another port inside: the error says where it
	// looked, and the calling goroutine's thread is back in the host's
	// namespace.
	other := freePortIn(t, netns, port)
	if _, err := dialInNetNS(ctx, netns, other); err == nil || !strings.Contains(err.Error(), "the pod's network namespace") {
		t.Errorf("dial to a closed port in the pod: %v, want a refusal naming the pod's network namespace", err)
	}
	if same, err := sameNetNS("/proc/thread-self/ns/net"); err != nil || !same {
		t.Errorf("after dialInNetNS this thread is not in the host's namespace (%v)", err)
	}
}

// listenIn listens on 127.0.0.1 inside netns.
func listenIn(t *testing.T, netns string) net.Listener {
	t.Helper()
	l, err := inNetNS(netns, func() (net.Listener, error) { return net.Listen("tcp4", "127.0.0.1:0") })
	if err != nil {
		t.Fatalf("listening inside %s: %v", netns, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// freePortIn is a port other than not on which nothing listens inside
// netns.
func freePortIn(t *testing.T, netns string, not int) int {
	t.Helper()
	for {
		l, err := inNetNS(netns, func() (net.Listener, error) { return net.Listen("tcp4", "127.0.0.1:0") })
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p != not {
			return p
		}
	}
}

// inNetNS runs f on a thread inside netns; the thread goes back to its
// own namespace afterwards, or is never reused when it cannot.
func inNetNS(netns string, f func() (net.Listener, error)) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	res := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			res <- result{nil, err}
			return
		}
		defer own.Close()
		target, err := os.Open(netns)
		if err != nil {
			res <- result{nil, err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			res <- result{nil, err}
			return
		}
		l, err := f()
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			goruntime.UnlockOSThread()
		}
		res <- result{l, err}
	}()
	r := <-res
	return r.l, r.err
}

// serve answers every connection to l with name.
func serve(t *testing.T, l net.Listener, name string) {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(name))
			c.Close()
		}
	}()
}
