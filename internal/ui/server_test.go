package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// startServer serves a fake cluster and returns the server and a client
// that has logged in.
func startServer(t *testing.T) (*Server, *fake.Clientset, *http.Client) {
	t.Helper()
	client := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Start(ctx, Config{Client: client, ControllerZone: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.Done():
		case <-time.After(5 * time.Second):
			t.Error("the server did not stop within 5 s of its context")
		}
	})
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := hc.Get(srv.LoginURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %s", resp.Status)
	}
	return srv, client, hc
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLoginTokenWorksOnceAndNothingWithoutIt(t *testing.T) {
	srv, _, logged := startServer(t)
	base := "http://" + srv.Addr()
	anon := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/", "/assets/app.js", "/api/views/cluster", "/api/stream/cluster", "/api/yaml?kind=Node&name=x"} {
		if code, _ := get(t, anon, base+path); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %d, want 401", path, code)
		}
	}
	login := srv.LoginURL()
	resp, err := anon.Get(login)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first use of a login URL: %d, want 303", resp.StatusCode)
	}
	cookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	if code, _ := get(t, anon, login); code != http.StatusForbidden {
		t.Errorf("second use of a login URL: %d, want 403", code)
	}
	if code, _ := get(t, anon, base+"/login?token="); code != http.StatusForbidden {
		t.Errorf("empty token: %d, want 403", code)
	}
	// A forged cookie is no session.
	req, _ := http.NewRequest("GET", base+"/api/views/cluster", nil)
	req.AddCookie(&http.Cookie{Name: srv.auth.cookie, Value: "forged"})
	if resp, err := anon.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged session: %v %v", resp.StatusCode, err)
	}
	// A Host that is not loopback (DNS rebinding) is refused even with a session.
	req, _ = http.NewRequest("GET", base+"/api/views/cluster", nil)
	req.Host = "evil.example:80"
	if resp, err := logged.Do(req); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host: %v %v", resp.StatusCode, err)
	}
	if code, body := get(t, logged, base+"/"); code != http.StatusOK || !strings.Contains(body, "<div id=\"app\">") {
		t.Errorf("index with a session: %d %.200s", code, body)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "nonsense"} {
		if _, err := Start(context.Background(), Config{Client: fake.NewClientset(), Address: addr}); err == nil {
			t.Errorf("Start on %q: no error", addr)
		}
	}
}

func TestViewAndYAML(t *testing.T) {
	srv, client, hc := startServer(t)
	base := "http://" + srv.Addr()
	ctx := context.Background()
	if _, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, body := get(t, hc, base+"/api/views/cluster")
		var v ClusterView
		return json.Unmarshal([]byte(body), &v) == nil && len(v.Nodes) == 1 && v.Nodes[0].Name == "node-1"
	})
	code, body := get(t, hc, base+"/api/yaml?kind=Node&name=node-1")
	if code != http.StatusOK || !strings.Contains(body, "kind: Node") || !strings.Contains(body, "name: node-1") {
		t.Errorf("YAML of node-1: %d\n%s", code, body)
	}
	if code, _ := get(t, hc, base+"/api/yaml?kind=Secret&namespace=default&name=x"); code != http.StatusNotFound {
		t.Errorf("YAML of a Secret: %d, want 404", code)
	}
	if code, _ := get(t, hc, base+"/api/views/nothing"); code != http.StatusNotFound {
		t.Errorf("unknown view: %d, want 404", code)
	}
}

// TestStreamPushesChanges follows the StatefulSet stream: the model at
// once, and again when the set changes.
func TestStreamPushesChanges(t *testing.T) {
	srv, client, hc := startServer(t)
	resp, err := hc.Get("http://" + srv.Addr() + "/api/stream/statefulsets")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	msgs := make(chan StatefulSetsView, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var v StatefulSetsView
				if json.Unmarshal([]byte(data), &v) == nil {
					msgs <- v
				}
			}
		}
		close(msgs)
	}()
	next := func() StatefulSetsView {
		select {
		case v := <-msgs:
			return v
		case <-time.After(5 * time.Second):
			t.Fatal("no message within 5 s")
		}
		return StatefulSetsView{}
	}
	if v := next(); len(v.Items) != 0 || v.Selected != nil {
		t.Fatalf("first message %+v, want an empty list", v)
	}
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3)}}
	start := time.Now()
	if _, err := client.AppsV1().StatefulSets("default").Create(context.Background(), set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	v := next()
	if len(v.Items) != 1 || v.Selected == nil || len(v.Selected.Ordinals) != 3 {
		t.Fatalf("after create: %+v", v)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("change pushed after %s", d)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExplainPanel(t *testing.T) {
	srv, client, hc := startServer(t)
	base := "http://" + srv.Addr()
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db-backup"},
		Spec: batchv1.CronJobSpec{Schedule: "*/1 * * * *", ConcurrencyPolicy: batchv1.AllowConcurrent}}
	if _, err := client.BatchV1().CronJobs("default").Create(context.Background(), cj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, hc, base+"/api/explain?kind=CronJob&namespace=default&name=db-backup")
	var e struct {
		Kind, Name, Reading string
		Findings            []struct{ ID string }
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &e) != nil || e.Kind != "CronJob" || e.Reading == "" || len(e.Findings) == 0 {
		t.Errorf("explain of a CronJob with no startingDeadlineSeconds: %d %s", code, body)
	}
	if code, _ := get(t, hc, base+"/api/explain?kind=CronJob&namespace=default&name=nothing"); code != http.StatusNotFound {
		t.Errorf("explain of a missing CronJob: %d, want 404", code)
	}
	if code, _ := get(t, hc, base+"/api/explain?kind=Secret&namespace=default&name=x"); code != http.StatusNotFound {
		t.Errorf("explain of a Secret: %d, want 404", code)
	}
}
