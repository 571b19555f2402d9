package browser

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// changeLatency arms an in-page observer for the JavaScript condition
// cond, makes a change, and returns the milliseconds from the test's own
// watch seeing the event (saw returns true for it) to the page showing it.
func (u *ui) changeLatency(cond string, w watch.Interface, saw func(watch.Event) bool, change func()) float64 {
	u.t.Helper()
	defer w.Stop()
	var armed bool
	u.eval(fmt.Sprintf(`(() => { window.__seen = 0; const ok = () => { try { return !!(%s); } catch (e) { return false; } };
	  const o = new MutationObserver(() => { if (!window.__seen && ok()) { window.__seen = Date.now(); o.disconnect(); } });
	  o.observe(document, {subtree: true, childList: true, characterData: true, attributes: true}); return true; })()`, cond), &armed)
	change()
	var watched time.Time
	timeout := time.After(time.Minute)
	for watched.IsZero() {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				u.t.Fatal("watch closed")
			}
			if saw(ev) {
				watched = time.Now()
			}
		case <-timeout:
			u.t.Fatal("the test's watch never saw the change")
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var seen float64
		u.eval("window.__seen", &seen)
		if seen > 0 {
			return seen - float64(watched.UnixMicro())/1000
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("the page never showed %s", cond)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statefulSetView(u *ui) {
	u.open("#/statefulsets/default/web")
	u.waitJS("three ready ordinals", `document.querySelector('[data-testid=sts-ready]')?.textContent === '3/3'`, 3*time.Minute)
	ords := u.texts("[data-testid=ordinal] .ord")
	if !slices.Equal(ords, []string{"0", "1", "2"}) {
		u.t.Errorf("ordinals shown %v, want 0 1 2 in order", ords)
	}
	if pods := u.texts("[data-testid=pod-name]"); !slices.Equal(pods, []string{"web-0", "web-1", "web-2"}) {
		u.t.Errorf("pods shown %v, want web-0 web-1 web-2", pods)
	}
	claims := u.texts("[data-testid=ordinal] [data-testid=claim]")
	for i, want := range []string{"data-web-0", "data-web-1", "data-web-2"} {
		if i >= len(claims) || !strings.HasPrefix(claims[i], want) || !strings.Contains(claims[i], "Bound") {
			u.t.Errorf("claim of ordinal %d shown as %q, want %s Bound", i, at(claims, i), want)
		}
	}
	u.shot("statefulset")

	// Change latency: scale, and time the page against the test's watch.
	client, err := u.c.Client()
	if err != nil {
		u.t.Fatal(err)
	}
	var lat []float64
	for _, n := range []int32{4, 3, 4, 3, 4} {
		w, err := client.AppsV1().StatefulSets("default").Watch(context.Background(), metav1.ListOptions{FieldSelector: "metadata.name=web"})
		if err != nil {
			u.t.Fatal(err)
		}
		l := u.changeLatency(fmt.Sprintf(`document.querySelector('[data-testid=sts-ready]')?.textContent.endsWith('/%d')`, n), w,
			func(ev watch.Event) bool { return replicasOf(ev.Object) == n },
			func() { u.kubectl("", "scale", "statefulset", "web", fmt.Sprintf("--replicas=%d", n)) })
		lat = append(lat, l)
	}
	u.t.Logf("%s: StatefulSet scale visible after the watch event: %v ms", u.browser, lat)
	u.report("change visible after the watch event (StatefulSet scale, max of 5)", slices.Max(lat), "ms", 300)

	// Scale down to one: the claims of ordinals 1.. are kept and shown.
	u.kubectl("", "scale", "statefulset", "web", "--replicas=1")
	u.waitJS("retained claims", `document.querySelector('[data-testid=retained]')?.textContent.includes('data-web-2') && document.querySelectorAll('[data-testid=ordinal]').length === 1`, 2*time.Minute)
	retained := strings.Join(u.texts("[data-testid=retained] li"), "\n")
	for _, want := range []string{"ordinal 1: data-web-1", "ordinal 2: data-web-2", "ordinal 3: data-web-3"} {
		if !strings.Contains(retained, want) {
			u.t.Errorf("retained claims shown:\n%s\nwant %q", retained, want)
		}
	}
	u.kubectl("", "scale", "statefulset", "web", "--replicas=3")
	u.waitJS("three ordinals again", `document.querySelector('[data-testid=sts-ready]')?.textContent === '3/3'`, 3*time.Minute)
}

func at(xs []string, i int) string {
	if i < len(xs) {
		return xs[i]
	}
	return "<none>"
}

func replicasOf(o runtime.Object) int32 {
	if s, ok := o.(*appsv1.StatefulSet); ok && s.Spec.Replicas != nil {
		return *s.Spec.Replicas
	}
	return -1
}

func daemonSetView(u *ui) {
	u.open("#/daemonsets")
	u.waitJS("node-exporter on three nodes", `[...document.querySelectorAll('[data-testid=ds-cell]')].filter(c => c.dataset.state === 'running').length === 3`, 2*time.Minute)
	if nodes := u.texts("[data-testid=ds-node] .node-head button"); !slices.Equal(nodes, []string{"node-1", "node-2", "node-3"}) {
		u.t.Errorf("grid rows %v, want node-1 node-2 node-3", nodes)
	}
	// A node added at run time gets its pod; a tainted one is excluded, with why.
	quartetNode(u, "add", "node-4")
	quartetNode(u, "add", "node-5", "--taint", "dedicated=db:NoSchedule")
	u.waitJS("node-4 running, node-5 excluded", `(() => {
	  const cell = n => document.querySelector('[data-node='+n+'] [data-testid=ds-cell]');
	  return cell('node-4')?.dataset.state === 'running' && cell('node-5')?.dataset.state === 'excluded'; })()`, 2*time.Minute)
	if d := u.texts("[data-testid=ds-desired]"); !slices.Equal(d, []string{"4"}) {
		u.t.Errorf("DESIRED shown %v, want 4", d)
	}
	why := u.texts("[data-node=node-5] [data-testid=ds-cell] .why")
	if len(why) != 1 || !strings.Contains(why[0], "taint dedicated=db:NoSchedule is not tolerated") {
		u.t.Errorf("node-5's cell says %q, want the untolerated taint", why)
	}
	u.shot("daemonset")
}

func jobView(u *ui) {
	u.open("#/jobs/default/db-migration-fail")
	u.waitJS("the failing migration Failed", `document.querySelector('[data-testid=job-outcome]')?.textContent.includes('BackoffLimitExceeded')`, 3*time.Minute)
	if f := u.texts("[data-testid=job-failed]"); !slices.Equal(f, []string{"3"}) {
		u.t.Errorf("failures shown %v, want 3 (backoffLimit 2: the first try and two retries)", f)
	}
	if l := u.texts("[data-testid=job-backoff-limit]"); !slices.Equal(l, []string{"2"}) {
		u.t.Errorf("backoffLimit shown %v, want 2", l)
	}
	codes := u.texts("[data-testid=job-pod] [data-testid=exit-code]")
	if len(codes) != 3 {
		u.t.Errorf("exit codes shown %v, want three pods", codes)
	}
	for _, c := range codes {
		if !strings.HasPrefix(c, "1") {
			u.t.Errorf("exit code shown %q, want 1 (false)", c)
		}
	}
	u.shot("job")
}

func cronJobView(u *ui) {
	u.open("#/cronjobs/default/db-backup")
	u.waitJS("next runs", `document.querySelectorAll('[data-testid=cj-run][data-state=next]').length === 6`, time.Minute)
	if z := u.texts("[data-testid=cj-zone]"); len(z) != 1 || !strings.HasPrefix(z[0], "Asia/Seoul") {
		u.t.Errorf("zone shown %v, want Asia/Seoul", z)
	}
	rows := u.texts("[data-testid=cj-run][data-state=next] td:first-child")
	for _, r := range rows {
		if !strings.Contains(r, "03:00 KST") {
			u.t.Errorf("next run shown as %q, want 03:00 KST", r)
		}
	}
	u.shot("cronjob")

	// The CronJob's name opens its YAML and quartet explain's reading.
	u.click("[data-testid=selected-name]")
	const panel = `document.querySelector('[data-testid=yaml]')?.textContent.includes('kind: CronJob') &&
	  document.querySelector('[data-testid=explain]')?.textContent.includes('CronJob')`
	u.waitJS("the YAML and explain panel", panel, 30*time.Second)
	u.shot("yaml-explain")
	u.pressEscape() // Esc closes it
	u.waitJS("the panel closed", `!document.querySelector('[data-testid=yaml]')`, 10*time.Second)

	// The same with the keyboard: Enter on the name opens the panel with
	// the focus on its Close button; Esc gives the focus back to the name.
	u.typeInto("[data-testid=selected-name]", "\r")
	u.waitJS("the panel opened with Enter", panel, 30*time.Second)
	u.waitJS("the focus on the panel's Close button", `document.activeElement?.textContent === 'Close (Esc)'`, 10*time.Second)
	u.pressEscape()
	u.waitJS("the panel closed, the focus back on the name", `!document.querySelector('[data-testid=yaml]') &&
	  document.activeElement?.dataset.testid === 'selected-name'`, 10*time.Second)
}

func clusterView(u *ui) {
	u.open("#/cluster")
	u.waitJS("nodes and pods", `document.querySelectorAll('[data-testid=node-chip]').length === 5 && document.querySelectorAll('[data-testid=cluster-pod]').length > 0`, time.Minute)
	u.typeInto("[data-testid=event-filter]", "BackoffLimitExceeded")
	u.waitJS("filtered events", `(() => { const ev = [...document.querySelectorAll('[data-testid=event]')];
	  return ev.length > 0 && ev.every(e => e.textContent.includes('BackoffLimitExceeded')); })()`, 30*time.Second)
	u.shot("cluster")
}

const crowd = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: crowd
spec:
  serviceName: crowd
  replicas: 1000
  podManagementPolicy: Parallel
  selector:
    matchLabels: {app: crowd}
  template:
    metadata:
      labels: {app: crowd}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
        - name: c
          image: nginx:1.27
`

// thousandPods measures the cluster view while a thousand pods arrive:
// the longest main-thread task, the frame times while scrolling the whole
// pod list, and how soon a change shows with a thousand pods on the page.
func thousandPods(u *ui) {
	u.open("#/daemonsets")
	u.open("#/cluster") // a fresh view: no event filter
	u.waitJS("the cluster view", `document.querySelector('[data-testid=pod-count]')`, time.Minute)
	var ok bool
	u.eval(`(() => { window.__long = []; new PerformanceObserver(l => { for (const e of l.getEntries()) window.__long.push(e.duration); })
	  .observe({type: 'longtask', buffered: false}); return true; })()`, &ok)
	// A node takes 110 pods, as a kubelet does by default: seven more
	// nodes make room for a thousand.
	for i := 6; i <= 12; i++ {
		quartetNode(u, "add", fmt.Sprintf("node-%d", i))
	}
	u.kubectl(crowd, "apply", "-f", "-")
	client, err := u.c.Client()
	if err != nil {
		u.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	for {
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=crowd"})
		if err != nil {
			u.t.Fatal(err)
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running == 1000 {
			break
		}
		if ctx.Err() != nil {
			u.t.Fatalf("%d of 1000 crowd pods Running", running)
		}
		u.t.Logf("%d of %d crowd pods Running", running, len(pods.Items))
		time.Sleep(2 * time.Second)
	}
	u.waitJS("a thousand crowd pods on the page", `parseInt(document.querySelector('[data-testid=pod-count]').textContent) >= 1000`, time.Minute)
	var longest float64
	u.eval(`Math.max(0, ...window.__long)`, &longest)
	var count int
	u.eval(`window.__long.length`, &count)
	u.t.Logf("longest tasks: %s", func() string {
		var l []float64
		u.eval(`window.__long.slice().sort((a, b) => b - a).slice(0, 10)`, &l)
		return fmt.Sprint(l)
	}())
	u.t.Logf("main-thread tasks over 50 ms while 1,000 pods arrived: %d, longest %.0f ms", count, longest)
	u.report("longest main-thread task while 1,000 pods arrive", longest, "ms", 200)

	// Scroll the whole pod list, one step a frame, and time the frames.
	var frames []float64
	u.eval(`new Promise(res => { const el = document.querySelector('[data-testid=cluster-pods]'); const gaps = []; let last = performance.now();
	  const step = () => { const now = performance.now(); gaps.push(now - last); last = now;
	    el.scrollTop += 240; if (el.scrollTop + el.clientHeight < el.scrollHeight - 1 && gaps.length < 2000) requestAnimationFrame(step); else res(gaps.slice(1)); };
	  requestAnimationFrame(step); })`, &frames)
	slices.Sort(frames)
	p95 := frames[len(frames)*95/100]
	u.t.Logf("scrolled %d frames through the pod list: median %.1f ms, p95 %.1f ms, max %.1f ms", len(frames), median(frames), p95, frames[len(frames)-1])
	u.report("frame time scrolling 1,000 pods, p95", p95, "ms", 50)
	u.eval(`(() => { document.querySelector('[data-testid=cluster-pods]').scrollTop = 0; return true; })()`, &ok)
	u.shot("thousand-pods")

	// A change with a thousand pods on the page: one more pod, then one
	// fewer, timed from the test's watch of that pod.
	var lat []float64
	for _, n := range []int32{1001, 1000, 1001, 1000} {
		pw, err := client.CoreV1().Pods("default").Watch(context.Background(), metav1.ListOptions{FieldSelector: "metadata.name=crowd-1000"})
		if err != nil {
			u.t.Fatal(err)
		}
		var before int
		u.eval(`parseInt(document.querySelector('[data-testid=pod-count]').textContent)`, &before)
		after, want := before+1, watch.Added
		if n == 1000 {
			after, want = before-1, watch.Deleted
		}
		l := u.changeLatency(fmt.Sprintf(`parseInt(document.querySelector('[data-testid=pod-count]').textContent) === %d`, after), pw,
			func(ev watch.Event) bool { return ev.Type == want },
			func() { u.kubectl("", "scale", "statefulset", "crowd", fmt.Sprintf("--replicas=%d", n)) })
		lat = append(lat, l)
	}
	u.t.Logf("pod count change visible after the watch event with 1,000 pods: %v ms", lat)
	u.report("change visible after the watch event (1,000 pods on the page, max of 4)", slices.Max(lat), "ms", 300)
}
