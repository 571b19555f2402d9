// Command app is what the tests' images run (built with CGO_ENABLED=0, so
// it needs nothing of the image but itself). Its first argument says what
// to do:
//
//	serve PORT DIR   write "hello from <hostname>" to DIR/hello (once), serve DIR over HTTP
//	                 (PORT 0: a free port; the address served is printed)
//	get URL          print the body of an HTTP GET of URL; exit 1 unless 200
//	exit N           print "exiting with N" and exit with N
//	hog MB           allocate and touch MB megabytes, then sleep
//	write PATH       write PATH; exit 1 (printing why) when it cannot
//	env              print the environment, the user and the working dir
//	sleep            sleep until SIGTERM
//	cat PATH         print PATH; exit 1 when it cannot be read
//	ns               print the hostname, this process's IPC, UTS and PID namespaces
//	                 (ipc:[N] …) and the names of the processes it can see, sorted
//	whoami           as an in-cluster client does (client-go's rest.InClusterConfig): reach
//	                 https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT with the service
//	                 account's token, verifying the server with its ca.crt; print the address
//	                 and the user a SelfSubjectReview names; exit 1 on any failure
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: app serve|get|exit|hog|write|env|sleep|cat|ns|whoami ...")
		os.Exit(2)
	}
	arg := func(i int) string {
		if len(os.Args) <= i {
			fmt.Fprintf(os.Stderr, "%s: missing argument\n", os.Args[1])
			os.Exit(2)
		}
		return os.Args[i]
	}
	switch os.Args[1] {
	case "serve":
		fail(serve(arg(2), arg(3)))
	case "get":
		fail(get(arg(2)))
	case "exit":
		n, _ := strconv.Atoi(arg(2))
		fmt.Printf("exiting with %d\n", n)
		os.Exit(n)
	case "hog":
		mb, _ := strconv.Atoi(arg(2))
		hog(mb)
	case "write":
		if err := os.WriteFile(arg(2), []byte("x"), 0o644); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("wrote", arg(2))
	case "env":
		env := os.Environ()
		sort.Strings(env)
		for _, kv := range env {
			fmt.Println(kv)
		}
		wd, _ := os.Getwd()
		fmt.Printf("uid=%d gid=%d groups=%v wd=%s\n", os.Getuid(), os.Getgid(), groups(), wd)
	case "sleep":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
	case "cat":
		b, err := os.ReadFile(arg(2))
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		_, _ = os.Stdout.Write(b)
	case "ns":
		host, _ := os.Hostname()
		fmt.Println("hostname=" + host)
		for _, ns := range []string{"ipc", "uts", "pid"} {
			l, _ := os.Readlink("/proc/self/ns/" + ns)
			fmt.Println(ns + "=" + l)
		}
		fmt.Println("processes=" + strings.Join(processes(), ","))
	case "whoami":
		fail(whoami())
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// fail exits 1, printing err to stderr, unless err is nil.
func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// serve writes "hello from <hostname>" to dir/hello unless it exists, then
// serves dir over HTTP on port (0: a free one, printed) until that fails.
func serve(port, dir string) error {
	host, _ := os.Hostname()
	f := filepath.Join(dir, "hello")
	if _, err := os.Stat(f); err != nil {
		if err := os.WriteFile(f, []byte("hello from "+host+"\n"), 0o644); err != nil {
			return err
		}
	}
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	fmt.Printf("serving %s on port %d\n", dir, l.Addr().(*net.TCPAddr).Port)
	return http.Serve(l, http.FileServer(http.Dir(dir)))
}

// get prints the body of an HTTP GET of url; anything but 200 is an error.
func get(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(os.Stdout, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// hog allocates and touches mb megabytes, then sleeps an hour.
func hog(mb int) {
	var keep [][]byte
	for i := 0; i < mb; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = 1
		}
		keep = append(keep, b)
	}
	fmt.Printf("holding %d MB\n", len(keep))
	time.Sleep(time.Hour)
}

// processes are the names (comm) of the processes in /proc, sorted.
func processes() []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil {
			out = append(out, strings.TrimSpace(string(b)))
		}
	}
	sort.Strings(out)
	return out
}

func groups() []int {
	g, _ := os.Getgroups()
	return g
}

// whoami asks the apiserver who the pod's service account is, as an
// in-cluster client would reach it.
func whoami() error {
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return fmt.Errorf("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
	}
	token, err := os.ReadFile(sa + "token")
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(sa + "ca.crt")
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return fmt.Errorf("no certificate in %sca.crt", sa)
	}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	addr := net.JoinHostPort(host, port)
	body := []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
	req, err := http.NewRequest(http.MethodPost, "https://"+addr+"/apis/authentication.k8s.io/v1/selfsubjectreviews", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	var review struct {
		Status struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal(b, &review); err != nil {
		return err
	}
	fmt.Printf("%s %s\n", addr, review.Status.UserInfo.Username)
	return nil
}
